//! A backup's plan: from the Pgbackup, its cluster and its job, what to do
//! next. Pure; the operator observes, plans with this, then acts.

use crate::backrest;
use crate::desired::VolumeSpec;
use crate::job::{JobSpec, JobState, JobWork};
use crate::names;
use pgo_api::backup::{BackupPhase, BackupType, PgbackupStatus, RepoBackup, RepoInfo};
use pgo_api::cluster::{ClusterPhase, MemberRole};
use pgo_api::{Pgbackup, Pgcluster};
use std::time::Duration;

/// How often a running job is looked at: its state is a file on the local
/// platform (a stat and a small read), and every poll saved is latency a
/// user waits (`bench/backup.sh`).
pub const POLL: Duration = Duration::from_millis(50);

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

/// Whether the backup is one pgBackRest holds: taken with it, and neither
/// failed nor expired.
pub fn in_repository(b: &Pgbackup) -> bool {
    b.spec.backup_type == BackupType::Pgbackrest
        && b.status
            .as_ref()
            .is_some_and(|s| s.phase == BackupPhase::Succeeded)
}

/// The instance a job that needs only a cluster's repository runs for
/// (an expire, a restore into a volume): any instance's configuration
/// names the repository, and the primary's is the one certain to be there.
pub fn repository_instance(cluster: Option<&Pgcluster>) -> Option<String> {
    cluster
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .and_then(|c| c.status.as_ref()?.primary.clone())
}

/// The paths of the whole pg_basebackup copies `volume` holds, sorted.
pub fn copies_in(backups: &[Pgbackup], volume: &str) -> Vec<String> {
    let mut copies: Vec<String> = backups
        .iter()
        .filter(|b| b.spec.backup_type == BackupType::Pgbasebackup)
        .filter(|b| names::basebackup_volume(&b.spec.cluster_name) == volume)
        .filter_map(|b| {
            let s = b.status.as_ref().filter(|s| s.phase == BackupPhase::Succeeded)?;
            Some(s.backup.as_ref()?.label.clone())
        })
        .collect();
    copies.sort();
    copies
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
    /// The state of the job [`job_name`] names; `None` when the platform
    /// has no such job.
    pub job: Option<JobState>,
    /// The cluster's other Pgbackups, to mark those the repository no
    /// longer holds.
    pub siblings: &'a [Pgbackup],
}

