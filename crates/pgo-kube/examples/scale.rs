//! The operator's runtime at scale, on the in-memory API server with
//! stand-in managers: CLUSTERS (1000) clusters created at once, the time
//! until all are Ready, then API calls per cluster per minute over WINDOW
//! seconds (70: longer than any minute-long period) of steady state. Run by `bench/inmemory.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use pgo_api::cluster::ClusterPhase;
use pgo_api::config::PgoConfig;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let clusters = env("CLUSTERS", 1000);
    let window = Duration::from_secs(env("WINDOW", 70));
    let mut config = PgoConfig::default();
    // BACKREST=0: clusters without pgBackRest's repository hosts (pgo.yaml's
    // default makes one per cluster).
    config.cluster.backrest = env("BACKREST", u64::from(config.cluster.backrest)) != 0;
    let period = config.pgo.probe_period_ms;
    let w = support::World::watched(config);
    let (stop, rx) = watch::channel(false);
    tokio::spawn(pgo_operator::run(w.ctx.clone(), rx.clone()));
    w.kubelet_every(Duration::from_millis(100), rx);

    let start = Instant::now();
    for i in 0..clusters {
        w.create(support::request(&format!("c{i}"))).await;
    }
    let created = start.elapsed();
    loop {
        let (all, _) = w.clusters().list().await.unwrap();
        let ready = all
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| s.phase == ClusterPhase::Ready))
            .count() as u64;
        if ready == clusters {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "only {ready} of {clusters} Ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_ready = start.elapsed();

    // Steady state: let the create's tail settle, then count.
    tokio::time::sleep(Duration::from_millis(2 * period)).await;
    let calls = || w.api.log().len();
    let (before, reconciled) = (calls(), w.ctx.metrics.reconciles("cluster"));
    tokio::time::sleep(window).await;
    let (n, r) = (calls() - before, w.ctx.metrics.reconciles("cluster") - reconciled);
    // Which calls, by method and kind (the name dropped).
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for line in &w.api.log()[before..] {
        let (method, path) = line.split_once(' ').unwrap_or((line, ""));
        let segs: Vec<&str> = path.split('/').collect();
        let kind = segs
            .iter()
            .position(|s| *s == "namespaces")
            .and_then(|i| segs.get(i + 2))
            .or(segs.last())
            .copied()
            .unwrap_or_default();
        *by_kind.entry(format!("{method} {kind}")).or_default() += 1;
    }
    let mut by_kind: Vec<_> = by_kind.into_iter().collect();
    by_kind.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let minutes = window.as_secs_f64() / 60.0;
    let _ = stop.send(true);

    println!("in-memory: {clusters} clusters, stand-in managers, ProbePeriodMs {period}");
    println!(
        "  created in {:.1}s, all Ready after {:.1}s",
        created.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    println!(
        "  steady state over {}s: {:.1} API calls per cluster per minute (goal <= 3), {:.1} reconciles per cluster per minute",
        window.as_secs(),
        n as f64 / clusters as f64 / minutes,
        r as f64 / clusters as f64 / minutes
    );
    for (kind, count) in by_kind.iter().take(10) {
        println!(
            "    {:>7.1}/cluster/min  {kind}",
            *count as f64 / clusters as f64 / minutes
        );
    }
}
