//! The objects a cluster should have, built from its spec alone. Each
//! platform realises these in its own way (a directory or a PVC, a process or
//! a Deployment, a TCP proxy or a Service).

use crate::names;
use pgo_api::cluster::{MemberRole, PgclusterSpec, StorageSpec};
use pgo_api::labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A volume: where one instance keeps its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub cluster: String,
    pub storage: StorageSpec,
}

/// Credentials of one database user. The password is made by the platform
/// the first time and never changed afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub name: String,
    pub cluster: String,
    pub username: String,
    /// Made as a copy of this secret rather than with a new password: a
    /// cluster restored from another's backups has that cluster's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<String>,
}

/// One PostgreSQL instance (a "pod").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub name: String,
    pub cluster: String,
    pub role: MemberRole,
    pub volume: String,
    pub database: String,
    pub app_user: String,
    pub superuser_secret: String,
    pub replication_secret: String,
    pub app_secret: String,
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub custom_config: Option<String>,
    /// The custom configuration's files, as the cluster last took them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_files: Option<pgo_api::custom_config::CustomFiles>,
    /// The cluster's `pgo reload` count.
    #[serde(default)]
    pub reloads: u64,
    /// The cluster's `pgo restart` count: one started before it is outdated.
    #[serde(default)]
    pub restarts: u64,
    /// PostgreSQL's port where the platform does not choose one itself.
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    /// For a replica: the instance it streams from and its slot there.
    #[serde(default)]
    pub follows: Option<Follow>,
    /// For a primary under synchronous replication: the replicas a commit
    /// may wait for (any one of them).
    #[serde(default)]
    pub sync_standbys: Vec<String>,
    /// Synchronous replication: commits wait for a replica even when
    /// `sync_standbys` is empty, never silently acknowledged by none.
    #[serde(default)]
    pub synchronous: bool,
    /// The node this instance should rather not share (a replica keeps away
    /// from the node the cluster's primary was placed on).
    #[serde(default)]
    pub avoid_node: Option<String>,
    /// Runs a metrics exporter beside PostgreSQL (a sidecar on Kubernetes,
    /// a process the manager supervises on the local platform).
    #[serde(default)]
    pub metrics: bool,
    /// The exporter's user's secret, with `metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter_secret: Option<String>,
    /// The pod's fsGroup from the cluster's storage configs (Kubernetes);
    /// the same for every member, so a failover changes no pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_group: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<u32>,
    /// The deployment strategy (the template set, on Kubernetes).
    #[serde(default)]
    pub strategy: String,
    /// The uid of the Pgcluster, so platform objects can be owned by it.
    #[serde(default)]
    pub owner_uid: Option<String>,
    /// CPU and memory (on platforms that bound them); unset, the platform's
    /// default.
    #[serde(default)]
    pub resources: Option<pgo_api::cluster::Resources>,
    /// Archives WAL into the cluster's pgBackRest repository.
    #[serde(default)]
    pub backrest: Option<InstanceBackrestSpec>,
    /// A new data directory comes from this repository, not initdb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<InstanceRestoreSpec>,
    /// A new data directory is copied from this pg_basebackup copy, not
    /// made by initdb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedSpec>,
}

/// A pg_basebackup copy: a path in a backup volume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedSpec {
    pub volume: String,
    pub path: String,
}

/// Where a new instance's data is restored from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceRestoreSpec {
    /// Set for a restore in place, which is done once per id.
    pub id: Option<String>,
    /// The cluster whose repository it is (this one, or another).
    pub cluster: String,
    /// The repository's volume.
    pub repo_volume: String,
    pub stanza: String,
    pub target: Option<pgo_api::cluster::PitrTarget>,
    pub options: Vec<String>,
}

/// Where an instance archives WAL, and how its repository keeps backups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceBackrestSpec {
    /// The repository's volume, shared by every instance of the cluster.
    pub repo_volume: String,
    pub stanza: String,
    pub settings: pgo_api::cluster::BackrestSpec,
}

/// What a replica streams from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Follow {
    pub primary: String,
    pub slot: String,
}

/// A replica as the store knows it (a Pgreplica).
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaInput {
    pub name: String,
    pub storage: StorageSpec,
    pub node_name: Option<String>,
}

impl ReplicaInput {
    pub fn of(r: &pgo_api::Pgreplica) -> ReplicaInput {
        ReplicaInput {
            name: r.metadata.name.clone().unwrap_or_default(),
            storage: r.spec.storage.clone(),
            node_name: r.spec.node_name.clone(),
        }
    }
}

