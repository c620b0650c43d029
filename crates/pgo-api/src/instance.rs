//! The instance manager's contract: the configuration a platform hands it,
//! and the report it serves on `/status`. It knows nothing of Kubernetes.

use crate::cluster::MemberRole;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How long a manager's fast shutdown may take (its checkpoint included)
/// before it turns immediate.
pub const FAST_SHUTDOWN_SECONDS: u64 = 60;
/// The most a manager's stop can take: the fast shutdown, then an
/// immediate one and SIGKILL, 5 s each. A pod's grace period must be
/// longer, or the kubelet kills a shutdown checkpoint mid-way.
pub const STOP_BUDGET_SECONDS: u64 = FAST_SHUTDOWN_SECONDS + 10;

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
    /// For a primary: commits wait for a replica, even while `sync_standbys`
    /// is empty (the only replica promoted, its replacement not made yet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synchronous: bool,
    /// OS user PostgreSQL runs as; when unset, `postgres` if started as root,
    /// else the current user.
    #[serde(default)]
    pub run_as: Option<String>,
    /// How often readiness is proved once ready, and how long each check may take.
    #[serde(default)]
    pub probe: ProbeSettings,
    /// Where a primary confirms that the store still names it (Kubernetes);
    /// unset on the local platform, where the operator itself fences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<IsolationCheck>,
    /// When set, the manager's endpoints are HTTPS with this certificate
    /// (Kubernetes, where they are reached across the pod network); plain
    /// HTTP on loopback otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ManagerTls>,
    /// The file PostgreSQL logs to. Unset, it logs where the manager does:
    /// in a pod, the container's log, since every directory the config
    /// comes from there is a read-only mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_log: Option<PathBuf>,
    /// When set, PostgreSQL takes connections from other hosts on TLS only
    /// (`hostssl`), with this certificate, and a replica verifies its
    /// primary's against the CA (`sslmode=verify-full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres_tls: Option<PostgresTls>,
    /// When set, WAL is archived with pgBackRest into this repository, and
    /// a primary makes the stanza.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backrest: Option<InstanceBackrest>,
    /// When set, a new data directory is restored from this repository
    /// instead of made by initdb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<InstanceRestore>,
    /// When set, a new data directory is copied from this pg_basebackup
    /// copy (a directory in another cluster's backup volume) instead of
    /// made by initdb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<PathBuf>,
    /// A custom configuration's postgresql.conf, pg_hba.conf and setup.sql.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<crate::custom_config::CustomFiles>,
    /// The cluster's `pgo reload` count: a new one reloads PostgreSQL.
    #[serde(default)]
    pub reloads: u64,
    /// The cluster's `pgo restart` count when this config was written; a
    /// manager reports the one it started with.
    #[serde(default)]
    pub restarts: u64,
    /// postgres_exporter beside this instance, connecting as a `pg_monitor`
    /// member the primary's manager keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter: Option<ExporterConfig>,
}

/// The metrics exporter of an instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExporterConfig {
    /// Where its `/metrics` listens.
    pub listen_address: String,
    pub port: u16,
    /// The exporter user's secret directory (`username`, `password`).
    pub secret: PathBuf,
    /// The manager runs the exporter itself; unset where a sidecar does.
    #[serde(default)]
    pub supervise: bool,
}

/// Where a new data directory is restored from, and to which moment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRestore {
    /// A restore in place, done once per id over the existing data
    /// (`--delta`); unset, a new data directory's bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub repo_path: PathBuf,
    pub stanza: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::cluster::PitrTarget>,
    /// Set where the repository is on a repository host (Kubernetes):
    /// `repo_path` is then that host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<BackrestRemote>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// An instance's pgBackRest repository and archiving.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceBackrest {
    /// The repository: a directory on the cluster's repository volume.
    pub repo_path: PathBuf,
    pub stanza: String,
    pub archive_timeout_seconds: u32,
    pub retention_full: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_diff: Option<u32>,
    /// Set where the repository is on a repository host across a network
    /// (Kubernetes): `repo_path` is then that host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<BackrestRemote>,
}

/// pgBackRest across the pod network: this instance archives to the
/// repository host over pgBackRest's TLS protocol, and serves its data
/// directory to that host (which runs the backups) the same way. Both ends
/// present the cluster's client certificate, whose CN each authorizes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackrestRemote {
    pub repo_host: String,
    pub repo_port: u16,
    /// The repository host's pgBackRest config, which the remote end reads.
    pub repo_config: PathBuf,
    pub ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub client_cn: String,
    /// This instance's pgBackRest TLS server.
    pub server_port: u16,
    pub server_cert_file: PathBuf,
    pub server_key_file: PathBuf,
}

