#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The SQLite store keeps Kubernetes' promises: resourceVersion conflicts,
//! ordered watches, finalizers, and a database that survives an abrupt close.

use futures::StreamExt;
use pgo_api::{Pgcluster, PgclusterSpec, PgclusterStatus};
use pgo_store::sqlite::SqliteStore;
use pgo_store::{Api, Event, Store};
use std::sync::Arc;
use std::time::Duration;

fn cluster(name: &str) -> Pgcluster {
    Pgcluster::new(name, PgclusterSpec::default())
}

fn open(dir: &tempfile::TempDir) -> Api<Pgcluster> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    Api::new(store)
}

#[tokio::test]
async fn a_stale_resource_version_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    let created = api.create(&cluster("a")).await.unwrap();
    let mut first = created.clone();
    first.spec.replicas = 1;
    let updated = api.replace(&first).await.unwrap();
    assert_ne!(
        updated.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(updated.metadata.generation, Some(2));

    let mut stale = created;
    stale.spec.replicas = 2;
    let err = api.replace(&stale).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(api.get("a").await.unwrap().spec.replicas, 1);
}

#[tokio::test]
async fn create_twice_and_get_missing() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    api.create(&cluster("a")).await.unwrap();
    let err = api.create(&cluster("a")).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(api.get("b").await.unwrap_err().is_not_found());
    assert!(api.get_opt("b").await.unwrap().is_none());
}

#[tokio::test]
async fn status_is_written_apart_from_spec() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    let created = api.create(&cluster("a")).await.unwrap();
    let mut with_status = created.clone();
    with_status.status = Some(PgclusterStatus {
        primary: Some("a".into()),
        ..Default::default()
    });
    with_status.spec.replicas = 9;
    let after = api.replace_status(&with_status).await.unwrap();
    assert_eq!(after.status.as_ref().unwrap().primary.as_deref(), Some("a"));
    assert_eq!(after.spec.replicas, 0, "replace_status must not touch the spec");

    // A spec replace keeps the stored status.
    let mut spec_only = after.clone();
    spec_only.status = None;
    spec_only.spec.replicas = 1;
    let after = api.replace(&spec_only).await.unwrap();
    assert_eq!(after.status.unwrap().primary.as_deref(), Some("a"));
    assert_eq!(after.metadata.generation, Some(2));
}

#[tokio::test]
async fn an_unchanged_write_does_not_bump_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    let created = api.create(&cluster("a")).await.unwrap();
    let again = api.replace(&created).await.unwrap();
    assert_eq!(again.metadata.resource_version, created.metadata.resource_version);
}

#[tokio::test]
async fn watch_delivers_every_change_in_order_from_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    let (_, since) = api.list().await.unwrap();
    api.create(&cluster("a")).await.unwrap();
    let mut watch = api.watch(since).await.unwrap();
    // Changes both before and after the watch started.
    api.create(&cluster("b")).await.unwrap();
    let mut b = api.get("b").await.unwrap();
    b.spec.replicas = 3;
    api.replace(&b).await.unwrap();
    api.delete("a").await.unwrap();

    let mut seen = Vec::new();
    let mut versions = Vec::new();
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let name = event.object().metadata.name.clone().unwrap();
        versions.push(
            event
                .object()
                .metadata
                .resource_version
                .clone()
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        seen.push(match event {
            Event::Added(_) => format!("+{name}"),
            Event::Modified(_) => format!("~{name}"),
            Event::Deleted(_) => format!("-{name}"),
        });
    }
    assert_eq!(seen, ["+a", "+b", "~b", "-a"]);
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");

    // A watch from the middle sees only what came after.
    let mut late = api.watch(versions[1]).await.unwrap();
    let first = late.next().await.unwrap().unwrap();
    assert!(matches!(first, Event::Modified(_)));
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let api = open(&dir);
    let mut c = cluster("a");
    c.metadata.finalizers = Some(vec!["pgo.dev/cluster".into()]);
    api.create(&c).await.unwrap();
    let held = api.delete("a").await.unwrap().expect("held by its finalizer");
    assert!(held.metadata.deletion_timestamp.is_some());
    // A second delete changes nothing.
    let again = api.delete("a").await.unwrap().unwrap();
    assert_eq!(again.metadata.resource_version, held.metadata.resource_version);

    let mut released = held;
    released.metadata.finalizers = Some(vec![]);
    api.replace(&released).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn reopening_after_an_abrupt_close_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
        let api: Api<Pgcluster> = Api::new(Arc::new(store.clone()));
        for i in 0..20 {
            api.create(&cluster(&format!("c{i}"))).await.unwrap();
        }
        // No orderly close: the connection is leaked as a killed process would leave it.
        std::mem::forget(store);
    }
    let api = open(&dir);
    let (items, rv) = api.list().await.unwrap();
    assert_eq!(items.len(), 20);
    assert!(rv >= 20);
    // Versions keep growing after a reopen.
    let next = api.create(&cluster("after")).await.unwrap();
    assert!(next.metadata.resource_version.unwrap().parse::<u64>().unwrap() > rv);
}

#[tokio::test]
async fn a_damaged_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    std::fs::write(
        &path,
        b"this is not a database, just some bytes that are long enough to matter........",
    )
    .unwrap();
    let err = SqliteStore::open(&path).err().expect("must not open");
    assert!(err.to_string().contains("store.db"), "{err}");
}
