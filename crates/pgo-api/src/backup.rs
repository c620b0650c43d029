//! `Pgbackup`: one backup of a cluster, asked for by `pgo backup`, and what
//! it became in the repository.

use crate::cluster::StorageSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `path` inside `volume`, when it is a plain relative path (no `..`, not
/// absolute, not empty): a copy's path (`--backup-path`) must not reach
/// outside its backup volume.
pub fn inside(volume: &std::path::Path, path: &str) -> Result<std::path::PathBuf, String> {
    let rel = std::path::Path::new(path);
    let plain = !path.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(format!(
            "{path:?} is not a path inside the backup volume (relative, no ..)"
        ));
    }
    Ok(volume.join(rel))
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "pgo.dev",
    version = "v1",
    kind = "Pgbackup",
    plural = "pgbackups",
    namespaced,
    status = "PgbackupStatus",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.backupType"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Label","type":"string","jsonPath":".status.label"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct PgbackupSpec {
    pub cluster_name: String,
    pub backup_type: BackupType,
    /// pgBackRest options (`--type=full|diff|incr`, …), one per item.
    pub backup_opts: Vec<String>,
    /// Taken from a ready replica rather than the primary.
    pub standby: bool,
    pub storage: StorageSpec,
    /// When `pgo delete backup` asked for this backup to be expired from
    /// the repository (RFC 3339); the status says once it was handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_requested: Option<String>,
}

/// The tool a backup is taken with.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupType {
    /// Into the cluster's pgBackRest repository, restorable to any moment
    /// its archived WAL reaches.
    #[default]
    Pgbackrest,
    /// A copy of the data directory (3.4's default type).
    Pgbasebackup,
}

impl std::fmt::Display for BackupType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupType::Pgbackrest => "pgbackrest",
            BackupType::Pgbasebackup => "pgbasebackup",
        })
    }
}

/// Where a backup is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum BackupPhase {
    /// Recorded; waiting for the cluster to be ready.
    #[default]
    Pending,
    /// Its job runs.
    Running,
    /// In the repository.
    Succeeded,
    Failed,
    /// `pgo delete backup` is taking it out of the repository.
    Expiring,
    /// Was in the repository, and retention or `pgo delete backup` took it
    /// out.
    Expired,
}

impl BackupPhase {
    pub fn finished(self) -> bool {
        !matches!(
            self,
            BackupPhase::Pending | BackupPhase::Running | BackupPhase::Expiring
        )
    }
}

impl std::fmt::Display for BackupPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupPhase::Pending => "Pending",
            BackupPhase::Running => "Running",
            BackupPhase::Succeeded => "Succeeded",
            BackupPhase::Failed => "Failed",
            BackupPhase::Expiring => "Expiring",
            BackupPhase::Expired => "Expired",
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PgbackupStatus {
    pub phase: BackupPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The instance it was taken from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// When its job started and ended (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// What the repository says of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<RepoBackup>,
    /// The `spec.expireRequested` last acted on, whether the expire
    /// succeeded or not: a request is tried once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_handled: Option<String>,
}

/// One backup as pgBackRest's `info` lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RepoBackup {
    pub label: String,
    /// `full`, `diff` or `incr`.
    #[serde(rename = "type")]
    pub type_: String,
    /// When the backup started and stopped (RFC 3339).
    pub start: String,
    pub stop: String,
    /// The database's size, and what the backup takes in the repository.
    pub size_bytes: u64,
    pub repo_size_bytes: u64,
    /// The WAL segments it needs.
    pub wal_start: String,
    pub wal_stop: String,
    /// The backup it depends on (diff and incr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<String>,
}

/// A repository as pgBackRest's `info` describes it: its backups, oldest
/// first, and the archived WAL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RepoInfo {
    pub backups: Vec<RepoBackup>,
    /// The oldest and newest WAL segments archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_min: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_max: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stays_inside_its_volume() {
        let v = std::path::Path::new("/v");
        assert_eq!(
            inside(v, "db-backups/2026-01-01-00-00-00").ok(),
            Some(std::path::PathBuf::from("/v/db-backups/2026-01-01-00-00-00"))
        );
        for bad in ["", "/etc", "../x", "a/../../x", "./a"] {
            assert!(inside(v, bad).is_err(), "{bad}");
        }
    }
}
