//! The instance manager's contract: the configuration a platform hands it,
//! and the report it serves on `/status`. It knows nothing of Kubernetes.

use crate::cluster::MemberRole;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything an instance manager needs to bootstrap and run one PostgreSQL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceConfig {
    pub name: String,
    pub cluster: String,
    pub role: MemberRole,
    /// The volume; PostgreSQL's data directory is `pgdata` inside it.
    pub volume_dir: PathBuf,
    /// Where PostgreSQL listens.
    pub listen_address: String,
    pub port: u16,
    /// Where the manager's HTTP endpoints listen.
    pub http_address: String,
    pub http_port: u16,
    /// Networks allowed to connect (pg_hba.conf), every one with a password.
    pub allowed_cidrs: Vec<String>,
    pub database: String,
    pub app_user: String,
    /// Secret directories holding `username` and `password` files.
    pub superuser_secret: PathBuf,
    pub replication_secret: PathBuf,
    pub app_secret: PathBuf,
    /// File with the bearer token the control endpoints require.
    pub token_file: PathBuf,
    /// Directory of the PostgreSQL binaries; found on the machine when unset.
    #[serde(default)]
    pub pg_bin_dir: Option<PathBuf>,
    /// For a replica: the primary it streams from, and its own slot there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Upstream>,
    /// For a primary: the replicas a commit may wait for (synchronous
    /// replication, `ANY 1`); empty for asynchronous replication.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_standbys: Vec<String>,
    /// OS user PostgreSQL runs as; when unset, `postgres` if started as root,
    /// else the current user.
    #[serde(default)]
    pub run_as: Option<String>,
}

/// Where a replica streams from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    /// The physical replication slot this replica uses on the primary.
    pub slot: String,
}

/// `POST /control/create-slot` and `/control/drop-slot` on a primary's
/// instance manager: a replica's physical replication slot.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SlotRequest {
    pub slot: String,
}

/// `POST /control/reload`: re-read the config; where the platform cannot
/// rewrite the file at once (a ConfigMap is synced by the kubelet within a
/// minute), the new config comes in the request and wins until the file
/// says the same.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ReloadRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<InstanceConfig>,
}

impl InstanceConfig {
    pub fn pgdata(&self) -> PathBuf {
        self.volume_dir.join("pgdata")
    }
}

/// What `/status` answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceReport {
    pub name: String,
    /// The manager's own process.
    pub manager_pid: u32,
    /// PostgreSQL's postmaster, when running.
    pub postmaster_pid: Option<u32>,
    /// The role PostgreSQL is in (`pg_is_in_recovery`), when it answers.
    pub role: Option<MemberRole>,
    /// Accepting connections and bootstrapped.
    pub ready: bool,
    pub timeline: Option<u32>,
    /// The primary's current WAL position, or a replica's replay position.
    pub wal_lsn: Option<String>,
    /// A replica's received (and flushed) WAL position.
    pub received_lsn: Option<String>,
    /// Why it is not ready.
    pub message: Option<String>,
    /// Set when the instance cannot start without a change from the user.
    pub fatal: Option<String>,
}
