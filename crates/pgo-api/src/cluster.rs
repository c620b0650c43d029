//! `Pgcluster`: one PostgreSQL cluster, a primary and its replicas.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the user asked for. Fields default so that an object written by an
/// older pgo, or by hand with `kubectl`, still reads.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "pgo.dev",
    version = "v1",
    kind = "Pgcluster",
    plural = "pgclusters",
    namespaced,
    status = "PgclusterStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Primary","type":"string","jsonPath":".status.primary"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // What the API server refuses before pgo sees it (a Pgcluster written
    // by hand); pgo checks the same on create. Every field may be left out
    // (it then takes its default), so each rule asks `has` first.
    validation = Rule::new("!has(self.spec.port) || self.spec.port > 0").message("spec.port must be a port, 1 to 65535"),
    validation = Rule::new("!has(self.spec.primaryStorage) || !has(self.spec.primaryStorage.size) || self.spec.primaryStorage.size.matches('^[0-9]+(K|M|G|T|Ki|Mi|Gi|Ti)?$')")
        .message("spec.primaryStorage.size is a Kubernetes quantity such as 1G or 500Mi"),
    validation = Rule::new("!has(self.spec.replicaStorage) || !has(self.spec.replicaStorage.size) || self.spec.replicaStorage.size.matches('^[0-9]+(K|M|G|T|Ki|Mi|Gi|Ti)?$')")
        .message("spec.replicaStorage.size is a Kubernetes quantity such as 1G or 500Mi"),
    validation = Rule::new("has(self.spec.strategy) == has(oldSelf.spec.strategy) && (!has(self.spec.strategy) || self.spec.strategy == oldSelf.spec.strategy) && has(self.spec.database) == has(oldSelf.spec.database) && (!has(self.spec.database) || self.spec.database == oldSelf.spec.database) && has(self.spec.user) == has(oldSelf.spec.user) && (!has(self.spec.user) || self.spec.user == oldSelf.spec.user) && has(self.spec.port) == has(oldSelf.spec.port) && (!has(self.spec.port) || self.spec.port == oldSelf.spec.port)")
        .message("strategy, database, user and port cannot change after the cluster is created")
)]
#[serde(rename_all = "camelCase", default)]
pub struct PgclusterSpec {
    /// Replicas to create with the cluster; `pgo scale` adds Pgreplicas later.
    pub replicas: u32,
    /// PostgreSQL port inside each instance (Kubernetes); the local platform
    /// assigns loopback ports and reports them in the status.
    pub port: u16,
    /// Deployment strategy: the template set under `templates/cluster/<strategy>`.
    pub strategy: String,
    /// Database created for the application user.
    pub database: String,
    /// Application user, owner of `database`.
    pub user: String,
    /// Storage of the primary's volume.
    pub primary_storage: StorageSpec,
    /// Storage of each replica's volume.
    pub replica_storage: StorageSpec,
    /// Storage of the backup volumes (the pgBackRest repository and
    /// pg_basebackup copies); unset, the primary's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_storage: Option<StorageSpec>,
    /// A shared volume (`CLUSTER.PVC_NAME`): when set no volume is created for
    /// the primary and this one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pvc_name: Option<String>,
    /// Preferred node for the primary (`--node-name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Name of a custom configuration (`--custom-config`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_config: Option<String>,
    /// The files of that custom configuration as the cluster took them (at
    /// create, and at each `pgo reload`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_config_files: Option<crate::custom_config::CustomFiles>,
    /// Counts `pgo reload`s: each one makes every instance read its
    /// configuration again.
    #[serde(skip_serializing_if = "is_zero")]
    pub reloads: u64,
    /// Counts `pgo restart`s: an instance started before the latest one is
    /// outdated, and restarted by the rolling update (replicas first, then
    /// a switchover).
    #[serde(skip_serializing_if = "is_zero")]
    pub restarts: u64,
    /// Run a metrics exporter beside each instance (`--metrics`).
    pub metrics: bool,
    /// Automatic failover for this cluster (`--autofail`).
    pub autofail: bool,
    /// Synchronous replication to at least one replica (`--sync-replication`).
    pub sync_replication: bool,
    /// Labels the user asked to be put on every object of the cluster.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_labels: BTreeMap<String, String>,
    /// CPU and memory of each PostgreSQL container (`--resources-config`);
    /// unset, [`Resources::guaranteed_default`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// pgBackRest: WAL archiving into the cluster's repository and backups
    /// from it (`--pgbackrest`); unset, neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backrest: Option<BackrestSpec>,
    /// Made from another cluster's pgBackRest repository rather than by
    /// initdb (`--restore-from`), up to a moment when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,
    /// Made from a pg_basebackup copy rather than by initdb
    /// (`--backup-pvc`, `--backup-path`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<CopyFrom>,
    /// The cluster whose users' passwords this one's users take
    /// (`--secret-from`; a restore takes its source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<String>,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl PgclusterSpec {
    /// Where backups go: `backup_storage`, else the primary's storage.
    pub fn backups_storage(&self) -> StorageSpec {
        self.backup_storage
            .clone()
            .unwrap_or_else(|| self.primary_storage.clone())
    }
}

