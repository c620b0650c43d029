//! Label and annotation keys pgo puts on what it creates. Both platforms use
//! them, so that `kubectl get pod -l pg-cluster=NAME` finds every member.

/// The cluster an object belongs to (the original's key).
pub const CLUSTER: &str = "pg-cluster";
/// `primary` or `replica`.
pub const ROLE: &str = "role";
/// Set on the primary when a custom configuration was used.
pub const CUSTOM_CONFIG: &str = "custom-config";
/// On a ConfigMap made by `pgo create configmap` (value `user`): one of
/// the user's, which `pgo show configmap` lists.
pub const USER_CONFIG_MAP: &str = "pgo.dev/configmap";
pub const USER_CONFIG_MAP_VALUE: &str = "user";
/// Marks objects created by the operator; nothing else is touched.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`].
pub const MANAGER: &str = "pgo";
/// Finalizer that holds a Pgcluster until its instances and services are gone.
pub const CLUSTER_FINALIZER: &str = "pgo.dev/cluster";
/// Finalizer that holds a Pgreplica until its instance is stopped and its
/// replication slot dropped.
pub const REPLICA_FINALIZER: &str = "pgo.dev/replica";
/// Annotation on a Pgreplica being deleted: remove its data too.
pub const DELETE_DATA: &str = "pgo.dev/delete-data";
/// Annotation on a Pgcluster being deleted: remove its backups (its
/// pgBackRest repository) too.
pub const DELETE_BACKUPS: &str = "pgo.dev/delete-backups";
/// On a Pgcluster, `pgo.dev/scaledown.<replica>`: that replica is leaving.
/// Written with the lowered replica count in one write, so a scaledown
/// either happens whole or not at all. The value says whether its data goes.
const SCALEDOWN_PREFIX: &str = "pgo.dev/scaledown.";
const DELETE_DATA_VALUE: &str = "delete-data";
const KEEP_DATA_VALUE: &str = "keep-data";

/// The annotation that names `replica` as leaving, and its value.
pub fn scaledown_note(replica: &str, delete_data: bool) -> (String, String) {
    let value = if delete_data {
        DELETE_DATA_VALUE
    } else {
        KEEP_DATA_VALUE
    };
    (scaledown_key(replica), value.to_string())
}

pub fn scaledown_key(replica: &str) -> String {
    format!("{SCALEDOWN_PREFIX}{replica}")
}

/// Whether a leaving replica's data goes with it, as its note records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaledown {
    KeepData,
    DeleteData,
}

impl Scaledown {
    /// A note this operator did not write is an error, never a guess: a
    /// guess could delete data the user meant to keep.
    pub fn parse(value: &str) -> Result<Scaledown, String> {
        match value {
            DELETE_DATA_VALUE => Ok(Scaledown::DeleteData),
            KEEP_DATA_VALUE => Ok(Scaledown::KeepData),
            other => Err(format!(
                "unknown scaledown note {other:?} (known: {DELETE_DATA_VALUE}, {KEEP_DATA_VALUE})"
            )),
        }
    }
}

/// The scaledowns recorded in a Pgcluster's annotations: each leaving
/// replica, and whether its data goes with it.
pub fn scaledowns(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> std::collections::BTreeMap<String, Result<Scaledown, String>> {
    annotations
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix(SCALEDOWN_PREFIX)
                .map(|r| (r.to_string(), Scaledown::parse(v)))
        })
        .collect()
}
