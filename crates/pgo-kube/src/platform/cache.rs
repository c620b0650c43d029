//! What the platform reads of the objects pgo made (Pods, Deployments,
//! PVCs, Secrets, ConfigMaps, Services), from memory: one list and watch of
//! each kind, by pgo's label, keeps a copy current. A steady pass reads only
//! this, so an idle operator makes no request of the API server.
//!
//! - Until the first list is in, or while a broken watch is listed again,
//!   a read answers `None` and the caller asks the API server.
//! - An object not in the copy may still exist without pgo's label (one a
//!   user made); callers that must know ask the API server on a miss.
//! - What pgo writes is kept at once from the API server's answer, so the
//!   next pass does not see its own write missing.
//! - Pods and Deployments name their cluster to the operator's queue after
//!   the change is kept, so the reconcile it triggers reads it.

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use pgo_api::labels;
use pgo_store::kept::Kept;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

const RETRY: Duration = Duration::from_secs(1);

pub trait Cachable:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Cachable for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

pub struct Reflector<K> {
    api: Api<K>,
    state: Mutex<State<K>>,
    alive: watch::Receiver<()>,
}

struct State<K> {
    started: bool,
    synced: bool,
    objects: Kept<K>,
    /// Where each change's cluster is sent, for the kinds that trigger.
    feed: Option<mpsc::UnboundedSender<String>>,
}

/// An object's resourceVersion as a number (0 when it has none).
pub(super) fn version<K: Resource>(object: &K) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl<K: Cachable> State<K> {
    fn keep(&mut self, object: K) {
        let (name, at) = (object.name_any(), version(&object));
        // Its label taken off: no longer pgo's to read here.
        if !super::apply::ours(object.meta()) {
            return self.objects.forget(&name, at);
        }
        self.objects.keep(name, at, object);
    }

    fn tell(&mut self, object: &K) {
        if let (Some(feed), Some(cluster)) = (&self.feed, object.labels().get(labels::CLUSTER))
            && feed.send(cluster.clone()).is_err()
        {
            self.feed = None;
        }
    }
}

/// The label selector of what pgo made.
pub(super) fn ours() -> String {
    format!("{}={}", labels::MANAGED_BY, labels::MANAGER)
}

impl<K: Cachable> Reflector<K> {
    pub fn new(api: Api<K>, alive: watch::Receiver<()>) -> Arc<Self> {
        Arc::new(Reflector {
            api,
            state: Mutex::new(State {
                started: false,
                synced: false,
                objects: Kept::default(),
                feed: None,
            }),
            alive,
        })
    }

    /// Runs `f` over the copy once it is synced; the first asking starts
    /// the watch.
    fn read<T>(self: &Arc<Self>, f: impl FnOnce(&Kept<K>) -> T) -> Option<T> {
        let mut state = self.state.lock().ok()?;
        if !state.started {
            state.started = true;
            tokio::spawn(follow(Arc::downgrade(self), self.api.clone(), self.alive.clone()));
        }
        state.synced.then(|| f(&state.objects))
    }

    /// `None`: ask the API server. `Some(None)`: pgo made no such object.
    pub fn get(self: &Arc<Self>, name: &str) -> Option<Option<K>> {
        self.read(|objects| objects.get(name).cloned())
    }

    /// The objects `keep` says yes to; `None`: ask the API server.
    pub fn list(self: &Arc<Self>, keep: impl Fn(&K) -> bool) -> Option<Vec<K>> {
        self.read(|objects| objects.values().filter(|o| keep(o)).cloned().collect())
    }

    /// Keeps what the API server answered to a write.
    pub fn wrote(&self, object: K) {
        if let Ok(mut state) = self.state.lock()
            && state.synced
        {
            state.keep(object);
        }
    }

    /// Forgets `name`, deleted by pgo.
    pub fn deleted(&self, name: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.objects.deleted(name);
        }
    }

    /// Sends the cluster of every change from now on to `feed`, and starts
    /// the watch.
    pub fn feed(self: &Arc<Self>, feed: mpsc::UnboundedSender<String>) {
        if let Ok(mut state) = self.state.lock() {
            state.feed = Some(feed);
        }
        self.read(|_| ());
    }
}