/// A pg_basebackup copy a cluster's first data comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CopyFrom {
    /// The backup volume (`<cluster>-backup`).
    pub volume: String,
    /// The copy's path in it (`<cluster>-backups/<timestamp>`).
    pub path: String,
}

/// Where a cluster's first data comes from, and how far its WAL is replayed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreFrom {
    /// The cluster whose repository holds the backups (it may be gone).
    pub cluster: String,
    /// Unset: replay every archived WAL segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<PitrTarget>,
    /// pgBackRest restore options (`--set=LABEL`), one per item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A point-in-time recovery target, as PostgreSQL's `recovery_target_*`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PitrTarget {
    #[serde(rename = "type")]
    pub type_: PitrType,
    /// The moment (RFC 3339), LSN, transaction id or restore point name;
    /// empty for `immediate`.
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PitrType {
    #[default]
    Time,
    Lsn,
    Xid,
    Name,
    /// The end of the backup: the earliest consistent moment.
    Immediate,
}

impl PitrType {
    pub fn parse(s: &str) -> Option<PitrType> {
        Some(match s {
            "time" => PitrType::Time,
            "lsn" => PitrType::Lsn,
            "xid" => PitrType::Xid,
            "name" => PitrType::Name,
            "immediate" => PitrType::Immediate,
            _ => return None,
        })
    }

    /// pgBackRest's `--type`.
    pub fn as_str(self) -> &'static str {
        match self {
            PitrType::Time => "time",
            PitrType::Lsn => "lsn",
            PitrType::Xid => "xid",
            PitrType::Name => "name",
            PitrType::Immediate => "immediate",
        }
    }
}

/// How a cluster archives WAL and keeps backups with pgBackRest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct BackrestSpec {
    /// A WAL segment is archived at least this often while anything is
    /// written (`Cluster.ArchiveTimeout`): the most a restore can miss.
    pub archive_timeout_seconds: u32,
    /// Full backups kept; older ones expire with what depends on them.
    pub retention_full: u32,
    /// Differential backups kept, when bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_diff: Option<u32>,
}

/// Requests and limits of a PostgreSQL container, as Kubernetes spells them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Resources {
    pub requests: Amounts,
    pub limits: Amounts,
}

/// CPU and memory, as Kubernetes quantities (`500m`, `1Gi`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Amounts {
    #[schemars(length(max = 32))]
    pub cpu: String,
    #[schemars(length(max = 32))]
    pub memory: String,
}

impl Resources {
    /// What a cluster gets when nothing is configured: requests equal to
    /// limits, so its pods are of the Guaranteed QoS class, the last a
    /// node under memory pressure evicts.
    pub fn guaranteed_default() -> Resources {
        let amounts = Amounts {
            cpu: "500m".into(),
            memory: "512Mi".into(),
        };
        Resources {
            requests: amounts.clone(),
            limits: amounts,
        }
    }
}

/// Size and class of a volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageSpec {
    /// Requested size, in Kubernetes quantity form (`1G`). Bounded, so the
    /// API server's CEL cost estimate of the rule that checks it is too.
    #[schemars(length(max = 32))]
    pub size: String,
    /// Storage class; empty means the cluster's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Access mode (`ReadWriteOnce` unless told otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
    /// Kubernetes: the pods' fsGroup, from the storage config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<u32>,
    /// Kubernetes: the pods' supplemental groups (an NFS export's group).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<u32>,
    /// Local platform: the directory the volume is made in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub path: Option<String>,
    /// The pgo.yaml storage config it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub config: Option<String>,
}

impl StorageSpec {
    /// As a data volume's storage: one node at a time. 3.4's NFS configs
    /// say ReadWriteMany, which would let a second pod (a stuck one's
    /// replacement on another node) start a second postmaster on the same
    /// data; such a config makes ReadWriteOnce data volumes, and keeps its
    /// mode for backup volumes.
    pub fn for_data(mut self) -> StorageSpec {
        if matches!(
            self.access_mode.as_deref(),
            Some("ReadWriteMany" | "ReadOnlyMany")
        ) {
            self.access_mode = Some("ReadWriteOnce".into());
        }
        self
    }
}

