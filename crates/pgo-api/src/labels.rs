//! Label and annotation keys pgo puts on what it creates. Both platforms use
//! them, so that `kubectl get pod -l pg-cluster=NAME` finds every member.

/// The cluster an object belongs to (the original's key).
pub const CLUSTER: &str = "pg-cluster";
/// `primary` or `replica`.
pub const ROLE: &str = "role";
/// Set on the primary when a custom configuration was used.
pub const CUSTOM_CONFIG: &str = "custom-config";
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
/// On a Pgcluster, `pgo.dev/scaledown.<replica>`: that replica is leaving.
/// Written with the lowered replica count in one write, so a scaledown
/// either happens whole or not at all. The value is [`DELETE_DATA_VALUE`]
/// or [`KEEP_DATA_VALUE`].
pub const SCALEDOWN_PREFIX: &str = "pgo.dev/scaledown.";
pub const DELETE_DATA_VALUE: &str = "delete-data";
pub const KEEP_DATA_VALUE: &str = "keep-data";
