use crate::runtime::Metrics;
use pgo_api::config::PgoConfig;
use pgo_platform::Platform;
use pgo_store::Store;
use std::sync::Arc;

/// What every reconcile needs.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub platform: Arc<dyn Platform>,
    pub config: PgoConfig,
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub fn new(store: Arc<dyn Store>, platform: Arc<dyn Platform>, config: PgoConfig) -> Self {
        Context {
            store,
            platform,
            config,
            metrics: Arc::default(),
        }
    }
}
