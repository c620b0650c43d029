//! Drives the rmdata tasks: every unfinished one is looked at on each
//! tick, so one written while the operator was down is taken up when it
//! starts.

use super::rmdata;
use crate::Context;
use pgo_api::Pgtask;
use pgo_api::task::RMDATA;
use pgo_store::Api;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(500);

/// One pass over every unfinished rmdata task; finished ones past their
/// retention are collected.
pub async fn pass(ctx: &Context) -> Result<(), pgo_store::StoreError> {
    let api = Api::<Pgtask>::new(ctx.store.clone());
    let (tasks, _) = api.list().await?;
    let now = jiff::Timestamp::now();
    for task in tasks
        .iter()
        .filter(|t| t.spec.task_type == RMDATA && rmdata::expired(t, now, rmdata::RETENTION))
    {
        let name = task.metadata.name.as_deref().unwrap_or_default();
        match api.delete(name).await {
            Ok(_) => tracing::info!(task = name, "finished task collected"),
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(task = name, error = %e, "cannot collect a finished task"),
        }
    }
    for task in tasks
        .iter()
        .filter(|t| t.spec.task_type == RMDATA && !rmdata::finished(t))
    {
        if let Err(e) = rmdata::reconcile(ctx, task).await {
            let name = task.metadata.name.as_deref().unwrap_or_default();
            tracing::warn!(task = name, error = %e, "cannot record the task's progress; retrying");
        }
    }
    Ok(())
}

pub async fn run(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(e) = pass(&ctx).await {
            tracing::error!(error = %e, "cannot list tasks; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}