/// A stable endpoint that forwards new connections to its targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub name: String,
    pub cluster: String,
    /// Which members this service is for.
    pub role: MemberRole,
    /// Instances that receive new connections, in order of preference.
    pub targets: Vec<String>,
    /// PostgreSQL's port, where the platform does not choose one itself.
    pub port: u16,
    /// The deployment strategy (the template set, on Kubernetes).
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub owner_uid: Option<String>,
    /// The cluster's instances serve metrics (a port to let through).
    #[serde(default)]
    pub metrics: bool,
    /// The cluster archives with pgBackRest: where the repository is on a
    /// repository host, that host reaches the instances' pgBackRest
    /// through the service.
    #[serde(default)]
    pub backrest: bool,
}

/// Everything one cluster should have but its services.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredCluster {
    pub volumes: Vec<VolumeSpec>,
    pub secrets: Vec<SecretSpec>,
    pub instances: Vec<InstanceSpec>,
}

impl DesiredCluster {
    /// Marks every instance as owned by the Pgcluster with `uid`.
    pub fn owned_by(mut self, uid: Option<&str>) -> Self {
        for i in &mut self.instances {
            i.owner_uid = uid.map(str::to_string);
        }
        self
    }
}

/// The desired objects of cluster `name`, whose current primary is
/// `primary`, with `replicas`. Services are built apart ([`services`]):
/// which replicas receive connections depends on what is observed.
pub fn cluster(name: &str, spec: &PgclusterSpec, primary: &str, replicas: &[ReplicaInput]) -> DesiredCluster {
    let source = spec
        .secret_from
        .as_deref()
        .or(spec.restore_from.as_ref().map(|r| r.cluster.as_str()));
    let secret = |user: &str| SecretSpec {
        name: names::secret(name, user),
        cluster: name.to_string(),
        username: user.to_string(),
        copy_from: source.map(|s| names::secret(s, user)),
    };
    let mut secrets = vec![
        secret(names::SUPERUSER),
        secret(names::REPLICATION_USER),
        secret(&spec.user),
    ];
    // Its own password, whatever the source had: the primary's manager
    // sets the role's from this secret.
    let exporter_secret = spec.metrics.then(|| names::exporter_secret(name));
    if let Some(s) = &exporter_secret {
        secrets.push(SecretSpec {
            name: s.clone(),
            cluster: name.to_string(),
            username: names::EXPORTER_USER.to_string(),
            copy_from: None,
        });
    }
    let primary_volume = names::volume_of(name, spec.pvc_name.as_deref(), primary);
    let mut volumes = Vec::new();
    // A shared volume (CLUSTER.PVC_NAME) exists already: it is not ours to create.
    if spec.pvc_name.as_deref() != Some(primary_volume.as_str()) {
        volumes.push(VolumeSpec {
            name: primary_volume.clone(),
            cluster: name.to_string(),
            storage: spec.primary_storage.clone(),
        });
    }
    let backrest = spec.backrest.as_ref().map(|settings| InstanceBackrestSpec {
        repo_volume: names::backrest_repo_volume(name),
        stanza: names::BACKREST_STANZA.to_string(),
        settings: settings.clone(),
    });
    if let Some(b) = &backrest {
        volumes.push(VolumeSpec {
            name: b.repo_volume.clone(),
            cluster: name.to_string(),
            storage: spec.backups_storage(),
        });
    }
    let mut supplemental_groups: Vec<u32> = spec
        .primary_storage
        .supplemental_groups
        .iter()
        .chain(&spec.replica_storage.supplemental_groups)
        .copied()
        .collect();
    supplemental_groups.sort_unstable();
    supplemental_groups.dedup();
    let instance = |instance: &str, role: MemberRole, volume: String| {
        let mut labels = spec.user_labels.clone();
        labels.insert(labels::CLUSTER.into(), name.to_string());
        labels.insert(labels::ROLE.into(), role.to_string());
        labels.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
        InstanceSpec {
            name: instance.to_string(),
            cluster: name.to_string(),
            role,
            volume,
            database: spec.database.clone(),
            app_user: spec.user.clone(),
            superuser_secret: names::secret(name, names::SUPERUSER),
            replication_secret: names::secret(name, names::REPLICATION_USER),
            app_secret: names::secret(name, &spec.user),
            node_name: None,
            custom_config: spec.custom_config.clone(),
            custom_files: spec.custom_config_files.clone(),
            reloads: spec.reloads,
            restarts: spec.restarts,
            port: spec.port,
            labels,
            follows: None,
            sync_standbys: vec![],
            synchronous: false,
            avoid_node: None,
            metrics: spec.metrics,
            exporter_secret: exporter_secret.clone(),
            fs_group: spec.primary_storage.fs_group.or(spec.replica_storage.fs_group),
            supplemental_groups: supplemental_groups.clone(),
            strategy: spec.strategy.clone(),
            owner_uid: None,
            resources: spec.resources.clone(),
            backrest: backrest.clone(),
            restore: None,
            seed: None,
        }
    };
    let mut first = instance(primary, MemberRole::Primary, primary_volume);
    // Only the first primary is made from the backups; a later one is a
    // replica promoted, and has its data already.
    if primary == names::initial_primary(name) {
        first.restore = spec.restore_from.as_ref().map(|r| InstanceRestoreSpec {
            id: None,
            cluster: r.cluster.clone(),
            repo_volume: names::backrest_repo_volume(&r.cluster),
            stanza: names::BACKREST_STANZA.to_string(),
            target: r.target.clone(),
            options: r.options.clone(),
        });
        first.seed = spec.copy_from.as_ref().map(|c| SeedSpec {
            volume: c.volume.clone(),
            path: c.path.clone(),
        });
    }
    first.node_name = spec.node_name.clone();
    // A promoted replica's pod was made to keep away from the node: it
    // still does, so its pod template does not change with its role.
    first.avoid_node = spec.node_name.clone();
    if let Some(cc) = &spec.custom_config {
        first.labels.insert(labels::CUSTOM_CONFIG.into(), cc.clone());
    }
    if spec.sync_replication {
        first.sync_standbys = replicas.iter().map(|r| r.name.clone()).collect();
        first.synchronous = true;
    }
    let mut instances = vec![first];
    for r in replicas {
        // Each replica has its own volume, so each can use other storage.
        // A former first primary back as a replica keeps the one it had.
        let volume = names::volume_of(name, spec.pvc_name.as_deref(), &r.name);
        if spec.pvc_name.as_deref() != Some(volume.as_str()) {
            volumes.push(VolumeSpec {
                name: volume.clone(),
                cluster: name.to_string(),
                storage: r.storage.clone(),
            });
        }
        let mut i = instance(&r.name, MemberRole::Replica, volume);
        i.node_name = r.node_name.clone();
        i.avoid_node = spec.node_name.clone();
        i.follows = Some(Follow {
            primary: primary.to_string(),
            slot: names::replication_slot(&r.name),
        });
        instances.push(i);
    }
    DesiredCluster {
        volumes,
        secrets,
        instances,
    }
}

