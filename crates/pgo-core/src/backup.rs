//! A backup's plan: from the Pgbackup, its cluster and its job, what to do
//! next. Pure; the operator observes, plans with this, then acts.

use crate::backrest;
use crate::job::{JobSpec, JobState, JobWork};
use crate::names;
use pgo_api::backup::{BackupPhase, BackupType, PgbackupStatus, RepoBackup};
use pgo_api::cluster::{ClusterPhase, MemberRole};
use pgo_api::{Pgbackup, Pgcluster};
use std::time::Duration;

/// How often a running backup's job is looked at: its state is a file
/// on the local platform, and every poll saved is latency a user waits.
pub const POLL: Duration = Duration::from_millis(200);

/// The pgBackRest options `pgo backup --backup-opts` may carry. Anything
/// else (a repository path, a config file) could point pgBackRest where
/// the user has no business, so it is refused.
const ALLOWED_OPTS: &[&str] = &[
    "--type",
    "--annotation",
    "--compress-level",
    "--compress-type",
    "--process-max",
    "--start-fast",
    "--no-start-fast",
    "--checksum-page",
    "--no-checksum-page",
    "--resume",
    "--no-resume",
];

/// Splits and checks `--backup-opts`.
pub fn backup_opts(opts: &str) -> Result<Vec<String>, String> {
    let words = allowed_opts(opts, "backup", ALLOWED_OPTS)?;
    if let Some(w) = words.iter().find(|w| {
        w.starts_with("--type") && !matches!(w.as_str(), "--type=full" | "--type=diff" | "--type=incr")
    }) {
        return Err(format!("--backup-opts: {w:?}: the type is full, diff or incr"));
    }
    Ok(words)
}

/// Splits `--backup-opts` into words, each an option of `allowed` (with or
/// without a value); `command` names the pgBackRest command they are for.
pub fn allowed_opts(opts: &str, command: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    let words: Vec<String> = opts.split_whitespace().map(str::to_string).collect();
    if let Some(w) = words
        .iter()
        .find(|w| !allowed.contains(&w.split_once('=').map_or(w.as_str(), |(n, _)| n)))
    {
        return Err(format!(
            "--backup-opts: {w:?} is not an option pgo passes to pgbackrest {command} (allowed: {})",
            allowed.join(", ")
        ));
    }
    Ok(words)
}

/// The backup of `cluster` not finished yet, if any: one runs at a time.
pub fn unfinished<'a>(backups: &'a [Pgbackup], cluster: &str) -> Option<&'a Pgbackup> {
    backups
        .iter()
        .find(|b| b.spec.cluster_name == cluster && !b.status.as_ref().is_some_and(|s| s.phase.finished()))
}

/// What a backup's pass sees.
pub struct Observed<'a> {
    pub backup: &'a Pgbackup,
    pub cluster: Option<&'a Pgcluster>,
    /// The job's state; `None` when the platform has no such job.
    pub job: Option<JobState>,
    /// The cluster's other Pgbackups, to mark those the repository no
    /// longer holds.
    pub siblings: &'a [Pgbackup],
}

#[derive(Debug, PartialEq)]
pub enum Action {
    StartJob(JobSpec),
    WriteStatus(PgbackupStatus),
    /// Another Pgbackup whose backup retention took out of the repository.
    MarkExpired {
        backup: String,
        message: String,
    },
    RemoveJob,
}

#[derive(Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// When to look again; `None` once finished.
    pub next: Option<Duration>,
}

fn failed(status: &PgbackupStatus, message: String, now: jiff::Timestamp) -> PgbackupStatus {
    PgbackupStatus {
        phase: BackupPhase::Failed,
        message: Some(message),
        finished: Some(now.to_string()),
        ..status.clone()
    }
}