#[derive(Debug, PartialEq)]
pub enum Action {
    /// The volume a pg_basebackup copy goes into.
    EnsureVolume(VolumeSpec),
    StartJob(JobSpec),
    WriteStatus(PgbackupStatus),
    /// Another Pgbackup whose backup retention took out of the repository.
    MarkExpired {
        backup: String,
        message: String,
    },
    /// Removes the job [`job_name`] names.
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

/// The job a backup's pass looks at: the one that takes it, or, once
/// `pgo delete backup` asked for it to go, the one that expires it.
pub fn job_name(b: &Pgbackup) -> String {
    let name = b.metadata.name.clone().unwrap_or_default();
    if crate::expire::current(b) {
        crate::expire::job_name(&name)
    } else {
        name
    }
}

pub fn plan(o: &Observed<'_>, now: jiff::Timestamp) -> Plan {
    let status = o.backup.status.clone().unwrap_or_default();
    let name = o.backup.metadata.name.clone().unwrap_or_default();
    let done = |actions: Vec<Action>| Plan { actions, next: None };
    if crate::expire::under_way(o.backup) {
        return crate::expire::plan(o, now);
    }
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
    let backrest = spec.backup_type == BackupType::Pgbackrest;
    if backrest && cluster.spec.backrest.is_none() {
        return refuse(format!(
            "cluster {cluster_name} does not use pgBackRest (it was created with --pgbackrest=false)"
        ));
    }
    let args = match (backrest, backup_opts(&spec.backup_opts.join(" "))) {
        (true, Ok(a)) => a,
        (true, Err(e)) => return refuse(e),
        (false, _) if !spec.backup_opts.is_empty() => {
            return refuse(format!(
                "--backup-opts {:?}: pgo passes no options to pg_basebackup",
                spec.backup_opts.join(" ")
            ));
        }
        (false, _) => Vec::new(),
    };
    let cs = cluster.status.clone().unwrap_or_default();
    // A pg_basebackup copy needs no repository.
    let stanza_ready = |p: &str| {
        !backrest
            || cs
                .members
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
    let mut actions = Vec::new();
    let work = if backrest {
        JobWork::Backrest {
            instance: primary.clone(),
            standby: standby.clone(),
            args: std::iter::once("backup".to_string()).chain(args).collect(),
        }
    } else {
        let volume = names::basebackup_volume(cluster_name);
        actions.push(Action::EnsureVolume(VolumeSpec {
            name: volume.clone(),
            cluster: cluster_name.clone(),
            storage: spec.storage.clone(),
        }));
        JobWork::Basebackup {
            instance: standby.clone().unwrap_or_else(|| primary.clone()),
            volume,
            path: names::basebackup_path(cluster_name, now),
        }
    };
    let job = JobSpec {
        name: name.clone(),
        cluster: cluster_name.clone(),
        work,
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
    actions.extend([Action::StartJob(job), Action::WriteStatus(running)]);
    Plan {
        actions,
        next: Some(POLL),
    }
}

/// The end of a job: the outcome written, `extra` done, the job forgotten.
pub(crate) fn finish(s: PgbackupStatus, mut extra: Vec<Action>) -> Plan {
    let mut actions = vec![Action::WriteStatus(s)];
    actions.append(&mut extra);
    actions.push(Action::RemoveJob);
    Plan { actions, next: None }
}

/// The siblings pgBackRest held and its `info` no longer lists, marked
/// expired with `message`.
pub(crate) fn gone_from(siblings: &[Pgbackup], info: &RepoInfo, message: &str) -> Vec<Action> {
    let kept: Vec<&str> = info.backups.iter().map(|b| b.label.as_str()).collect();
    siblings
        .iter()
        .filter(|s| in_repository(s))
        .filter(|s| {
            s.status
                .as_ref()
                .and_then(|st| st.backup.as_ref())
                .is_some_and(|b| !kept.contains(&b.label.as_str()))
        })
        .filter_map(|s| s.metadata.name.clone())
        .map(|backup| Action::MarkExpired {
            backup,
            message: message.to_string(),
        })
        .collect()
}

fn running(o: &Observed<'_>, status: PgbackupStatus, now: jiff::Timestamp) -> Plan {
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
        Some(JobState::Succeeded { output }) if o.backup.spec.backup_type == BackupType::Pgbasebackup => {
            let copy = match serde_json::from_str::<RepoBackup>(output) {
                Ok(c) => c,
                Err(e) => {
                    return finish(
                        failed(&status, format!("the copy's job reported {output:?}: {e}"), now),
                        vec![],
                    );
                }
            };
            let done = PgbackupStatus {
                phase: BackupPhase::Succeeded,
                message: Some(format!(
                    "copy in volume {} at {}",
                    names::basebackup_volume(&o.backup.spec.cluster_name),
                    copy.label
                )),
                finished: Some(now.to_string()),
                backup: Some(RepoBackup {
                    start: status.started.as_deref().map(to_second).unwrap_or_default(),
                    stop: to_second(&now.to_string()),
                    ..copy
                }),
                ..status
            };
            finish(done, vec![])
        }
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
            // A list cut to fit a termination message says nothing of
            // the backups it left out.
            let expired = if backrest::lists_every_backup(output) {
                gone_from(o.siblings, &info, "expired by the repository's retention")
            } else {
                Vec::new()
            };
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

/// A moment to the second, as pgBackRest's own backups show theirs.
fn to_second(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| t.to_string())
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
