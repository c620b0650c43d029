//! Bodies of the apiserver's REST API, shared by the apiserver and `pgo`.

use crate::cluster::{ClusterPhase, FailoverRecord, MemberStatus, ServiceStatus};
use serde::{Deserialize, Serialize};

/// `POST /clusters`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CreateClusterRequest {
    pub name: String,
    /// Replicas to create; `None` takes `Cluster.ReplicaCount` from pgo.yaml.
    pub replica_count: Option<u32>,
    pub node_name: Option<String>,
    pub custom_config: Option<String>,
    pub storage_size: Option<String>,
    /// A pgo.yaml storage config for the primary's volume (3.4's
    /// `--storage-config`); unset, `PrimaryStorage`.
    pub storage_config: Option<String>,
    /// One for the replicas' volumes; unset, `ReplicaStorage`, else the
    /// primary's.
    pub replica_storage_config: Option<String>,
    pub pvc_name: Option<String>,
    pub metrics: bool,
    pub autofail: Option<bool>,
    pub sync_replication: bool,
    /// A `ContainerResources` entry of pgo.yaml (`--resources-config`).
    pub resources_config: Option<String>,
    /// pgBackRest archiving and backups; `None` takes `Cluster.Backrest`.
    pub pgbackrest: Option<bool>,
    /// Restore from this cluster's pgBackRest repository (`--restore-from`).
    pub restore_from: Option<String>,
    /// With `restore_from`: how far to replay (`--pitr-target`, `--pitr-type`).
    pub pitr_target: Option<String>,
    pub pitr_type: Option<String>,
    /// With `restore_from`: pgBackRest restore options (`--backup-opts`).
    pub backup_opts: Option<String>,
    /// Start from a pg_basebackup copy: its volume and path
    /// (`--backup-pvc`, `--backup-path`).
    pub backup_pvc: Option<String>,
    pub backup_path: Option<String>,
    /// Take this cluster's users' passwords (`--secret-from`).
    pub secret_from: Option<String>,
}

/// A cluster as `pgo show cluster` presents it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterView {
    pub name: String,
    pub phase: ClusterPhase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    pub replicas: u32,
    pub database: String,
    pub user: String,
    pub created: String,
    pub members: Vec<MemberStatus>,
    pub services: Vec<ServiceStatus>,
    /// The last failovers, newest last.
    pub failovers: Vec<FailoverRecord>,
    /// The last restores in place, newest last.
    pub restores: Vec<crate::cluster::RestoreRecord>,
    /// Automatic failover is on for this cluster.
    pub autofail: bool,
    /// WAL is archived to the cluster's pgBackRest repository, and backups
    /// go there.
    pub backrest: bool,
    /// The cluster's labels (pgo's, the custom configuration's, the user's).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The custom configuration it took, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_config: Option<String>,
    /// `pgo restart`s asked for; a member whose `restarts` is lower has
    /// not restarted since the latest.
    #[serde(skip_serializing_if = "crate::cluster::is_zero")]
    pub restarts: u64,
    /// Only with `--show-secrets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SecretView>>,
}

/// Credentials of one database user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretView {
    pub username: String,
    pub password: String,
}

/// `DELETE /clusters/{name}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DeleteClusterResponse {
    pub name: String,
    pub message: String,
}

/// `GET /version`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VersionResponse {
    pub version: String,
    pub platform: String,
    pub api_group: String,
}

/// `GET /status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct StatusResponse {
    pub platform: String,
    pub nodes: Vec<String>,
    pub clusters: usize,
    pub clusters_ready: usize,
    pub instances: usize,
    pub instances_ready: usize,
    pub volumes: Vec<VolumeView>,
    /// Recorded tasks other than failovers (data removals), with their outcome.
    pub tasks: Vec<TaskView>,
    /// Clusters and instances that are not ready, and tasks that failed, with
    /// the reason when known.
    pub not_ready: Vec<String>,
}

/// A recorded task and how it went.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskView {
    pub name: String,
    pub task_type: String,
    pub cluster: String,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    pub message: Option<String>,
}

/// A volume the platform holds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeView {
    pub name: String,
    pub cluster: String,
    pub path: String,
}

/// `POST /clusters/{name}/scale`: adds replicas (as the original did).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ScaleRequest {
    pub replica_count: u32,
    /// A pgo.yaml storage config for the new replicas' volumes.
    pub storage_config: Option<String>,
    /// A pgo.yaml ContainerResources entry for the cluster from now on:
    /// every member takes it, one at a time (the rolling update).
    pub resources_config: Option<String>,
}

/// `POST /clusters/{name}/scaledown`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ScaledownRequest {
    pub target: String,
    pub delete_data: bool,
}

