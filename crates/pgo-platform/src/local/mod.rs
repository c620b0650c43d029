//! The local platform: one machine, no Kubernetes. A volume is a directory,
//! a secret a directory of files (as a Kubernetes secret is mounted), an
//! instance a detached `postgres-operator instance` process, a service a TCP
//! proxy inside the server on a port that stays the same across restarts.
//!
//! Instances are detached from the server (their own process group), so a
//! server that stops or is killed leaves PostgreSQL serving; the next server
//! adopts them from the pid files below.

mod config_maps;
mod files;
mod instances;
mod jobs;
mod layout;
mod manager_http;
pub mod ports;
mod process;
mod proxy;
mod secrets;
mod volumes;

pub use layout::Layout;
pub use process::{descendants, is_alive, kill_instance_processes};

use crate::{Credentials, Endpoint, InstanceObservation, Platform, PlatformError, VolumeInfo, VolumeUsage};
use pgo_core::desired::{InstanceSpec, SecretSpec, ServiceSpec, VolumeSpec};
use pgo_core::job::{JobSpec, JobState};
use std::path::PathBuf;

/// Settings of the local platform.
#[derive(Clone, Debug)]
pub struct LocalSettings {
    /// The server's home: secrets, instance records, service records.
    pub home: PathBuf,
    /// Where volumes go (`<home>/volumes` unless told otherwise).
    pub data_dir: PathBuf,
    /// The `postgres-operator` binary instances run.
    pub exe: PathBuf,
    /// PostgreSQL binaries, when not found on their own.
    pub pg_bin_dir: Option<PathBuf>,
    /// The instance managers' readiness probe.
    pub probe: pgo_api::instance::ProbeSettings,
    /// Where instance and service ports come from (`Pgo.LocalPortRange`).
    pub port_range: std::ops::RangeInclusive<u16>,
}

