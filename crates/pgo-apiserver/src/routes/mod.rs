//! The REST routes. Reads are GET; mutations are POST or DELETE, never GET.

mod clusters;
mod failover;
mod health;
mod scale;
mod system;

use crate::auth::Caller;
use crate::{ApiError, AppState};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/version", get(system::version))
        .route("/status", get(system::status))
        .route("/clusters", get(clusters::list).post(clusters::create))
        .route("/clusters/{name}", get(clusters::show).delete(clusters::delete))
        .route("/clusters/{name}/scale", post(scale::scale))
        .route("/clusters/{name}/failover", post(failover::failover))
        .route("/clusters/{name}/scaledown", post(scale::scaledown))
        .route("/clusters/{name}/test", get(health::test))
        .route("/clusters/{name}/df", get(health::df))
        .fallback(unknown)
        .with_state(state)
}

/// The cluster named in the path, or 404 naming it.
async fn find_cluster(state: &AppState, name: &str) -> Result<pgo_api::Pgcluster, ApiError> {
    pgo_store::Api::<pgo_api::Pgcluster>::new(state.store.clone())
        .get_opt(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("cluster {name:?} not found")))
}

/// Unknown routes also need credentials: nothing is said to a stranger.
async fn unknown(_caller: Caller, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such API route: {}", uri.path()))
}