/// `GET /clusters/{name}/test`: can each endpoint be connected to?
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TestResponse {
    pub cluster: String,
    pub results: Vec<EndpointTest>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointTest {
    pub name: String,
    /// `service` or `instance`.
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /clusters/{name}/df`: how full each volume is.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DfResponse {
    pub cluster: String,
    pub volumes: Vec<VolumeUsage>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeUsage {
    pub name: String,
    /// The instance using it.
    pub instance: String,
    pub path: String,
    /// Bytes the volume's files take.
    pub used_bytes: u64,
    /// Bytes free on the filesystem holding it, and its size.
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// `POST /clusters/{name}/failover`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FailoverRequest {
    pub target: String,
    /// Make a new replica for the promoted one (`Cluster.AutofailReplaceReplica`
    /// from pgo.yaml when unset).
    pub replace_replica: Option<bool>,
}

/// The failover task that was started, and later its outcome.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FailoverView {
    pub task: String,
    pub cluster: String,
    pub target: String,
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every error the apiserver answers with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ErrorBody {
    pub error: String,
}

/// `POST /clusters/{name}/restore`: `pgo restore NAME`, in place, or into
/// a new volume with `to_pvc`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RestoreRequest {
    pub pitr_target: Option<String>,
    pub pitr_type: Option<String>,
    /// pgBackRest restore options (`--set=LABEL`).
    pub backup_opts: Option<String>,
    /// Restore into this new volume, leaving the cluster as it is
    /// (`--to-pvc`).
    pub to_pvc: Option<String>,
}

/// What `POST /clusters/{name}/restore` started.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreResponse {
    pub name: String,
    pub message: String,
    /// The task that records a restore into a volume, as `pgo status`
    /// lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// `POST /backups`: `pgo backup NAME`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CreateBackupRequest {
    pub cluster_name: String,
    /// `pgbackrest` (the default) or `pgbasebackup`.
    pub backup_type: Option<String>,
    /// pgBackRest options, as one string (`--type=diff`).
    pub backup_opts: String,
    /// Take it from a ready replica (`--backup-standby`).
    pub standby: bool,
}

/// A backup as `pgo show backup` presents it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupView {
    pub name: String,
    pub cluster: String,
    pub backup_type: String,
    pub backup_opts: Vec<String>,
    /// When `pgo delete backup` asked for it to be expired (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_requested: Option<String>,
    /// Its phase, where it was taken from, when, and what the repository
    /// holds of it: the Pgbackup's status, as stored.
    #[serde(flatten)]
    pub status: crate::backup::PgbackupStatus,
}

/// `GET /pvcs?name=NAME|all`: volumes, as 3.4's `pgo show pvc`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PvcView {
    pub name: String,
    pub cluster: String,
    /// `data`, `pgbackrest` (a repository) or `pgbasebackup` (copies).
    pub holds: String,
    /// A directory (local) or the claim's name (Kubernetes).
    pub location: String,
    /// Bytes its files take, where the platform can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    /// For a volume of copies: the path of each whole copy, to give to
    /// `pgo create cluster --backup-path`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<String>,
}

/// `DELETE /backups?cluster=NAME&target=LABEL`: the backup being expired,
/// and the labels of the backups that go with it (those that depend on it).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ExpireResponse {
    pub backup: BackupView,
    pub with: Vec<String>,
}

/// `GET /backups?cluster=NAME`: a cluster's backups, oldest first, and the
/// moments a restore can reach with them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupsResponse {
    pub cluster: String,
    pub backups: Vec<BackupView>,
    /// From the end of the oldest backup in the repository (RFC 3339)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_restore: Option<String>,
    /// …to the last WAL archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_restore: Option<String>,
    /// The repository's size on its volume, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository_bytes: Option<u64>,
}

/// `POST /schedules`: `pgo create schedule CLUSTER`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CreateScheduleRequest {
    pub cluster_name: String,
    /// A cron pattern, evaluated in UTC (`0 1 * * *`).
    pub schedule: String,
    /// `pgbackrest` (the default) or `pgbasebackup`.
    pub schedule_type: Option<String>,
    /// `full` (the default), `diff` or `incr`.
    pub pgbackrest_backup_type: Option<String>,
    /// Unset: `<cluster>-pgbackrest-<backup type>`, as 3.4 named them.
    pub schedule_name: Option<String>,
}

/// A schedule as `pgo show schedule` presents it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ScheduleView {
    pub name: String,
    pub cluster: String,
    pub schedule: String,
    pub schedule_type: String,
    pub backup_type: String,
    /// The occurrence it last ran (or when it was made, before its first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /configmaps`: `pgo create configmap NAME --from-file=…`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CreateConfigMapRequest {
    pub name: String,
    /// Each file by its key (the file's name, as kubectl names them).
    pub data: std::collections::BTreeMap<String, String>,
    /// Replace the content of one that exists.
    pub overwrite: bool,
}

/// A ConfigMap as `pgo show configmap` presents it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigMapView {
    pub name: String,
    pub data: std::collections::BTreeMap<String, String>,
    /// The clusters that took it as their custom configuration.
    pub used_by: Vec<String>,
}

/// `POST /reload`: `pgo reload NAME…|--selector=…`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ReloadRequest {
    pub clusters: Vec<String>,
    /// `key=value[,key=value]`: every cluster whose labels hold them all.
    pub selector: Option<String>,
}

/// What a reload did to each cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ReloadResponse {
    pub results: Vec<ReloadResult>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ReloadResult {
    pub cluster: String,
    /// The ConfigMap it took again, if it has a custom configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// What changed, and what the user should know (settings pgo keeps,
    /// trust lines).
    pub messages: Vec<String>,
}
