//! `pgo.yaml`: defaults for new clusters and operator settings, in the
//! original's key spelling (`Cluster.Strategy`, `Pgo.AutofailSleepSeconds`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct PgoConfig {
    pub cluster: ClusterDefaults,
    pub pgo: OperatorSettings,
    /// Named CPU and memory settings, as 3.4's pgo.yaml has them; a cluster
    /// names one with `--resources-config`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub container_resources: BTreeMap<String, ContainerResources>,
    /// The one a cluster gets when it names none.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub default_container_resources: Option<String>,
}

/// One `ContainerResources` entry. Quantities may be written as numbers
/// (`RequestsCPU: 0.1`), as 3.4's example does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ContainerResources {
    #[serde(deserialize_with = "quantity")]
    pub requests_memory: String,
    #[serde(rename = "RequestsCPU", deserialize_with = "quantity")]
    pub requests_cpu: String,
    #[serde(deserialize_with = "quantity")]
    pub limits_memory: String,
    #[serde(rename = "LimitsCPU", deserialize_with = "quantity")]
    pub limits_cpu: String,
}

impl ContainerResources {
    pub fn resources(&self) -> crate::cluster::Resources {
        use crate::cluster::{Amounts, Resources};
        Resources {
            requests: Amounts {
                cpu: self.requests_cpu.clone(),
                memory: self.requests_memory.clone(),
            },
            limits: Amounts {
                cpu: self.limits_cpu.clone(),
                memory: self.limits_memory.clone(),
            },
        }
    }
}

fn quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Whole(u64),
        Number(f64),
    }
    Ok(match Written::deserialize(d)? {
        Written::Text(s) => s,
        Written::Whole(n) => n.to_string(),
        Written::Number(n) => n.to_string(),
    })
}

/// `Key:` with nothing after it, as 3.4's file leaves unset keys.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.trim().is_empty()))
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct ClusterDefaults {
    #[serde(deserialize_with = "text_or_number")]
    pub strategy: String,
    /// 3.4 spelled it `Replicas`.
    #[serde(alias = "Replicas")]
    pub replica_count: u32,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub storage_size: String,
    #[serde(rename = "PVCName", skip_serializing_if = "Option::is_none")]
    pub pvc_name: Option<String>,
    pub autofail: bool,
    pub autofail_replace_replica: bool,
    /// Kubernetes: the PriorityClass of every PostgreSQL pod, so a busy
    /// node evicts other work before a database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Kubernetes: leave pods' fsGroup unset, for a policy that assigns it
    /// (OpenShift's restricted SCC refuses pods that name their own).
    #[serde(rename = "DisableFSGroup")]
    pub disable_fs_group: bool,
    /// pgBackRest for new clusters: a repository, WAL archiving, backups.
    pub backrest: bool,
    /// Seconds after which a WAL segment is archived even if not full.
    pub archive_timeout: u32,
    /// Full backups each repository keeps.
    pub backrest_retention_full: u32,
    /// Differential backups each repository keeps; unbounded when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backrest_retention_diff: Option<u32>,
}

