#![allow(clippy::unwrap_used, clippy::expect_used)]
//! An operator killed after every action of a failover and of a scaledown,
//! then started again: the end state is the one an operator never killed
//! reaches, and there is never more than one primary on the way.

mod support;

use pgo_api::cluster::MemberRole;
use pgo_api::{Pgcluster, Pgreplica, Pgtask, labels};
use pgo_operator::cluster::{ReconcileError, reconcile};
use pgo_operator::{Context, Hooks};
use pgo_store::Api;
use serde_json::Value;
use std::sync::Arc;
use support::fake_api::*;
use support::{World, ready_with, request};

/// Pods labelled primary, and instances whose manager says primary.
fn primaries(w: &World) -> usize {
    w.api
        .list(PODS)
        .iter()
        .filter(|p| p.pointer("/metadata/labels/role").and_then(Value::as_str) == Some("primary"))
        .count()
}

/// Passes of `ctx` (with the kubelet between) until one is stopped by its
/// hook or `done` holds. True when it was stopped.
async fn run_until_stopped(w: &World, ctx: &Context, done: impl AsyncFn(&World) -> bool) -> bool {
    for _ in 0..200 {
        let r = reconcile(ctx, "db").await;
        w.api.kubelet();
        assert!(primaries(w) <= 1, "two primaries: {:#?}", w.api.list(PODS));
        match r {
            Err(ReconcileError::Stopped) => return true,
            Err(e) if e.wait().is_none() => panic!("pass failed: {e}"),
            _ => {}
        }
        if done(w).await {
            return false;
        }
    }
    panic!("never done and never stopped");
}

async fn two_replicas() -> (World, Vec<String>) {
    let w = World::new();
    let mut r = request("db");
    r.replica_count = Some(2);
    w.create(r).await;
    let status = w.until("db", ready_with(2)).await;
    let replicas = status
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Replica)
        .map(|m| m.name.clone())
        .collect();
    (w, replicas)
}

/// The task gone, and the cluster ready around its new primary with
/// `replicas` replicas, the old primary not among them.
async fn failover_done(w: &World, target: &str, replicas: usize) -> bool {
    let task = Api::<Pgtask>::new(w.ctx.store.clone())
        .get_opt(&pgo_core::names::failover_task("db"))
        .await
        .unwrap();
    let status = w.clusters().get("db").await.unwrap().status.unwrap_or_default();
    task.is_none()
        && status.primary.as_deref() == Some(target)
        && ready_with(replicas)(&status)
        && status.members.iter().all(|m| m.name != "db")
}

/// Crashes after 0, 1, 2, … actions until a failover finishes uncrashed.
async fn crash_every_step_of_a_failover(replace: bool) -> usize {
    for k in 0.. {
        let (w, replicas) = two_replicas().await;
        let target = replicas[0].clone();
        let mut task = support::manual_failover("db", &target, 2);
        task.spec
            .parameters
            .insert(pgo_core::failover::REPLACE.into(), replace.to_string());
        Api::<Pgtask>::new(w.ctx.store.clone())
            .create(&task)
            .await
            .unwrap();

        let want = if replace { 2 } else { 1 };
        let done = async |w: &World| failover_done(w, &target, want).await;
        let crashing = w.operator(Hooks::stop_after(k));
        let stopped = run_until_stopped(&w, &crashing, done).await;
        let restarted: Arc<Context> = w.operator(Hooks::default());
        assert!(!run_until_stopped(&w, &restarted, done).await, "no hook");

        let c = w.clusters().get("db").await.unwrap();
        let status = c.status.clone().unwrap();
        assert_eq!(status.primary.as_deref(), Some(target.as_str()), "k={k}");
        assert_eq!(status.failovers.len(), 1, "k={k}: {:?}", status.failovers);
        assert_eq!(status.failovers[0].outcome, "succeeded", "k={k}");
        assert_eq!(
            c.spec.replicas as usize, want,
            "k={k}: the count is lowered once at most"
        );
        let (pgreplicas, _) = Api::<Pgreplica>::new(w.ctx.store.clone()).list().await.unwrap();
        assert_eq!(pgreplicas.len(), want, "k={k}");
        assert!(
            pgreplicas
                .iter()
                .all(|r| r.metadata.name.as_deref() != Some(target.as_str())),
            "k={k}: the promoted replica is no longer a Pgreplica"
        );
        assert!(
            w.api.get(DEPLOYMENTS, "db").is_none(),
            "k={k}: the old primary stays down"
        );
        assert!(w.api.get(PVCS, "db").is_some(), "k={k}: its volume is kept");
        assert_eq!(primaries(&w), 1, "k={k}");
        if !stopped {
            return k;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn an_operator_killed_after_any_action_of_a_failover_finishes_it() {
    let steps = crash_every_step_of_a_failover(true).await;
    assert!(steps >= 8, "a failover is more than {steps} actions");
}

#[tokio::test]
async fn a_failover_without_replacement_lowers_the_count_once_wherever_it_was_killed() {
    crash_every_step_of_a_failover(false).await;
}

async fn scaledown_done(w: &World, leaving: &str) -> bool {
    let c = w.clusters().get("db").await.unwrap();
    let gone = Api::<Pgreplica>::new(w.ctx.store.clone())
        .get_opt(leaving)
        .await
        .unwrap()
        .is_none();
    gone && labels::scaledowns(c.metadata.annotations.as_ref()).is_empty()
        && ready_with(1)(&c.status.unwrap_or_default())
}

#[tokio::test]
async fn an_operator_killed_after_any_action_of_a_scaledown_finishes_it() {
    for k in 0.. {
        let (w, replicas) = two_replicas().await;
        let (leaving, staying) = (replicas[0].clone(), replicas[1].clone());
        // pgo scaledown db --target=<leaving> --delete-data, as the apiserver writes it.
        let mut c: Pgcluster = w.clusters().get("db").await.unwrap();
        c.spec.replicas = 1;
        let (key, value) = labels::scaledown_note(&leaving, true);
        c.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key, value);
        w.clusters().replace(&c).await.unwrap();

        let crashing = w.operator(Hooks::stop_after(k));
        let stopped = run_until_stopped(&w, &crashing, async |w| scaledown_done(w, &leaving).await).await;
        let restarted = w.operator(Hooks::default());
        run_until_stopped(&w, &restarted, async |w| scaledown_done(w, &leaving).await).await;

        let status = w.until("db", ready_with(1)).await;
        assert_eq!(status.primary.as_deref(), Some("db"), "k={k}");
        assert_eq!(
            support::a_replica(&status),
            staying,
            "k={k}: the other replica stays"
        );
        assert!(w.api.get(DEPLOYMENTS, &leaving).is_none(), "k={k}");
        let dropped: Vec<_> = w
            .managers
            .calls("/control/drop-slot")
            .into_iter()
            .map(|c| c.body["slot"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            dropped.contains(&pgo_core::names::replication_slot(&leaving)),
            "k={k}: {dropped:?}"
        );
        // Its data goes in an rmdata task.
        let tasks = Api::<Pgtask>::new(w.ctx.store.clone()).list().await.unwrap().0;
        let rmdata: Vec<_> = tasks
            .iter()
            .filter(|t| t.spec.task_type == pgo_api::task::RMDATA)
            .map(|t| t.spec.parameters[pgo_api::task::VOLUME].clone())
            .collect();
        assert_eq!(rmdata, std::slice::from_ref(&leaving), "k={k}");
        assert!(w.api.get(PVCS, &staying).is_some(), "k={k}");
        if !stopped {
            assert!(k >= 5, "a scaledown is more than {k} actions");
            return;
        }
    }
}
