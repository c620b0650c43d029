#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Custom configurations on Kubernetes, with real pods on the stand-in
//! kubelet: the ConfigMap `pgo create configmap` makes, a cluster that
//! takes it, and `pgo reload` reaching PostgreSQL in its pods. Needs root.

mod support;

use support::kubelet::cluster_env;

#[test]
fn a_custom_config_reaches_the_pods_and_reload_changes_them() {
    let c = cluster_env(None);
    let dir = c.dir.path().join("custom");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("postgresql.conf"), "work_mem = '6MB'\nport = 6000\n").unwrap();
    std::fs::write(dir.join("pgbackrest.conf"), "[global]\n").unwrap();
    std::fs::write(
        dir.join("setup.sql"),
        "create table made_by_setup (v text);\ninsert into made_by_setup values ('PG_USER');\n",
    )
    .unwrap();
    let from = format!("--from-file={}", dir.display());
    c.pgo_ok(&["create", "configmap", "tuned", &from]);
    // A ConfigMap pgo made, labelled as the user's.
    let map = c
        .api
        .get(pgo_kube_fake::CONFIGMAPS, "tuned")
        .expect("the ConfigMap");
    assert_eq!(map["metadata"]["labels"]["pgo.dev/configmap"], "user", "{map}");
    assert_eq!(map["data"]["postgresql.conf"], "work_mem = '6MB'\nport = 6000\n");

    c.pgo_ok(&[
        "create",
        "cluster",
        "db",
        "--custom-config=tuned",
        "--replica-count=1",
        "--timeout=120",
    ]);
    let view = c.server.show_json("db");
    let password = support::password(&view, "postgres");
    let host = || c.kubelet.service_ip("db");
    let show = |sql: &str| {
        host()
            .ok_or_else(|| "no Service address yet".to_string())
            .and_then(|h| support::psql_at(&format!("host={h} port=5432"), &password, sql))
    };
    c.server.wait_until(30, "work_mem from the ConfigMap", || {
        show("show work_mem").as_deref() == Ok("6MB")
    });
    assert_eq!(show("show port").as_deref(), Ok("5432"), "pgo keeps the port");
    assert_eq!(show("select v from made_by_setup").as_deref(), Ok("testuser"));

    // A new content, and a reload: every pod's PostgreSQL takes it.
    std::fs::write(
        dir.join("postgresql.conf"),
        "work_mem = '7MB'\nmax_connections = 110\n",
    )
    .unwrap();
    c.pgo_ok(&["create", "configmap", "tuned", &from, "--overwrite"]);
    c.pgo_ok(&["reload", "db", "--no-prompt"]);
    c.server.wait_until(10, "work_mem after the reload", || {
        show("show work_mem").as_deref() == Ok("7MB")
    });
    let replica = c
        .kubelet
        .service_ip("db-replica")
        .expect("the replica Service has no address");
    c.server.wait_until(10, "the replica to reload too", || {
        support::psql_at(&format!("host={replica} port=5432"), &password, "show work_mem").as_deref()
            == Ok("7MB")
    });
    c.server
        .wait_until(10, "max_connections to wait for a restart", || {
            let v = c.server.show_json("db");
            v["members"].as_array().unwrap().iter().all(|m| {
                m["pendingRestart"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|s| s == "max_connections"))
            })
        });

    // pgo restart rolls the pods: the replica, then a switchover.
    let out = c.pgo_ok(&["restart", "db", "--no-prompt", "--timeout=120"]);
    assert!(out.contains("restarted"), "{out}");
    c.server.wait_until(30, "max_connections after the restart", || {
        show("show max_connections").as_deref() == Ok("110")
    });
    let after = c.server.show_json("db");
    for m in after["members"].as_array().unwrap() {
        assert!(m["pendingRestart"].is_null(), "{m}");
    }
}