pub struct LocalPlatform {
    layout: Layout,
    settings: LocalSettings,
    node: String,
    proxies: proxy::Proxies,
    http: manager_http::ManagerHttp,
    hung: instances::Hung,
    ports: std::sync::Arc<ports::Ports>,
    /// Secrets made or found by this process: made once and never changed,
    /// so a pass need not look for their files again. Only `remove_secret`
    /// takes one away.
    secrets: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl LocalPlatform {
    pub fn new(settings: LocalSettings) -> Result<Self, PlatformError> {
        let layout = Layout::new(&settings.home, &settings.data_dir);
        layout.create()?;
        let node = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        let http = manager_http::ManagerHttp::new();
        let existing = instances::ports_in_use(&layout)?
            .into_iter()
            .chain(proxy::ports_in_use(&layout)?);
        let ports = std::sync::Arc::new(ports::Ports::open(
            settings.port_range.clone(),
            settings.home.clone(),
            ports::claims_dir(),
            existing,
        )?);
        Ok(LocalPlatform {
            proxies: proxy::Proxies::new(layout.clone(), ports.clone()),
            ports,
            layout,
            settings,
            node,
            http,
            hung: instances::Hung::default(),
            secrets: std::sync::Mutex::default(),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

#[async_trait::async_trait]
impl Platform for LocalPlatform {
    fn name(&self) -> &'static str {
        "local"
    }

    fn pg_bin_dir(&self) -> Option<PathBuf> {
        self.settings.pg_bin_dir.clone()
    }

    async fn nodes(&self) -> Result<Vec<String>, PlatformError> {
        Ok(vec![self.node.clone()])
    }

    fn backup_support(&self) -> pgo_core::validate::BackupSupport {
        pgo_core::validate::BackupSupport::ALL
    }

    fn runs_copies(&self) -> bool {
        true
    }

    async fn ensure_volume(&self, spec: &VolumeSpec) -> Result<(), PlatformError> {
        volumes::ensure(&self.layout, spec)
    }

    async fn volumes(&self) -> Result<Vec<VolumeInfo>, PlatformError> {
        volumes::list(&self.layout)
    }

    async fn remove_volume(&self, name: &str) -> Result<(), PlatformError> {
        volumes::remove(&self.layout, name)
    }

    async fn volume_usage(&self, name: &str) -> Result<Option<VolumeUsage>, PlatformError> {
        let layout = self.layout.clone();
        let name = name.to_string();
        // Walking a data directory is disk work: off the async workers.
        tokio::task::spawn_blocking(move || volumes::usage(&layout, &name))
            .await
            .map_err(|e| PlatformError::Invalid(e.to_string()))?
    }

    async fn ensure_secret(&self, spec: &SecretSpec) -> Result<(), PlatformError> {
        if self.secrets.lock().is_ok_and(|s| s.contains(&spec.name)) {
            return Ok(());
        }
        secrets::ensure(&self.layout, spec)?;
        if let Ok(mut s) = self.secrets.lock() {
            s.insert(spec.name.clone());
        }
        Ok(())
    }

    async fn read_secret(&self, name: &str) -> Result<Option<Credentials>, PlatformError> {
        secrets::read(&self.layout, name)
    }

    async fn remove_secret(&self, name: &str) -> Result<(), PlatformError> {
        if let Ok(mut s) = self.secrets.lock() {
            s.remove(name);
        }
        files::remove_dir(&self.layout.secret(name))
    }

    async fn volume_users(&self, name: &str) -> Result<Vec<String>, PlatformError> {
        instances::users_of(&self.layout, &self.layout.volume(name))
    }

    async fn ensure_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError> {
        instances::ensure(
            &self.layout,
            &self.settings,
            &self.http,
            &self.hung,
            &self.ports,
            spec,
        )
        .await
    }

    async fn observe_instance(&self, name: &str) -> Result<Option<InstanceObservation>, PlatformError> {
        instances::observe(&self.layout, &self.http, &self.hung, &self.node, name).await
    }

    /// A new manager and PostgreSQL, on the same data, ports and config.
    async fn restart_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError> {
        instances::stop_manager(&self.layout, &spec.name).await;
        self.hung.forget(&spec.name);
        self.ensure_instance(spec).await
    }

    async fn remove_instance(&self, name: &str) -> Result<(), PlatformError> {
        self.hung.forget(name);
        instances::remove(&self.layout, name).await?;
        self.ports.release(&instances::port_owner(name, ""))
    }

    async fn fence_instance(&self, name: &str) -> Result<(), PlatformError> {
        self.hung.forget(name);
        instances::fence(&self.layout, name).await?;
        self.ports.release(&instances::port_owner(name, ""))
    }

    async fn drop_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError> {
        instances::slot(&self.layout, &self.http, primary, slot, "/control/drop-slot").await
    }

    async fn create_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError> {
        instances::slot(&self.layout, &self.http, primary, slot, "/control/create-slot").await
    }

    async fn promote_instance(&self, name: &str) -> Result<(), PlatformError> {
        instances::promote(&self.layout, &self.http, name).await
    }

    async fn ensure_service(&self, spec: &ServiceSpec) -> Result<Endpoint, PlatformError> {
        let mut targets = Vec::new();
        for name in &spec.targets {
            if let Some(config) = instances::config(&self.layout, name)? {
                targets.push(std::net::SocketAddr::new(
                    config.listen_address.parse().map_err(|e| {
                        PlatformError::Invalid(format!("instance {name}: bad listen address: {e}"))
                    })?,
                    config.port,
                ));
            }
        }
        self.proxies.ensure(&spec.name, &spec.cluster, targets).await
    }

    async fn remove_service(&self, name: &str) -> Result<(), PlatformError> {
        self.proxies.remove(name).await
    }

    async fn start_job(&self, job: &JobSpec) -> Result<(), PlatformError> {
        jobs::start(&self.layout, &self.settings, job).await
    }

    async fn job_state(&self, name: &str) -> Result<Option<JobState>, PlatformError> {
        jobs::state(&self.layout, name)
    }

    async fn remove_job(&self, name: &str) -> Result<(), PlatformError> {
        jobs::remove(&self.layout, name)
    }

    async fn put_config_map(
        &self,
        name: &str,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), PlatformError> {
        config_maps::put(&self.layout, name, data)
    }

    async fn config_map(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, PlatformError> {
        config_maps::get(&self.layout, name)
    }

    async fn config_maps(&self) -> Result<Vec<String>, PlatformError> {
        config_maps::list(&self.layout)
    }

    async fn remove_config_map(&self, name: &str) -> Result<(), PlatformError> {
        config_maps::remove(&self.layout, name)
    }
}