pub fn plan(o: &Observed<'_>, now: jiff::Timestamp) -> Plan {
    let status = o.backup.status.clone().unwrap_or_default();
    let name = o.backup.metadata.name.clone().unwrap_or_default();
    let done = |actions: Vec<Action>| Plan { actions, next: None };
    if status.phase.finished() {
        let leftover = o.job.is_some().then_some(Action::RemoveJob);
        return done(leftover.into_iter().collect());
    }
    if status.phase == BackupPhase::Running {
        return running(o, status, now);
    }
    // Pending. A job already there was started by a pass that ended
    // before it could say so.
    if o.job.is_some() {
        let status = PgbackupStatus {
            phase: BackupPhase::Running,
            started: status.started.clone().or_else(|| Some(now.to_string())),
            ..status
        };
        return Plan {
            actions: vec![Action::WriteStatus(status)],
            next: Some(Duration::ZERO),
        };
    }
    let spec = &o.backup.spec;
    let cluster_name = &spec.cluster_name;
    let refuse = |m: String| done(vec![Action::WriteStatus(failed(&status, m, now))]);
    let Some(cluster) = o.cluster.filter(|c| c.metadata.deletion_timestamp.is_none()) else {
        return refuse(format!("cluster {cluster_name:?} not found"));
    };
    if spec.backup_type == BackupType::Pgbasebackup {
        return refuse("pgbasebackup backups are not supported yet; use --backup-type=pgbackrest".into());
    }
    if cluster.spec.backrest.is_none() {
        return refuse(format!(
            "cluster {cluster_name} does not use pgBackRest (it was created with --pgbackrest=false)"
        ));
    }
    let args = match backup_opts(&spec.backup_opts.join(" ")) {
        Ok(a) => a,
        Err(e) => return refuse(e),
    };
    let cs = cluster.status.clone().unwrap_or_default();
    let stanza_ready = |p: &str| {
        cs.members
            .iter()
            .any(|m| m.name == p && m.archive.as_ref().is_some_and(|a| a.stanza_ready))
    };
    let primary = match (&cs.primary, cs.phase) {
        (Some(p), ClusterPhase::Ready) if stanza_ready(p) => p.clone(),
        (primary, phase) => {
            let why = match (primary, phase) {
                (Some(_), ClusterPhase::Ready) => "its repository's stanza to be made",
                _ => "it to be ready",
            };
            let waiting = PgbackupStatus {
                message: Some(format!("waiting for cluster {cluster_name}: {why}")),
                ..status.clone()
            };
            let write = (waiting != status).then_some(Action::WriteStatus(waiting));
            return Plan {
                actions: write.into_iter().collect(),
                next: Some(POLL),
            };
        }
    };
    let standby = if spec.standby {
        let ready = cs
            .members
            .iter()
            .find(|m| m.role == MemberRole::Replica && m.ready && m.name != primary);
        match ready {
            Some(m) => Some(m.name.clone()),
            None => {
                return refuse(format!(
                    "--backup-standby: cluster {cluster_name} has no ready replica"
                ));
            }
        }
    } else {
        None
    };
    let job = JobSpec {
        name: name.clone(),
        cluster: cluster_name.clone(),
        work: JobWork::Backrest {
            instance: primary.clone(),
            standby: standby.clone(),
            args: std::iter::once("backup".to_string()).chain(args).collect(),
        },
    };
    let running = PgbackupStatus {
        phase: BackupPhase::Running,
        message: Some(match &standby {
            Some(s) => format!("backing up from replica {s}"),
            None => format!("backing up from primary {primary}"),
        }),
        instance: Some(standby.unwrap_or(primary)),
        started: Some(now.to_string()),
        ..status
    };
    // The job first: a pass that ends between the two finds the job and
    // records it; the other order would record a job that never started.
    Plan {
        actions: vec![Action::StartJob(job), Action::WriteStatus(running)],
        next: Some(POLL),
    }
}

fn running(o: &Observed<'_>, status: PgbackupStatus, now: jiff::Timestamp) -> Plan {
    let finish = |s: PgbackupStatus, mut extra: Vec<Action>| {
        let mut actions = vec![Action::WriteStatus(s)];
        actions.append(&mut extra);
        actions.push(Action::RemoveJob);
        Plan { actions, next: None }
    };
    match &o.job {
        None => Plan {
            actions: vec![Action::WriteStatus(failed(
                &status,
                "the backup's job is gone without a result".into(),
                now,
            ))],
            next: None,
        },
        Some(JobState::Running) => Plan {
            actions: vec![],
            next: Some(POLL),
        },
        Some(JobState::Failed { message }) => finish(failed(&status, message.clone(), now), vec![]),
        Some(JobState::Succeeded { output }) => {
            let info = match backrest::parse_info(output, names::BACKREST_STANZA) {
                Ok(i) => i,
                Err(e) => return finish(failed(&status, e, now), vec![]),
            };
            let Some(made) = newest_since(&info.backups, status.started.as_deref()) else {
                return finish(
                    failed(
                        &status,
                        "pgBackRest lists no backup made since the job started".into(),
                        now,
                    ),
                    vec![],
                );
            };
            let kept: Vec<&str> = info.backups.iter().map(|b| b.label.as_str()).collect();
            let expired = o
                .siblings
                .iter()
                .filter(|s| {
                    s.status.as_ref().is_some_and(|st| {
                        st.phase == BackupPhase::Succeeded
                            && st
                                .backup
                                .as_ref()
                                .is_some_and(|b| !kept.contains(&b.label.as_str()))
                    })
                })
                .filter_map(|s| s.metadata.name.clone())
                .map(|backup| Action::MarkExpired {
                    backup,
                    message: "expired by the repository's retention".into(),
                })
                .collect();
            let done = PgbackupStatus {
                phase: BackupPhase::Succeeded,
                message: Some(format!("backup {} in the repository", made.label)),
                finished: Some(now.to_string()),
                backup: Some(made),
                ..status
            };
            finish(done, expired)
        }
    }
}

/// The newest backup that started after the job did (a few seconds of
/// leeway for clocks that round to the second).
fn newest_since(backups: &[RepoBackup], started: Option<&str>) -> Option<RepoBackup> {
    let since = started.and_then(|s| s.parse::<jiff::Timestamp>().ok());
    backups
        .iter()
        .rev()
        .find(|b| match (since, b.start.parse::<jiff::Timestamp>()) {
            (Some(since), Ok(start)) => start.as_second() + 5 >= since.as_second(),
            _ => false,
        })
        .cloned()
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
