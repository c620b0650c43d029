#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `postgres-operator run --platform kubernetes` on this machine, where no
//! cluster runs: what it checks before it starts, and what pgo says when
//! the Kubernetes API cannot be reached.

mod support;

use std::path::Path;
use std::process::Command;
use support::Server;

/// The operator-conf ConfigMap of deploy/, as files, the way Kubernetes mounts it.
fn operator_conf(dir: &Path) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/operator-conf.yaml"
    ))
    .unwrap();
    let doc = text.split("---\n").nth(1).unwrap();
    let map: serde_json::Value = serde_yaml::from_str(doc).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (name, content) in map["data"].as_object().unwrap() {
        std::fs::write(dir.join(name), content.as_str().unwrap()).unwrap();
    }
}

fn start_fails(conf: &Path, home: &Path) -> String {
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
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: pgo\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let conf_arg = conf.to_string_lossy().to_string();
    let server = Server::start_env(
        &[
            "--platform",
            "kubernetes",
            "--operator-conf",
            &conf_arg,
            "--namespace",
            "pgo",
        ],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        |_| {},
    );
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
