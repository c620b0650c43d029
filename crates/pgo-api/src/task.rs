//! `Pgtask`: a unit of work the operator carries out and records, such as
//! removing a volume's data (rmdata) or a failover, so that it survives an
//! operator restart.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[kube(
    group = "pgo.dev",
    version = "v1",
    kind = "Pgtask",
    plural = "pgtasks",
    namespaced,
    status = "PgtaskStatus",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.taskType"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"string","jsonPath":".status.step"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct PgtaskSpec {
    pub cluster_name: String,
    /// `rmdata`, `failover`, …
    pub task_type: String,
    pub parameters: BTreeMap<String, String>,
}

/// The task type of a failover.
pub const FAILOVER: &str = "failover";
/// The task type of a backup schedule.
pub const SCHEDULE: &str = "schedule";
/// The task type of a restore in place.
pub const RESTORE: &str = "restore";
/// The task type of a restore into a new volume (`pgo restore --to-pvc`).
pub const RESTORE_TO_PVC: &str = "restore-to-pvc";
/// The task type that removes a volume and its data.
pub const RMDATA: &str = "rmdata";
/// The parameter of an rmdata or restore-to-pvc task naming the volume.
pub const VOLUME: &str = "volume";

/// The phases of a task (`status.phase`): one that runs to an end
/// (rmdata, restore-to-pvc) ends `Succeeded` or `Failed`; a schedule stays
/// `Running`.
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PgtaskStatus {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: String,
    /// Where a multi-step task is (a failover: `fence`, `promote`, `repoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it started and ended (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// A schedule: the occurrence it last ran (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
}

impl PgtaskStatus {
    /// Whether the task ran to its end, well or not.
    pub fn finished(&self) -> bool {
        self.phase == SUCCEEDED || self.phase == FAILED
    }
}
