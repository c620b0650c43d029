//! `pgo backup` and `pgo show backup`.

use super::segment;
use crate::CliError;
use crate::args::{Backup, Format};
use crate::client::Client;
use crate::output::{self, say, sayln, table};
use crate::wait::{self, Look};
use pgo_api::backup::BackupPhase;
use pgo_api::rest::{BackupView, BackupsResponse, CreateBackupRequest, ExpireResponse};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn backups_path(cluster: &str) -> String {
    format!("/backups?cluster={}", segment(cluster))
}

fn backup_path(name: &str) -> String {
    format!("/backups/{}", segment(name))
}

/// How often a wait asks again: the answer comes from the server's memory.
const WAIT_POLL: Duration = Duration::from_millis(100);

pub async fn run(client: &Client, args: &Backup) -> Result<ExitCode, CliError> {
    let req = CreateBackupRequest {
        cluster_name: args.name.clone(),
        backup_type: args.backup_type.clone(),
        backup_opts: args.backup_opts.clone().unwrap_or_default(),
        standby: args.backup_standby,
    };
    let started = Instant::now();
    let created: BackupView = client.post("/backups", &req).await?;
    if args.no_wait {
        sayln!("created backup {} of cluster {}", created.name, created.cluster);
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = started + Duration::from_secs(args.timeout);
    let b = wait::until(
        deadline,
        WAIT_POLL,
        async || {
            let Some(b) = client.get_opt::<BackupView>(&backup_path(&created.name)).await? else {
                return Ok(Look::Failed(format!("backup {} is gone", created.name)));
            };
            Ok(match b.status.phase {
                BackupPhase::Succeeded | BackupPhase::Expiring => Look::Done(b),
                BackupPhase::Failed | BackupPhase::Expired => Look::Failed(format!(
                    "backup {} of cluster {} failed: {}",
                    b.name,
                    b.cluster,
                    b.status.message.unwrap_or_else(|| "no reason given".into())
                )),
                BackupPhase::Pending | BackupPhase::Running => Look::Waiting(format!(
                    "backup {}: {} {}",
                    b.name,
                    b.status.phase,
                    b.status.message.unwrap_or_default()
                )),
            })
        },
        || {
            format!(
                "backup {} has not finished within {}s; it goes on: see 'pgo show backup {}'",
                created.name, args.timeout, args.name
            )
        },
    )
    .await?;
    let label = b.status.backup.as_ref().map_or("-", |r| r.label.as_str());
    let what = if b.backup_type == "pgbasebackup" {
        format!("copy at {label} in volume {}-backup", b.cluster)
    } else {
        format!("pgBackRest label {label}")
    };
    sayln!(
        "backup {} of cluster {} done in {:.1}s: {what}",
        b.name,
        b.cluster,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `pgo delete backup NAME --target=LABEL`: asks, then waits until the
/// repository no longer holds the backup.
pub async fn expire(
    client: &Client,
    cluster: &str,
    label: &str,
    no_prompt: bool,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let question = format!(
        "Expire backup {label} of cluster {cluster} from its repository? Backups that depend on it go too, and a restore can no longer reach the moments only they cover."
    );
    if !output::confirm(!no_prompt, &question)? {
        sayln!("nothing deleted");
        return Ok(ExitCode::FAILURE);
    }
    let started = Instant::now();
    let path = format!("/backups?cluster={}&target={}", segment(cluster), segment(label));
    let asked: ExpireResponse = client.delete(&path).await?;
    let with = if asked.with.is_empty() {
        String::new()
    } else {
        format!(" with {}", asked.with.join(", "))
    };
    if no_wait {
        sayln!("expiring backup {label} of cluster {cluster}{with}");
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = started + Duration::from_secs(timeout);
    let name = asked.backup.name;
    wait::until(
        deadline,
        WAIT_POLL,
        async || {
            let Some(b) = client.get_opt::<BackupView>(&backup_path(&name)).await? else {
                return Ok(Look::Failed(format!("backup {name} is gone")));
            };
            Ok(match b.status.phase {
                BackupPhase::Expired => Look::Done(()),
                BackupPhase::Expiring => Look::Waiting(format!("backup {label}: expiring")),
                BackupPhase::Succeeded
                    if b.status.expire_handled.is_some() && b.status.expire_handled == b.expire_requested =>
                {
                    Look::Failed(format!(
                        "backup {label} of cluster {cluster} was not expired: {}",
                        b.status.message.unwrap_or_else(|| "no reason given".into())
                    ))
                }
                _ => Look::Waiting(format!("backup {label}: waiting for the operator")),
            })
        },
        || format!("backup {label} has not been expired within {timeout}s; see 'pgo show backup {cluster}'"),
    )
    .await?;
    sayln!(
        "backup {label} of cluster {cluster} expired{with} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn show(client: &Client, names: &[String], format: Format) -> Result<ExitCode, CliError> {
    let mut lists = Vec::new();
    for name in names {
        lists.push(client.get::<BackupsResponse>(&backups_path(name)).await?);
    }
    let printed = match lists.as_slice() {
        [one] => output::structured(format, one)?,
        many => output::structured(format, &many)?,
    };
    if printed {
        return Ok(ExitCode::SUCCESS);
    }
    for (i, l) in lists.iter().enumerate() {
        if i > 0 {
            sayln!();
        }
        say!("{}", render(l));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(l: &BackupsResponse) -> String {
    let mut out = format!("cluster {}: {} backups", l.cluster, l.backups.len());
    if let Some(size) = l.repository_bytes {
        out.push_str(&format!(", repository {}", output::bytes(size)));
    }
    out.push('\n');
    match (&l.earliest_restore, &l.latest_restore) {
        (Some(e), Some(latest)) => out.push_str(&format!("  a restore can reach {e} to {latest}\n")),
        (Some(e), None) => out.push_str(&format!("  a restore can reach {e} (no WAL archived since)\n")),
        _ => out.push_str("  no backup to restore from yet\n"),
    }
    let rows: Vec<Vec<String>> = l
        .backups
        .iter()
        .map(|b| {
            let r = b.status.backup.as_ref();
            let or_dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
            vec![
                b.name.clone(),
                b.status.phase.to_string(),
                or_dash(r.map(|r| r.label.clone())),
                or_dash(r.map(|r| r.type_.clone())),
                or_dash(r.map(|r| r.start.clone()).or(b.status.started.clone())),
                or_dash(r.map(|r| r.stop.clone())),
                or_dash(r.map(|r| output::bytes(r.size_bytes))),
                or_dash(r.map(|r| output::bytes(r.repo_size_bytes))),
                or_dash(r.map(|r| format!("{}..{}", r.wal_start, r.wal_stop))),
                or_dash(b.status.instance.clone()),
                b.status.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "BACKUP", "PHASE", "LABEL", "TYPE", "START", "STOP", "SIZE", "IN REPO", "WAL", "FROM", "MESSAGE",
        ],
        &rows,
        "  ",
    ));
    out
}
