//! `pgo delete backup`: taking one backup (and the backups that depend on
//! it) out of the repository with `pgbackrest expire --set`. Pure; the
//! backup controller observes, plans with this, then acts.

use crate::backrest;
use crate::backup::{Action, Observed, POLL, Plan, finish, gone_from};
use crate::job::{JobSpec, JobState, JobWork};
use crate::names;
use pgo_api::Pgbackup;
use pgo_api::backup::{BackupPhase, PgbackupStatus, RepoBackup};

/// The job that expires `backup`: named apart from the job that took it,
/// so a leftover result of one is never read as the other's.
pub fn job_name(backup: &str) -> String {
    format!("{backup}-expire")
}

/// Whether `pgo delete backup` asked for this backup to go and nothing has
/// acted on the request yet.
pub fn wanted(b: &Pgbackup) -> bool {
    let handled = b.status.as_ref().and_then(|s| s.expire_handled.as_ref());
    b.spec.expire_requested.is_some() && b.spec.expire_requested.as_ref() != handled
}

/// Whether an expire is to start or runs: the backup's plan is this
/// module's.
pub fn under_way(b: &Pgbackup) -> bool {
    let phase = b.status.as_ref().map(|s| s.phase);
    phase == Some(BackupPhase::Expiring) || (crate::backup::in_repository(b) && wanted(b))
}

/// Whether the backup's current job is its expire job.
pub fn current(b: &Pgbackup) -> bool {
    under_way(b) || b.status.as_ref().is_some_and(|s| s.phase == BackupPhase::Expired)
}

/// The request answered with the backup left as it was (`Succeeded`):
/// it is not tried again.
fn answered(status: &PgbackupStatus, requested: Option<String>, message: String) -> PgbackupStatus {
    PgbackupStatus {
        phase: BackupPhase::Succeeded,
        message: Some(message),
        expire_handled: requested,
        ..status.clone()
    }
}

/// The backups a full or differential backup takes with it: those whose
/// chain of `prior`s leads to it, in `all`.
pub fn dependents<'a>(label: &str, all: &'a [RepoBackup]) -> Vec<&'a RepoBackup> {
    let mut gone = vec![label.to_string()];
    let mut out = Vec::new();
    // Oldest first, so a prior is always seen before what depends on it.
    for b in all {
        if b.prior.as_ref().is_some_and(|p| gone.contains(p)) {
            gone.push(b.label.clone());
            out.push(b);
        }
    }
    out
}

/// Why expiring `label` cannot be done, if it cannot: pgBackRest keeps at
/// least one full backup, so the only full one left stays.
pub fn refusal(label: &str, kept: &[RepoBackup]) -> Option<String> {
    let target = kept.iter().find(|b| b.label == label)?;
    let fulls = kept.iter().filter(|b| b.type_ == "full").count();
    (target.type_ == "full" && fulls < 2).then(|| {
        format!(
            "backup {label} is the only full backup in the repository, and pgBackRest keeps at least one; take another full backup first"
        )
    })
}

fn label(b: &Pgbackup) -> Option<String> {
    Some(b.status.as_ref()?.backup.as_ref()?.label.clone())
}

/// The plan of a backup whose expire is wanted or under way.
pub fn plan(o: &Observed<'_>, now: jiff::Timestamp) -> Plan {
    let status = o.backup.status.clone().unwrap_or_default();
    let requested = o.backup.spec.expire_requested.clone();
    let name = o.backup.metadata.name.clone().unwrap_or_default();
    let unchanged = |message: String| answered(&status, requested.clone(), message);
    let Some(label) = label(o.backup) else {
        return Plan {
            actions: vec![Action::WriteStatus(unchanged(
                "cannot expire: the repository's label of this backup is not known".into(),
            ))],
            next: None,
        };
    };
    if status.phase == BackupPhase::Expiring {
        return expiring(o, status, &label, now);
    }
    if o.job.is_some() {
        // Started by a pass that ended before it could say so.
        return Plan {
            actions: vec![Action::WriteStatus(PgbackupStatus {
                phase: BackupPhase::Expiring,
                ..status
            })],
            next: Some(POLL),
        };
    }
    let cluster_name = &o.backup.spec.cluster_name;
    let Some(instance) = crate::backup::repository_instance(o.cluster) else {
        return Plan {
            actions: vec![Action::WriteStatus(unchanged(format!(
                "cannot expire backup {label}: cluster {cluster_name} has no primary to reach its repository through"
            )))],
            next: None,
        };
    };
    let job = JobSpec {
        name: job_name(&name),
        cluster: cluster_name.clone(),
        work: JobWork::Backrest {
            instance,
            standby: None,
            args: vec!["expire".into(), format!("--set={label}")],
        },
    };
    let expiring = PgbackupStatus {
        phase: BackupPhase::Expiring,
        message: Some(format!("expiring backup {label} from the repository")),
        ..status
    };
    Plan {
        actions: vec![Action::StartJob(job), Action::WriteStatus(expiring)],
        next: Some(POLL),
    }
}

fn expiring(o: &Observed<'_>, status: PgbackupStatus, label: &str, now: jiff::Timestamp) -> Plan {
    let handled = o.backup.spec.expire_requested.clone();
    let back = |message: String| answered(&status, handled.clone(), message);
    match &o.job {
        None => Plan {
            actions: vec![Action::WriteStatus(back(
                "the expire job is gone without a result; the backup may still be in the repository".into(),
            ))],
            next: None,
        },
        Some(JobState::Running) => Plan {
            actions: vec![],
            next: Some(POLL),
        },
        Some(JobState::Failed { message }) => {
            finish(back(format!("pgo delete backup failed: {message}")), vec![])
        }
        Some(JobState::Succeeded { output }) => {
            let info = match backrest::parse_info(output, names::BACKREST_STANZA) {
                Ok(i) => i,
                Err(e) => return finish(back(e), vec![]),
            };
            if info.backups.iter().any(|b| b.label == label) {
                return finish(
                    back(format!("pgBackRest still lists backup {label} after expiring it")),
                    vec![],
                );
            }
            let with_it = gone_from(
                o.siblings,
                &info,
                &format!("expired with backup {label}, which it depended on"),
            );
            let done = PgbackupStatus {
                phase: BackupPhase::Expired,
                message: Some(format!("expired by pgo delete backup at {now}")),
                expire_handled: handled.clone(),
                ..status.clone()
            };
            finish(done, with_it)
        }
    }
}

#[cfg(test)]
#[path = "expire_tests.rs"]
mod tests;
