//! A [`Store`] that answers reads from memory, kept current by one watch per
//! kind: what an informer is to client-go. A level-triggered operator reads
//! every cluster every probe period; without this each of those reads is a
//! request to the API server (or a query of SQLite), with it none is.
//!
//! - Reads of a kind are served from memory once its first list arrived,
//!   and from the store behind until then, or while a broken watch is
//!   listed again.
//! - Writes go to the store behind; what it answers is kept at once, so a
//!   reader sees its own writes before their watch events come back.
//! - Watches are served from the same memory, after each event is kept: a
//!   reconcile a change triggers reads that change, never an older state.
//!   A watcher that falls behind, or outlives a relist, is told to list
//!   again (`Gone`, or its stream ends), as the API server tells it.
//!
//! A read may be as old as the watch's delay, as any read of the API server
//! may be by the time it is used; writes still carry the resourceVersion
//! they read, so a stale one is refused, never applied.

use crate::kept::Kept;
use crate::{EventType, RawEvent, RawList, RawWatch, Store, StoreError, object};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Events kept per kind for watchers that start from a slightly older list
/// (a list and the watch after it are moments apart), and the most a
/// watcher may fall behind before it is told to list again. Each is a whole
/// object: a long ring was most of the server's memory after a burst.
const RING: usize = 128;
const RETRY: Duration = Duration::from_secs(1);

pub struct Cached {
    inner: Arc<dyn Store>,
    kinds: HashMap<String, Arc<Kind>>,
    /// Dropped with the cache: its watches end.
    _alive: watch::Sender<()>,
    alive: watch::Receiver<()>,
}

struct Kind {
    state: Mutex<State>,
    /// Whether `state` holds a list and the watch after it; changed only
    /// under `state`'s lock. Watchers wait on it.
    synced: watch::Sender<bool>,
}

impl Default for Kind {
    fn default() -> Self {
        Kind {
            state: Mutex::default(),
            synced: watch::channel(false).0,
        }
    }
}

struct State {
    started: bool,
    /// The version of the last list or event.
    version: u64,
    objects: Kept<Arc<Value>>,
    /// Every event after `floor`, the oldest first.
    ring: VecDeque<Arc<RawEvent>>,
    floor: u64,
    /// Replaced at each list: every watcher of the last one ends.
    live: broadcast::Sender<Arc<RawEvent>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            started: false,
            version: 0,
            objects: Kept::default(),
            ring: VecDeque::new(),
            floor: 0,
            live: broadcast::channel(RING).0,
        }
    }
}

fn version_of(object: &Value) -> u64 {
    object::given_version(object)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl State {
    fn relisted(&mut self, list: RawList) {
        self.objects.relist(list.items.into_iter().filter_map(|item| {
            let name = object::name(&item).ok()?;
            Some((name, version_of(&item), Arc::new(item)))
        }));
        self.version = list.resource_version;
        self.floor = list.resource_version;
        self.ring.clear();
        self.live = broadcast::channel(RING).0;
    }

    fn apply(&mut self, event: RawEvent) {
        if let Ok(name) = object::name(&event.object) {
            match event.event_type {
                EventType::Deleted => self.objects.forget(&name, event.resource_version),
                EventType::Added | EventType::Modified => {
                    self.objects
                        .keep(name, event.resource_version, Arc::new(event.object.clone()))
                }
            }
        }
        self.version = self.version.max(event.resource_version);
        if self.ring.len() == RING
            && let Some(old) = self.ring.pop_front()
        {
            self.floor = old.resource_version;
        }
        let event = Arc::new(event);
        self.ring.push_back(event.clone());
        // No watcher is no error.
        let _ = self.live.send(event);
    }
}

impl Cached {
    /// Caches `kinds`; any other kind goes to `inner` as it is.
    pub fn new(inner: Arc<dyn Store>, kinds: &[&str]) -> Self {
        let (alive_tx, alive) = watch::channel(());
        Cached {
            inner,
            kinds: kinds.iter().map(|k| (k.to_string(), Arc::default())).collect(),
            _alive: alive_tx,
            alive,
        }
    }

    /// The kind's state when it is cached and its first list is in; the
    /// first asking starts its watch.
    fn synced(&self, kind: &str) -> Option<MutexGuard<'_, State>> {
        let cache = self.kinds.get(kind)?;
        let mut state = cache.state.lock().ok()?;
        if !state.started {
            state.started = true;
            tokio::spawn(follow(
                self.inner.clone(),
                kind.to_string(),
                Arc::downgrade(cache),
                self.alive.clone(),
            ));
        }
        let synced = *cache.synced.borrow();
        synced.then_some(state)
    }

    /// Keeps what the store answered to a write.
    fn wrote(&self, kind: &str, object: &Value) {
        if let Some(mut state) = self.synced(kind)
            && let Ok(name) = object::name(object)
        {
            state
                .objects
                .keep(name, version_of(object), Arc::new(object.clone()));
        }
    }
}

