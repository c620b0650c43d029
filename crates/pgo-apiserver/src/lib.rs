//! The apiserver: pgo's REST API, HTTPS only, every route but `/healthz`
//! behind HTTP Basic authentication and a role check. It validates requests
//! and writes resources to the store; the operator does the rest.

pub mod auth;
mod error;
mod routes;
mod serve;
pub mod tls;
mod views;

pub use error::ApiError;
pub use serve::serve;

use pgo_api::config::PgoConfig;
use pgo_platform::Platform;
use pgo_store::Store;
use std::sync::Arc;

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub platform: Arc<dyn Platform>,
    pub auth: auth::Auth,
    pub config: PgoConfig,
}

pub fn router(state: Arc<AppState>) -> axum::Router {
    routes::router(state)
}
