//! `pgo.yaml`: defaults for new clusters and operator settings, in the
//! original's key spelling (`Cluster.Strategy`, `Pgo.AutofailSleepSeconds`).

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct PgoConfig {
    pub cluster: ClusterDefaults,
    pub pgo: OperatorSettings,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct ClusterDefaults {
    pub strategy: String,
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

impl PgoConfig {
    /// Parses `pgo.yaml`; unknown keys are an error so a typo is not silently ignored.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        if text.trim().is_empty() {
            return Ok(PgoConfig::default());
        }
        serde_yaml::from_str(text)
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
    fn a_typo_is_an_error() {
        let err = PgoConfig::from_yaml("Pgo:\n  AutofailSleepSecs: 9\n").unwrap_err();
        assert!(err.to_string().contains("AutofailSleepSecs"), "{err}");
    }
}
