//! pg_basebackup copies kept in a cluster's backup volume (3.4's default
//! backup type): taking one, as a job, and starting a new cluster's data
//! directory from one (`pgo create cluster --backup-pvc --backup-path`).

use crate::bootstrap::{read_secret, sync_filesystem, tail};
use crate::osuser::RunAs;
use pgo_api::backup::RepoBackup;
use pgo_api::instance::InstanceConfig;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Where a copy being taken is written, renamed to its path once whole: a
/// path that exists holds a whole copy.
const PARTIAL: &str = "partial";

pub use pgo_api::backup::inside;

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

/// Where a copy is taken from: PostgreSQL's address, and the directory of
/// the replication user's secret (`username`, `password`).
pub struct Source<'a> {
    pub host: &'a str,
    pub port: u16,
    pub secret_dir: &'a Path,
    /// PostgreSQL's binaries; found on the machine when unset.
    pub bin_dir: Option<&'a Path>,
}

/// The job (`postgres-operator job basebackup`: a process on the local
/// platform, a Job's pod on Kubernetes): copies PostgreSQL at `from` into
/// `path` of `volume` with pg_basebackup (WAL streamed along, so the copy
/// starts on its own), and returns the copy as a [`RepoBackup`] (JSON)
/// labelled with its path.
pub async fn take(from: &Source<'_>, volume: &Path, path: &str) -> Result<String, String> {
    let target = inside(volume, path)?;
    if target.exists() {
        return Err(format!(
            "{} exists already: a copy is never written over",
            target.display()
        ));
    }
    // As root (the local platform), as PostgreSQL's user; in a pod, as
    // the pod's, which needs no passwd entry (--username is given).
    let run_as = if nix::unistd::geteuid().is_root() {
        Some(RunAs::resolve(None).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let own = |path: &Path, mode: u32| match &run_as {
        Some(r) => r.own(path, mode),
        None => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display())),
    };
    let bin = crate::pgbin::find(from.bin_dir).map_err(|e| e.to_string())?;
    let parent = target
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", target.display()))?;
    std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    own(parent, 0o700)?;
    let partial = target.with_extension(PARTIAL);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| format!("cannot clear {}: {e}", partial.display()))?;
    }
    let user = read_secret(from.secret_dir, "username")?;
    let password = read_secret(from.secret_dir, "password")?;
    let passfile = parent.join(".pgpass");
    std::fs::write(&passfile, crate::bootstrap::pgpass_line(&user, &password))
        .map_err(|e| format!("cannot write {}: {e}", passfile.display()))?;
    own(&passfile, 0o600)?;
    let (host, port) = (from.host, from.port);
    println!(
        "pg_basebackup of {host}:{port} into {}: starting",
        target.display()
    );
    let mut cmd = tokio::process::Command::new(bin.join("pg_basebackup"));
    cmd.arg("--pgdata")
        .arg(&partial)
        .arg(format!("--host={host}"))
        .arg(format!("--port={port}"))
        .arg(format!("--username={user}"))
        .arg("--no-password")
        .arg("--wal-method=stream")
        .arg("--checkpoint=fast")
        .env("PGPASSFILE", &passfile)
        .env("PGAPPNAME", "pgo-backup")
        .current_dir(parent)
        .kill_on_drop(true);
    if let Some(r) = &run_as {
        r.apply(&mut cmd);
    }
    let output = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", bin.join("pg_basebackup").display()));
    let _ = std::fs::remove_file(&passfile);
    let output = output?;
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "pg_basebackup of {host}:{port} failed ({}): {}",
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
/// into `scratch` (absent), which the bootstrap renames into place once
/// whole. PostgreSQL then replays the WAL the copy carries and starts.
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