/// Lists `kind` into its cache, then keeps it current from a watch; lists
/// again whenever the watch breaks, until the cache is dropped.
async fn follow(
    inner: Arc<dyn Store>,
    kind: String,
    cache: std::sync::Weak<Kind>,
    mut alive: watch::Receiver<()>,
) {
    // Under the state's lock, as every reader checks it.
    let unsynced = |cache: &std::sync::Weak<Kind>| {
        if let Some(c) = cache.upgrade()
            && let Ok(_state) = c.state.lock()
        {
            c.synced.send_replace(false);
        }
    };
    loop {
        let listed = async {
            let list = inner.list(&kind).await?;
            let events = inner.watch(&kind, list.resource_version).await?;
            Ok::<_, StoreError>((list, events))
        };
        let (list, mut events) = match listed.await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(kind, error = %e, "cannot list and watch for the cache; reading through");
                unsynced(&cache);
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => continue,
                    _ = alive.changed() => return,
                }
            }
        };
        match cache.upgrade() {
            Some(c) => match c.state.lock() {
                Ok(mut s) => {
                    s.relisted(list);
                    c.synced.send_replace(true);
                }
                Err(_) => return,
            },
            None => return,
        }
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                _ = alive.changed() => return,
            };
            match event {
                Some(Ok(event)) => match cache.upgrade() {
                    Some(c) => match c.state.lock() {
                        Ok(mut s) => s.apply(event),
                        Err(_) => return,
                    },
                    None => return,
                },
                Some(Err(e)) => {
                    tracing::debug!(kind, error = %e, "the cache's watch ended; listing again");
                    unsynced(&cache);
                    break;
                }
                None => {
                    unsynced(&cache);
                    break;
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for Cached {
    async fn get(&self, kind: &str, name: &str) -> Result<Value, StoreError> {
        self.get_shared(kind, name).await.map(Arc::unwrap_or_clone)
    }

    async fn list(&self, kind: &str) -> Result<RawList, StoreError> {
        let (items, resource_version) = self.list_shared(kind).await?;
        Ok(RawList {
            items: items.into_iter().map(Arc::unwrap_or_clone).collect(),
            resource_version,
        })
    }

    async fn get_shared(&self, kind: &str, name: &str) -> Result<Arc<Value>, StoreError> {
        if let Some(state) = self.synced(kind) {
            return state
                .objects
                .get(name)
                .cloned()
                .ok_or_else(|| StoreError::NotFound {
                    kind: kind.to_string(),
                    name: name.to_string(),
                });
        }
        self.inner.get_shared(kind, name).await
    }

    async fn list_shared(&self, kind: &str) -> Result<(Vec<Arc<Value>>, u64), StoreError> {
        if let Some(state) = self.synced(kind) {
            return Ok((state.objects.values().cloned().collect(), state.version));
        }
        self.inner.list_shared(kind).await
    }

    async fn create(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let created = self.inner.create(kind, object).await?;
        self.wrote(kind, &created);
        Ok(created)
    }

    async fn replace(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let replaced = self.inner.replace(kind, object).await?;
        self.wrote(kind, &replaced);
        Ok(replaced)
    }

    async fn replace_status(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        let replaced = self.inner.replace_status(kind, object).await?;
        self.wrote(kind, &replaced);
        Ok(replaced)
    }

    async fn delete(&self, kind: &str, name: &str) -> Result<Option<Value>, StoreError> {
        let outcome = self.inner.delete(kind, name).await?;
        match &outcome {
            Some(marked) => self.wrote(kind, marked),
            None => {
                if let Some(mut state) = self.synced(kind) {
                    state.objects.deleted(name);
                }
            }
        }
        Ok(outcome)
    }

    /// Waits for the kind's cache to be synced: a watch straight from the
    /// store could announce what the cache does not hold yet, and a reader
    /// it triggers would find the object missing.
    async fn watch(&self, kind: &str, since: u64) -> Result<RawWatch, StoreError> {
        let Some(cache) = self.kinds.get(kind) else {
            return self.inner.watch(kind, since).await;
        };
        let mut synced = cache.synced.subscribe();
        let (replay, live) = loop {
            if let Some(state) = self.synced(kind) {
                if since < state.floor {
                    return Err(StoreError::Gone(since));
                }
                let replay: Vec<RawEvent> = state
                    .ring
                    .iter()
                    .filter(|e| e.resource_version > since)
                    .map(|e| RawEvent::clone(e))
                    .collect();
                break (replay, state.live.subscribe());
            }
            if synced.wait_for(|s| *s).await.is_err() {
                return Err(StoreError::Backend(format!("the cache of {kind} was dropped")));
            }
        };
        let live = futures::stream::unfold(Some(live), move |rx| async move {
            let mut rx = rx?;
            loop {
                match rx.recv().await {
                    Ok(e) if e.resource_version > since => {
                        return Some((Ok(RawEvent::clone(&e)), Some(rx)));
                    }
                    Ok(_) => {}
                    // Fell behind: list again, as after an expired watch.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Err(StoreError::Gone(since)), None));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(futures::stream::iter(replay.into_iter().map(Ok))
            .chain(live)
            .boxed())
    }
}
