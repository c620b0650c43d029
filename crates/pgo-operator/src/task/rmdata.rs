//! rmdata: a volume and its data removed for good, after its instance is
//! gone (a cluster deleted with `--delete-data`, a replica scaled down with
//! it). A task per volume, so the removal outlives the cluster's record and
//! its outcome stays readable: `Succeeded`, or `Failed` with the reason and
//! the volume kept.

use crate::Context;
use pgo_api::task::{FAILED, RMDATA, RUNNING, SUCCEEDED, VOLUME};
use pgo_api::{Pgtask, PgtaskSpec, PgtaskStatus, labels};
use pgo_core::names;
use pgo_platform::PlatformError;
use pgo_store::{Api, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a finished removal stays readable before it is collected.
pub const RETENTION: Duration = Duration::from_secs(3600);

/// Records that `volume` of `cluster` is to be removed, for the object
/// with `owner_uid` (the cluster, or the replica scaled down).
pub async fn request(ctx: &Context, cluster: &str, volume: &str, owner_uid: &str) -> Result<(), StoreError> {
    let mut task = Pgtask::new(
        &names::rmdata_task(volume, owner_uid),
        PgtaskSpec {
            cluster_name: cluster.to_string(),
            task_type: RMDATA.to_string(),
            parameters: BTreeMap::from([(VOLUME.to_string(), volume.to_string())]),
        },
    );
    task.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    match Api::<Pgtask>::new(ctx.store.clone()).create(&task).await {
        Ok(_) => {
            tracing::info!(cluster, volume, "data removal requested");
            Ok(())
        }
        // Asked for already (a teardown that runs twice).
        Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn finished(task: &Pgtask) -> bool {
    task.status.as_ref().is_some_and(PgtaskStatus::finished)
}

fn finished_at(task: &Pgtask) -> Option<jiff::Timestamp> {
    task.status
        .as_ref()
        .filter(|_| finished(task))
        .and_then(|s| s.finished.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
}

/// A finished task older than `retention`: its outcome has been readable
/// long enough.
pub fn expired(task: &Pgtask, now: jiff::Timestamp, retention: Duration) -> bool {
    finished_at(task).is_some_and(|t| now.duration_since(t).as_secs() >= retention.as_secs() as i64)
}

/// How long until a finished task is [`expired`] (at least a second, so a
/// clock that moved back does not spin).
pub fn until_expired(task: &Pgtask, now: jiff::Timestamp, retention: Duration) -> Duration {
    let age = finished_at(task)
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or(Duration::ZERO);
    retention.saturating_sub(age).max(Duration::from_secs(1))
}

/// One step of an rmdata task; `Some(after)` when it should be looked at again.
pub async fn reconcile(ctx: &Context, task: &Pgtask) -> Result<Option<Duration>, StoreError> {
    if finished(task) {
        return Ok(None);
    }
    let volume = task.spec.parameters.get(VOLUME).cloned().unwrap_or_default();
    let now = jiff::Timestamp::now().to_string();
    let mut status = task.status.clone().unwrap_or_default();
    status.started.get_or_insert_with(|| now.clone());
    let users = match ctx.platform.volume_users(&volume).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(volume, error = %e, "cannot tell whether the volume is in use; retrying");
            return Ok(Some(Duration::from_millis(500)));
        }
    };
    let removed = if users.is_empty() {
        ctx.platform.remove_volume(&volume).await
    } else {
        // Its instances were stopped before the removal was asked for, so a
        // user now is a newcomer (a cluster made again under the same name).
        Err(PlatformError::Failed(format!(
            "volume {volume} is in use by instance {}; it is kept",
            users.join(", ")
        )))
    };
    let next = match removed {
        Ok(()) => {
            tracing::info!(volume, "volume and its data removed");
            PgtaskStatus {
                phase: SUCCEEDED.into(),
                message: Some(format!("volume {volume} and its data removed")),
                finished: Some(now),
                ..status
            }
        }
        Err(PlatformError::InProgress(m)) => PgtaskStatus {
            phase: RUNNING.into(),
            message: Some(m),
            ..status
        },
        Err(PlatformError::Failed(m)) => {
            tracing::error!(volume, "data removal failed: {m}");
            PgtaskStatus {
                phase: FAILED.into(),
                message: Some(m),
                finished: Some(now),
                ..status
            }
        }
        // Something passing (the API server unreachable): said, and retried.
        Err(e) => PgtaskStatus {
            phase: RUNNING.into(),
            message: Some(format!("retrying: {e}")),
            ..status
        },
    };
    let done = next.finished();
    if task.status.as_ref() != Some(&next) {
        let mut written = task.clone();
        written.status = Some(next);
        Api::<Pgtask>::new(ctx.store.clone())
            .replace_status(&written)
            .await?;
    }
    Ok((!done).then_some(Duration::from_millis(500)))
}
