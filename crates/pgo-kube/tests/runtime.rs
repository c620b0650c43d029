#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The operator's runtime as it runs: `pgo_operator::run` against the
//! in-memory API server over HTTP (watches), with stand-in managers and a
//! stand-in kubelet stepping beside it.

mod support;

use pgo_api::PgclusterStatus;
use pgo_api::config::PgoConfig;
use pgo_api::rest::CreateClusterRequest;
use std::time::{Duration, Instant};
use support::{World, ready_with};
use tokio::sync::watch;

/// The operator and a kubelet, until dropped.
struct Running {
    stop: watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn run(w: &World) -> Running {
    let (stop, rx) = watch::channel(false);
    tokio::spawn(pgo_operator::run(w.ctx.clone(), rx.clone()));
    w.kubelet_every(Duration::from_millis(20), rx);
    Running { stop }
}

async fn status(w: &World, name: &str) -> PgclusterStatus {
    w.clusters()
        .get(name)
        .await
        .ok()
        .and_then(|c| c.status)
        .unwrap_or_default()
}

async fn wait_for(
    w: &World,
    name: &str,
    secs: u64,
    done: impl Fn(&PgclusterStatus) -> bool,
) -> PgclusterStatus {
    let start = Instant::now();
    loop {
        let s = status(w, name).await;
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "cluster {name} never got there: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(probe_period_ms: u64) -> PgoConfig {
    let mut c = support::spine_config();
    c.pgo.autofail_sleep_seconds = 1;
    c.pgo.probe_period_ms = probe_period_ms;
    c
}

fn with_replica(name: &str) -> CreateClusterRequest {
    CreateClusterRequest {
        name: name.into(),
        replica_count: Some(1),
        autofail: Some(true),
        ..Default::default()
    }
}

/// One cluster's platform calls block for as long as the test runs (its
/// primary's manager never answers, with no timeout); another cluster's
/// primary fails meanwhile, and is failed over all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_whose_platform_calls_block_never_delays_another_clusters_failover() {
    let w = World::watched(config(200));
    let _running = run(&w);
    w.create(with_replica("slow")).await;
    w.create(with_replica("fast")).await;
    wait_for(&w, "slow", 20, ready_with(1)).await;
    let fast = wait_for(&w, "fast", 20, ready_with(1)).await;
    let target = support::a_replica(&fast);

    let ips = w.api.kubelet();
    w.managers.blocked.lock().unwrap().insert(ips["slow"].clone());
    // Let slow's reconcile get stuck in its primary's manager.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // fast's primary fails: its manager stops answering, its pod is not Ready.
    w.hang_manager("fast");
    let failed_over = wait_for(&w, "fast", 20, |s| {
        s.primary.as_deref() == Some(target.as_str()) && s.failovers.len() == 1
    })
    .await;
    assert_eq!(failed_over.failovers[0].outcome, "succeeded");
    w.managers.blocked.lock().unwrap().clear();
}

/// Reconciles of the one cluster, of one instance, in `window`: each asks
/// its manager's `/status` once, as the stand-in managers saw it. The
/// operator's own count must agree.
async fn reconciles_in(w: &World, window: Duration) -> u64 {
    let asked = || w.managers.statuses.load(std::sync::atomic::Ordering::Relaxed);
    let (before, counted) = (asked(), w.ctx.metrics.reconciles("cluster"));
    tokio::time::sleep(window).await;
    let (n, by_operator) = (asked() - before, w.ctx.metrics.reconciles("cluster") - counted);
    assert!(
        n.abs_diff(by_operator) <= 1,
        "/status asked {n} times, the operator counted {by_operator}"
    );
    n
}

/// The operator's own status writes (a WAL position that moves under
/// writes) do not trigger reconciles: a cluster is looked at once per probe
/// period, writing or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_do_not_trigger_reconciles() {
    let period = 200;
    let w = World::watched(config(period));
    let _running = run(&w);
    w.create(support::request("db")).await;
    wait_for(&w, "db", 20, ready_with(0)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let window = Duration::from_secs(2);
    let bound = window.as_millis() as u64 / period + 2;
    let idle = reconciles_in(&w, window).await;
    w.managers
        .writing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let before = status(&w, "db").await.members[0].wal_lsn.clone();
    let writing = reconciles_in(&w, window).await;
    let after = status(&w, "db").await.members[0].wal_lsn.clone();
    assert_ne!(before, after, "the status did follow the writes");
    eprintln!(
        "reconciles in {window:?} at a {period} ms period: idle {idle}, writing {writing} (bound {bound})"
    );
    assert!(idle <= bound, "idle: {idle} reconciles, bound {bound}");
    assert!(writing <= bound, "writing: {writing} reconciles, bound {bound}");
    assert!(writing >= 2, "the probe timer still runs: {writing}");
}

/// A pod's change triggers its cluster at once: with a 10 s probe period, a
/// primary whose pod stops being ready is seen within a moment, not at the
/// next probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_stops_being_ready_triggers_its_cluster_before_the_probe() {
    let w = World::watched(config(10_000));
    let _running = run(&w);
    w.create(support::request("db")).await;
    wait_for(&w, "db", 20, ready_with(0)).await;
    // Settled into the 10 s period.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    w.hang_manager("db");
    wait_for(&w, "db", 3, |s| {
        s.phase == pgo_api::cluster::ClusterPhase::NotReady
    })
    .await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Requests the operator made in `window`.
async fn requests_in(w: &World, window: Duration) -> Vec<String> {
    let before = w.api.log().len();
    tokio::time::sleep(window).await;
    w.api.log()[before..].to_vec()
}

/// At steady state every pass reads from the watch-fed caches: passes go on
/// at the probe period and the API server hears nothing. A status write by
/// a Deployment's controller changes nothing pgo applied and is left alone;
/// a Service edited by hand is applied again at once, not a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_cluster_costs_no_requests_and_drift_is_undone_at_once() {
    let period = 200;
    let w = World::watched(config(period));
    let _running = run(&w);
    w.create(support::request("db")).await;
    wait_for(&w, "db", 20, ready_with(0)).await;
    tokio::time::sleep(Duration::from_millis(3 * period)).await;

    let passes = w.ctx.metrics.reconciles("cluster");
    let heard = requests_in(&w, Duration::from_secs(1)).await;
    assert!(
        w.ctx.metrics.reconciles("cluster") - passes >= 3,
        "passes went on"
    );
    assert_eq!(heard, Vec::<String>::new(), "no request at steady state");

    use support::fake_api::{DEPLOYMENTS, SERVICES};
    w.api.patch(
        DEPLOYMENTS,
        "db",
        serde_json::json!({ "status": { "observedGeneration": 9 } }),
    );
    let heard = requests_in(&w, Duration::from_secs(1)).await;
    assert_eq!(heard, Vec::<String>::new(), "a status write is not drift");

    // A value pgo applied, changed: server-side apply takes it back.
    let selector = w.api.get(SERVICES, "db").unwrap()["spec"]["selector"].clone();
    let (key, _) = selector.as_object().unwrap().iter().next().unwrap();
    w.api.patch(
        SERVICES,
        "db",
        serde_json::json!({ "spec": { "selector": { key.clone(): "theirs" } } }),
    );
    let start = Instant::now();
    while w.api.get(SERVICES, "db").unwrap()["spec"]["selector"] != selector {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the edit was never undone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        w.api
            .log()
            .contains(&"PATCH /api/v1/namespaces/pgo/services/db".to_string()),
        "applied again"
    );
    // Every list and watch the caches made is one the operator's Role grants.
    support::rbac::assert_granted(&w.api.log());
}
