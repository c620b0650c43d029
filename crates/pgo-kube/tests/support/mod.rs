#![allow(dead_code)]
//! The controllers' world on Kubernetes, in memory: the fake API server,
//! fake instance managers, and the operator's Context over them.

pub use pgo_kube_fake as fake_api;
pub mod fake_managers;
pub mod rbac;

use fake_api::FakeApi;
use fake_managers::FakeManagers;
use pgo_api::config::PgoConfig;
use pgo_api::rest::CreateClusterRequest;
use pgo_api::{Pgcluster, PgclusterStatus};
use pgo_kube::platform::ca::InstanceCa;
use pgo_kube::platform::{HttpManagers, MANAGER_PORT, Managers};
use pgo_kube::store::KubeStore;
use pgo_kube::{KubePlatform, RenderOptions, Templates};
use pgo_operator::cluster::{Action, reconcile};
use pgo_operator::{Context, Hooks};
use pgo_store::Api;
use std::sync::Arc;

pub struct World {
    pub api: FakeApi,
    pub managers: Arc<FakeManagers>,
    pub ca: Arc<InstanceCa>,
    pub ctx: Arc<Context>,
    /// Another operator over the same API server and managers.
    operator: Box<dyn Fn(PgoConfig, Hooks) -> Arc<Context> + Send + Sync>,
}

#[derive(Clone, Copy, PartialEq)]
enum Wiring {
    /// In process; the test steps the operator.
    Stepped,
    /// The operator's HTTPS client and managers serving from pod Secrets.
    Https,
    /// Over HTTP, where watches work: for the operator's own runtime.
    Watched,
}

/// pgo.yaml's defaults without pgBackRest: these worlds try the spine,
/// whose objects and calls the tests count. `config_mut().cluster.backrest`
/// brings the repository host back (pgo.yaml's default).
pub fn spine_config() -> PgoConfig {
    let mut config = PgoConfig::default();
    config.cluster.backrest = false;
    config
}

impl World {
    pub fn new() -> Self {
        Self::with_templates(Templates::embedded())
    }

    pub fn with_templates(templates: Templates) -> Self {
        Self::build(templates, Wiring::Stepped)
    }

    /// For `pgo_operator::run`: the API over HTTP (watches), stand-in managers.
    pub fn watched(config: PgoConfig) -> Self {
        let mut w = Self::build(Templates::embedded(), Wiring::Watched);
        *w.config_mut() = config;
        w
    }

    /// The operator's real HTTPS client, and a manager on every pod's IP
    /// serving with the certificate and token of the Secret the pod mounts.
    pub fn over_https() -> Self {
        Self::build(Templates::embedded(), Wiring::Https)
    }

    fn build(templates: Templates, wiring: Wiring) -> Self {
        let api = FakeApi::new(&["node-a", "node-b"]);
        let client = if wiring == Wiring::Watched {
            api.http_client()
        } else {
            api.client()
        };
        let https = wiring == Wiring::Https;
        let fakes = Arc::new(FakeManagers::default());
        let opts = RenderOptions {
            namespace: fake_api::NS.into(),
            ..RenderOptions::default()
        };
        let ca = InstanceCa::new(client.clone(), fake_api::NS);
        let managers: Arc<dyn Managers> = if https {
            api.serve_managers();
            Arc::new(HttpManagers::new(MANAGER_PORT, ca.clone()).unwrap())
        } else {
            fakes.clone()
        };
        let operator = {
            let ca = ca.clone();
            move |config: PgoConfig, hooks: Hooks| {
                let mut platform = KubePlatform::new(
                    client.clone(),
                    templates.clone(),
                    opts.clone(),
                    managers.clone(),
                    ca.clone(),
                );
                if wiring == Wiring::Watched {
                    platform = platform.with_caches();
                }
                let mut store: Arc<dyn pgo_store::Store> =
                    Arc::new(KubeStore::new(client.clone(), fake_api::NS));
                if wiring == Wiring::Watched {
                    store = pgo_operator::cached(store);
                }
                Arc::new(Context::new(store, Arc::new(platform), config).with_hooks(hooks))
            }
        };
        World {
            api,
            managers: fakes,
            ca,
            ctx: operator(spine_config(), Hooks::default()),
            operator: Box::new(operator),
        }
    }