impl Default for ClusterDefaults {
    fn default() -> Self {
        ClusterDefaults {
            strategy: "1".into(),
            replica_count: 0,
            port: 5432,
            user: "testuser".into(),
            database: "userdb".into(),
            storage_size: "1G".into(),
            pvc_name: None,
            autofail: false,
            autofail_replace_replica: true,
            priority_class_name: None,
            disable_fs_group: false,
            backrest: true,
            archive_timeout: 60,
            backrest_retention_full: 2,
            backrest_retention_diff: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct OperatorSettings {
    /// Seconds a primary may stay NotReady before auto failover (spec default 30).
    pub autofail_sleep_seconds: u64,
    /// How often every member is probed, in milliseconds.
    pub probe_period_ms: u64,
    /// How long an instance's readiness checks (a new connection, a write to
    /// its volume) may each take before it counts as not ready.
    pub probe_timeout_ms: u64,
    /// The local platform's ports for instances and services (`FROM-TO`),
    /// outside the kernel's ephemeral range; 20000-29999 when unset.
    pub local_port_range: Option<String>,
    /// Reconciles in flight at once, each of a different object.
    pub reconcile_workers: usize,
}

impl Default for OperatorSettings {
    fn default() -> Self {
        OperatorSettings {
            autofail_sleep_seconds: 30,
            probe_period_ms: 2000,
            probe_timeout_ms: 2000,
            local_port_range: None,
            reconcile_workers: 8,
        }
    }
}

/// Keys of 3.4's `pgo.yaml` that pgo does not act on, here or yet: a
/// stock 3.4 file is accepted, and these are listed once at start.
pub const IGNORED_3_4_KEYS: &[&str] = &[
    "BasicAuth",
    "PrimaryStorage",
    "BackupStorage",
    "ReplicaStorage",
    "Storage",
    "DefaultLoadResources",
    "DefaultLspvcResources",
    "DefaultRmdataResources",
    "DefaultBackupResources",
    "DefaultPgbouncerResources",
    "DefaultPgpoolResources",
    "Cluster.PrimaryNodeLabel",
    "Cluster.ReplicaNodeLabel",
    "Cluster.CCPImagePrefix",
    "Cluster.CCPImageTag",
    "Cluster.Policies",
    "Cluster.Metrics",
    "Cluster.Badger",
    "Cluster.ArchiveMode",
    "Cluster.PasswordAgeDays",
    "Cluster.PasswordLength",
    "Cluster.ServiceType",
    "Cluster.LogStatement",
    "Cluster.LogMinDurationStatement",
    "Pgo.Audit",
    "Pgo.LSPVCTemplate",
    "Pgo.LoadTemplate",
    "Pgo.COImagePrefix",
    "Pgo.COImageTag",
];

impl PgoConfig {
    /// Parses `pgo.yaml`. Keys of 3.4's that pgo does not act on are
    /// ignored ([`PgoConfig::from_yaml_listing_ignored`] names them); any
    /// other unknown key is an error, so a typo is not silently ignored.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        Self::from_yaml_listing_ignored(text).map(|(config, _)| config)
    }

    /// The same, with the 3.4 keys that were present and ignored, as
    /// `Section.Key`.
    pub fn from_yaml_listing_ignored(text: &str) -> Result<(Self, Vec<String>), serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok((PgoConfig::default(), Vec::new()));
        }
        let mut value: serde_yaml::Value = serde_yaml::from_str(text)?;
        let mut ignored = Vec::new();
        for key in IGNORED_3_4_KEYS {
            let removed = match key.split_once('.') {
                None => value.as_mapping_mut().and_then(|m| m.remove(*key)),
                Some((section, field)) => value
                    .get_mut(section)
                    .and_then(serde_yaml::Value::as_mapping_mut)
                    .and_then(|m| m.remove(field)),
            };
            if removed.is_some() {
                ignored.push((*key).to_string());
            }
        }
        Ok((serde_yaml::from_value(value)?, ignored))
    }
}

/// A string that YAML may have read as a number (3.4 wrote `Strategy: 1`).
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::String(s) => Ok(s),
        serde_yaml::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, found {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_original_spelling() {
        let c =
            PgoConfig::from_yaml("Cluster:\n  Strategy: \"1\"\nPgo:\n  AutofailSleepSeconds: 9\n").unwrap();
        assert_eq!(c.pgo.autofail_sleep_seconds, 9);
        assert_eq!(c.cluster.user, "testuser");
    }

    #[test]
    fn container_resources_read_as_3_4_wrote_them() {
        let c = PgoConfig::from_yaml(
            "DefaultContainerResources: \nContainerResources:\n  small:\n    RequestsMemory:  512Mi\n    RequestsCPU:  0.1\n    LimitsMemory:  512Mi\n    LimitsCPU:  2\n",
        )
        .unwrap();
        assert_eq!(c.default_container_resources, None);
        let small = &c.container_resources["small"];
        assert_eq!(small.requests_cpu, "0.1");
        assert_eq!(small.limits_cpu, "2");
        assert_eq!(small.requests_memory, "512Mi");
    }

    #[test]
    fn a_stock_3_4_pgo_yaml_is_read_and_what_pgo_does_not_act_on_is_listed() {
        let (c, ignored) =
            PgoConfig::from_yaml_listing_ignored(include_str!("testdata/pgo-3.4.yaml")).unwrap();
        assert_eq!(c.cluster.strategy, "1");
        assert_eq!(c.cluster.replica_count, 0);
        assert_eq!(c.cluster.port, 5432);
        assert!(!c.cluster.backrest, "3.4's file turns pgBackRest off");
        assert_eq!(c.pgo.autofail_sleep_seconds, 9);
        assert_eq!(c.container_resources["large"].limits_cpu, "4");
        for key in [
            "Cluster.CCPImageTag",
            "Storage",
            "Pgo.COImageTag",
            "DefaultPgpoolResources",
        ] {
            assert!(
                ignored.contains(&key.to_string()),
                "{key} not listed: {ignored:?}"
            );
        }
        let (c, _) = PgoConfig::from_yaml_listing_ignored("Cluster:\n  Replicas: 2\n").unwrap();
        assert_eq!(c.cluster.replica_count, 2, "3.4's name for ReplicaCount");
    }

    #[test]
    fn a_typo_is_an_error() {
        let err = PgoConfig::from_yaml("Pgo:\n  AutofailSleepSecs: 9\n").unwrap_err();
        assert!(err.to_string().contains("AutofailSleepSecs"), "{err}");
    }
}
