use crate::runtime::Metrics;
use pgo_api::config::PgoConfig;
use pgo_platform::Platform;
use pgo_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What every reconcile needs.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub platform: Arc<dyn Platform>,
    pub config: PgoConfig,
    pub metrics: Arc<Metrics>,
    pub hooks: Hooks,
}

/// The kinds a pass reads, answered from memory by [`cached`].
pub const CACHED_KINDS: &[&str] = &["Pgcluster", "Pgreplica", "Pgtask"];

/// `store` with the kinds the operator reads served from a watch-fed
/// cache: a steady pass then reads nothing from the store. Only for a
/// store that can watch.
pub fn cached(store: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(pgo_store::Cached::new(store, CACHED_KINDS))
}

impl Context {
    pub fn new(store: Arc<dyn Store>, platform: Arc<dyn Platform>, config: PgoConfig) -> Self {
        Context {
            store,
            platform,
            config,
            metrics: Arc::default(),
            hooks: Hooks::default(),
        }
    }

    /// Metrics registered where they are scraped.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }
}

/// Places where a test stops the operator. None is set in production.
#[derive(Debug, Default)]
pub struct Hooks {
    /// A failover waits this long between fencing the old primary and
    /// recording the promotion: room to kill the operator there.
    pub pause_after_fence: Option<Duration>,
    /// After this many more actions, every pass stops before its next
    /// action, as an operator killed there would.
    pub actions_left: Option<AtomicUsize>,
}

impl Hooks {
    pub fn stop_after(actions: usize) -> Hooks {
        Hooks {
            actions_left: Some(AtomicUsize::new(actions)),
            ..Hooks::default()
        }
    }

    /// False once the budget of actions is spent.
    pub(crate) fn may_act(&self) -> bool {
        self.actions_left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        })
    }
}
