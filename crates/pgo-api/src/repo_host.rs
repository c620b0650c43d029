//! The pgBackRest repository host's contract (Kubernetes): the config a
//! platform hands it, and what its control endpoint takes. It keeps a
//! cluster's repository on a volume of its own, serves it to the cluster's
//! pods over pgBackRest's TLS protocol, and runs the backups, which
//! pgBackRest runs only where the repository is.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoHostConfig {
    pub cluster: String,
    pub stanza: String,
    /// The repository: a directory on the repository volume.
    pub repo_path: PathBuf,
    /// Where its config, locks and logs go (writable, not the repository).
    pub work_dir: PathBuf,
    /// pgBackRest's TLS server, which the pods reach.
    pub server_port: u16,
    /// The control endpoint (HTTPS), which backup Jobs reach.
    pub http_port: u16,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
    /// The cluster's client certificate, which both ends present.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub client_cn: String,
    /// The bearer token the control endpoint requires.
    pub token_file: PathBuf,
    /// The primary's pgBackRest server (its Service).
    pub primary_host: String,
    /// The instances' pgBackRest port, config and data directory.
    pub pg_host_port: u16,
    pub pg_config: PathBuf,
    pub pg_path: PathBuf,
    pub pg_port: u16,
    pub pg_user: String,
    pub retention_full: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_diff: Option<u32>,
}

/// `POST /backrest` on the repository host: a pgBackRest command for the
/// stanza (a backup, an expire), after which it answers with the
/// repository's `info`, as pgBackRest prints it. With `standby`, a backup
/// reads the files from that replica (its pgBackRest server's address).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoCommand {
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<String>,
}
