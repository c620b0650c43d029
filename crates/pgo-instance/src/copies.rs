//! pg_basebackup copies kept in a cluster's backup volume (3.4's default
//! backup type): taking one, as a job, and starting a new cluster's data
//! directory from one (`pgo create cluster --backup-pvc --backup-path`).

use crate::bootstrap::{read_secret, sync_filesystem, tail};
use crate::osuser::RunAs;
use pgo_api::backup::RepoBackup;
use pgo_api::instance::InstanceConfig;
use std::path::{Component, Path, PathBuf};

/// Where a copy being taken is written, renamed to its path once whole: a
/// path that exists holds a whole copy.
const PARTIAL: &str = "partial";

/// `path` inside `volume`, when it is a plain relative path (no `..`, not
/// absolute): a request must not reach outside the volume.
pub fn inside(volume: &Path, path: &str) -> Result<PathBuf, String> {
    let rel = Path::new(path);
    let plain = !path.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!(
            "{path:?} is not a path inside the backup volume (relative, no ..)"
        ));
    }
    Ok(volume.join(rel))
}

fn read_config(path: &Path) -> Result<InstanceConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The WAL segment a copy starts at, from its `backup_label`.
fn wal_start(pgdata: &Path) -> String {
    let label = std::fs::read_to_string(pgdata.join("backup_label")).unwrap_or_default();
    label
        .lines()
        .find_map(|l| l.strip_prefix("START WAL LOCATION: "))
        .and_then(|l| l.split("(file ").nth(1))
        .map(|f| f.trim_end_matches(')').to_string())
        .unwrap_or_default()
}

fn size_of(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The job (`postgres-operator job basebackup`): copies the instance whose
/// config is at `instance` into `path` of `volume` with pg_basebackup
/// (WAL streamed along, so the copy starts on its own), and returns the
/// copy as a [`RepoBackup`] (JSON) labelled with its path.
pub async fn take(instance: &Path, volume: &Path, path: &str) -> Result<String, String> {
    let config = read_config(instance)?;
    let target = inside(volume, path)?;
    if target.exists() {
        return Err(format!(
            "{} exists already: a copy is never written over",
            target.display()
        ));
    }
    let run_as = RunAs::resolve(config.run_as.as_deref()).map_err(|e| e.to_string())?;
    let bin = crate::pgbin::find(config.pg_bin_dir.as_deref()).map_err(|e| e.to_string())?;
    let parent = target
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", target.display()))?;
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    for dir in [volume, parent] {
        run_as.own(dir, 0o700)?;
    }
    let partial = target.with_extension(PARTIAL);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("cannot clear {}: {e}", partial.display()))?;
    }
    let user = read_secret(&config.replication_secret, "username")?;
    let password = read_secret(&config.replication_secret, "password")?;
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    let passfile = parent.join(".pgpass");
    run_as.write(
        &passfile,
        &format!("*:*:*:{}:{}\n", escape(&user), escape(&password)),
    )?;
    let host = match config.listen_address.as_str() {
        "*" | "0.0.0.0" | "" => "127.0.0.1",
        other => other,
    };
    println!(
        "pg_basebackup of {} into {}: starting",
        config.name,
        target.display()
    );
    let mut cmd = tokio::process::Command::new(bin.join("pg_basebackup"));
    cmd.arg("--pgdata")
        .arg(&partial)
        .arg(format!("--host={host}"))
        .arg(format!("--port={}", config.port))
        .arg(format!("--username={user}"))
        .arg("--no-password")
        .arg("--wal-method=stream")
        .arg("--checkpoint=fast")
        .env("PGPASSFILE", &passfile)
        .env("PGAPPNAME", format!("pgo-backup-{}", config.cluster))
        .current_dir(parent)
        .kill_on_drop(true);
    run_as.apply(&mut cmd);
    let output = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", bin.join("pg_basebackup").display()));
    let _ = std::fs::remove_file(&passfile);
    let output = output?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "pg_basebackup of {} failed ({}): {}",
            config.name,
            output.status,
            tail(&output.stderr)
        ));
    }
    let copy = RepoBackup {
        label: path.to_string(),
        type_: "pgbasebackup".into(),
        size_bytes: size_of(&partial),
        repo_size_bytes: size_of(&partial),
        wal_start: wal_start(&partial),
        ..Default::default()
    };
    std::fs::rename(&partial, &target).map_err(|e| format!("cannot move the copy into place: {e}"))?;
    sync_filesystem(parent).await?;
    println!("pg_basebackup into {}: done", target.display());
    serde_json::to_string(&copy).map_err(|e| e.to_string())
}

/// A new data directory copied from `source` (a whole pg_basebackup copy),
/// into `scratch` first and renamed into place once whole, as after
/// initdb. PostgreSQL then replays the WAL the copy carries and starts.
pub async fn seed(
    config: &InstanceConfig,
    source: &Path,
    run_as: &RunAs,
    scratch: &Path,
) -> Result<(), String> {
    if !source.join("PG_VERSION").is_file() {
        return Err(format!(
            "{} is not a copy of a data directory (no PG_VERSION)",
            source.display()
        ));
    }
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).map_err(|e| format!("cannot clear {}: {e}", scratch.display()))?;
    }
    // cp as PostgreSQL's user: the copy's files are its, and stay so.
    let mut cmd = tokio::process::Command::new("cp");
    cmd.arg("-a")
        .arg("--reflink=auto")
        .arg(source)
        .arg(scratch)
        .kill_on_drop(true);
    run_as.apply(&mut cmd);
    let output = cmd.output().await.map_err(|e| format!("cannot run cp: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(scratch);
        return Err(format!(
            "cannot copy {} into {}: {}",
            source.display(),
            config.volume_dir.display(),
            tail(&output.stderr)
        ));
    }
    // What was the source's own, not the new instance's.
    for leftover in ["postmaster.pid", "standby.signal", "recovery.signal"] {
        let _ = std::fs::remove_file(scratch.join(leftover));
    }
    run_as.own(scratch, 0o700)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stays_inside_its_volume() {
        let v = Path::new("/v");
        assert_eq!(
            inside(v, "db-backups/2026-01-01-00-00-00").ok(),
            Some(PathBuf::from("/v/db-backups/2026-01-01-00-00-00"))
        );
        for bad in ["", "/etc", "../x", "a/../../x", "./a"] {
            assert!(inside(v, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_wal_segment_is_read_from_the_backup_label() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("backup_label"),
            "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wal_start(dir.path()), "000000010000000000000002");
        assert_eq!(wal_start(Path::new("/nonexistent")), "");
    }
}
