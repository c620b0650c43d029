//! The REST routes. Reads are GET; mutations are POST or DELETE, never GET.

mod clusters;
mod system;

use crate::auth::Caller;
use crate::{ApiError, AppState};
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/version", get(system::version))
        .route("/status", get(system::status))
        .route("/clusters", get(clusters::list).post(clusters::create))
        .route("/clusters/{name}", get(clusters::show).delete(clusters::delete))
        .fallback(unknown)
        .with_state(state)
}

/// Unknown routes also need credentials: nothing is said to a stranger.
async fn unknown(_caller: Caller, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such API route: {}", uri.path()))
}
