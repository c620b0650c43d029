//! `pgo restore --to-pvc`: observes the task, its source cluster and its
//! job, plans with `pgo_core::to_pvc`, and acts.

use crate::Context;
use crate::runtime::Outcome;
use pgo_api::task::FAILED;
use pgo_api::{Pgcluster, Pgtask, PgtaskStatus};
use pgo_core::to_pvc::{Action, Observed, plan};
use pgo_platform::PlatformError;
use pgo_store::{Api, StoreError};
use std::time::Duration;

pub async fn reconcile(ctx: &Context, task: &Pgtask) -> Result<Outcome, StoreError> {
    let name = task.metadata.name.clone().unwrap_or_default();
    let source = Api::<Pgcluster>::new(ctx.store.clone())
        .get_opt(&task.spec.cluster_name)
        .await?;
    let job = match ctx.platform.job_state(&name).await {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(task = %name, error = %e, "cannot read the restore's job");
            return Ok(Outcome::Failed);
        }
    };
    let p = plan(
        &Observed {
            task,
            source: source.as_ref(),
            job,
        },
        jiff::Timestamp::now(),
    );
    let tasks = Api::<Pgtask>::new(ctx.store.clone());
    for action in p.actions {
        let done = match action {
            Action::EnsureVolume(v) => ctx.platform.ensure_volume(&v).await,
            Action::StartJob(job) => ctx.platform.start_job(&job).await,
            Action::RemoveJob => match ctx.platform.remove_job(&name).await {
                Err(PlatformError::InProgress(_)) => return Ok(Outcome::Wait(Duration::from_secs(1))),
                other => other,
            },
            Action::RemoveVolume(v) => ctx.platform.remove_volume(&v).await,
            Action::WriteStatus(status) => {
                write(&tasks, task, status).await?;
                Ok(())
            }
        };
        if let Err(e) = done {
            // The platform refused (no such instance, a volume of another
            // cluster): the restore cannot go on, and says why.
            let status = PgtaskStatus {
                phase: FAILED.into(),
                message: Some(format!("the restore into a volume failed: {e}")),
                finished: Some(jiff::Timestamp::now().to_string()),
                ..task.status.clone().unwrap_or_default()
            };
            write(&tasks, task, status).await?;
            return Ok(Outcome::Gone);
        }
    }
    Ok(match p.next {
        Some(after) => Outcome::Requeue(after),
        None => Outcome::Gone,
    })
}

async fn write(tasks: &Api<Pgtask>, task: &Pgtask, status: PgtaskStatus) -> Result<(), StoreError> {
    let name = task.metadata.name.as_deref().unwrap_or_default();
    if status.phase != task.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default() {
        tracing::info!(
            task = name,
            phase = %status.phase,
            message = status.message.as_deref().unwrap_or(""),
            "restore into a volume"
        );
    }
    // Re-read: the status write is the last word of this pass.
    let mut next = tasks.get_opt(name).await?.unwrap_or_else(|| task.clone());
    next.status = Some(status);
    tasks.replace_status(&next).await.map(|_| ())
}
