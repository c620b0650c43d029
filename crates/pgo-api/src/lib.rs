//! The resource types of pgo (the six custom resources of the spec), the REST
//! request and response bodies, and the `pgo.yaml` configuration.
//!
//! Nothing here does I/O: the same types serve the embedded store of the local
//! platform and the Kubernetes API, so they are derived with kube-derive.

pub mod backup;
pub mod cluster;
pub mod config;
pub mod crd;
pub mod custom_config;
pub mod exporter;
pub mod instance;
pub mod job;
pub mod labels;
pub mod policy;
pub mod replica;
pub mod repo_host;
pub mod rest;
pub mod task;
pub mod upgrade;

pub use backup::{Pgbackup, PgbackupSpec, PgbackupStatus};
pub use cluster::{
    ClusterPhase, FailoverRecord, MemberRole, MemberStatus, Pgcluster, PgclusterSpec, PgclusterStatus,
    ServiceStatus, StorageSpec,
};
pub use policy::{Pgpolicy, PgpolicySpec, PgpolicyStatus};
pub use replica::{Pgreplica, PgreplicaSpec, PgreplicaStatus};
pub use task::{Pgtask, PgtaskSpec, PgtaskStatus};
pub use upgrade::{Pgupgrade, PgupgradeSpec, PgupgradeStatus};

/// The API group of every pgo resource.
pub const GROUP: &str = "pgo.dev";
/// The one served version of that group.
pub const VERSION: &str = "v1";
