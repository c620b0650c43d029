//! Drives [`reconcile`](super::reconcile) on the runtime: a key per
//! cluster, triggered by changes to the cluster (not its status), to its
//! replicas and to its failover tasks, and due again when its reconcile
//! says (the probe period while all is well).

use super::reconcile::{Action, reconcile};
use crate::Context;
use crate::runtime::triggers::{Route, own_key};
use crate::runtime::{Outcome, Signal, driver};
use pgo_api::task::{FAILOVER, RESTORE};
use pgo_api::{Pgcluster, Pgreplica, Pgtask};
use pgo_store::Api;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;

pub const CONTROLLER: &str = "cluster";

/// A replica's change, or a failover task's, is its cluster's business.
fn owner_changed(object: &Value, _deleted: bool) -> Vec<Signal> {
    object
        .pointer("/spec/clusterName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(|c| Signal::Trigger(c.to_string()))
        .into_iter()
        .collect()
}

fn task_changed(object: &Value, deleted: bool) -> Vec<Signal> {
    // A cluster's own tasks: its failover and its restore.
    let kind = object.pointer("/spec/taskType").and_then(Value::as_str);
    if kind == Some(FAILOVER) || kind == Some(RESTORE) {
        owner_changed(object, deleted)
    } else {
        Vec::new()
    }
}

/// How a reconcile's result sets its key's next turn.
fn outcome(cluster: &str, result: Result<Action, super::ReconcileError>) -> Outcome {
    match result {
        Ok(Action::Requeue(after)) => Outcome::Requeue(after),
        Ok(Action::Gone) => Outcome::Gone,
        Err(e) => match e.wait() {
            Some(after) => {
                tracing::debug!(cluster, "{e}");
                Outcome::Wait(after)
            }
            None => {
                tracing::error!(cluster, error = %e, "reconcile failed");
                Outcome::Failed
            }
        },
    }
}

pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let store = ctx.store.clone();
    let watches: Vec<(String, Route)> = vec![
        (Api::<Pgcluster>::new(store.clone()).kind().into(), own_key),
        (Api::<Pgreplica>::new(store.clone()).kind().into(), owner_changed),
        (Api::<Pgtask>::new(store).kind().into(), task_changed),
    ];
    let reconcile_one = |ctx: Arc<Context>, name: String| async move {
        let result = reconcile(&ctx, &name).await;
        outcome(&name, result)
    };
    // What the platform runs for clusters (pods, on Kubernetes) triggers too.
    let feed = ctx.platform.changes(stop.clone());
    driver::run(CONTROLLER, ctx, watches, feed, reconcile_one, stop).await;
}
