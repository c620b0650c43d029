#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The operator's controllers on the Kubernetes platform, against an
//! in-memory API server: the same reconcile that runs on the local
//! platform, and the objects it leaves behind.

mod support;

use pgo_api::cluster::{ClusterPhase, MemberRole};
use pgo_api::{Pgcluster, Pgreplica, Pgtask, labels};
use pgo_store::Api;
use serde_json::{Value, json};
use support::fake_api::*;
use support::{World, ready_with, request};

fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn owner_uid(o: &Value) -> Option<&str> {
    o.pointer("/metadata/ownerReferences/0/uid")
        .and_then(Value::as_str)
}

fn pods_of<'a>(pods: &'a [Value], instance: &str) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| label(p, "pgo-instance") == Some(instance))
        .collect()
}

fn affinity(d: &Value) -> (String, String) {
    let e = d
        .pointer("/spec/template/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/preference/matchExpressions/0")
        .expect("no preferred node affinity");
    (
        e["operator"].as_str().unwrap().into(),
        e["values"][0].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn create_makes_a_pvc_secrets_a_configmap_a_deployment_and_two_services() {
    let w = World::new();
    let cluster = w.create(request("db")).await;
    let status = w.until("db", ready_with(0)).await;
    assert_eq!(status.primary.as_deref(), Some("db"));
    // Conditions as `kubectl wait --for=condition=Ready` reads them.
    let raw = w.api.get(PGCLUSTERS, "db").unwrap();
    let conditions: Vec<(String, String)> = raw["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pair = |t: &str, s: &str| (t.to_string(), s.to_string());
    assert_eq!(
        conditions,
        [
            pair("Ready", "True"),
            pair("Progressing", "False"),
            pair("Degraded", "False")
        ]
    );
    assert!(raw["status"]["conditions"][0]["lastTransitionTime"].is_string());
    let uid = w.clusters().get("db").await.unwrap().metadata.uid.unwrap();
    assert!(cluster.metadata.uid.is_some());

    assert_eq!(w.api.names(DEPLOYMENTS), ["db"]);
    assert_eq!(w.api.names(PVCS), ["db"]);
    assert_eq!(w.api.names(CONFIGMAPS), ["db-instance"]);
    assert_eq!(w.api.names(SERVICES), ["db", "db-replica"]);
    assert_eq!(
        w.api.names(SECRETS),
        [
            "db-manager",
            "db-postgres-secret",
            "db-primaryuser-secret",
            "db-testuser-secret",
            "pgo-instance-ca"
        ]
    );
    assert!(
        w.api
            .names("/apis/apps/v1/namespaces/pgo/statefulsets")
            .is_empty()
    );

    let d = w.api.get(DEPLOYMENTS, "db").unwrap();
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(label(&d, labels::CLUSTER), Some("db"));
    assert_eq!(label(&d, labels::ROLE), Some("primary"));
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        json!(["instance", "--config", "/etc/pgo/instance/instance.json"])
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    // Deployments, Services, ConfigMaps go with the cluster; the PVC stays.
    assert_eq!(owner_uid(&d), Some(uid.as_str()));
    assert_eq!(owner_uid(&w.api.get(SERVICES, "db").unwrap()), Some(uid.as_str()));
    assert_eq!(
        owner_uid(&w.api.get(CONFIGMAPS, "db-instance").unwrap()),
        Some(uid.as_str())
    );
    assert_eq!(owner_uid(&w.api.get(PVCS, "db").unwrap()), None);

    // The primary Service selects the primary instance's own label, which
    // its pod carries from the template.
    let svc = w.api.get(SERVICES, "db").unwrap();
    assert_eq!(
        svc["spec"]["selector"],
        json!({ "pg-cluster": "db", "pgo-instance": "db" })
    );
    let pdb = w
        .api
        .get("/apis/policy/v1/namespaces/pgo/poddisruptionbudgets", "db")
        .expect("no PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let policy = w
        .api
        .get("/apis/networking.k8s.io/v1/namespaces/pgo/networkpolicies", "db")
        .expect("no NetworkPolicy");
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"]["pg-cluster"], "db");
    assert_eq!(policy["metadata"]["ownerReferences"][0]["kind"], "Pgcluster");
    let pods = w.api.list(PODS);
    let primary = pods_of(&pods, "db");
    assert_eq!(primary.len(), 1);
    assert_eq!(label(primary[0], labels::ROLE), Some("primary"));
    assert_eq!(label(primary[0], labels::CLUSTER), Some("db"));
    assert_eq!(status.services[0].host, "db.pgo.svc");
    assert_eq!(status.members[0].node, "node-a");
}

#[tokio::test]
async fn node_name_is_a_preferred_affinity_and_scaled_replicas_keep_away_from_it() {
    let w = World::new();
    let mut r = request("db");
    r.node_name = Some("node-b".into());
    w.create(r).await;
    w.until("db", ready_with(0)).await;
    assert_eq!(
        affinity(&w.api.get(DEPLOYMENTS, "db").unwrap()),
        ("In".into(), "node-b".into())
    );

    // pgo scale db --replica-count=2
    let mut c = w.clusters().get("db").await.unwrap();
    c.spec.replicas = 2;
    w.clusters().replace(&c).await.unwrap();
    let status = w.until("db", ready_with(2)).await;

    let replicas: Vec<String> = status
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Replica)
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(replicas.len(), 2);
    for name in &replicas {
        let d = w.api.get(DEPLOYMENTS, name).unwrap();
        assert_eq!(affinity(&d), ("NotIn".into(), "node-b".into()), "replica {name}");
        assert_eq!(label(&d, labels::ROLE), Some("replica"));
        assert!(w.api.get(PVCS, name).is_some(), "replica {name} has its own PVC");
        let pods = w.api.list(PODS);
        assert_eq!(label(pods_of(&pods, name)[0], labels::ROLE), Some("replica"));
        // A replica follows the primary *Service*: a failover repoints it.
        let cm = w.api.get(CONFIGMAPS, &format!("{name}-instance")).unwrap();
        let config: Value = serde_json::from_str(cm["data"]["instance.json"].as_str().unwrap()).unwrap();
        assert_eq!(config["primary"]["host"], "db.pgo.svc");
    }
    assert_eq!(w.api.names(DEPLOYMENTS).len(), 3);
    assert!(
        w.api
            .names("/apis/apps/v1/namespaces/pgo/statefulsets")
            .is_empty()
    );
    let svc = w.api.get(SERVICES, "db-replica").unwrap();
    assert_eq!(
        svc["spec"]["selector"],
        json!({ "pg-cluster": "db", "role": "replica" })
    );
}

#[tokio::test]
async fn failover_moves_labels_deletes_the_old_primary_keeps_its_pvc_and_replaces_it() {
    let w = World::new();
    let mut r = request("db");
    r.replica_count = Some(2);
    w.create(r).await;
    let status = w.until("db", ready_with(2)).await;
    let target = support::a_replica(&status);
    let target_template = w.api.get(DEPLOYMENTS, &target).unwrap()["spec"]["template"].clone();
    let target_ip = w.api.kubelet()[&target].clone();

    // pgo failover db --target=<target>
    let task = support::manual_failover("db", &target, 2);
    Api::<Pgtask>::new(w.ctx.store.clone())
        .create(&task)
        .await
        .unwrap();
    let status = w
        .until("db", |s| {
            s.primary.as_deref() == Some(target.as_str())
                && s.failovers.len() == 1
                && s.members.len() == 3
                && s.members.iter().all(|m| m.ready && m.name != "db")
        })
        .await;
    assert_eq!(status.failovers[0].outcome, "succeeded");

    // The old primary's Deployment and pod are gone; its PVC stays.
    assert!(w.api.get(DEPLOYMENTS, "db").is_none());
    assert!(pods_of(&w.api.list(PODS), "db").is_empty());
    assert!(w.api.get(PVCS, "db").is_some());
    // The target was promoted through its manager, with its own token.
    let promotes = w.managers.calls("/control/promote");
    assert_eq!(promotes.len(), 1);
    assert_eq!(promotes[0].host, target_ip);
    assert_eq!(promotes[0].instance, target);
    let token = w.api.get(SECRETS, &format!("{target}-manager")).unwrap();
    let token = String::from_utf8(base64_decode(token["data"]["token"].as_str().unwrap())).unwrap();
    assert_eq!(promotes[0].token, token);
    // Relabelled, not rolled: the pod template is what it was; the primary
    // Service selects the new primary.
    let pods = w.api.list(PODS);
    assert_eq!(label(pods_of(&pods, &target)[0], labels::ROLE), Some("primary"));
    assert_eq!(
        w.api.get(SERVICES, "db").unwrap()["spec"]["selector"],
        json!({ "pg-cluster": "db", "pgo-instance": target })
    );
    let d = w.api.get(DEPLOYMENTS, &target).unwrap();
    assert_eq!(d["spec"]["template"], target_template);
    assert_eq!(label(&d, labels::ROLE), Some("primary"));
    // Its manager got the primary's config at once, not when the kubelet syncs.
    let reloads = w.managers.calls("/control/reload");
    let pushed = reloads
        .iter()
        .rev()
        .find(|c| c.host == target_ip)
        .expect("no config pushed to the new primary");
    assert_eq!(
        pushed.body["changes"]["role"],
        serde_json::to_value(MemberRole::Primary).unwrap()
    );
    // Exactly one pod is labelled primary, and a replacement replica runs.
    let primaries: Vec<_> = pods
        .iter()
        .filter(|p| label(p, labels::ROLE) == Some("primary"))
        .collect();
    assert_eq!(primaries.len(), 1);
    let replicas: Vec<Pgreplica> = Api::<Pgreplica>::new(w.ctx.store.clone()).list().await.unwrap().0;
    assert_eq!(replicas.len(), 2);
    assert!(
        replicas
            .iter()
            .all(|r| r.metadata.name.as_deref() != Some(target.as_str()))
    );
    // Slots for the other replicas on the new primary.
    assert!(!w.managers.calls("/control/create-slot").is_empty());
    assert!(
        w.managers
            .calls("/control/create-slot")
            .iter()
            .all(|c| c.host == target_ip)
    );
    // Events on the Pgcluster, in order, as `kubectl describe` lists them.
    let uid = w.clusters().get("db").await.unwrap().metadata.uid.unwrap();
    let mut events = w.api.list("/api/v1/namespaces/pgo/events");
    events.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap().to_string());
    let told: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["reason"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        told,
        [
            ("Ready", "Normal"),
            ("FailoverStarted", "Warning"),
            ("FailoverSucceeded", "Normal")
        ]
    );
    assert!(events.iter().all(|e| e["involvedObject"]["kind"] == "Pgcluster"
        && e["involvedObject"]["uid"] == uid.as_str()));
    support::rbac::assert_granted(&w.api.log());
}

/// The kubelet's view of a hung manager: its `/readyz` probe times out, so
/// the pod is not Ready and leaves the primary Service, whatever PostgreSQL
/// does. On Kubernetes that is failed over (docs/DESIGN.md, "Readiness").
#[tokio::test]
async fn a_primary_whose_manager_hangs_is_failed_over_since_its_pod_is_not_ready() {
    let mut w = World::new();
    w.config_mut().pgo.autofail_sleep_seconds = 1;
    let mut r = request("db");
    r.replica_count = Some(1);
    r.autofail = Some(true);
    w.create(r).await;
    let status = w.until("db", ready_with(1)).await;
    let replica = support::a_replica(&status);

    w.hang_manager("db");
    let start = std::time::Instant::now();
    let status = loop {
        let _ = w.pass("db").await;
        let status = w.clusters().get("db").await.unwrap().status.unwrap_or_default();
        if status.primary.as_deref() == Some(replica.as_str()) && status.failovers.len() == 1 {
            break status;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no failover: {status:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status.failovers[0].outcome, "succeeded");
    // Fenced: the old primary's pod is gone, the promotion went to the replica.
    assert!(pods_of(&w.api.list(PODS), "db").is_empty());
    let promotes = w.managers.calls("/control/promote");
    assert_eq!(promotes.len(), 1);
    assert_eq!(promotes[0].instance, replica);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

async fn delete_with_data(w: &World) {
    let mut c = w.clusters().get("db").await.unwrap();
    c.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(labels::DELETE_DATA.into(), "true".into());
    w.clusters().replace(&c).await.unwrap();
    w.clusters().delete("db").await.unwrap();
    for _ in 0..20 {
        if w.clusters().get_opt("db").await.unwrap().is_none() {
            return;
        }
        let _ = w.pass("db").await;
    }
    panic!("the cluster was not deleted");
}

/// The removal task of `volume` (keyed to the owner's UID).
fn removal(w: &World, volume: &str) -> serde_json::Value {
    let prefix = format!("{volume}-rmdata-");
    w.api
        .list(PGTASKS)
        .into_iter()
        .find(|t| {
            t["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .unwrap_or_else(|| panic!("no removal task for volume {volume}"))
}

fn task_phase(w: &World, volume: &str) -> String {
    removal(w, volume)["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn delete_with_data_removes_the_pvc_only_after_the_rmdata_job_succeeds() {
    let w = World::new();
    let mut r = request("db");
    r.replica_count = Some(1);
    w.create(r).await;
    let status = w.until("db", ready_with(1)).await;
    let replica = status.members[1].name.clone();
    delete_with_data(&w).await;
    assert!(w.api.names(DEPLOYMENTS).is_empty());
    assert!(w.api.names(SERVICES).is_empty());
    let mut pvcs = vec!["db".to_string(), replica.clone()];
    pvcs.sort();
    assert_eq!(w.api.names(PVCS), pvcs);

    w.tasks().await;
    let mut jobs: Vec<String> = pvcs.iter().map(|p| format!("{p}-rmdata")).collect();
    jobs.sort();
    assert_eq!(w.api.names(JOBS), jobs);
    let job = w.api.get(JOBS, "db-rmdata").unwrap();
    assert_eq!(
        job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "db"
    );
    // Running: the PVCs stay.
    w.tasks().await;
    assert_eq!(w.api.names(PVCS), pvcs);
    assert_eq!(task_phase(&w, "db"), "Running");

    w.api
        .patch(JOBS, "db-rmdata", json!({ "status": { "succeeded": 1 } }));
    w.tasks().await;
    assert_eq!(w.api.names(PVCS), vec![replica]);
    assert_eq!(task_phase(&w, "db"), "Succeeded");
    assert!(w.api.get(JOBS, "db-rmdata").is_none());
    support::rbac::assert_granted(&w.api.log());
}

#[tokio::test]
async fn a_failed_rmdata_job_keeps_the_pvc_and_fails_the_task() {
    let w = World::new();
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    delete_with_data(&w).await;
    w.tasks().await;
    w.api.patch(
        JOBS,
        "db-rmdata",
        json!({ "status": { "failed": 3, "conditions": [{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }] } }),
    );
    w.tasks().await;
    assert_eq!(task_phase(&w, "db"), "Failed");
    let message = removal(&w, "db")["status"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("backoff limit") && message.contains("PVC db is kept"),
        "{message}"
    );
    assert_eq!(w.api.names(PVCS), ["db"]);
    // A failed task is not retried behind the user's back.
    let before = w.api.log().len();
    w.tasks().await;
    assert_eq!(w.api.names(PVCS), ["db"]);
    assert!(w.api.log()[before..].iter().all(|l| !l.starts_with("DELETE")));
}

/// Requests that made or changed something other than pgo's own records.
/// Writes of anything but pgo's own resources and Events.
fn platform_writes(w: &World) -> Vec<String> {
    w.api
        .log()
        .into_iter()
        .filter(|l| !l.starts_with("GET") && !l.contains("/pgo.dev/") && !l.ends_with("/events"))
        .collect()
}

/// The refusal is told once, however many passes find it.
fn refused_once(w: &World) {
    let events = w.api.list("/api/v1/namespaces/pgo/events");
    let reasons: Vec<&str> = events.iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["Refused"]);
    assert_eq!(events[0]["type"], "Warning");
}

#[tokio::test]
async fn an_unknown_strategy_fails_the_cluster_and_creates_nothing() {
    let w = World::new();
    let mut spec = pgo_core::validate::create_request(
        &request("db"),
        &w.ctx.config,
        &w.ctx.platform.strategies(),
        w.ctx.platform.backup_support(),
    )
    .unwrap();
    spec.strategy = "9".into();
    w.clusters().create(&Pgcluster::new("db", spec)).await.unwrap();
    let status = w.until("db", |s| s.phase == ClusterPhase::Failed).await;
    assert!(status.message.unwrap().contains("\"9\""));
    assert_eq!(platform_writes(&w), Vec::<String>::new());
    w.pass("db").await.unwrap();
    refused_once(&w);
}

#[tokio::test]
async fn a_template_that_does_not_render_fails_the_cluster_by_name_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster-service-1.json"),
        "{ \"kind\": \"Service\", oops }",
    )
    .unwrap();
    let w = World::with_templates(pgo_kube::Templates::with_overrides(dir.path()).unwrap());
    w.create(request("db")).await;
    let status = w.until("db", |s| s.phase == ClusterPhase::Failed).await;
    let message = status.message.unwrap();
    assert!(message.contains("cluster-service-1.json"), "{message}");
    assert_eq!(platform_writes(&w), Vec::<String>::new());
    w.pass("db").await.unwrap();
    refused_once(&w);
}

#[tokio::test]
async fn an_object_pgo_did_not_make_is_left_alone() {
    let w = World::new();
    let theirs = json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "db", "labels": { "team": "theirs" } },
        "spec": { "selector": { "app": "theirs" }, "ports": [{ "port": 80 }] } });
    w.api.put(SERVICES, theirs.clone());
    w.create(request("db")).await;
    let status = w
        .until("db", |s| {
            s.message
                .as_deref()
                .is_some_and(|m| m.contains("not made by pgo"))
        })
        .await;
    assert!(status.message.unwrap().contains("Service db"));
    let after = w.api.get(SERVICES, "db").unwrap();
    assert_eq!(after["spec"], theirs["spec"]);
    assert_eq!(after["metadata"]["labels"], theirs["metadata"]["labels"]);
    assert!(
        w.api
            .log()
            .iter()
            .all(|l| l != "PATCH /api/v1/namespaces/pgo/services/db"
                && l != "DELETE /api/v1/namespaces/pgo/services/db")
    );
}

#[tokio::test]
async fn a_deployment_deleted_by_hand_is_made_again_on_the_next_pass() {
    let w = World::new();
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    w.api.delete(DEPLOYMENTS, "db");
    assert!(pods_of(&w.api.list(PODS), "db").is_empty());
    let _ = reconcile_once(&w).await;
    assert!(w.api.get(DEPLOYMENTS, "db").is_some(), "not made again at once");
    w.until("db", ready_with(0)).await;
}

async fn reconcile_once(
    w: &World,
) -> Result<pgo_operator::cluster::Action, pgo_operator::cluster::ReconcileError> {
    pgo_operator::cluster::reconcile(&w.ctx, "db").await
}

#[tokio::test]
async fn a_strategy_added_in_operator_conf_is_accepted_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let t = pgo_kube::Templates::embedded();
    for (name, text) in t.files() {
        if let Some(stem) = name.strip_suffix("-1.json") {
            let text = text.replace(
                "\"labels\": {{ instance.labels|tojson }},",
                "\"labels\": {{ instance.labels|tojson }}, \"annotations\": { \"strategy\": \"two\" },",
            );
            std::fs::write(dir.path().join(format!("{stem}-2.json")), text).unwrap();
        }
    }
    let mut w = World::with_templates(pgo_kube::Templates::with_overrides(dir.path()).unwrap());
    assert_eq!(w.ctx.platform.strategies(), ["1", "2"]);
    w.config_mut().cluster.strategy = "2".into();
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    let cm = w.api.get(CONFIGMAPS, "db-instance").unwrap();
    assert_eq!(cm["metadata"]["annotations"]["strategy"], "two");

    w.config_mut().cluster.strategy = "3".into();
    let err = pgo_core::validate::create_request(
        &request("other"),
        &w.ctx.config,
        &w.ctx.platform.strategies(),
        w.ctx.platform.backup_support(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("unknown strategy \"3\"") && err.contains("1, 2"),
        "{err}"
    );
}

/// A failover step this operator does not know stops the failover where it
/// is, naming the step: it is never taken for the end.
#[tokio::test]
async fn an_unknown_failover_step_is_an_error_not_the_end() {
    let w = World::new();
    let mut r = request("db");
    r.replica_count = Some(1);
    w.create(r).await;
    let status = w.until("db", ready_with(1)).await;
    let target = support::a_replica(&status);
    let tasks = Api::<Pgtask>::new(w.ctx.store.clone());
    let mut task = tasks
        .create(&support::manual_failover("db", &target, 1))
        .await
        .unwrap();
    task.status = Some(pgo_api::PgtaskStatus {
        phase: "Running".into(),
        step: Some("repoint".into()),
        ..Default::default()
    });
    tasks.replace_status(&task).await.unwrap();

    let err = w.pass("db").await.unwrap_err().to_string();
    assert!(err.contains("unknown failover step \"repoint\""), "{err}");
    let status = w.clusters().get("db").await.unwrap().status.unwrap();
    assert_eq!(status.primary.as_deref(), Some("db"));
    assert!(status.failovers.is_empty(), "{:?}", status.failovers);
    assert!(
        tasks
            .get_opt(&pgo_core::names::failover_task("db"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(w.managers.calls("/control/promote").is_empty());
}

#[tokio::test]
async fn a_label_dropped_from_the_spec_is_removed_from_what_was_applied() {
    let w = World::new();
    let cluster = w.create(request("db")).await;
    let mut c = cluster.clone();
    c.spec.user_labels = [
        ("team".to_string(), "a".to_string()),
        ("tier".to_string(), "gold".to_string()),
    ]
    .into();
    w.clusters().replace(&c).await.unwrap();
    w.until("db", ready_with(0)).await;
    let d = w.api.get(DEPLOYMENTS, "db").unwrap();
    assert_eq!(label(&d, "tier"), Some("gold"));
    // On the live pod too, which is not made again for it.
    let pods = w.api.names(PODS);
    assert_eq!(pods.len(), 1);
    w.until("db", |_| {
        w.api
            .get(PODS, &pods[0])
            .is_some_and(|p| label(&p, "tier") == Some("gold"))
    })
    .await;

    let mut c = w.clusters().get("db").await.unwrap();
    c.spec.user_labels.remove("tier");
    w.clusters().replace(&c).await.unwrap();
    w.until("db", ready_with(0)).await;
    let d = w.api.get(DEPLOYMENTS, "db").unwrap();
    assert_eq!(label(&d, "team"), Some("a"));
    assert_eq!(
        label(&d, "tier"),
        None,
        "server-side apply removes a field no longer applied"
    );
    let pod = w
        .api
        .get(PODS, &pods[0])
        .expect("the pod was made again for a label");
    assert_eq!(label(&pod, "tier"), None);
    assert_eq!(label(&pod, "team"), Some("a"));
}

#[tokio::test]
async fn a_volume_grows_when_the_cluster_asks_for_more_and_never_shrinks() {
    let w = World::new();
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    let size = |w: &World| {
        w.api.get(PVCS, "db").unwrap()["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(size(&w), "1G");
    async fn resize(w: &World, to: &str) {
        let mut c = w.clusters().get("db").await.unwrap();
        c.spec.primary_storage.size = to.into();
        w.clusters().replace(&c).await.unwrap();
    }

    resize(&w, "5Gi").await;
    w.pass("db").await.unwrap();
    assert_eq!(size(&w), "5Gi", "grown in place, at the next pass");
    support::rbac::assert_granted(&w.api.log());

    // Less than it has: left as it is (a claim cannot shrink), and the
    // cluster stays Ready.
    resize(&w, "2G").await;
    w.pass("db").await.unwrap();
    w.pass("db").await.unwrap();
    assert_eq!(size(&w), "5Gi");
    let status = w.until("db", ready_with(0)).await;
    assert_eq!(status.phase, ClusterPhase::Ready);
    // Said once, as a warning on the cluster, not at every pass.
    let told: Vec<_> = w
        .api
        .list("/api/v1/namespaces/pgo/events")
        .into_iter()
        .filter(|e| e["reason"] == "VolumeNotShrunk")
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "Warning");
    let message = told[0]["message"].as_str().unwrap();
    assert!(
        message.contains("stays at 5Gi") && message.contains("asks for 2G"),
        "{message}"
    );
}

/// A backup of cluster `db` of `backup_type`, made by hand (kubectl) and
/// given one turn of the backup controller: its status then.
async fn one_backup_turn(
    w: &World,
    backup_type: pgo_api::backup::BackupType,
) -> pgo_api::backup::PgbackupStatus {
    let backups = Api::<pgo_api::Pgbackup>::new(w.ctx.store.clone());
    backups
        .create(&pgo_api::Pgbackup::new(
            "db-backup-1",
            pgo_api::PgbackupSpec {
                cluster_name: "db".into(),
                backup_type,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    pgo_operator::backup::controller::reconcile(&w.ctx, "db-backup-1")
        .await
        .unwrap();
    backups.get("db-backup-1").await.unwrap().status.unwrap()
}

#[tokio::test]
async fn a_backup_of_a_cluster_without_a_repository_fails_saying_so() {
    let w = World::new();
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    // Made by hand (kubectl): the apiserver makes none for such a cluster.
    let by_hand = w.api.log().len();
    let status = one_backup_turn(&w, pgo_api::backup::BackupType::Pgbackrest).await;
    assert_eq!(status.phase, pgo_api::backup::BackupPhase::Failed);
    let message = status.message.unwrap();
    assert!(message.contains("does not use pgBackRest"), "{message}");
    let mut log = w.api.log();
    log.remove(by_hand);
    support::rbac::assert_granted(&log);
}

#[tokio::test]
async fn a_copy_whose_job_template_does_not_render_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("backup-job.json"), "{ \"kind\": \"Job\", oops }").unwrap();
    let w = World::with_templates(pgo_kube::Templates::with_overrides(dir.path()).unwrap());
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    let status = one_backup_turn(&w, pgo_api::backup::BackupType::Pgbasebackup).await;
    assert_eq!(status.phase, pgo_api::backup::BackupPhase::Failed, "{status:?}");
    let message = status.message.unwrap();
    assert!(message.contains("backup-job.json"), "{message}");
    assert!(w.api.list("/apis/batch/v1/namespaces/pgo/jobs").is_empty());
}

#[tokio::test]
async fn a_cluster_that_archives_gets_a_repository_host_that_its_backup_jobs_ask() {
    let mut w = World::new();
    w.config_mut().cluster.backrest = true;
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;

    // One Secret holds the host's certificate, the cluster's client
    // certificate that both ends authorize, and the Jobs' token.
    let secret = w.api.get(SECRETS, "db-backrest-repo").unwrap();
    for key in [
        "token",
        "tls.crt",
        "tls.key",
        "ca.crt",
        "client.crt",
        "client.key",
    ] {
        assert!(secret["data"][key].is_string(), "{key} missing: {secret}");
    }
    let names = secret["metadata"]["annotations"]["pgo.dev/cert-names"]
        .as_str()
        .unwrap();
    assert!(
        names.contains("db-backrest-repo.pgo.svc") && names.ends_with(";client=pgbackrest@db"),
        "{names}"
    );

    // The host owns the repository's claim and reaches the primary's
    // pgBackRest through the primary Service.
    let host = w.api.get(DEPLOYMENTS, "db-backrest-repo").unwrap();
    let pod = &host["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][0], "repo-host");
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "db-backrestrepo"
    );
    let cm = w.api.get(CONFIGMAPS, "db-backrest-repo").unwrap();
    let config: Value = serde_json::from_str(cm["data"]["repo-host.json"].as_str().unwrap()).unwrap();
    assert_eq!(config["primaryHost"], "db.pgo.svc");
    assert_eq!(config["clientCn"], "pgbackrest@db");
    assert_eq!(config["pgPath"], "/pgdata/data/pgdata");
    let ports = |svc: &str| -> Vec<u64> {
        w.api.get(SERVICES, svc).unwrap()["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ports("db-backrest-repo"), [8432, 8009]);
    assert!(ports("db").contains(&8432));

    // An instance archives to it, with the CA and the client certificate
    // only: neither the token nor the host's key.
    let instance = w.api.get(DEPLOYMENTS, "db").unwrap();
    let volumes = instance["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let backrest = volumes.iter().find(|v| v["name"] == "backrest").unwrap();
    assert_eq!(backrest["secret"]["secretName"], "db-backrest-repo");
    let items: Vec<&str> = backrest["secret"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["ca.crt", "client.crt", "client.key"]);
    let cm = w.api.get(CONFIGMAPS, "db-instance").unwrap();
    let instance: Value = serde_json::from_str(cm["data"]["instance.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        instance["backrest"]["remote"]["repoHost"],
        "db-backrest-repo.pgo.svc"
    );

    // A backup is a Job that asks the host, which runs it, once the
    // primary's manager reports the stanza made.
    let ip = w.api.kubelet()["db"].clone();
    w.managers.reports.lock().unwrap().insert(
        ip,
        pgo_api::instance::InstanceReport {
            ready: true,
            archive: Some(pgo_api::cluster::ArchiveStatus {
                stanza_ready: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    w.pass("db").await.unwrap();
    let status = one_backup_turn(&w, pgo_api::backup::BackupType::Pgbackrest).await;
    assert_eq!(status.phase, pgo_api::backup::BackupPhase::Running, "{status:?}");
    let job = w.api.get(JOBS, "db-backup-1").unwrap();
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[..2], ["job", "backrest-remote"]);
    assert!(
        args.contains(&"https://db-backrest-repo.pgo.svc:8009"),
        "{args:?}"
    );
    let tail = &args[args.iter().position(|a| *a == "--").unwrap() + 1..];
    assert_eq!(tail[0], "backup", "{args:?}");
    support::rbac::assert_granted(&w.api.log());
}
