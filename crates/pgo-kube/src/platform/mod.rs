//! The Kubernetes platform: what the operator decides, as Kubernetes
//! objects rendered from the strategy templates. A volume is a PVC, an
//! instance a ConfigMap and a Deployment (never a StatefulSet), a service a
//! Service that selects pods by their role label. Promotion and slots go
//! through the instance manager's authenticated endpoints on the pod.

mod apply;
pub mod ca;
mod cache;
mod config_maps;
mod events;
mod instances;
mod jobs;
pub mod managers;
mod pods;
mod reads;
mod repo_host;
mod rmdata;
mod secrets;
mod seeds;
pub mod stopping;
mod volumes;

pub use managers::{HttpManagers, MANAGER_PORT, ManagerAddr, Managers};

use crate::Templates;
use crate::render::{self, RenderOptions};
use apply::{Applied, api_error, not_ours, ours};
use cache::Caches;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, ListParams, PostParams};
use pgo_api::cluster::MemberRole;
use pgo_api::labels;
use pgo_core::desired::{self, DesiredCluster, InstanceSpec, SecretSpec, ServiceSpec, VolumeSpec};
use pgo_platform::{
    Credentials, Endpoint, InstanceObservation, Platform, PlatformError, VolumeInfo, VolumeUsage,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct KubePlatform {
    client: kube::Client,
    templates: Templates,
    opts: RenderOptions,
    managers: Arc<dyn Managers>,
    /// Signs each instance manager's certificate.
    ca: Arc<ca::InstanceCa>,
    applied: Applied,
    /// The config last pushed to each instance's manager.
    pushed: Mutex<HashMap<String, String>>,
    /// The stamp of the pod template each instance would get now
    /// ([`render::POD_TEMPLATE`]), as its last ensure rendered it.
    stamps: Mutex<HashMap<String, String>>,
    /// What was told once already ("PVC=size" not shrunk).
    told: Mutex<std::collections::HashSet<String>>,
    /// What pgo made, kept current by watches; `None` reads the API server.
    caches: Option<Caches>,
}

impl KubePlatform {
    /// `opts.namespace` is where everything is made; `ca` signs the
    /// managers' certificates (the one `managers` trusts).
    pub fn new(
        client: kube::Client,
        templates: Templates,
        opts: RenderOptions,
        managers: Arc<dyn Managers>,
        ca: Arc<ca::InstanceCa>,
    ) -> Self {
        KubePlatform {
            client,
            templates,
            opts,
            managers,
            ca,
            applied: Applied::default(),
            pushed: Mutex::new(HashMap::new()),
            stamps: Mutex::new(HashMap::new()),
            told: Mutex::new(Default::default()),
            caches: None,
        }
    }

    /// Reads what pgo made from caches fed by watches, so a steady pass
    /// makes no request: for an API server that serves watches.
    pub fn with_caches(mut self) -> Self {
        self.caches = Some(Caches::new(&self.client, &self.opts.namespace));
        self
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.opts.namespace)
    }
}

pub(crate) fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(crate::store::FIELD_MANAGER.to_string()),
    }
}

#[async_trait::async_trait]
impl Platform for KubePlatform {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    /// Those with a complete template set, shipped or added in operator-conf.
    fn strategies(&self) -> Vec<String> {
        self.templates.strategies()
    }

