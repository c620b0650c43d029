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
/// The user the metrics exporter connects as: a member of `pg_monitor`
/// and nothing more.
pub const EXPORTER_USER: &str = "pgo_exporter";

/// The exporter user's secret (a Secret's name takes no '_').
pub fn exporter_secret(cluster: &str) -> String {
    secret(cluster, "exporter")
}

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

/// The volume of a cluster's pgBackRest repository. It outlives the
/// cluster unless its backups are deleted with it.
pub fn backrest_repo_volume(cluster: &str) -> String {
    format!("{cluster}-backrestrepo")
}

/// The stanza in every repository: one cluster per repository, as 3.4 had.
pub const BACKREST_STANZA: &str = "db";

/// The volume of a cluster's pg_basebackup copies, as 3.4 named it. Like
/// the repository, it outlives the cluster unless its backups are deleted.
pub fn basebackup_volume(cluster: &str) -> String {
    format!("{cluster}-backup")
}

/// Where in [`basebackup_volume`] the copy taken at `stamp` goes:
/// `<cluster>-backups/<YYYY-MM-DD-HH-MM-SS>`, as in 3.4.
pub fn basebackup_path(cluster: &str, stamp: jiff::Timestamp) -> String {
    format!("{cluster}-backups/{}", stamp.strftime("%Y-%m-%d-%H-%M-%S"))
}

/// Whether `volume` holds `cluster`'s backups rather than its data.
pub fn is_backup_volume(cluster: &str, volume: &str) -> bool {
    volume == backrest_repo_volume(cluster) || volume == basebackup_volume(cluster)
}

/// The one restore a cluster can have at a time.
pub fn restore_task(cluster: &str) -> String {
    format!("{cluster}-restore")
}

/// The task that restores a cluster's backups into volume `volume`
/// (`pgo restore --to-pvc`): one per volume.
pub fn restore_to_pvc_task(volume: &str) -> String {
    format!("{volume}-restore-to-pvc")
}

/// The one failover task a cluster can have at a time: a second request
/// finds the name taken.
pub fn failover_task(cluster: &str) -> String {
    format!("{cluster}-failover")
}

/// The Pgtask that removes `volume` and its data for the object (a cluster,
/// a replica) with `owner_uid`. Keyed to the owner, so a cluster made again
/// under the same name gets a removal of its own, never the old one's
/// outcome.
pub fn rmdata_task(volume: &str, owner_uid: &str) -> String {
    format!("{volume}-rmdata-{}", short_hash(owner_uid))
}

/// Ten hex digits of FNV-1a over `s`: short, stable, and different for
/// UIDs that share a prefix.
pub fn short_hash(s: &str) -> String {
    let hash = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_of_the_same_volume_for_different_owners_differ() {
        let a = rmdata_task("db", "0000018f2a3b4c5d-db");
        let b = rmdata_task("db", "0000018f2a3b4c5e-db");
        assert_ne!(a, b);
        assert!(
            a.starts_with("db-rmdata-") && a.len() == "db-rmdata-".len() + 10,
            "{a}"
        );
        assert_eq!(a, rmdata_task("db", "0000018f2a3b4c5d-db"), "stable");
    }
}
