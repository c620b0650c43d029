#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a cluster's pods and Jobs reach, its NetworkPolicy admits: the
//! stand-in kubelet does not enforce NetworkPolicies, so this is checked
//! on what is rendered, the way a CNI plugin reads it (matchLabels).

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pgo_api::Pgcluster;
use pgo_api::cluster::{BackrestSpec, RestoreFrom};
use pgo_kube::volume_jobs::{RestoreJob, render_restore};
use pgo_kube::{RenderOptions, Rendered, Templates, render_cluster};
use std::collections::BTreeMap;

mod common;

type Labels = BTreeMap<String, String>;

fn cluster(name: &str, restore_from: Option<&str>) -> Pgcluster {
    let mut c = common::cluster(name);
    c.spec.backrest = Some(BackrestSpec::default());
    c.spec.restore_from = restore_from.map(|c| RestoreFrom {
        cluster: c.into(),
        ..Default::default()
    });
    c
}

fn render(c: &Pgcluster) -> Vec<Rendered> {
    render_cluster(c, &[], &Templates::embedded(), &RenderOptions::default()).unwrap()
}

fn policy(objects: &[Rendered]) -> NetworkPolicy {
    objects
        .iter()
        .find_map(|o| match o {
            Rendered::NetworkPolicy(p) => Some((**p).clone()),
            _ => None,
        })
        .expect("no NetworkPolicy")
}

fn primary_pod_labels(objects: &[Rendered]) -> Labels {
    objects
        .iter()
        .find_map(|o| match o {
            Rendered::Deployment(d) => d.spec.as_ref()?.template.metadata.as_ref()?.labels.clone(),
            _ => None,
        })
        .expect("no Deployment")
}

fn within(want: Option<&Labels>, have: &Labels) -> bool {
    want.is_some_and(|w| w.iter().all(|(k, v)| have.get(k) == Some(v)))
}

/// Whether `policy` lets a pod labelled `from` (same namespace) reach a
/// pod labelled `to` on `port`.
fn admits(policy: &NetworkPolicy, from: &Labels, to: &Labels, port: i32) -> bool {
    let spec = policy.spec.as_ref().unwrap();
    if !within(
        spec.pod_selector.as_ref().and_then(|s| s.match_labels.as_ref()),
        to,
    ) {
        return true;
    }
    spec.ingress.iter().flatten().any(|rule| {
        let port_ok = rule
            .ports
            .iter()
            .flatten()
            .any(|p| p.port == Some(IntOrString::Int(port)));
        let peer_ok = match &rule.from {
            None => true,
            Some(peers) => peers.iter().any(|peer| {
                peer.namespace_selector.is_none()
                    && within(
                        peer.pod_selector.as_ref().and_then(|s| s.match_labels.as_ref()),
                        from,
                    )
            }),
        };
        port_ok && peer_ok
    })
}

#[test]
fn a_repository_host_admits_its_own_pods_and_those_of_clusters_restored_from_it_and_no_others() {
    const BACKREST: i32 = 8432;
    let src = render(&cluster("src", None));
    let restored = render(&cluster("dst", Some("src")));
    let other = render(&cluster("other", None));
    let src_policy = policy(&src);
    let repo_host: Labels = [("pg-cluster".to_string(), "src".to_string())].into();
    assert!(admits(
        &src_policy,
        &primary_pod_labels(&src),
        &repo_host,
        BACKREST
    ));
    assert!(
        admits(&src_policy, &primary_pod_labels(&restored), &repo_host, BACKREST),
        "a cluster restored from src fetches its WAL from src's repository host"
    );
    assert!(!admits(
        &src_policy,
        &primary_pod_labels(&other),
        &repo_host,
        BACKREST
    ));
    assert!(
        admits(&src_policy, &primary_pod_labels(&other), &repo_host, 5432),
        "PostgreSQL is open to clients"
    );
    // The Job of `pgo restore src --to-pvc` is one of src's pods.
    let config: pgo_api::instance::InstanceConfig = src
        .iter()
        .find_map(|o| match o {
            Rendered::ConfigMap(m) => serde_json::from_str(m.data.as_ref()?.get("instance.json")?).ok(),
            _ => None,
        })
        .expect("no instance config");
    let job = render_restore(
        &RestoreJob {
            name: "vol-restore-to-pvc",
            cluster: "src",
            repository: pgo_kube::volume_jobs::Reach::Host { cluster: "src" },
            pvc: "vol",
            config: &config,
            target: None,
            options: &[],
        },
        &Templates::embedded(),
        &RenderOptions::default(),
    )
    .unwrap();
    let job_pod = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert!(admits(&src_policy, &job_pod, &repo_host, BACKREST));
}
