#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The scenarios against a real Kubernetes cluster: the one in KUBECONFIG,
//! with pgo deployed by `kubectl apply -k deploy/` (see docs/KUBERNETES.md).
//! They write Pgclusters and Pgtasks as the apiserver would and watch the
//! operator in the cluster act on them. Run them with
//! `cargo test -p pgo-kube --test cluster -- --ignored --test-threads=1`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::api::{Api as KubeApi, ListParams};
use pgo_api::cluster::{ClusterPhase, MemberRole};
use pgo_api::rest::CreateClusterRequest;
use pgo_api::{Pgcluster, PgclusterStatus, Pgtask, labels};
use pgo_kube::store::KubeStore;
use pgo_store::Api;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Cluster {
    client: kube::Client,
    ns: String,
    store: Arc<KubeStore>,
}

async fn connect() -> Cluster {
    let client = pgo_kube::client().await.expect("no cluster in KUBECONFIG");
    let ns = std::env::var("PGO_NAMESPACE").unwrap_or_else(|_| "pgo".into());
    let store = Arc::new(KubeStore::new(client.clone(), &ns));
    Cluster { client, ns, store }
}

impl Cluster {
    fn api<K>(&self) -> KubeApi<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        KubeApi::namespaced(self.client.clone(), &self.ns)
    }

    fn clusters(&self) -> Api<Pgcluster> {
        Api::new(self.store.clone())
    }

    async fn create(&self, name: &str, replicas: u32) {
        self.remove(name).await;
        let request = CreateClusterRequest {
            name: name.into(),
            replica_count: Some(replicas),
            ..Default::default()
        };
        let spec = pgo_core::validate::create_request(
            &request,
            &Default::default(),
            &pgo_core::validate::shipped_strategies(),
            pgo_core::validate::BackupSupport::NONE,
        )
        .unwrap();
        self.clusters().create(&Pgcluster::new(name, spec)).await.unwrap();
    }

    async fn status(&self, name: &str) -> PgclusterStatus {
        self.clusters()
            .get_opt(name)
            .await
            .unwrap()
            .and_then(|c| c.status)
            .unwrap_or_default()
    }

    async fn ready(&self, name: &str, replicas: usize) -> PgclusterStatus {
        wait(
            &format!("cluster {name} ready with {replicas} replicas"),
            600,
            || async {
                let s = self.status(name).await;
                let ok = s.phase == ClusterPhase::Ready
                    && s.members.len() == replicas + 1
                    && s.members.iter().all(|m| m.ready);
                ok.then_some(s)
            },
        )
        .await
    }

    async fn pods(&self, instance: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(&format!("pgo-instance={instance}")))
            .await
            .unwrap()
            .items
    }

    /// Deletes the cluster with its data and waits for the data to go.
    async fn remove(&self, name: &str) {
        let Some(mut c) = self.clusters().get_opt(name).await.unwrap() else {
            return;
        };
        c.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(labels::DELETE_DATA.into(), "true".into());
        let _ = self.clusters().replace(&c).await;
        let _ = self.clusters().delete(name).await;
        let pvcs = self.api::<PersistentVolumeClaim>();
        wait(&format!("cluster {name} and its PVCs gone"), 300, || async {
            let gone = self.clusters().get_opt(name).await.unwrap().is_none();
            let left = pvcs
                .list(&ListParams::default().labels(&format!("{}={name}", labels::CLUSTER)))
                .await
                .unwrap()
                .items;
            (gone && left.is_empty()).then_some(())
        })
        .await;
    }
}

fn a_replica(s: &PgclusterStatus) -> String {
    let replica = s.members.iter().find(|m| m.role == MemberRole::Replica);
    replica.expect("no replica").name.clone()
}

