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
    /// The storage config of a new cluster's primary volume, of its
    /// replicas' and of its backup volumes (`--storage-config`,
    /// `--replica-storage-config` choose others).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub primary_storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub replica_storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub backup_storage: Option<String>,
    /// Named storage configs, as 3.4's pgo.yaml has them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, StorageConfig>,
}

/// One `Storage` entry: how a volume is made. 3.4's keys, and `Path`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `ReadWriteOnce` (the default), `ReadWriteMany`, `ReadOnlyMany`,
    /// `ReadWriteOncePod`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub access_mode: Option<String>,
    /// A Kubernetes quantity; unset, `Cluster.StorageSize`.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "some_quantity")]
    pub size: Option<String>,
    /// 3.4's `create` or `dynamic`: a PVC either way here, dynamic when a
    /// class is named.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub storage_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "empty_is_none")]
    pub storage_class: Option<String>,
    /// The pods' fsGroup (Kubernetes).
    #[serde(rename = "Fsgroup", skip_serializing_if = "Option::is_none")]
    pub fsgroup: Option<u32>,
    /// The pods' supplemental groups, comma separated (Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "some_quantity")]
    pub supplemental_groups: Option<String>,
    /// Local platform: the directory this config's volumes are made in
    /// (another disk, say); unset, the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
}

const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadWriteMany",
    "ReadOnlyMany",
    "ReadWriteOncePod",
];

impl StorageConfig {
    /// The config as a volume's storage, `default_size` where it names no
    /// size; an error names what is wrong in it.
    pub fn spec(&self, name: &str, default_size: &str) -> Result<crate::cluster::StorageSpec, String> {
        let err = |m: String| format!("pgo.yaml Storage.{name}: {m}");
        if let Some(mode) = &self.access_mode
            && !ACCESS_MODES.contains(&mode.as_str())
        {
            return Err(err(format!(
                "AccessMode {mode:?} is not one of {}",
                ACCESS_MODES.join(", ")
            )));
        }
        if let Some(t) = &self.storage_type
            && !matches!(t.as_str(), "create" | "dynamic")
        {
            return Err(err(format!("StorageType {t:?} is not create or dynamic")));
        }
        let size = self.size.clone().unwrap_or_else(|| default_size.to_string());
        if !is_quantity(&size) {
            return Err(err(format!(
                "Size {size:?} is not a quantity such as 1G or 500Mi"
            )));
        }
        let supplemental_groups = match &self.supplemental_groups {
            None => vec![],
            Some(list) => list
                .split(',')
                .map(|g| {
                    g.trim()
                        .parse::<u32>()
                        .map_err(|_| err(format!("SupplementalGroups {list:?} is not a list of group ids")))
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(p) = &self.path
            && !p.is_absolute()
        {
            return Err(err(format!("Path {} is not an absolute path", p.display())));
        }
        Ok(crate::cluster::StorageSpec {
            size,
            storage_class: self.storage_class.clone(),
            access_mode: self.access_mode.clone(),
            fs_group: self.fsgroup,
            supplemental_groups,
            path: self.path.as_ref().map(|p| p.display().to_string()),
            config: Some(name.to_string()),
        })
    }
}

/// `1G`, `500Mi`, `1024`: what the Pgcluster CRD's rule accepts.
fn is_quantity(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "" | "K" | "M" | "G" | "T" | "Ki" | "Mi" | "Gi" | "Ti")
}

fn some_quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(quantity(d)?).filter(|s| !s.trim().is_empty()))
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
    /// A metrics exporter beside every instance of new clusters
    /// (`--metrics` for one).
    pub metrics: bool,
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
            metrics: false,
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
    /// The storage config named `name`, as a volume's storage; the error
    /// names what pgo.yaml lacks or holds wrong.
    pub fn storage_spec(&self, name: &str) -> Result<crate::cluster::StorageSpec, String> {
        match self.storage.get(name) {
            Some(s) => s.spec(name, &self.cluster.storage_size),
            None => {
                let known: Vec<&str> = self.storage.keys().map(String::as_str).collect();
                Err(format!(
                    "no storage config {name:?} in pgo.yaml's Storage (known: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            }
        }
    }

    /// Every storage config, and the defaults naming one that exists: a
    /// file with a wrong one stops the server at start.
    pub fn check_storage(&self) -> Result<(), String> {
        for name in self.storage.keys() {
            self.storage_spec(name)?;
        }
        for (key, named) in [
            ("PrimaryStorage", &self.primary_storage),
            ("ReplicaStorage", &self.replica_storage),
            ("BackupStorage", &self.backup_storage),
        ] {
            if let Some(n) = named {
                self.storage_spec(n).map_err(|e| format!("pgo.yaml {key}: {e}"))?;
            }
        }
        Ok(())
    }

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
        for key in ["Cluster.CCPImageTag", "Pgo.COImageTag", "DefaultPgpoolResources"] {
            assert!(
                ignored.contains(&key.to_string()),
                "{key} not listed: {ignored:?}"
            );
        }
        // Its storage configs are read, and each is a volume's storage.
        assert!(!ignored.iter().any(|k| k.contains("Storage")), "{ignored:?}");
        assert_eq!(c.primary_storage.as_deref(), Some("nfsstorage"));
        assert_eq!(c.check_storage(), Ok(()));
        let nfs = c.storage_spec("nfsstorage").unwrap();
        assert_eq!(nfs.access_mode.as_deref(), Some("ReadWriteMany"));
        assert_eq!(nfs.supplemental_groups, [65534]);
        let fast = c.storage_spec("storageos").unwrap();
        assert_eq!(
            (fast.storage_class.as_deref(), fast.fs_group),
            (Some("fast"), Some(26))
        );
        assert!(!c.cluster.metrics);
        let (c, _) = PgoConfig::from_yaml_listing_ignored("Cluster:\n  Replicas: 2\n").unwrap();
        assert_eq!(c.cluster.replica_count, 2, "3.4's name for ReplicaCount");
    }

    #[test]
    fn a_storage_config_that_cannot_be_is_named() {
        let cases = [
            (
                "AccessMode: ReadWriteSometimes",
                "AccessMode \"ReadWriteSometimes\"",
            ),
            ("Size: lots", "Size \"lots\""),
            ("StorageType: magic", "StorageType \"magic\""),
            ("SupplementalGroups: nfs", "SupplementalGroups"),
            ("Path: relative/dir", "Path relative/dir"),
        ];
        for (line, named) in cases {
            let c = PgoConfig::from_yaml(&format!("Storage:\n  s1:\n    {line}\n")).unwrap();
            let err = c.check_storage().unwrap_err();
            assert!(err.contains("Storage.s1") && err.contains(named), "{line}: {err}");
        }
        let c = PgoConfig::from_yaml("PrimaryStorage: nope\n").unwrap();
        let err = c.check_storage().unwrap_err();
        assert!(
            err.contains("PrimaryStorage") && err.contains("\"nope\""),
            "{err}"
        );
    }

    #[test]
    fn a_typo_is_an_error() {
        let err = PgoConfig::from_yaml("Pgo:\n  AutofailSleepSecs: 9\n").unwrap_err();
        assert!(err.to_string().contains("AutofailSleepSecs"), "{err}");
    }
}