/// Where the cluster is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ClusterPhase {
    /// Accepted, instances not ready yet.
    #[default]
    Creating,
    /// The primary accepts connections.
    Ready,
    /// Was ready and is not any more (the primary is down or not reachable).
    NotReady,
    /// Cannot proceed without a change from the user; `message` says why.
    Failed,
    /// Being deleted.
    Deleting,
}

impl ClusterPhase {
    pub const ALL: [ClusterPhase; 5] = [
        ClusterPhase::Creating,
        ClusterPhase::Ready,
        ClusterPhase::NotReady,
        ClusterPhase::Failed,
        ClusterPhase::Deleting,
    ];
}

impl std::fmt::Display for ClusterPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ClusterPhase::Creating => "Creating",
            ClusterPhase::Ready => "Ready",
            ClusterPhase::NotReady => "NotReady",
            ClusterPhase::Failed => "Failed",
            ClusterPhase::Deleting => "Deleting",
        };
        f.write_str(s)
    }
}

/// What the operator observed, written through the status subresource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PgclusterStatus {
    pub phase: ClusterPhase,
    /// Why the phase is what it is, when that needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Name of the instance that is the primary. The store, not the instances,
    /// is the authority on this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    pub members: Vec<MemberStatus>,
    pub services: Vec<ServiceStatus>,
    /// Since when the primary has been not ready (the auto failover timer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready_since: Option<String>,
    /// The last failovers, newest last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failovers: Vec<FailoverRecord>,
    /// The last restores in place, newest last.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<RestoreRecord>,
    /// The spec generation this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, as Kubernetes tools read them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The kinds of condition a cluster reports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ConditionType {
    /// The primary accepts connections.
    #[default]
    Ready,
    /// Something is being made or changed: a create, a failover, a
    /// scaledown, replicas starting, a deletion.
    Progressing,
    /// Less than asked for: a replica not ready, no replica for synchronous
    /// replication, the primary down, or the cluster failed.
    Degraded,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

/// A condition, in the shape of Kubernetes' `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    /// Why, in one CamelCase word.
    pub reason: String,
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The role of an instance in its cluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum MemberRole {
    #[default]
    Primary,
    Replica,
}

impl std::fmt::Display for MemberRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberRole::Primary => "primary",
            MemberRole::Replica => "replica",
        })
    }
}

/// One instance of the cluster as last observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MemberStatus {
    pub name: String,
    pub role: MemberRole,
    pub ready: bool,
    pub node: String,
    pub host: String,
    pub port: u16,
    /// Timeline and WAL position as the instance reported them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_lsn: Option<String>,
    /// For a replica: WAL received and flushed to its disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_lsn: Option<String>,
    /// How far a replica's replay is behind the primary's WAL, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// Why the member is not ready, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Its pod runs a template older than the operator's (a new instance
    /// image, say): a rolling update restarts it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outdated: bool,
    /// A primary's WAL archiving, from `pg_stat_archiver`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStatus>,
    /// Settings changed by a reload that wait for a restart (`pgo restart`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// Of those, settings lowered that a replica may not have above its
    /// primary's: the primary restarts first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_lower: Vec<String>,
    /// The cluster's `pgo restart` count when it last started.
    #[serde(skip_serializing_if = "is_zero")]
    pub restarts: u64,
    /// Its metrics exporter's endpoint (`http://host:port/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// How WAL archiving goes on a primary (`pg_stat_archiver`), and whether
/// its pgBackRest stanza is usable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ArchiveStatus {
    pub archived_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_archived_wal: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_archived_time: Option<String>,
    pub failed_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failed_wal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failed_time: Option<String>,
    /// Why the repository cannot take WAL or backups yet (its stanza could
    /// not be made), when that is so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_error: Option<String>,
    /// The stanza is made: the repository takes backups.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stanza_ready: bool,
}

impl ArchiveStatus {
    /// Failing now: the last attempt failed, and none succeeded after it.
    pub fn failing(&self) -> bool {
        self.repository_error.is_some()
            || match (&self.last_failed_time, &self.last_archived_time) {
                (Some(failed), Some(archived)) => failed > archived,
                (Some(_), None) => true,
                _ => false,
            }
    }
}

/// One failover, as `pgo show cluster` reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverRecord {
    /// When it began (RFC 3339).
    pub at: String,
    pub from: String,
    pub to: String,
    /// `manual` or `auto`, and why.
    pub reason: String,
    /// From the decision to the new primary serving.
    pub duration_ms: u64,
    /// `succeeded`, or `failed: <why>`.
    pub outcome: String,
}

/// One restore in place, as `pgo show cluster` reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreRecord {
    /// When it began and ended (RFC 3339).
    pub started: String,
    pub finished: String,
    /// What it restored to.
    pub target: String,
}

/// A stable endpoint of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceStatus {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Instances new connections go to.
    pub targets: Vec<String>,
}