    async fn nodes(&self) -> Result<Vec<String>, PlatformError> {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| api_error("listing nodes", e))?;
        Ok(nodes.items.into_iter().filter_map(|n| n.metadata.name).collect())
    }

    async fn check(&self, want: &DesiredCluster) -> Result<(), PlatformError> {
        let invalid = |e: render::RenderError| PlatformError::Invalid(e.to_string());
        for i in &want.instances {
            if let Some(from) = seeds::wanted(i) {
                seeds::render(self, i, &from).map_err(invalid)?;
            }
        }
        if let Some(i) = want.instances.iter().find(|i| i.backrest.is_some()) {
            crate::repo_host::render(&self.templates, &self.opts, i).map_err(invalid)?;
        }
        for v in &want.volumes {
            render::render_volume(&self.templates, &self.opts, v).map_err(invalid)?;
        }
        for i in &want.instances {
            render::render_instance(&self.templates, &self.opts, i, i.role).map_err(invalid)?;
        }
        if let Some(i) = want.instances.first() {
            let spec = pgo_api::cluster::PgclusterSpec {
                port: i.port,
                strategy: i.strategy.clone(),
                ..Default::default()
            };
            for s in desired::services(&i.cluster, &spec, &i.name, &[]) {
                render::render_service(&self.templates, &self.opts, &s).map_err(invalid)?;
            }
        }
        Ok(())
    }

    async fn ensure_volume(&self, spec: &VolumeSpec) -> Result<(), PlatformError> {
        let pvc = render::render_volume(&self.templates, &self.opts, spec)
            .map_err(|e| PlatformError::Invalid(e.to_string()))?;
        let api: Api<PersistentVolumeClaim> = self.api();
        let what = format!("PVC {}", spec.name);
        // Made once; afterwards only its size changes, and only upward (a
        // claim cannot shrink; its storage class must allow expansion).
        match self.get_opt::<PersistentVolumeClaim>(&spec.name).await? {
            Some(current) if ours(&current.metadata) => self.grow_volume(&current, spec).await,
            Some(_) => Err(not_ours("PersistentVolumeClaim", &spec.name)),
            None => match api.create(&post_params(), &pvc).await {
                Ok(made) => {
                    self.wrote(made);
                    tracing::info!(pvc = %spec.name, "created PVC");
                    Ok(())
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(api_error(&format!("creating {what}"), e)),
            },
        }
    }

    async fn volumes(&self) -> Result<Vec<VolumeInfo>, PlatformError> {
        let claims = self.list_ours::<PersistentVolumeClaim>(None).await?;
        Ok(claims
            .into_iter()
            .map(|p| {
                let name = p.metadata.name.clone().unwrap_or_default();
                VolumeInfo {
                    cluster: p
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::CLUSTER).cloned())
                        .unwrap_or_default(),
                    location: format!("pvc/{name}"),
                    name,
                }
            })
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), PlatformError> {
        rmdata::remove(self, name).await
    }

    async fn volume_usage(&self, name: &str) -> Result<Option<VolumeUsage>, PlatformError> {
        if self.get_opt::<PersistentVolumeClaim>(name).await?.is_none() {
            return Ok(None);
        }
        let pods = self.list_ours::<Pod>(None).await?;
        let mounts = |p: &Pod| {
            p.spec.as_ref().is_some_and(|s| {
                s.volumes.iter().flatten().any(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .is_some_and(|c| c.claim_name == name)
                })
            })
        };
        let Some((pod, at)) = pods
            .iter()
            .filter(|p| mounts(p) && pods::running(p) && !pods::terminating(p))
            .find_map(|p| pods::manager(p).map(|at| (p, at)))
        else {
            return Err(PlatformError::Invalid(format!(
                "no running pod mounts PVC {name}: its usage is read from inside the pod"
            )));
        };
        let mut usage = self
            .managers
            .volume(&at)
            .await
            .map_err(|e| PlatformError::Invalid(format!("pod {}: {e}", pods::name(pod))))?;
        usage.name = name.to_string();
        Ok(Some(usage))
    }

    async fn ensure_secret(&self, spec: &SecretSpec) -> Result<(), PlatformError> {
        secrets::ensure_user(self, spec).await
    }

    async fn read_secret(&self, name: &str) -> Result<Option<Credentials>, PlatformError> {
        secrets::read_user(self, name).await
    }

    async fn ensure_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError> {
        instances::ensure(self, spec, instances::Rollout::Held).await
    }

    async fn restart_instance(&self, spec: &InstanceSpec) -> Result<(), PlatformError> {
        instances::ensure(self, spec, instances::Rollout::Now).await
    }

    async fn observe_instance(&self, name: &str) -> Result<Option<InstanceObservation>, PlatformError> {
        instances::observe(self, name).await
    }

    async fn remove_instance(&self, name: &str) -> Result<(), PlatformError> {
        instances::remove(self, name).await
    }

    async fn drop_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError> {
        instances::slot(self, primary, slot, "/control/drop-slot").await
    }

    async fn create_replication_slot(&self, primary: &str, slot: &str) -> Result<(), PlatformError> {
        instances::slot(self, primary, slot, "/control/create-slot").await
    }

    async fn promote_instance(&self, name: &str) -> Result<(), PlatformError> {
        instances::promote(self, name).await
    }

    async fn ensure_service(&self, spec: &ServiceSpec) -> Result<Endpoint, PlatformError> {
        let service = render::render_service(&self.templates, &self.opts, spec)
            .map_err(|e| PlatformError::Invalid(e.to_string()))?;
        self.apply(&service).await?;
        if spec.role == MemberRole::Primary {
            // One per cluster, made with its primary Service.
            let budget =
                render::render_disruption_budget(&self.opts, &spec.cluster, spec.owner_uid.as_deref());
            self.apply(&budget).await?;
            let policy = render::render_network_policy(
                &self.opts,
                &spec.cluster,
                spec.owner_uid.as_deref(),
                spec.port,
                spec.metrics,
                spec.backrest,
            );
            self.apply(&policy).await?;
        }
        Ok(Endpoint {
            host: format!("{}.{}.svc", spec.name, self.opts.namespace),
            port: spec.port,
        })
    }

    async fn remove_secret(&self, name: &str) -> Result<(), PlatformError> {
        self.delete_ours::<Secret>(name).await
    }

    /// Pods and Deployments, from their caches' watches: a pod that stops
    /// being ready triggers its cluster at once, not at the next probe; a
    /// Deployment deleted by hand is made again at once. The feed ends with
    /// the platform.
    fn changes(
        &self,
        _stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        let caches = self.caches.as_ref()?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        caches.pods.feed(tx.clone());
        caches.deployments.feed(tx);
        Some(rx)
    }

    async fn record_event(&self, event: &pgo_core::event::Event) -> Result<(), PlatformError> {
        events::record(self, event).await
    }

    fn runs_copies(&self) -> bool {
        true
    }

    /// Archiving, backups (from a replica too) and restores through the
    /// cluster's repository host; restores into new volumes, clusters from
    /// copies and from a deleted cluster's repository by Jobs.
    fn backup_support(&self) -> pgo_core::validate::BackupSupport {
        pgo_core::validate::BackupSupport::ALL
    }

    async fn start_job(&self, job: &pgo_core::job::JobSpec) -> Result<(), PlatformError> {
        jobs::start(self, job).await
    }

    async fn job_state(&self, name: &str) -> Result<Option<pgo_core::job::JobState>, PlatformError> {
        jobs::state(self, name).await
    }

    async fn remove_job(&self, name: &str) -> Result<(), PlatformError> {
        jobs::remove(self, name).await
    }

    async fn put_config_map(
        &self,
        name: &str,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), PlatformError> {
        config_maps::put(self, name, data).await
    }

    async fn config_map(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, PlatformError> {
        config_maps::get(self, name).await
    }

    async fn config_maps(&self) -> Result<Vec<String>, PlatformError> {
        config_maps::list(self).await
    }

    async fn remove_config_map(&self, name: &str) -> Result<(), PlatformError> {
        config_maps::remove(self, name).await
    }

    async fn remove_service(&self, name: &str) -> Result<(), PlatformError> {
        self.delete_ours::<Service>(name).await?;
        self.applied.forget("Service", name);
        Ok(())
    }
}
