#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Leader election over a Lease on the in-memory API server: one leader at
//! a time, a takeover when the leader stops renewing, at once when it
//! releases, and a leader cut off from the API stops leading before anyone
//! else may take over.

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use pgo_kube::leader::{self, Election};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::fake_api::{FakeApi, NS};
use tokio::sync::watch;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/pgo/leases";

fn election(identity: &str) -> Election {
    Election {
        lease: Duration::from_millis(600),
        renew_deadline: Duration::from_millis(400),
        retry: Duration::from_millis(50),
        ..Election::new("postgres-operator", identity)
    }
}

struct Candidate {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    cut: Arc<AtomicBool>,
}

fn start(api: &FakeApi, identity: &str) -> Candidate {
    let cut = Arc::new(AtomicBool::new(false));
    let leases: Api<Lease> = Api::namespaced(api.client_cut_by(cut.clone()), NS);
    let (leading_tx, leading) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(leader::run(leases, election(identity), leading_tx, stop_rx));
    Candidate {
        leading,
        stop,
        task,
        cut,
    }
}

fn leads(c: &Candidate) -> bool {
    *c.leading.borrow()
}

async fn until(what: &str, within: Duration, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn holder(api: &FakeApi) -> Option<String> {
    api.get(LEASES, "postgres-operator")
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

#[tokio::test]
async fn one_leader_and_a_takeover_when_it_stops_renewing() {
    let api = FakeApi::new(&["node-a"]);
    let a = start(&api, "pod-a");
    until("a leader", Duration::from_secs(2), || leads(&a)).await;
    let b = start(&api, "pod-b");
    // For a while, exactly one leads.
    for _ in 0..40 {
        assert!(leads(&a) && !leads(&b), "two leaders or none");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(holder(&api).as_deref(), Some("pod-a"));

    // pod-a dies without a word: its lease runs out and pod-b takes over.
    a.task.abort();
    let took = until("pod-b to lead", Duration::from_secs(3), || leads(&b)).await;
    assert!(
        took >= Duration::from_millis(300),
        "not before the lease ran out: {took:?}"
    );
    assert_eq!(holder(&api).as_deref(), Some("pod-b"));
    let lease = api.get(LEASES, "postgres-operator").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn a_leader_that_stops_releases_and_the_next_takes_over_at_once() {
    let api = FakeApi::new(&["node-a"]);
    let a = start(&api, "pod-a");
    until("a leader", Duration::from_secs(2), || leads(&a)).await;
    let b = start(&api, "pod-b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.stop.send(true).unwrap();
    let a_leading = a.leading.clone();
    a.task.await.unwrap();
    assert!(!*a_leading.borrow());
    let took = until("pod-b to lead", Duration::from_secs(2), || leads(&b)).await;
    assert!(
        took < Duration::from_millis(400),
        "released, not run out: {took:?}"
    );
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_stops_leading_before_another_takes_over() {
    let api = FakeApi::new(&["node-a"]);
    let a = start(&api, "pod-a");
    until("a leader", Duration::from_secs(2), || leads(&a)).await;
    let b = start(&api, "pod-b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.cut.store(true, Ordering::SeqCst);
    let cut_at = Instant::now();
    // Sample both: pod-a gives up first, then pod-b leads; never both.
    let mut a_gave_up = None;
    while !leads(&b) {
        assert!(!(leads(&a) && leads(&b)), "two leaders");
        if a_gave_up.is_none() && !leads(&a) {
            a_gave_up = Some(cut_at.elapsed());
        }
        assert!(cut_at.elapsed() < Duration::from_secs(3), "pod-b never led");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gave_up = a_gave_up.expect("pod-a still led when pod-b took over");
    assert!(
        gave_up <= Duration::from_millis(550),
        "within the renew deadline: {gave_up:?}"
    );
    assert_eq!(holder(&api).as_deref(), Some("pod-b"));
}

#[tokio::test]
async fn only_the_leaders_pod_carries_the_label_the_apiserver_service_selects() {
    use pgo_kube::leader::{Candidate, LEADER_LABEL};
    use support::fake_api::PODS;
    let api = FakeApi::new(&["node-a"]);
    for pod in ["op-a", "op-b"] {
        api.put(
            PODS,
            serde_json::json!({ "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": pod, "namespace": NS, "labels": { "name": "postgres-operator" } } }),
        );
    }
    let label = |pod: &str| api.get(PODS, pod).unwrap()["metadata"]["labels"][LEADER_LABEL].clone();
    let campaign = |pod: &str| {
        let (leading_tx, leading) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let candidate = Candidate::new(api.client(), NS, election(pod), Some(pod.to_string()));
        let task = tokio::spawn(candidate.campaign(leading_tx, stop_rx));
        (leading, stop, task)
    };
    let (a_leads, a_stop, a_task) = campaign("op-a");
    until("op-a to lead", Duration::from_secs(2), || *a_leads.borrow()).await;
    let (b_leads, _b_stop, _b_task) = campaign("op-b");
    until("op-a's label", Duration::from_secs(2), || label("op-a") == "true").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(label("op-b").is_null());

    a_stop.send(true).unwrap();
    a_task.await.unwrap();
    assert!(
        label("op-a").is_null(),
        "a pod that stops leading loses the label"
    );
    until("op-b to lead", Duration::from_secs(2), || *b_leads.borrow()).await;
    until("op-b's label", Duration::from_secs(2), || label("op-b") == "true").await;
}
