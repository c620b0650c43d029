//! What the platform reports of a cluster's instances and services: the
//! observations a plan is computed from.

use pgo_api::cluster::MemberRole;

/// What was last seen of one instance.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct InstanceObservation {
    pub name: String,
    /// The instance's process (pod) exists.
    pub running: bool,
    pub ready: bool,
    /// The role PostgreSQL reports itself in.
    pub role: Option<MemberRole>,
    pub node: String,
    /// Where PostgreSQL can be reached directly.
    pub host: String,
    pub port: u16,
    pub timeline: Option<u32>,
    pub wal_lsn: Option<String>,
    pub received_lsn: Option<String>,
    pub message: Option<String>,
    /// The instance cannot start without a change from the user.
    pub fatal: Option<String>,
    /// While not ready: how long its failing readiness check has been failing.
    pub failing_for_ms: Option<u64>,
    /// It runs from a pod template other than the one the operator makes
    /// now (a new instance image, a changed template): a rolling update
    /// restarts it, never an apply.
    pub outdated: bool,
    /// A primary's WAL archiving, when it archives.
    pub archive: Option<pgo_api::cluster::ArchiveStatus>,
    /// Settings that wait for a restart to take effect.
    pub pending_restart: Vec<String>,
    /// Of those, hot-standby settings the files lower.
    pub pending_lower: Vec<String>,
    /// The cluster's `pgo restart` count when this instance last started.
    pub restarts: u64,
    /// Where its metrics exporter serves (`http://host:port/metrics`).
    pub metrics: Option<String>,
}

/// Where a service accepts connections.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}
