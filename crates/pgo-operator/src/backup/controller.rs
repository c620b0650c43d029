//! Drives Pgbackups on the runtime: a key per backup, triggered by the
//! watch, polled while its job runs.

use crate::Context;
use crate::runtime::triggers::own_key;
use crate::runtime::{Outcome, Signal, driver};
use pgo_api::backup::{BackupPhase, PgbackupStatus};
use pgo_api::{Pgbackup, Pgcluster};
use pgo_core::backup::{Action, Observed, plan};
use pgo_core::job::JobState;
use pgo_platform::PlatformError;
use pgo_store::{Api, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub const CONTROLLER: &str = "backup";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the platform: {0}")]
    Platform(#[from] PlatformError),
}

fn changed(object: &Value, deleted: bool) -> Vec<Signal> {
    own_key(object, deleted)
}

/// One turn of backup `name`.
pub async fn reconcile(ctx: &Context, name: &str) -> Result<Outcome, BackupError> {
    let backups = Api::<Pgbackup>::new(ctx.store.clone());
    let Some(backup) = backups.get_opt(name).await? else {
        // Its jobs, if any were left, are forgotten with it.
        ctx.platform.remove_job(name).await?;
        ctx.platform.remove_job(&pgo_core::expire::job_name(name)).await?;
        return Ok(Outcome::Gone);
    };
    let cluster_name = backup.spec.cluster_name.clone();
    let cluster = Api::<Pgcluster>::new(ctx.store.clone())
        .get_opt(&cluster_name)
        .await?;
    let job_name = pgo_core::backup::job_name(&backup);
    let job = ctx.platform.job_state(&job_name).await?;
    // Only a job that just succeeded makes the backup look at the others
    // (to mark what retention or an expire took): a running one is polled
    // every 200 ms.
    let siblings: Vec<Pgbackup> = if matches!(job, Some(JobState::Succeeded { .. })) {
        let (all, _) = backups.list().await?;
        all.into_iter()
            .filter(|b| b.spec.cluster_name == cluster_name && b.metadata.name.as_deref() != Some(name))
            .collect()
    } else {
        Vec::new()
    };
    let p = plan(
        &Observed {
            backup: &backup,
            cluster: cluster.as_ref(),
            job,
            siblings: &siblings,
        },
        jiff::Timestamp::now(),
    );
    for action in p.actions {
        match action {
            Action::EnsureVolume(volume) => {
                if let Err(e) = ctx.platform.ensure_volume(&volume).await {
                    return refused(&backups, &backup, e).await;
                }
            }
            Action::StartJob(job) => {
                if let Err(e) = ctx.platform.start_job(&job).await {
                    return refused(&backups, &backup, e).await;
                }
            }
            Action::WriteStatus(status) => {
                write_status(&backups, &backup, status).await?;
            }
            Action::MarkExpired { backup, message } => {
                if let Some(other) = siblings
                    .iter()
                    .find(|s| s.metadata.name.as_deref() == Some(&backup))
                {
                    let status = PgbackupStatus {
                        phase: BackupPhase::Expired,
                        message: Some(message),
                        ..other.status.clone().unwrap_or_default()
                    };
                    write_status(&backups, other, status).await?;
                }
            }
            Action::RemoveJob => match ctx.platform.remove_job(&job_name).await {
                Ok(()) => {}
                Err(PlatformError::InProgress(_)) => return Ok(Outcome::Wait(Duration::from_secs(1))),
                Err(e) => return Err(e.into()),
            },
        }
    }
    Ok(match p.next {
        Some(after) => Outcome::Requeue(after),
        None => Outcome::Gone,
    })
}

/// The platform refused the backup's volume or job: one it will refuse
/// again (a template that does not render, an object pgo did not make)
/// fails the backup with its words; anything else is tried again.
async fn refused(api: &Api<Pgbackup>, backup: &Pgbackup, e: PlatformError) -> Result<Outcome, BackupError> {
    match e {
        PlatformError::Invalid(why) | PlatformError::Failed(why) => {
            let status = PgbackupStatus {
                phase: BackupPhase::Failed,
                message: Some(format!("cannot start the backup's job: {why}")),
                finished: Some(jiff::Timestamp::now().to_string()),
                ..backup.status.clone().unwrap_or_default()
            };
            write_status(api, backup, status).await?;
            Ok(Outcome::Gone)
        }
        other => Err(other.into()),
    }
}

async fn write_status(
    api: &Api<Pgbackup>,
    backup: &Pgbackup,
    status: PgbackupStatus,
) -> Result<(), StoreError> {
    let name = backup.metadata.name.as_deref().unwrap_or_default();
    match status.phase {
        BackupPhase::Succeeded | BackupPhase::Failed | BackupPhase::Expired => tracing::info!(
            backup = name,
            cluster = %backup.spec.cluster_name,
            phase = %status.phase,
            message = status.message.as_deref().unwrap_or(""),
            "backup"
        ),
        BackupPhase::Pending | BackupPhase::Running | BackupPhase::Expiring => {}
    }
    let mut next = backup.clone();
    next.status = Some(status);
    api.replace_status(&next).await.map(|_| ())
}

fn outcome(name: &str, result: Result<Outcome, BackupError>) -> Outcome {
    result.unwrap_or_else(|e| {
        tracing::warn!(backup = name, error = %e, "cannot drive the backup; retrying");
        Outcome::Failed
    })
}

pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let kind = Api::<Pgbackup>::new(ctx.store.clone()).kind().to_string();
    let reconcile_one = |ctx: Arc<Context>, name: String| async move {
        let result = reconcile(&ctx, &name).await;
        outcome(&name, result)
    };
    driver::run(CONTROLLER, ctx, vec![(kind, changed)], None, reconcile_one, stop).await;
}
