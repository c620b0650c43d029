//! The apiserver: pgo's REST API, HTTPS only, every route but `/healthz`
//! behind HTTP Basic authentication and a role check. It validates requests
//! and writes resources to the store; the operator does the rest.

pub mod auth;
mod error;
pub mod metrics;
mod namespaces;
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
    /// The namespace this state serves (empty on the local platform).
    pub namespace: String,
    pub store: Arc<dyn Store>,
    pub platform: Arc<dyn Platform>,
    pub auth: Arc<auth::Auth>,
    pub config: PgoConfig,
    pub metrics: metrics::ApiMetrics,
    /// Every namespace's store, this one's among them: `/metrics` counts
    /// the clusters of all.
    stores: Vec<Arc<dyn Store>>,
    /// Failed logins by source address.
    throttle: Arc<auth::Throttle>,
    /// Password hashes computed at once: PBKDF2 must not take every core.
    hashing: Arc<tokio::sync::Semaphore>,
    /// Connections `/test` opens at once across all callers, so a reader
    /// cannot use up PostgreSQL's connection slots.
    testing: Arc<tokio::sync::Semaphore>,
    /// Why the operator is not alive, if it is not (`/livez`).
    liveness: Option<Liveness>,
}

/// Says why the process should be restarted, or nothing when it is well.
pub type Liveness = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Password hashes at once.
const HASHING: usize = 2;
/// Database connections `/test` opens at once.
const TESTING: usize = 4;

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        platform: Arc<dyn Platform>,
        auth: auth::Auth,
        config: PgoConfig,
    ) -> Self {
        AppState {
            namespace: String::new(),
            stores: vec![store.clone()],
            store,
            platform,
            auth: Arc::new(auth),
            config,
            metrics: metrics::ApiMetrics::default(),
            throttle: Arc::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING)),
            testing: Arc::new(tokio::sync::Semaphore::new(TESTING)),
            liveness: None,
        }
    }

    /// The same server (users, throttle, limits, metrics) over another
    /// namespace's store and platform.
    pub fn in_namespace(&self, namespace: &str, store: Arc<dyn Store>, platform: Arc<dyn Platform>) -> Self {
        AppState {
            namespace: namespace.to_string(),
            store,
            platform,
            auth: self.auth.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            stores: self.stores.clone(),
            throttle: self.throttle.clone(),
            hashing: self.hashing.clone(),
            testing: self.testing.clone(),
            liveness: self.liveness.clone(),
        }
    }

    /// Counts the clusters of these stores too on `/metrics`.
    pub fn counting(mut self, stores: Vec<Arc<dyn Store>>) -> Self {
        self.stores = stores;
        self
    }
}

impl AppState {
    /// Scrapes these metrics (and what they were made with) on `/metrics`.
    pub fn with_metrics(mut self, metrics: metrics::ApiMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Answers `/livez` from `check`.
    pub fn with_liveness(mut self, check: Liveness) -> Self {
        self.liveness = Some(check);
        self
    }

    pub(crate) fn unwell(&self) -> Option<String> {
        self.liveness.as_ref().and_then(|check| check())
    }
}

pub fn router(state: Arc<AppState>) -> axum::Router {
    routes::router(state)
}

/// One router per namespace, chosen by a request's `namespace` query
/// parameter; the first serves requests that name none.
pub fn namespaced_router(states: Vec<Arc<AppState>>) -> axum::Router {
    namespaces::router(states)
}