/// PostgreSQL's server certificate, key and the CA that signs every
/// instance's (PEM files).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostgresTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub ca_file: PathBuf,
}

impl PostgresTls {
    pub fn files(&self) -> [&std::path::Path; 3] {
        [&self.cert_file, &self.key_file, &self.ca_file]
    }
}

/// The manager's server certificate and key (PEM files). They are read
/// again at a handshake after they change, so a renewed certificate is
/// served without a restart.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A primary that cannot confirm, within `bound_seconds`, that its Pgcluster
/// (read through the API server) still names it primary stops PostgreSQL:
/// fencing that works even on a node the operator cannot reach.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IsolationCheck {
    /// The API server (`https://kubernetes.default.svc`).
    pub api_server: String,
    pub namespace: String,
    /// The pod's service-account token, and the CA that signs the server.
    pub token_file: PathBuf,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub bound_seconds: u64,
}

/// The readiness probe's pace: a check slower than `timeout_ms` fails.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ProbeSettings {
    pub period_ms: u64,
    pub timeout_ms: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            period_ms: 500,
            timeout_ms: 2000,
        }
    }
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
/// minute), what changed comes in the request and wins until the file says
/// the same. Only what a failover or a scale changes can be pushed: never
/// the networks, ports, secrets or paths.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ReloadRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<ConfigChanges>,
}

/// The part of an [`InstanceConfig`] that changes while the instance runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigChanges {
    pub role: MemberRole,
    #[serde(default)]
    pub primary: Option<Upstream>,
    #[serde(default)]
    pub sync_standbys: Vec<String>,
    #[serde(default)]
    pub synchronous: bool,
    /// A custom configuration, changed by `pgo reload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<crate::custom_config::CustomFiles>,
    #[serde(default)]
    pub reloads: u64,
}

impl InstanceConfig {
    pub fn pgdata(&self) -> PathBuf {
        self.volume_dir.join("pgdata")
    }

    /// pgBackRest's files for this instance (its config, spool, locks and
    /// logs), beside PGDATA on the volume.
    pub fn backrest_dir(&self) -> PathBuf {
        self.volume_dir.join("pgbackrest")
    }

    /// pgBackRest's config for this instance; a repository host names it
    /// as the remote end's config.
    pub fn backrest_conf(&self) -> PathBuf {
        self.backrest_dir().join("pgbackrest.conf")
    }

    pub fn changes(&self) -> ConfigChanges {
        ConfigChanges {
            role: self.role,
            primary: self.primary.clone(),
            sync_standbys: self.sync_standbys.clone(),
            synchronous: self.synchronous,
            custom: self.custom.clone(),
            reloads: self.reloads,
        }
    }

    /// This config with `changes` applied.
    pub fn with(&self, changes: &ConfigChanges) -> InstanceConfig {
        InstanceConfig {
            role: changes.role,
            primary: changes.primary.clone(),
            sync_standbys: changes.sync_standbys.clone(),
            synchronous: changes.synchronous,
            custom: changes.custom.clone(),
            reloads: changes.reloads,
            ..self.clone()
        }
    }

    /// Refuses anything that would be written into PostgreSQL's config files
    /// as something other than what it says: a network that is not a CIDR, a
    /// name or host with a quote, a space or a newline in it.
    pub fn validate(&self) -> Result<(), String> {
        for cidr in &self.allowed_cidrs {
            parse_cidr(cidr).map_err(|e| format!("allowedCidrs: {e}"))?;
        }
        self.changes().validate()?;
        check_name("name", &self.name, is_instance_char)?;
        check_name("listenAddress", &self.listen_address, is_host_char)?;
        check_name("database", &self.database, is_instance_char_or_underscore)?;
        check_name("appUser", &self.app_user, is_instance_char_or_underscore)?;
        if let Some(b) = &self.backrest {
            check_name("backrest.stanza", &b.stanza, is_instance_char)?;
            // A path goes into pgbackrest.conf as a line of its own.
            let path = b.repo_path.to_string_lossy();
            if !b.repo_path.is_absolute() || path.contains(['\n', '\r']) {
                return Err(format!(
                    "backrest.repoPath: {path:?} must be an absolute path on one line"
                ));
            }
        }
        Ok(())
    }
}

