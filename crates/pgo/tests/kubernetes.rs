#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `postgres-operator run --platform kubernetes` on this machine, where no
//! cluster runs: what it checks before it starts, and what pgo says when
//! the Kubernetes API cannot be reached.

mod support;

use std::path::Path;
use std::process::Command;
use support::kube::{kubeconfig, operator_conf, start};

fn start_fails(conf: &Path, home: &Path) -> String {
    start_fails_with(conf, home, &[])
}

fn start_fails_with(conf: &Path, home: &Path, extra: &[&str]) -> String {
    let out = Command::new(support::SERVER)
        .args([
            "run",
            "--platform",
            "kubernetes",
            "--listen",
            "127.0.0.1:0",
            "--home",
        ])
        .arg(home)
        .arg("--operator-conf")
        .arg(conf)
        .args(extra)
        .env("KUBECONFIG", home.join("no-such-kubeconfig"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_missing_or_broken_operator_conf_stops_the_start_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let conf = dir.path().join("operator-conf");

    let err = start_fails(&conf, &home);
    assert!(
        err.contains("operator-conf directory") && err.contains("does not exist"),
        "{err}"
    );

    operator_conf(&conf);
    std::fs::remove_file(conf.join("cluster-service-1.json")).unwrap();
    let err = start_fails(&conf, &home);
    assert!(err.contains("no template cluster-service-1.json"), "{err}");

    operator_conf(&conf);
    std::fs::write(
        conf.join("cluster-deployment-1.json"),
        "{ \"kind\": \"Deployment\", \"spec\": ",
    )
    .unwrap();
    let err = start_fails(&conf, &home);
    assert!(
        err.contains("cluster-deployment-1.json") && err.contains("invalid JSON"),
        "{err}"
    );

    operator_conf(&conf);
    std::fs::write(
        conf.join("pvc.json"),
        "{ \"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": { \"name\": \"x\" } }",
    )
    .unwrap();
    let err = start_fails(&conf, &home);
    assert!(
        err.contains("pvc.json renders a Service, not a PersistentVolumeClaim"),
        "{err}"
    );

    // A priority class that cannot be an object's name.
    operator_conf(&conf);
    std::fs::write(
        conf.join("pgo.yaml"),
        "Cluster:\n  PriorityClassName: Critical_DB\n",
    )
    .unwrap();
    let err = start_fails(&conf, &home);
    assert!(
        err.contains("Cluster.PriorityClassName") && err.contains("Critical_DB"),
        "{err}"
    );
    std::fs::remove_file(conf.join("pgo.yaml")).unwrap();

    // Namespaces to watch, one of them a name no namespace can have.
    operator_conf(&conf);
    let err = start_fails_with(&conf, &home, &["--namespace", "pgo,Apps_1"]);
    assert!(
        err.contains("Apps_1") && err.contains("not a namespace name"),
        "{err}"
    );

    // A complete one, but no cluster to talk to.
    operator_conf(&conf);
    let err = start_fails(&conf, &home);
    assert!(err.contains("cannot reach the Kubernetes API"), "{err}");
}

#[test]
fn with_the_api_server_unreachable_pgo_says_so_and_nothing_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    // A kubeconfig naming a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = kubeconfig(dir.path(), port);
    let server = start(&conf, &kubeconfig);
    let err = server.pgo_err(&["show", "cluster", "all"]);
    assert!(
        err.contains("Pgcluster") && err.to_lowercase().contains("connect"),
        "{err}"
    );
    let err = server.pgo_err(&["create", "cluster", "db", "--no-wait"]);
    assert!(err.to_lowercase().contains("connect"), "{err}");
    assert!(
        server.log().contains("kubernetes platform, namespace pgo"),
        "{}",
        server.log()
    );
}

/// The whole server on the Kubernetes platform against an in-memory API
/// server over HTTP (watches included), a stand-in kubelet giving
/// Deployments ready pods and a stand-in Job controller finishing Jobs;
/// driven by `pgo`, unchanged.
#[test]
fn pgo_drives_the_operator_on_kubernetes_end_to_end() {
    use pgo_kube_fake::{DEPLOYMENTS, JOBS, PGCLUSTERS, PODS, PVCS, SERVICES};
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    let (api, kubeconfig) = support::kube::stand_in_api(dir.path());
    let server = start(&conf, &kubeconfig);

    let err = server.pgo_err(&["create", "cluster", "db", "--node-name=nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    assert!(api.names(PGCLUSTERS).is_empty());

    let out = server.pgo_ok(&[
        "create",
        "cluster",
        "db",
        "--node-name=node-b",
        "--replica-count=1",
        // The spine: the repository host's pods and PVC are tried with
        // real pods (pod_backups.rs).
        "--pgbackrest=false",
        "--timeout=15",
    ]);
    // It reconciled, so it leads: the Lease names it.
    let lease = api
        .get(
            "/apis/coordination.k8s.io/v1/namespaces/pgo/leases",
            "postgres-operator",
        )
        .expect("no Lease");
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{lease}"
    );
    assert!(out.contains("created cluster db"), "{out}");
    let view = server.show_json("db");
    assert_eq!(view["phase"], "Ready", "{view:#}");
    assert_eq!(support::members(&view, "Replica").len(), 1);
    let listing = server.pgo_ok(&["show", "cluster", "all"]);
    assert!(listing.contains("db"), "{listing}");
    let d = api.get(DEPLOYMENTS, "db").unwrap();
    assert_eq!(
        d.pointer("/spec/template/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/preference/matchExpressions/0/values/0"),
        Some(&serde_json::json!("node-b"))
    );
    assert_eq!(api.names(SERVICES), ["db", "db-replica"]);

    server.pgo_ok(&["scale", "db", "--replica-count=1"]);
    let view = server.show_json("db");
    let replicas = support::members(&view, "Replica");
    assert_eq!(replicas.len(), 2);
    assert_eq!(api.names(DEPLOYMENTS).len(), 3);
    let query = server.pgo_ok(&["failover", "db", "--query"]);
    assert!(replicas.iter().all(|r| query.contains(r.as_str())), "{query}");

    // A failover through the managers' authenticated endpoints on the pods.
    let target = replicas[0].clone();
    server.pgo_ok(&["failover", "db", "--target", &target, "--no-prompt"]);
    server.wait_until(60, "the failover to finish", || {
        let v = server.show_json("db");
        v["primary"] == serde_json::json!(target)
            && support::members(&v, "Replica").len() == 2
            && v["members"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["ready"] == true && m["name"] != "db")
    });
    assert!(
        api.get(DEPLOYMENTS, "db").is_none(),
        "the old primary's Deployment is gone"
    );
    assert!(api.get(PVCS, "db").is_some(), "its PVC is kept");
    let calls = api.manager_calls();
    assert!(
        calls.iter().any(|c| c.path == "/control/promote" && c.authorized),
        "{calls:?}"
    );
    assert!(
        calls.iter().all(|c| c.authorized),
        "every call carried the cluster's token: {calls:?}"
    );
    let pods = api.list(PODS);
    let primaries: Vec<_> = pods
        .iter()
        .filter(|p| p.pointer("/metadata/labels/role") == Some(&serde_json::json!("primary")))
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(
        primaries[0]["metadata"]["labels"]["pgo-instance"],
        serde_json::json!(target)
    );
    let df = server.pgo_ok(&["df", "db"]);
    assert!(df.contains(&target), "{df}");

    server.pgo_ok(&["delete", "cluster", "db", "--delete-data", "--no-prompt"]);
    server.wait_until(30, "the PVCs to be removed by rmdata Jobs", || {
        api.names(PVCS).is_empty()
    });
    assert!(api.names(DEPLOYMENTS).is_empty());
    assert!(api.names(SERVICES).is_empty());
    assert!(api.list(PODS).is_empty());
    assert!(
        api.log()
            .iter()
            .any(|l| l.starts_with("POST") && l.contains("/jobs"))
    );
    server.wait_until(10, "the rmdata Jobs to be removed", || api.names(JOBS).is_empty());
    server.wait_until(10, "the rmdata tasks to be recorded as done", || {
        let status = server.pgo_ok(&["status", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&status).unwrap();
        let tasks = v["tasks"].as_array().unwrap();
        tasks.len() == 4 && tasks.iter().all(|t| t["phase"] == "Succeeded")
    });
    support::kube::record_requests(&api);
}

/// The operator's home is an emptyDir on Kubernetes: a restarted pod starts
/// with an empty one, and must find the same CA and admin password, kept in
/// Secret pgo-apiserver, or every client's copy would stop working.
#[test]
fn a_restarted_operator_keeps_its_ca_and_admin_password() {
    use pgo_kube_fake::{FakeApi, SECRETS};
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    let api = FakeApi::new(&["node-a"]);
    let kubeconfig = kubeconfig(dir.path(), api.serve_http());

    let first = start(&conf, &kubeconfig);
    let kept = api.get(SECRETS, "pgo-apiserver").expect("nothing kept");
    let keys: Vec<&String> = kept["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ca.crt", "ca.key", "client-pgouser", "pgorole", "pgouser"]);
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let (ca, admin) = (read(&first.ca), read(&first.pgouser));
    drop(first);

    // A new pod: another, empty home.
    let second = start(&conf, &kubeconfig);
    assert_ne!(second.home, dir.path().join("home"));
    assert_eq!(read(&second.ca), ca, "the same CA");
    assert_eq!(read(&second.pgouser), admin, "the same admin password");
    // And the old client files still work against it.
    let out = second
        .pgo_command(&["show", "cluster", "all"])
        .env("PGO_CA_CERT", &second.ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `pgo scale --resources-config`: the cluster's resources from then on,
/// every member rolled onto them one at a time, the new replica made so.
#[test]
fn scale_with_resources_config_rolls_every_member_onto_them() {
    use pgo_kube_fake::DEPLOYMENTS;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    let (api, kubeconfig) = support::kube::stand_in_api(dir.path());
    let yaml = "ContainerResources:\n  small:\n    RequestsMemory: 256Mi\n    RequestsCPU: 0.1\n    LimitsMemory: 256Mi\n    LimitsCPU: 0.1\n";
    let server = support::kube::start_with(&conf, &kubeconfig, Some(yaml));
    server.pgo_ok(&[
        "create",
        "cluster",
        "db",
        "--replica-count=1",
        "--pgbackrest=false",
        "--timeout=15",
    ]);
    let err = server.pgo_err(&["scale", "db", "--replica-count=1", "--resources-config=huge"]);
    assert!(err.contains("\"huge\"") && err.contains("known: small"), "{err}");
    server.pgo_ok(&["scale", "db", "--replica-count=1", "-r", "small", "--timeout=30"]);
    let limits = |d: &str| {
        api.get(DEPLOYMENTS, d).unwrap()["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            ["memory"]
            .clone()
    };
    server.wait_until(60, "every member on the new resources, the cluster whole", || {
        let v = server.show_json("db");
        let names = api.names(DEPLOYMENTS);
        names.len() == 3
            && names.iter().all(|d| limits(d) == "256Mi")
            && v["phase"] == "Ready"
            && v["members"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["ready"] == true && m["outdated"].is_null())
    });
}