    /// A new operator over the same world, as after a restart.
    pub fn operator(&self, hooks: Hooks) -> Arc<Context> {
        (self.operator)(self.ctx.config.clone(), hooks)
    }

    /// The operator's config, before it runs.
    pub fn config_mut(&mut self) -> &mut PgoConfig {
        &mut Arc::get_mut(&mut self.ctx)
            .expect("the operator is running: its config is fixed")
            .config
    }

    /// A stand-in kubelet stepping every `period` until `stop`.
    pub fn kubelet_every(&self, period: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let api = self.api.clone();
        tokio::spawn(async move {
            loop {
                api.kubelet();
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// The primary of `instance` fails as the kubelet sees a hung manager:
    /// `/status` times out and the pod's readiness probe fails.
    pub fn hang_manager(&self, instance: &str) {
        let ip = self.api.kubelet()[instance].clone();
        self.managers.hung.lock().unwrap().insert(ip);
        let pods = self.api.list(fake_api::PODS);
        let pod = pods
            .iter()
            .find(|p| p["metadata"]["labels"]["pgo-instance"] == instance)
            .and_then(|p| p["metadata"]["name"].as_str())
            .unwrap_or_else(|| panic!("no pod of instance {instance}"))
            .to_string();
        self.api.patch(
            fake_api::PODS,
            &pod,
            serde_json::json!({ "status": { "conditions": [{ "type": "Ready", "status": "False",
                "reason": "ContainersNotReady", "message": "Readiness probe failed: context deadline exceeded" }] } }),
        );
    }

    pub fn clusters(&self) -> Api<Pgcluster> {
        Api::new(self.ctx.store.clone())
    }

    /// Stores a cluster as the apiserver would for this request.
    pub async fn create(&self, request: CreateClusterRequest) -> Pgcluster {
        let spec = pgo_core::validate::create_request(
            &request,
            &self.ctx.config,
            &self.ctx.platform.strategies(),
            self.ctx.platform.backup_support(),
        )
        .unwrap();
        self.clusters()
            .create(&Pgcluster::new(&request.name, spec))
            .await
            .unwrap()
    }

    /// One reconcile of `name`, then the kubelet.
    pub async fn pass(&self, name: &str) -> Result<Action, pgo_operator::cluster::ReconcileError> {
        let r = reconcile(&self.ctx, name).await;
        self.api.kubelet();
        r
    }

    /// Reconciles until `done` holds of the status (at most 60 passes).
    pub async fn until(&self, name: &str, done: impl Fn(&PgclusterStatus) -> bool) -> PgclusterStatus {
        let mut last = None;
        for _ in 0..60 {
            let r = self.pass(name).await;
            let status = self
                .clusters()
                .get(name)
                .await
                .ok()
                .and_then(|c| c.status)
                .unwrap_or_default();
            if done(&status) {
                return status;
            }
            last = Some((r, status));
        }
        panic!("cluster {name} never got there; last pass and status: {last:#?}");
    }

    /// Runs the task controller once.
    pub async fn tasks(&self) {
        pgo_operator::task::controller::pass(&self.ctx).await.unwrap();
    }
}

pub fn request(name: &str) -> CreateClusterRequest {
    CreateClusterRequest {
        name: name.into(),
        ..Default::default()
    }
}

/// The name of a replica in `status`.
pub fn a_replica(status: &PgclusterStatus) -> String {
    status
        .members
        .iter()
        .find(|m| m.role == pgo_api::cluster::MemberRole::Replica)
        .map(|m| m.name.clone())
        .unwrap_or_else(|| panic!("no replica in {status:#?}"))
}

pub fn ready_with(replicas: usize) -> impl Fn(&PgclusterStatus) -> bool {
    move |s| {
        s.phase == pgo_api::cluster::ClusterPhase::Ready
            && s.members.len() == replicas + 1
            && s.members.iter().all(|m| m.ready)
    }
}

/// The task `pgo failover CLUSTER --target=TARGET` records.
pub fn manual_failover(cluster: &str, target: &str, replicas: u32) -> pgo_api::Pgtask {
    let order = pgo_core::failover::Order {
        from: cluster.into(),
        target: target.into(),
        reason: pgo_core::failover::MANUAL.into(),
        replace: true,
        replicas: Some(replicas),
        rejoin: false,
    };
    pgo_core::failover::task(cluster, &order)
}