impl ConfigChanges {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(up) = &self.primary {
            check_name("primary.host", &up.host, is_host_char)?;
            check_name("primary.slot", &up.slot, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
            })?;
            if up.port == 0 {
                return Err("primary.port: 0 is not a port".into());
            }
        }
        for name in &self.sync_standbys {
            check_name("syncStandbys", name, is_instance_char)?;
        }
        if let Some(c) = &self.custom {
            check_name("custom.configMap", &c.config_map, is_host_char)?;
            if let Some(conf) = &c.postgresql_conf {
                crate::custom_config::check_postgresql_conf(conf).map_err(|e| format!("custom: {e}"))?;
            }
            if let Some(hba) = &c.pg_hba_conf {
                crate::custom_config::check_pg_hba_conf(hba).map_err(|e| format!("custom: {e}"))?;
            }
        }
        Ok(())
    }
}

fn is_instance_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn is_instance_char_or_underscore(c: char) -> bool {
    is_instance_char(c) || c == '_'
}

/// Host names, IPv4 and IPv6 addresses.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_')
}

fn check_name(field: &str, value: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if value.is_empty() || value.len() > 253 {
        return Err(format!("{field}: {value:?} must be 1 to 253 characters"));
    }
    match value.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(format!(
            "{field}: {value:?} holds {c:?}, which is not allowed there"
        )),
        None => Ok(()),
    }
}

/// An address with a prefix length (`10.0.0.0/8`, `::1/128`).
pub fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR (address/prefix)"))?;
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not a CIDR: {addr:?} is not an IP address"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("{s:?} is not a CIDR: {prefix:?} is not a prefix length"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(format!("{s:?} is not a CIDR: the prefix is longer than {max}"));
    }
    Ok((addr, prefix))
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
    /// While a readiness check fails: how long ago the first failing one
    /// began (a write to frozen storage fails only at its timeout, but the
    /// instance stopped serving when it was issued). Measured on the
    /// manager's own clock when `/status` is asked, so no clock skew enters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_for_ms: Option<u64>,
    /// Set while a primary has stopped itself: it could not confirm that
    /// the store names it primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolated: Option<String>,
    /// A primary's WAL archiving, when it archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<crate::cluster::ArchiveStatus>,
    /// The `restarts` of the config this manager started with.
    pub restarts: u64,
    /// Settings changed in the config files that take effect only when
    /// PostgreSQL restarts (`pg_settings.pending_restart`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// Of those, the ones the files lower that a replica must have at
    /// least as high as its primary (`max_connections`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_lower: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> InstanceConfig {
        serde_json::from_value(serde_json::json!({
            "name": "db-a1b2", "cluster": "db", "role": "Replica", "volumeDir": "/v",
            "listenAddress": "127.0.0.1", "port": 5432, "httpAddress": "127.0.0.1", "httpPort": 8008,
            "allowedCidrs": ["127.0.0.1/32", "::/0"], "database": "userdb", "appUser": "testuser",
            "superuserSecret": "/s", "replicationSecret": "/r", "appSecret": "/a", "tokenFile": "/t",
            "primary": {"host": "db.ns.svc", "port": 5432, "slot": "db_a1b2"},
            "syncStandbys": []
        }))
        .unwrap()
    }

    #[test]
    fn what_would_escape_into_config_files_is_refused() {
        assert_eq!(config().validate(), Ok(()));
        type Change = fn(&mut InstanceConfig);
        let cases: [(&str, Change); 6] = [
            ("allowedCidrs", |c| {
                c.allowed_cidrs = vec!["127.0.0.1/32\nhost all all 0.0.0.0/0 trust".into()]
            }),
            ("allowedCidrs", |c| c.allowed_cidrs = vec!["10.0.0.0/33".into()]),
            ("allowedCidrs", |c| c.allowed_cidrs = vec!["all".into()]),
            ("syncStandbys", |c| c.sync_standbys = vec!["a\"b".into()]),
            ("primary.host", |c| {
                c.primary.as_mut().unwrap().host = "h user=postgres".into()
            }),
            ("primary.slot", |c| {
                c.primary.as_mut().unwrap().slot = "s'; x".into()
            }),
        ];
        for (field, change) in cases {
            let mut c = config();
            change(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn a_reload_request_carries_only_the_changes() {
        let err = serde_json::from_str::<ReloadRequest>(r#"{"config": {"allowedCidrs": ["0.0.0.0/0"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
        let err = serde_json::from_str::<ReloadRequest>(
            r#"{"changes": {"role": "Replica", "allowedCidrs": ["0.0.0.0/0"]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field"), "{err}");
        let c = config();
        let mut changes = c.changes();
        changes.sync_standbys = vec!["db-x".into()];
        let applied = c.with(&changes);
        assert_eq!(applied.sync_standbys, ["db-x"]);
        assert_eq!(applied.allowed_cidrs, c.allowed_cidrs);
    }
}
