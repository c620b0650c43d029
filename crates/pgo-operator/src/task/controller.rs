//! Drives the rmdata, schedule and restore-to-pvc tasks on the runtime: a key per task, triggered by
//! the watch (a task written while the operator was down is in the first
//! list), due again while it runs, and once more when its outcome has been
//! readable long enough to be collected.

use super::rmdata;
use crate::Context;
use crate::runtime::triggers::own_key;
use crate::runtime::{Outcome, Signal, driver};
use pgo_api::Pgtask;
use pgo_api::task::{RESTORE_TO_PVC, RMDATA, SCHEDULE};
use pgo_store::{Api, StoreError};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;

pub const CONTROLLER: &str = "task";

fn task_changed(object: &Value, deleted: bool) -> Vec<Signal> {
    match object.pointer("/spec/taskType").and_then(Value::as_str) {
        Some(RMDATA | SCHEDULE | RESTORE_TO_PVC) => own_key(object, deleted),
        _ => Vec::new(),
    }
}

/// One turn of task `name`.
pub async fn reconcile(ctx: &Context, name: &str) -> Result<Outcome, StoreError> {
    let api = Api::<Pgtask>::new(ctx.store.clone());
    let Some(task) = api.get_opt(name).await? else {
        return Ok(Outcome::Gone);
    };
    if task.spec.task_type == SCHEDULE {
        return super::schedule::reconcile(ctx, &task).await;
    }
    // A restore into a volume that succeeded stays as the volume's record
    // (a cluster starts on it with its source's passwords); one that failed
    // is collected like a finished removal.
    let failed_restore = task.spec.task_type == RESTORE_TO_PVC
        && task
            .status
            .as_ref()
            .is_some_and(|s| s.phase == pgo_api::task::FAILED);
    if task.spec.task_type == RESTORE_TO_PVC && !failed_restore {
        return super::to_pvc::reconcile(ctx, &task).await;
    }
    if task.spec.task_type != RMDATA && !failed_restore {
        return Ok(Outcome::Gone);
    }
    if rmdata::finished(&task) {
        let now = jiff::Timestamp::now();
        if !rmdata::expired(&task, now, rmdata::RETENTION) {
            return Ok(Outcome::Requeue(rmdata::until_expired(
                &task,
                now,
                rmdata::RETENTION,
            )));
        }
        match api.delete(name).await {
            Ok(_) => tracing::info!(task = name, "finished task collected"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        return Ok(Outcome::Gone);
    }
    Ok(match rmdata::reconcile(ctx, &task).await? {
        Some(after) => Outcome::Wait(after),
        // Finished now: looked at again to be collected.
        None => Outcome::Requeue(rmdata::RETENTION),
    })
}

fn outcome(task: &str, result: Result<Outcome, StoreError>) -> Outcome {
    result.unwrap_or_else(|e| {
        tracing::warn!(task, error = %e, "cannot record the task's progress; retrying");
        Outcome::Failed
    })
}

/// One turn of every task, as the first list gives them: for tests that
/// step the operator by hand.
pub async fn pass(ctx: &Context) -> Result<(), StoreError> {
    let (tasks, _) = Api::<Pgtask>::new(ctx.store.clone()).list().await?;
    for name in tasks.iter().filter_map(|t| t.metadata.name.clone()) {
        outcome(&name, reconcile(ctx, &name).await);
    }
    Ok(())
}

pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let kind = Api::<Pgtask>::new(ctx.store.clone()).kind().to_string();
    let reconcile_one = |ctx: Arc<Context>, name: String| async move {
        let result = reconcile(&ctx, &name).await;
        outcome(&name, result)
    };
    driver::run(
        CONTROLLER,
        ctx,
        vec![(kind, task_changed)],
        None,
        reconcile_one,
        stop,
    )
    .await;
}