/// Lists pgo's objects of the kind, then follows the watch from the list's
/// version; again after any break, until the platform is dropped.
async fn follow<K: Cachable>(cache: Weak<Reflector<K>>, api: Api<K>, mut alive: watch::Receiver<()>) {
    let with = |f: &mut dyn FnMut(&mut State<K>)| -> bool {
        let Some(c) = cache.upgrade() else { return false };
        match c.state.lock() {
            Ok(mut s) => {
                f(&mut s);
                true
            }
            Err(_) => false,
        }
    };
    loop {
        let listed = async {
            let list = api.list(&ListParams::default().labels(&ours())).await?;
            let version = list.metadata.resource_version.clone().unwrap_or_default();
            let events = api
                .watch(&WatchParams::default().labels(&ours()), &version)
                .await?;
            Ok::<_, kube::Error>((list.items, events))
        };
        let (items, events) = match listed.await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(kind = %K::kind(&()), error = %e, "cannot list and watch for the cache; reading through");
                if !with(&mut |s| s.synced = false) {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue,
                    _ = alive.changed() => return,
                }
            }
        };
        let relisted = with(&mut |s| {
            s.objects
                .relist(items.iter().map(|o| (o.name_any(), version(o), o.clone())));
            s.synced = true;
        });
        if !relisted {
            return;
        }
        let mut events = std::pin::pin!(events);
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                _ = alive.changed() => return,
            };
            let applied = match event {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => with(&mut |s| {
                    s.keep(o.clone());
                    s.tell(&o);
                }),
                Some(Ok(WatchEvent::Deleted(o))) => with(&mut |s| {
                    s.objects.forget(&o.name_any(), version(&o));
                    s.tell(&o);
                }),
                Some(Ok(WatchEvent::Bookmark(_))) => true,
                // Expired, broken or ended: list again.
                Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => {
                    if !with(&mut |s| s.synced = false) {
                        return;
                    }
                    break;
                }
            };
            if !applied {
                return;
            }
        }
    }
}

/// One cache per kind the platform reads; they end with the platform.
pub struct Caches {
    pub pods: Arc<Reflector<k8s_openapi::api::core::v1::Pod>>,
    pub deployments: Arc<Reflector<k8s_openapi::api::apps::v1::Deployment>>,
    pub claims: Arc<Reflector<k8s_openapi::api::core::v1::PersistentVolumeClaim>>,
    pub secrets: Arc<Reflector<k8s_openapi::api::core::v1::Secret>>,
    pub config_maps: Arc<Reflector<k8s_openapi::api::core::v1::ConfigMap>>,
    pub services: Arc<Reflector<k8s_openapi::api::core::v1::Service>>,
    pub budgets: Arc<Reflector<k8s_openapi::api::policy::v1::PodDisruptionBudget>>,
    pub policies: Arc<Reflector<k8s_openapi::api::networking::v1::NetworkPolicy>>,
    pub jobs: Arc<Reflector<k8s_openapi::api::batch::v1::Job>>,
    _alive: watch::Sender<()>,
}

impl Caches {
    pub fn new(client: &kube::Client, namespace: &str) -> Self {
        let (alive_tx, alive) = watch::channel(());
        Caches {
            pods: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            deployments: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            claims: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            secrets: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            config_maps: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            services: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            budgets: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            policies: Reflector::new(Api::namespaced(client.clone(), namespace), alive.clone()),
            jobs: Reflector::new(Api::namespaced(client.clone(), namespace), alive),
            _alive: alive_tx,
        }
    }
}

/// The caches of a platform that has them, each a kind.
pub trait CacheOf<K> {
    fn of(caches: &Caches) -> &Arc<Reflector<K>>;
}

macro_rules! cache_of {
    ($k:ty, $field:ident) => {
        impl CacheOf<$k> for $k {
            fn of(caches: &Caches) -> &Arc<Reflector<$k>> {
                &caches.$field
            }
        }
    };
}

cache_of!(k8s_openapi::api::core::v1::Pod, pods);
cache_of!(k8s_openapi::api::apps::v1::Deployment, deployments);
cache_of!(k8s_openapi::api::core::v1::PersistentVolumeClaim, claims);
cache_of!(k8s_openapi::api::core::v1::Secret, secrets);
cache_of!(k8s_openapi::api::core::v1::ConfigMap, config_maps);
cache_of!(k8s_openapi::api::core::v1::Service, services);
cache_of!(k8s_openapi::api::policy::v1::PodDisruptionBudget, budgets);
cache_of!(k8s_openapi::api::networking::v1::NetworkPolicy, policies);
cache_of!(k8s_openapi::api::batch::v1::Job, jobs);
