#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One operator watching two namespaces (`--namespace pgo,apps`), against
//! the in-memory API server with stand-in managers: each namespace is a
//! scope of its own, chosen by `pgo --namespace`.

mod support;

use pgo_kube_fake::{PGCLUSTERS, collection};
use support::Server;
use support::kube::operator_conf;

#[test]
fn one_operator_runs_clusters_in_each_namespace_it_watches_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("operator-conf");
    operator_conf(&conf);
    let (api, kubeconfig) = support::kube::stand_in_api(dir.path());
    let conf_arg = conf.to_string_lossy().to_string();
    let server = Server::start_env(
        &[
            "--platform",
            "kubernetes",
            "--operator-conf",
            &conf_arg,
            "--namespace",
            "pgo,apps",
        ],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        |_| {},
    );
    // The server answers before it logs where it runs: wait for the line.
    server.wait_until(10, "the log to name both namespaces", || {
        server.log().contains("namespaces pgo, apps")
    });

    // The same name in both: two clusters, each in its namespace.
    server.pgo_ok(&["create", "cluster", "db", "--namespace", "apps", "--timeout=30"]);
    server.pgo_ok(&["create", "cluster", "db", "--timeout=30"]);
    assert_eq!(api.names(&collection("apps", "pgclusters")), ["db"]);
    assert_eq!(api.names(PGCLUSTERS), ["db"]);
    for ns in ["pgo", "apps"] {
        let deployment = api.get(&collection(ns, "deployments"), "db").expect(ns);
        assert_eq!(deployment["metadata"]["namespace"], ns);
        // Its self-fencing reads its Pgcluster in its own namespace.
        let cm = api.get(&collection(ns, "configmaps"), "db-instance").expect(ns);
        assert!(
            cm["data"]["instance.json"]
                .as_str()
                .unwrap()
                .contains(&format!(r#""namespace": "{ns}""#)),
            "{cm:#}"
        );
        // The managers' port admits the operator's pods, which run in pgo.
        let policy = api
            .get(
                &format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"),
                "db",
            )
            .expect(ns);
        assert!(
            policy
                .to_string()
                .contains(r#""kubernetes.io/metadata.name":"pgo""#),
            "{policy:#}"
        );
    }
    let apps = server.pgo_ok(&["show", "cluster", "db", "-n", "apps", "-o", "json"]);
    let apps: serde_json::Value = serde_json::from_str(&apps).unwrap();
    assert_eq!(apps["phase"], "Ready", "{apps:#}");

    // A namespace not watched is refused by name, and nothing is made.
    let err = server.pgo_err(&["create", "cluster", "other", "-n", "nosuch", "--no-wait"]);
    assert!(
        err.contains("nosuch") && err.contains("not one this operator watches"),
        "{err}"
    );
    assert!(api.names(&collection("nosuch", "pgclusters")).is_empty());
    let err = server.pgo_err(&["show", "cluster", "all", "--namespace", "Bad&x=1"]);
    assert!(err.contains("not a namespace name"), "{err}");

    // Deleting one leaves the other.
    server.pgo_ok(&["delete", "cluster", "db", "-n", "apps", "--no-prompt"]);
    server.wait_until(30, "the apps cluster gone", || {
        api.names(&collection("apps", "pgclusters")).is_empty()
    });
    assert_eq!(api.names(PGCLUSTERS), ["db"]);
    let all = server.pgo_ok(&["show", "cluster", "all"]);
    assert!(all.contains("db"), "{all}");
    support::kube::record_requests(&api);
}

#[test]
fn a_namespace_is_refused_where_there_are_none() {
    // The local platform.
    let server = Server::start();
    let err = server.pgo_err(&["show", "cluster", "all", "-n", "apps"]);
    assert!(
        err.contains("local platform") && err.contains("no namespaces"),
        "{err}"
    );
}
