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
    /// PostgreSQL's port where the platform does not choose one itself.
    pub port: u16,
    pub labels: BTreeMap<String, String>,
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
}

/// Everything one cluster should have.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredCluster {
    pub volumes: Vec<VolumeSpec>,
    pub secrets: Vec<SecretSpec>,
    pub instances: Vec<InstanceSpec>,
    pub services: Vec<ServiceSpec>,
}

/// The desired objects of cluster `name`, whose current primary is `primary`.
pub fn cluster(name: &str, spec: &PgclusterSpec, primary: &str) -> DesiredCluster {
    let secret = |user: &str| SecretSpec {
        name: names::secret(name, user),
        cluster: name.to_string(),
        username: user.to_string(),
    };
    let secrets = vec![
        secret(names::SUPERUSER),
        secret(names::REPLICATION_USER),
        secret(&spec.user),
    ];
    let primary_volume = spec
        .pvc_name
        .clone()
        .unwrap_or_else(|| names::primary_volume(name));
    // A shared volume (CLUSTER.PVC_NAME) exists already: it is not ours to create.
    let volumes = if spec.pvc_name.is_some() {
        vec![]
    } else {
        vec![VolumeSpec {
            name: primary_volume.clone(),
            cluster: name.to_string(),
            storage: spec.primary_storage.clone(),
        }]
    };
    let mut labels = spec.user_labels.clone();
    labels.insert(labels::CLUSTER.into(), name.to_string());
    labels.insert(labels::ROLE.into(), MemberRole::Primary.to_string());
    labels.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
    if let Some(cc) = &spec.custom_config {
        labels.insert(labels::CUSTOM_CONFIG.into(), cc.clone());
    }
    let primary_instance = InstanceSpec {
        name: primary.to_string(),
        cluster: name.to_string(),
        role: MemberRole::Primary,
        volume: primary_volume,
        database: spec.database.clone(),
        app_user: spec.user.clone(),
        superuser_secret: names::secret(name, names::SUPERUSER),
        replication_secret: names::secret(name, names::REPLICATION_USER),
        app_secret: names::secret(name, &spec.user),
        node_name: spec.node_name.clone(),
        custom_config: spec.custom_config.clone(),
        port: spec.port,
        labels,
    };
    let services = vec![
        ServiceSpec {
            name: names::primary_service(name),
            cluster: name.to_string(),
            role: MemberRole::Primary,
            targets: vec![primary.to_string()],
        },
        ServiceSpec {
            name: names::replica_service(name),
            cluster: name.to_string(),
            role: MemberRole::Replica,
            targets: vec![],
        },
    ];
    DesiredCluster {
        volumes,
        secrets,
        instances: vec![primary_instance],
        services,
    }
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

    #[test]
    fn a_new_cluster_has_a_volume_three_secrets_a_primary_and_two_services() {
        let d = cluster("db", &spec(), "db");
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
        let services: Vec<_> = d
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.targets.clone()))
            .collect();
        assert_eq!(services, [("db", vec!["db".to_string()]), ("db-replica", vec![])]);
    }

    #[test]
    fn a_shared_volume_is_used_not_created() {
        let mut s = spec();
        s.pvc_name = Some("shared".into());
        let d = cluster("db", &s, "db");
        assert!(d.volumes.is_empty());
        assert_eq!(d.instances[0].volume, "shared");
    }

    #[test]
    fn custom_config_labels_the_primary() {
        let mut s = spec();
        s.custom_config = Some("olap".into());
        let d = cluster("db", &s, "db");
        assert_eq!(d.instances[0].labels["custom-config"], "olap");
    }
}