async fn wait<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {seconds}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn create_makes_a_deployment_a_pvc_and_services() {
    let k = connect().await;
    k.create("it-create", 0).await;
    k.ready("it-create", 0).await;
    assert!(
        k.api::<Deployment>()
            .get_opt("it-create")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        k.api::<PersistentVolumeClaim>()
            .get_opt("it-create")
            .await
            .unwrap()
            .is_some()
    );
    for s in ["it-create", "it-create-replica"] {
        assert!(
            k.api::<Service>().get_opt(s).await.unwrap().is_some(),
            "service {s}"
        );
    }
    let pods = k.pods("it-create").await;
    assert_eq!(pods.len(), 1);
    let l = pods[0].metadata.labels.clone().unwrap();
    assert_eq!(l[labels::ROLE], "primary");
    assert_eq!(l[labels::CLUSTER], "it-create");
    k.remove("it-create").await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn scale_adds_a_replica_deployment() {
    let k = connect().await;
    k.create("it-scale", 0).await;
    k.ready("it-scale", 0).await;
    let mut c = k.clusters().get("it-scale").await.unwrap();
    c.spec.replicas = 1;
    k.clusters().replace(&c).await.unwrap();
    let s = k.ready("it-scale", 1).await;
    let replica = s.members.iter().find(|m| m.role == MemberRole::Replica).unwrap();
    assert!(
        k.api::<Deployment>()
            .get_opt(&replica.name)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.members
            .iter()
            .find(|m| m.name == replica.name)
            .unwrap()
            .lag_bytes,
        Some(0)
    );
    k.remove("it-scale").await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn failover_promotes_and_relabels_and_keeps_the_old_pvc() {
    let k = connect().await;
    k.create("it-failover", 1).await;
    let s = k.ready("it-failover", 1).await;
    let target = a_replica(&s);
    let order = pgo_core::failover::Order {
        from: "it-failover".into(),
        target: target.clone(),
        reason: "test".into(),
        replace: true,
        replicas: Some(1),
        rejoin: false,
    };
    let task = pgo_core::failover::task("it-failover", &order);
    Api::<Pgtask>::new(k.store.clone()).create(&task).await.unwrap();
    wait("the failover", 600, || async {
        let s = k.status("it-failover").await;
        let ok = s.primary.as_deref() == Some(target.as_str())
            && s.failovers.len() == 1
            && s.members.len() == 2
            && s.members.iter().all(|m| m.ready && m.name != "it-failover");
        ok.then_some(())
    })
    .await;
    assert!(
        k.api::<Deployment>()
            .get_opt("it-failover")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        k.api::<PersistentVolumeClaim>()
            .get_opt("it-failover")
            .await
            .unwrap()
            .is_some()
    );
    let pods = k.pods(&target).await;
    assert_eq!(pods[0].metadata.labels.clone().unwrap()[labels::ROLE], "primary");
    k.remove("it-failover").await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn delete_with_data_runs_the_rmdata_job_and_removes_the_pvc() {
    let k = connect().await;
    k.create("it-delete", 0).await;
    k.ready("it-delete", 0).await;
    k.remove("it-delete").await;
    assert!(
        k.api::<PersistentVolumeClaim>()
            .get_opt("it-delete")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        k.api::<Job>()
            .get_opt("it-delete-rmdata")
            .await
            .unwrap()
            .is_none()
    );
    let task = Api::<Pgtask>::new(k.store.clone())
        .get("it-delete-rmdata")
        .await
        .unwrap();
    assert_eq!(task.status.unwrap().phase, "Succeeded");
}

/// Sets the operator's `PGO_INSTANCE_IMAGE` and waits for its rollout.
async fn set_instance_image(k: &Cluster, image: &str) {
    use kube::api::{Patch, PatchParams};
    let patch = serde_json::json!({ "spec": { "template": { "spec": { "containers": [{
        "name": "operator",
        "env": [{ "name": "PGO_INSTANCE_IMAGE", "value": image }],
    }] } } } });
    k.api::<Deployment>()
        .patch(
            "postgres-operator",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .unwrap();
    wait("the operator's rollout", 300, || async {
        let d = k.api::<Deployment>().get("postgres-operator").await.unwrap();
        let s = d.status.unwrap_or_default();
        let done = s.observed_generation == d.metadata.generation
            && s.updated_replicas == d.spec.and_then(|s| s.replicas)
            && s.unavailable_replicas.unwrap_or(0) == 0;
        done.then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_new_instance_image_is_rolled_out_one_member_at_a_time() {
    let k = connect().await;
    k.create("it-roll", 1).await;
    let before = k.ready("it-roll", 1).await;
    let replica = a_replica(&before);
    let operator = k.api::<Deployment>().get("postgres-operator").await.unwrap();
    let image = operator.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.name == "PGO_INSTANCE_IMAGE")
        .and_then(|e| e.value)
        .expect("deploy/operator.yaml pins PGO_INSTANCE_IMAGE");
    // The same image under another spelling: a new pod template, and no
    // other image to pull.
    let other = match image.strip_prefix("docker.io/") {
        Some(short) => short.to_string(),
        None => format!("docker.io/{image}"),
    };
    set_instance_image(&k, &other).await;
    let after = wait("the rolling update", 900, || async {
        let s = k.status("it-roll").await;
        let done = s.phase == ClusterPhase::Ready
            && s.failovers.len() == 1
            && s.members.len() == 2
            && s.members.iter().all(|m| m.ready && !m.outdated);
        done.then_some(s)
    })
    .await;
    set_instance_image(&k, &image).await;
    assert_eq!(after.primary.as_deref(), Some(replica.as_str()));
    assert!(after.failovers[0].reason.starts_with("rolling update"));
    let old = after.members.iter().find(|m| m.name == "it-roll").unwrap();
    assert_eq!(
        old.role,
        MemberRole::Replica,
        "the old primary is back as a replica"
    );
    for name in ["it-roll", replica.as_str()] {
        let pod = k.pods(name).await.into_iter().next().unwrap();
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some(other.as_str())
        );
    }
    k.remove("it-roll").await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn the_api_server_refuses_what_the_crd_rules_forbid() {
    let k = connect().await;
    k.create("it-cel", 0).await;
    k.ready("it-cel", 0).await;
    let invalid = |e: pgo_store::StoreError| format!("{e}");
    let mut c = k.clusters().get("it-cel").await.unwrap();
    c.spec.database = "another".into();
    let err = k.clusters().replace(&c).await.map(|_| ()).map_err(invalid);
    assert!(err.is_err(), "the database changed after creation: {err:?}");
    let mut c = k.clusters().get("it-cel").await.unwrap();
    c.spec.primary_storage.size = "x".repeat(40);
    let err = k.clusters().replace(&c).await.map(|_| ()).map_err(invalid);
    assert!(err.is_err(), "a size of 40 characters: {err:?}");
    let mut bad = k.clusters().get("it-cel").await.unwrap();
    bad.metadata = kube::api::ObjectMeta {
        name: Some("it-cel-port".into()),
        ..Default::default()
    };
    bad.status = None;
    bad.spec.port = 0;
    let err = k.clusters().create(&bad).await.map(|_| ()).map_err(invalid);
    assert!(err.is_err(), "port 0: {err:?}");
    k.remove("it-cel").await;
}