/// The two services: the primary service points at the primary only; the
/// replica service spreads new connections over the replicas that are ready.
pub fn services(
    name: &str,
    spec: &PgclusterSpec,
    primary: &str,
    ready_replicas: &[String],
) -> Vec<ServiceSpec> {
    vec![
        ServiceSpec {
            name: names::primary_service(name),
            cluster: name.to_string(),
            role: MemberRole::Primary,
            targets: vec![primary.to_string()],
            port: spec.port,
            strategy: spec.strategy.clone(),
            owner_uid: None,
            metrics: spec.metrics,
            backrest: spec.backrest.is_some(),
        },
        ServiceSpec {
            name: names::replica_service(name),
            cluster: name.to_string(),
            role: MemberRole::Replica,
            targets: ready_replicas.to_vec(),
            port: spec.port,
            strategy: spec.strategy.clone(),
            owner_uid: None,
            metrics: spec.metrics,
            backrest: spec.backrest.is_some(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PgclusterSpec {
        PgclusterSpec {
            strategy: "1".into(),
            port: 5432,
            database: "userdb".into(),
            user: "testuser".into(),
            primary_storage: StorageSpec {
                size: "1G".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn replica(name: &str) -> ReplicaInput {
        ReplicaInput {
            name: name.into(),
            storage: StorageSpec::default(),
            node_name: None,
        }
    }

    #[test]
    fn a_new_cluster_has_a_volume_three_secrets_a_primary_and_two_services() {
        let d = cluster("db", &spec(), "db", &[]);
        assert_eq!(d.volumes.len(), 1);
        assert_eq!(d.volumes[0].name, "db");
        let secret_names: Vec<_> = d.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            secret_names,
            [
                "db-postgres-secret",
                "db-primaryuser-secret",
                "db-testuser-secret"
            ]
        );
        assert_eq!(d.instances.len(), 1);
        assert_eq!(d.instances[0].role, MemberRole::Primary);
        assert_eq!(d.instances[0].labels["pg-cluster"], "db");
        let services: Vec<_> = services("db", &spec(), "db", &[])
            .into_iter()
            .map(|s| (s.name, s.targets))
            .collect();
        assert_eq!(
            services,
            [
                ("db".into(), vec!["db".to_string()]),
                ("db-replica".into(), vec![])
            ]
        );
    }

    #[test]
    fn each_replica_has_its_own_volume_and_slot_and_follows_the_primary() {
        let d = cluster("db", &spec(), "db", &[replica("db-a1b2"), replica("db-c3d4")]);
        let volumes: Vec<_> = d.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["db", "db-a1b2", "db-c3d4"]);
        let r = &d.instances[1];
        assert_eq!(r.role, MemberRole::Replica);
        assert_eq!(r.volume, "db-a1b2");
        assert_eq!(
            r.follows,
            Some(Follow {
                primary: "db".into(),
                slot: "db_a1b2".into()
            })
        );
        assert_eq!(r.labels["role"], "replica");
        assert!(d.instances[0].sync_standbys.is_empty());
    }

    #[test]
    fn sync_replication_names_every_replica_on_the_primary() {
        let mut s = spec();
        s.sync_replication = true;
        let d = cluster("db", &s, "db", &[replica("db-a1b2"), replica("db-c3d4")]);
        assert_eq!(d.instances[0].sync_standbys, ["db-a1b2", "db-c3d4"]);
        assert!(d.instances[0].synchronous);
    }

    #[test]
    fn a_synchronous_primary_without_replicas_stays_synchronous() {
        let mut s = spec();
        s.sync_replication = true;
        // The only replica was just promoted; its replacement is not made yet.
        let d = cluster("db", &s, "db-a1b2", &[]);
        assert!(d.instances[0].sync_standbys.is_empty());
        assert!(d.instances[0].synchronous, "commits must keep waiting");
        assert!(!cluster("db", &spec(), "db", &[]).instances[0].synchronous);
    }

    #[test]
    fn the_replica_service_only_targets_ready_replicas() {
        let s = services("db", &spec(), "db-x", &["db-a1b2".into()]);
        assert_eq!(s[0].targets, ["db-x"]);
        assert_eq!(s[1].targets, ["db-a1b2"]);
    }

    #[test]
    fn after_a_failover_the_primary_keeps_its_own_volume() {
        let d = cluster("db", &spec(), "db-a1b2", &[replica("db-c3d4")]);
        assert_eq!(d.instances[0].volume, "db-a1b2");
        let volumes: Vec<_> = d.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["db-a1b2", "db-c3d4"]);
    }

    #[test]
    fn the_first_primary_back_as_a_replica_keeps_its_volume() {
        let d = cluster("db", &spec(), "db-a1b2", &[replica("db")]);
        assert_eq!(d.instances[1].name, "db");
        assert_eq!(d.instances[1].volume, "db");
        let mut s = spec();
        s.pvc_name = Some("shared".into());
        let d = cluster("db", &s, "db-a1b2", &[replica("db")]);
        assert_eq!(d.instances[1].volume, "shared");
        let volumes: Vec<_> = d.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["db-a1b2"], "a shared volume is never made");
    }

    #[test]
    fn a_shared_volume_is_used_not_created() {
        let mut s = spec();
        s.pvc_name = Some("shared".into());
        let d = cluster("db", &s, "db", &[]);
        assert!(d.volumes.is_empty());
        assert_eq!(d.instances[0].volume, "shared");
    }

    #[test]
    fn only_the_first_primary_is_copied_and_it_takes_the_sources_passwords() {
        let mut s = spec();
        s.copy_from = Some(pgo_api::cluster::CopyFrom {
            volume: "old-backup".into(),
            path: "old-backups/2026-01-01-00-00-00".into(),
        });
        s.secret_from = Some("old".into());
        let d = cluster("db", &s, "db", &[replica("db-a1b2")]);
        let seed = d.instances[0].seed.as_ref().unwrap();
        assert_eq!(
            (seed.volume.as_str(), seed.path.as_str()),
            ("old-backup", "old-backups/2026-01-01-00-00-00")
        );
        assert!(d.instances[1].seed.is_none(), "a replica copies its primary");
        assert!(
            d.secrets
                .iter()
                .all(|x| x.copy_from.as_deref() == Some(names::secret("old", &x.username).as_str()))
        );
        let promoted = cluster("db", &s, "db-a1b2", &[]);
        assert!(
            promoted.instances[0].seed.is_none(),
            "a promoted replica has its data"
        );
    }

    #[test]
    fn custom_config_labels_the_primary() {
        let mut s = spec();
        s.custom_config = Some("olap".into());
        let d = cluster("db", &s, "db", &[]);
        assert_eq!(d.instances[0].labels["custom-config"], "olap");
    }
}
