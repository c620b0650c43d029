//! How desired objects become real. The operator decides what a cluster
//! should have ([`pgo_core::desired`]); a [`Platform`] realises it: on the
//! local platform a volume is a directory, an instance a detached
//! instance-manager process, a service a TCP proxy; on Kubernetes they are
//! PVCs, Deployments and Services. Every call is idempotent, so a
//! level-triggered controller can make them all on every pass.

mod error_chain;
pub mod local;
pub mod pki;
mod random;

pub use error_chain::error_chain;
pub use pgo_instance::{conf_check, find_pg_bin_dir};
pub use random::{password, suffix};

pub use pgo_api::rest::VolumeUsage;
use pgo_core::desired::{DesiredCluster, InstanceSpec, SecretSpec, ServiceSpec, VolumeSpec};
use pgo_core::job::{JobSpec, JobState};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "service {name}: port {port} is taken by {holder} ({source}); free it or delete the service record {record}"
    )]
    PortInUse {
        name: String,
        port: u16,
        holder: String,
        record: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// Under way (a pod terminating, a Job running): ask again later.
    #[error("{0}")]
    InProgress(String),
    /// Ended in failure that asking again will not change (a Job failed).
    #[error("{0}")]
    Failed(String),
}

impl PlatformError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PlatformError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A volume the platform holds.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeInfo {
    pub name: String,
    pub cluster: String,
    /// Where it is (a directory, or a PVC's name).
    pub location: String,
}

/// Credentials read back from a secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

pub use pgo_core::observed::{Endpoint, InstanceObservation};

#[async_trait::async_trait]
pub trait Platform: Send + Sync + 'static {
    /// `local` or `kubernetes`.
    fn name(&self) -> &'static str;
    async fn nodes(&self) -> Result<Vec<String>, PlatformError>;
    /// The deployment strategies this platform can build.
    fn strategies(&self) -> Vec<String> {
        pgo_core::validate::shipped_strategies()
    }
    /// The PostgreSQL binaries instances here run, when this process knows
    /// them (a custom postgresql.conf is checked with them).
    fn pg_bin_dir(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether it can take pg_basebackup copies as jobs.
    fn runs_copies(&self) -> bool {
        false
    }
    /// What of pgBackRest and restores clusters here can do.
    fn backup_support(&self) -> pgo_core::validate::BackupSupport {
        pgo_core::validate::BackupSupport::NONE
    }
    /// Whether everything `want` holds can be built here, checked before
    /// anything is made (a template that does not render, say).
    async fn check(&self, _want: &DesiredCluster) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn ensure_volume(&self, spec: &VolumeSpec) -> Result<(), PlatformError>;
    async fn volumes(&self) -> Result<Vec<VolumeInfo>, PlatformError>;
    /// Removes a volume with its data. Only after its instance is gone.
    async fn remove_volume(&self, name: &str) -> Result<(), PlatformError>;
    /// `None` when there is no such volume.
    async fn volume_usage(&self, name: &str) -> Result<Option<VolumeUsage>, PlatformError>;
    /// The instances that use a volume. On Kubernetes the API server's own
    /// protection keeps a PVC that a pod mounts, so none are named there.
    async fn volume_users(&self, _name: &str) -> Result<Vec<String>, PlatformError> {
        Ok(vec![])
    }

    /// Creates the secret with a new random password unless it exists.
    async fn ensure_secret(&self, spec: &SecretSpec) -> Result<(), PlatformError>;
    async fn read_secret(&self, name: &str) -> Result<Option<Credentials>, PlatformError>;
    /// Removes a secret (a cluster deleted with its data); gone is done.
    async fn remove_secret(&self, name: &str) -> Result<(), PlatformError>;

    /// Makes sure the instance runs (starting it, or adopting one that runs).
    async fn ensure_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError>;
    /// Makes the instance's process (pod) again from the current template;
    /// where an ensure already does, the same.
    async fn restart_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError> {
        self.ensure_instance(spec).await
    }
    /// `None` when there is no such instance.
    async fn observe_instance(&self, name: &str) -> Result<Option<InstanceObservation>, PlatformError>;
    /// Stops the instance; its volume stays.
    async fn remove_instance(&self, name: &str) -> Result<(), PlatformError>;
    /// Stops an instance that is not healthy, at once: no orderly shutdown
    /// that hung storage would never let finish. Done once it can take no
    /// connection; `InProgress` until then.
    async fn fence_instance(&self, name: &str) -> Result<(), PlatformError> {
        self.remove_instance(name).await
    }
    /// Drops a replica's replication slot on the primary instance.
    async fn drop_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError>;
    /// Makes a replica's slot on the primary instance, unless it exists.
    async fn create_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError>;
    /// Promotes a replica instance to primary (a no-op on a primary).
    async fn promote_instance(&self, name: &str) -> Result<(), PlatformError>;

    /// Opens (or repoints) a service; the same name keeps the same endpoint.
    async fn ensure_service(&self, spec: &ServiceSpec) -> Result<Endpoint, PlatformError>;

    /// The clusters whose running parts changed (a pod that became ready or
    /// not, a Deployment deleted by hand), by name, so that their reconcile
    /// comes at once instead of at the next probe. None where instances are
    /// only observed on the probe timer (the local platform).
    fn changes(
        &self,
        _stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        None
    }

    /// Tells users about a cluster: an Event on Kubernetes. The operator
    /// logs every event too, and on the local platform that is all.
    async fn record_event(&self, _event: &pgo_core::event::Event) -> Result<(), PlatformError> {
        Ok(())
    }
    async fn remove_service(&self, name: &str) -> Result<(), PlatformError>;

    /// Writes a user's ConfigMap (`pgo create configmap`), replacing what
    /// one of that name held.
    async fn put_config_map(
        &self,
        name: &str,
        _data: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), PlatformError> {
        Err(PlatformError::Invalid(format!(
            "configmap {name}: the {} platform keeps no ConfigMaps",
            self.name()
        )))
    }
    /// A ConfigMap's files; `None` when there is no such ConfigMap.
    async fn config_map(
        &self,
        _name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, PlatformError> {
        Ok(None)
    }
    /// The names of the ConfigMaps `pgo create configmap` made.
    async fn config_maps(&self) -> Result<Vec<String>, PlatformError> {
        Ok(vec![])
    }
    /// Removes a user's ConfigMap; gone is done.
    async fn remove_config_map(&self, _name: &str) -> Result<(), PlatformError> {
        Ok(())
    }

    /// Starts a job unless it was started; it runs to its end on its own.
    async fn start_job(&self, job: &JobSpec) -> Result<(), PlatformError> {
        Err(PlatformError::Failed(format!(
            "job {}: the {} platform cannot run this job yet",
            job.name,
            self.name()
        )))
    }
    /// How a job went; `None` when there is no such job.
    async fn job_state(&self, _name: &str) -> Result<Option<JobState>, PlatformError> {
        Ok(None)
    }
    /// Forgets a finished job (its record, its log).
    async fn remove_job(&self, _name: &str) -> Result<(), PlatformError> {
        Ok(())
    }
}
