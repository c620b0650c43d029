//! How the objects of a cluster are named, as the original named them.

/// The primary service carries the cluster's name.
pub fn primary_service(cluster: &str) -> String {
    cluster.to_string()
}

/// The replica service: `<cluster>-replica`.
pub fn replica_service(cluster: &str) -> String {
    format!("{cluster}-replica")
}

/// The primary's volume, unless a shared one (`CLUSTER.PVC_NAME`) is named.
pub fn primary_volume(cluster: &str) -> String {
    cluster.to_string()
}

/// The first primary instance is named after the cluster.
pub fn initial_primary(cluster: &str) -> String {
    cluster.to_string()
}

/// Secret holding the credentials of `user` in `cluster`.
pub fn secret(cluster: &str, user: &str) -> String {
    format!("{cluster}-{user}-secret")
}

/// The database superuser.
pub const SUPERUSER: &str = "postgres";
/// The user replicas stream as.
pub const REPLICATION_USER: &str = "primaryuser";

/// A replica: `<cluster>-<suffix>`, the suffix random and kept for life.
pub fn replica(cluster: &str, suffix: &str) -> String {
    format!("{cluster}-{suffix}")
}

/// A replica's physical replication slot on the primary (slot names allow
/// only lowercase letters, digits and underscores).
pub fn replication_slot(replica: &str) -> String {
    replica.replace('-', "_")
}

/// The volume an instance uses: the first primary's is the cluster's (or the
/// shared one named by `CLUSTER.PVC_NAME`); every other instance's carries
/// its own name.
pub fn volume_of(cluster: &str, pvc_name: Option<&str>, instance: &str) -> String {
    if instance == initial_primary(cluster) {
        pvc_name.map_or_else(|| primary_volume(cluster), str::to_string)
    } else {
        instance.to_string()
    }
}

/// The one failover task a cluster can have at a time: a second request
/// finds the name taken.
pub fn failover_task(cluster: &str) -> String {
    format!("{cluster}-failover")
}

/// The Pgtask that removes `volume` and its data.
pub fn rmdata_task(volume: &str) -> String {
    format!("{volume}-rmdata")
}
