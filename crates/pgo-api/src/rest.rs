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
    pub pvc_name: Option<String>,
    pub metrics: bool,
    pub autofail: Option<bool>,
    pub sync_replication: bool,
    /// A `ContainerResources` entry of pgo.yaml (`--resources-config`).
    pub resources_config: Option<String>,
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
    /// Automatic failover is on for this cluster.
    pub autofail: bool,
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
