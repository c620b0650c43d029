#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The cache in front of a store: reads from memory once synced, its own
//! writes seen at once, others' writes seen after their watch event, and
//! watches served only after the cache holds what they announce.

use futures::StreamExt;
use pgo_api::{Pgcluster, PgclusterSpec, Pgreplica};
use pgo_store::sqlite::SqliteStore;
use pgo_store::{Api, Cached, Event, RawList, RawWatch, Store, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The store behind, counting its reads.
struct Counting {
    inner: SqliteStore,
    reads: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for Counting {
    async fn get(&self, kind: &str, name: &str) -> Result<Value, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(kind, name).await
    }
    async fn list(&self, kind: &str) -> Result<RawList, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.list(kind).await
    }
    async fn create(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        self.inner.create(kind, object).await
    }
    async fn replace(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        self.inner.replace(kind, object).await
    }
    async fn replace_status(&self, kind: &str, object: Value) -> Result<Value, StoreError> {
        self.inner.replace_status(kind, object).await
    }
    async fn delete(&self, kind: &str, name: &str) -> Result<Option<Value>, StoreError> {
        self.inner.delete(kind, name).await
    }
    async fn watch(&self, kind: &str, since: u64) -> Result<RawWatch, StoreError> {
        self.inner.watch(kind, since).await
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    behind: Arc<Counting>,
    cached: Arc<Cached>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let behind = Arc::new(Counting {
        inner: SqliteStore::open(&dir.path().join("store.db")).unwrap(),
        reads: AtomicUsize::new(0),
    });
    let cached = Arc::new(Cached::new(behind.clone(), &["Pgcluster"]));
    Setup {
        _dir: dir,
        behind,
        cached,
    }
}

fn cluster(name: &str, replicas: u32) -> Pgcluster {
    let mut c = Pgcluster::new(name, PgclusterSpec::default());
    c.spec.replicas = replicas;
    c
}

/// Reads until the cache answers without the store behind.
async fn synced(s: &Setup) {
    let api = Api::<Pgcluster>::new(s.cached.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = s.behind.reads.load(Ordering::SeqCst);
        api.list().await.unwrap();
        if s.behind.reads.load(Ordering::SeqCst) == before {
            return;
        }
        assert!(Instant::now() < deadline, "the cache never synced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn reads_come_from_memory_once_synced_and_other_kinds_go_through() {
    let s = setup();
    let api = Api::<Pgcluster>::new(s.cached.clone());
    api.create(&cluster("a", 0)).await.unwrap();
    synced(&s).await;

    let before = s.behind.reads.load(Ordering::SeqCst);
    for _ in 0..100 {
        assert_eq!(api.get("a").await.unwrap().spec.replicas, 0);
        assert!(api.get_opt("missing").await.unwrap().is_none());
        assert_eq!(api.list().await.unwrap().0.len(), 1);
    }
    assert_eq!(
        s.behind.reads.load(Ordering::SeqCst),
        before,
        "300 reads, none behind"
    );

    let replicas = Api::<Pgreplica>::new(s.cached.clone());
    replicas.list().await.unwrap();
    assert_eq!(
        s.behind.reads.load(Ordering::SeqCst),
        before + 1,
        "a kind not cached is read behind"
    );
}

#[tokio::test]
async fn a_write_is_read_back_at_once_and_a_stale_one_still_conflicts() {
    let s = setup();
    let api = Api::<Pgcluster>::new(s.cached.clone());
    api.create(&cluster("a", 0)).await.unwrap();
    synced(&s).await;
    for n in 1..=20 {
        let mut c = api.get("a").await.unwrap();
        c.spec.replicas = n;
        api.replace(&c).await.unwrap();
        assert_eq!(api.get("a").await.unwrap().spec.replicas, n, "read back at once");
    }
    let stale = api.get("a").await.unwrap();
    let mut newer = stale.clone();
    newer.spec.replicas = 100;
    api.replace(&newer).await.unwrap();
    let err = api.replace(&stale).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(api.get("a").await.unwrap().spec.replicas, 100);

    api.create(&cluster("b", 0)).await.unwrap();
    assert!(
        api.get_opt("b").await.unwrap().is_some(),
        "a create read back at once"
    );
    assert!(api.delete("b").await.unwrap().is_none());
    assert!(
        api.get_opt("b").await.unwrap().is_none(),
        "a delete read back at once"
    );
}

#[tokio::test]
async fn another_writers_changes_arrive_by_watch() {
    let s = setup();
    let api = Api::<Pgcluster>::new(s.cached.clone());
    let other = Api::<Pgcluster>::new(Arc::new(s.behind.inner.clone()));
    other.create(&cluster("a", 0)).await.unwrap();
    synced(&s).await;

    let mut c = other.get("a").await.unwrap();
    c.spec.replicas = 3;
    other.replace(&c).await.unwrap();
    other.create(&cluster("b", 0)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.get("a").await.unwrap().spec.replicas != 3 || api.get_opt("b").await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "another writer's changes never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    other.delete("a").await.unwrap();
    while api.get_opt("a").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "another writer's delete never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_watch_announces_only_what_the_cache_already_holds() {
    let s = setup();
    let api = Api::<Pgcluster>::new(s.cached.clone());
    let other = Api::<Pgcluster>::new(Arc::new(s.behind.inner.clone()));
    other.create(&cluster("a", 0)).await.unwrap();
    synced(&s).await;

    let (_, version) = api.list().await.unwrap();
    let mut events = api.watch(version).await.unwrap();
    for n in 1..=50 {
        let mut c = other.get("a").await.unwrap();
        c.spec.replicas = n;
        other.replace(&c).await.unwrap();
    }
    for n in 1..=50 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        let Event::Modified(c) = event else {
            panic!("expected Modified, got {event:?}")
        };
        assert_eq!(c.spec.replicas, n, "in order");
        assert!(
            api.get("a").await.unwrap().spec.replicas >= n,
            "a trigger never reads older than what triggered it"
        );
    }
}

#[tokio::test]
async fn a_watch_from_before_what_the_cache_keeps_is_told_to_list_again() {
    let s = setup();
    let api = Api::<Pgcluster>::new(s.cached.clone());
    let other = Api::<Pgcluster>::new(Arc::new(s.behind.inner.clone()));
    other.create(&cluster("a", 0)).await.unwrap();
    let (_, old) = other.list().await.unwrap();
    for n in 1..=3 {
        let mut c = other.get("a").await.unwrap();
        c.spec.replicas = n;
        other.replace(&c).await.unwrap();
    }
    synced(&s).await;
    match api.watch(old - 1).await {
        Err(StoreError::Gone(_)) => {}
        Err(e) => panic!("expected Gone, got {e}"),
        Ok(_) => panic!("expected Gone, got a watch"),
    }
}
