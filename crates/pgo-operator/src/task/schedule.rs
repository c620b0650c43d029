//! A backup schedule's turn: observe (the schedule, its cluster, its
//! backups), plan ([`pgo_core::schedule::turn`]), act (a Pgbackup for the
//! occurrence due, then the occurrence recorded).

use crate::Context;
use crate::runtime::Outcome;
use pgo_api::backup::BackupType;
use pgo_api::task::{FAILED, RUNNING};
use pgo_api::{Pgbackup, PgbackupSpec, Pgcluster, Pgtask, PgtaskStatus, labels};
use pgo_core::schedule::{self, BACKUP_TYPE, PATTERN};
use pgo_store::{Api, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

/// How soon to look again while a backup of the cluster still runs.
const BUSY: Duration = Duration::from_secs(2);

async fn write(api: &Api<Pgtask>, task: &Pgtask, status: PgtaskStatus) -> Result<(), StoreError> {
    if task.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let mut next = task.clone();
    next.status = Some(status);
    api.replace_status(&next).await.map(|_| ())
}

pub async fn reconcile(ctx: &Context, task: &Pgtask) -> Result<Outcome, StoreError> {
    let tasks = Api::<Pgtask>::new(ctx.store.clone());
    let name = task.metadata.name.clone().unwrap_or_default();
    let cluster_name = &task.spec.cluster_name;
    let Some(cluster) = Api::<Pgcluster>::new(ctx.store.clone())
        .get_opt(cluster_name)
        .await?
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    else {
        // A schedule goes with its cluster.
        tasks.delete_opt(&name).await?;
        tracing::info!(schedule = %name, cluster = %cluster_name, "schedule removed with its cluster");
        return Ok(Outcome::Gone);
    };
    let status = task.status.clone().unwrap_or_default();
    let pattern = task.spec.parameters.get(PATTERN).cloned().unwrap_or_default();
    let now = jiff::Timestamp::now();
    let cron = match schedule::parse(&pattern) {
        Ok(c) => c,
        Err(e) => {
            let failed = PgtaskStatus {
                phase: FAILED.into(),
                message: Some(e),
                ..status
            };
            write(&tasks, task, failed).await?;
            return Ok(Outcome::Gone);
        }
    };
    // Anchored when first seen: occurrences before the schedule was made
    // are not missed ones.
    let Some(last) = status
        .last_run
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        let anchored = PgtaskStatus {
            phase: RUNNING.into(),
            last_run: Some(now.to_string()),
            message: Some(format!("waiting for the next occurrence of {pattern} (UTC)")),
            ..status
        };
        write(&tasks, task, anchored).await?;
        return Ok(Outcome::Requeue(Duration::ZERO));
    };
    let turn = match schedule::turn(&cron, last, now) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(schedule = %name, error = %e, "cannot evaluate the schedule");
            return Ok(Outcome::Requeue(Duration::from_secs(60)));
        }
    };
    let Some(at) = turn.fire else {
        return Ok(Outcome::Requeue(turn.next));
    };
    let backups = Api::<Pgbackup>::new(ctx.store.clone());
    let (all, _) = backups.list().await?;
    let busy = pgo_core::backup::unfinished(&all, cluster_name).is_some();
    if busy {
        // The occurrence waits for the backup under way, and runs after.
        return Ok(Outcome::Requeue(BUSY));
    }
    let tool = schedule::tool_of(task);
    let message = if let Err(e) = &tool {
        format!("{at}: not run: {e}")
    } else if tool == Ok(BackupType::Pgbackrest) && cluster.spec.backrest.is_none() {
        format!("{at}: not run: cluster {cluster_name} does not use pgBackRest")
    } else {
        let tool = tool.unwrap_or_default();
        let backup_opts = match tool {
            BackupType::Pgbackrest => {
                let t = task
                    .spec
                    .parameters
                    .get(BACKUP_TYPE)
                    .cloned()
                    .unwrap_or_else(|| "full".into());
                vec![format!("--type={t}")]
            }
            BackupType::Pgbasebackup => Vec::new(),
        };
        let backup_name = schedule::backup_name(&name, at);
        let mut b = Pgbackup::new(
            &backup_name,
            PgbackupSpec {
                cluster_name: cluster_name.clone(),
                backup_type: tool,
                backup_opts,
                standby: false,
                storage: cluster.spec.backups_storage(),
                expire_requested: None,
            },
        );
        b.metadata.labels = Some(BTreeMap::from([
            (labels::CLUSTER.to_string(), cluster_name.clone()),
            (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        ]));
        match backups.create(&b).await {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(schedule = %name, backup = %backup_name, "scheduled backup");
        format!("{at}: backup {backup_name}")
    };
    let ran = PgtaskStatus {
        phase: RUNNING.into(),
        last_run: Some(at.to_string()),
        message: Some(message),
        ..status
    };
    write(&tasks, task, ran).await?;
    Ok(Outcome::Requeue(turn.next))
}
