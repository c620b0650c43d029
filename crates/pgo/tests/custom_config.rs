#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Custom configurations (the spec's pgo-custom-pg-config) and ConfigMaps,
//! on the local platform with real PostgreSQL: checked before anything is
//! made, used by every instance, taken again by `pgo reload`.

mod support;

use std::path::Path;
use support::{Server, member, password, psql, service_port};

const PGBACKREST_CONF: &str = "[global]\nrepo1-retention-full=2\n";

/// A directory of files, as a user keeps a custom configuration.
fn files(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir.display().to_string()
}

/// `pgo create configmap NAME --from-file=FROM --overwrite`.
fn overwrite(server: &Server, name: &str, from: &str) {
    server.pgo_ok(&[
        "create",
        "configmap",
        name,
        &format!("--from-file={from}"),
        "--overwrite",
    ]);
}

/// `SHOW setting` as the superuser through the cluster's primary service.
fn show(server: &Server, cluster: &str, setting: &str) -> String {
    let view = server.show_json(cluster);
    psql(
        service_port(&view, cluster),
        &password(&view, "postgres"),
        &format!("SHOW {setting}"),
    )
    .trim()
    .to_string()
}

/// The original's example custom configuration, as 3.4 shipped it.
const STOCK_CONF: &str = include_str!("testdata/postgresql-3.4.conf");
const STOCK_HBA: &str = include_str!("testdata/pg_hba-3.4.conf");
const STOCK_SETUP: &str = include_str!("testdata/setup-3.4.sql");

/// 3.4's setup.sql with the one grant PostgreSQL 15 needs: since 15 only
/// a database's owner may create in its public schema.
fn setup_for_15() -> String {
    STOCK_SETUP.replacen(
        "\\c PG_DATABASE\n",
        "\\c PG_DATABASE\ngrant create on schema public to PG_USER;\n",
        1,
    )
}

#[test]
fn the_originals_custom_config_runs_and_reload_takes_a_new_one() {
    let server = support::fast_server();
    let dir = server.dir().join("olap");
    let from = files(
        &dir,
        &[
            ("postgresql.conf", STOCK_CONF),
            ("pg_hba.conf", STOCK_HBA),
            ("setup.sql", &setup_for_15()),
            ("pgbackrest.conf", PGBACKREST_CONF),
        ],
    );
    let out = server.pgo_ok(&["create", "configmap", "olap", &format!("--from-file={from}")]);
    assert!(
        out.contains("olap holds pg_hba.conf, pgbackrest.conf, postgresql.conf, setup.sql"),
        "{out}"
    );
    let again = server.pgo_err(&["create", "configmap", "olap", &format!("--from-file={from}")]);
    assert!(
        again.contains("already exists") && again.contains("--overwrite"),
        "{again}"
    );

    // PostgreSQL 13 removed wal_keep_segments: named, and nothing made.
    let err = server.pgo_err(&["create", "cluster", "cc", "--custom-config=olap"]);
    assert!(
        err.contains("line 212") && err.contains("wal_keep_segments"),
        "{err}"
    );
    assert!(!server.pgo_ok(&["show", "cluster", "all"]).contains("cluster cc "));
    let fixed = STOCK_CONF.replace("wal_keep_segments = 400", "wal_keep_size = 6400");
    files(&dir, &[("postgresql.conf", &fixed)]);
    overwrite(&server, "olap", &from);

    server.pgo_ok(&[
        "create",
        "cluster",
        "cc",
        "--custom-config=olap",
        "--replica-count=1",
    ]);
    let view = server.show_json("cc");
    assert_eq!(view["customConfig"], "olap", "{view}");
    assert_eq!(view["labels"]["custom-config"], "olap", "{view}");
    let message = view["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("pgo keeps") && message.contains("listen_addresses") && message.contains("port"),
        "{message}"
    );
    assert!(message.contains("(trust) on line"), "{message}");
    let shown = server.pgo_ok(&["show", "cluster", "cc"]);
    assert!(
        shown.contains("labels: ") && shown.contains("custom-config=olap"),
        "{shown}"
    );

    // Every instance runs it, with pgo's own settings kept.
    assert_eq!(show(&server, "cc", "work_mem"), "4MB");
    assert_eq!(
        show(&server, "cc", "shared_preload_libraries"),
        "pg_stat_statements.so"
    );
    assert_eq!(show(&server, "cc", "logging_collector"), "off");
    let replica = support::members(&view, "Replica")[0].clone();
    let r = member(&view, &replica);
    let on_replica = psql(
        r["port"].as_u64().unwrap() as u16,
        &password(&view, "postgres"),
        "SHOW TimeZone",
    );
    assert_eq!(on_replica.trim(), "US/Eastern");
    // setup.sql ran once with its placeholders, \c to the application
    // user included; pgo's users keep the passwords of their secrets.
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(service_port(&view, "cc").to_string())
        .args([
            "-U",
            "testuser",
            "-tAc",
            "SELECT key || '=' || value || ' ' || (SELECT tableowner FROM pg_tables WHERE tablename = 'customtable') FROM customtable",
            "userdb",
        ])
        .env("PGPASSWORD", password(&view, "testuser"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "CPU=256 testuser",
        "{out:?}"
    );

    // A reload takes the new content: work_mem at once, shared_buffers
    // waits for a restart and says so.
    let changed = fixed
        .replace("work_mem = 4MB", "work_mem = 16MB")
        .replace("shared_buffers = 128MB", "shared_buffers = 96MB");
    files(&dir, &[("postgresql.conf", &changed)]);
    overwrite(&server, "olap", &from);
    assert_eq!(
        show(&server, "cc", "work_mem"),
        "4MB",
        "nothing changes before the reload"
    );
    let out = server.pgo_ok(&["reload", "cc", "--no-prompt"]);
    assert!(out.contains("reloaded cc") && out.contains("olap"), "{out}");
    server.wait_until(5, "work_mem to be 16MB", || {
        show(&server, "cc", "work_mem") == "16MB"
    });
    assert_eq!(show(&server, "cc", "shared_buffers"), "128MB");
    server.wait_until(10, "shared_buffers to be pending restart", || {
        let v = server.show_json("cc");
        v["members"].as_array().unwrap().iter().all(|m| {
            m["pendingRestart"]
                .as_array()
                .is_some_and(|p| p.iter().any(|s| s == "shared_buffers"))
        })
    });
    let shown = server.pgo_ok(&["show", "cluster", "cc"]);
    assert!(
        shown.contains("pending restart") && shown.contains("shared_buffers"),
        "{shown}"
    );

    // pgo restart: the replica first, then a switchover; the old primary
    // is back as a replica, and nothing waits for a restart any more.
    let primary = view["primary"].as_str().unwrap().to_string();
    let out = server.pgo_ok(&["restart", "cc", "--no-prompt"]);
    assert!(out.contains(&format!("restarted: primary {replica}")), "{out}");
    assert_eq!(show(&server, "cc", "shared_buffers"), "96MB");
    let after = server.show_json("cc");
    assert_eq!(support::members(&after, "Replica"), [primary], "{after}");
    for m in after["members"].as_array().unwrap() {
        assert!(m["pendingRestart"].is_null(), "{m}");
        assert_eq!(m["restarts"], 1, "{m}");
    }

    // The ConfigMap stays while the cluster uses it.
    let err = server.pgo_err(&["delete", "configmap", "olap", "--no-prompt"]);
    assert!(err.contains("custom configuration of cluster cc"), "{err}");
    let listed = server.pgo_ok(&["show", "configmap"]);
    assert!(listed.contains("olap") && listed.contains("cc"), "{listed}");
    server.pgo_ok(&["delete", "cluster", "cc", "--no-prompt"]);
    server.wait_until(60, "the cluster to go", || {
        !server.pgo_ok(&["show", "cluster", "all"]).contains("cluster cc ")
    });
    server.pgo_ok(&["delete", "configmap", "olap", "--no-prompt"]);
    let err = server.pgo_err(&["show", "configmap", "olap"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn what_postgresql_would_refuse_is_refused_before_anything_changes() {
    let server = support::fast_server();
    let dir = server.dir().join("bad");
    let from = files(
        &dir,
        &[
            (
                "postgresql.conf",
                "work_mem = '8MB'\nshared_bufers = 64MB\nlog_timezone = 'Mars/Base'\n",
            ),
            ("pgbackrest.conf", PGBACKREST_CONF),
        ],
    );
    server.pgo_ok(&["create", "configmap", "bad", &format!("--from-file={from}")]);
    let err = server.pgo_err(&["create", "cluster", "nope", "--custom-config=bad"]);
    assert!(
        err.contains("line 2") && err.contains("shared_bufers") && err.contains("log_timezone"),
        "{err}"
    );
    assert!(
        !server.pgo_ok(&["show", "cluster", "all"]).contains("nope"),
        "nothing is made"
    );
    let err = server.pgo_err(&["create", "cluster", "nope", "--custom-config=absent"]);
    assert!(err.contains("configmap \"absent\" not found"), "{err}");

    // A cluster with a good one; a bad reload changes nothing.
    files(&dir, &[("postgresql.conf", "work_mem = '8MB'\n")]);
    overwrite(&server, "bad", &from);
    server.pgo_ok(&["create", "cluster", "ok", "--custom-config=bad"]);
    files(&dir, &[("postgresql.conf", "work_mem = 'lots'\n")]);
    overwrite(&server, "bad", &from);
    let before = server.show_json("ok");
    let err = server.pgo_err(&["reload", "ok", "--no-prompt"]);
    assert!(err.contains("work_mem") && err.contains("lots"), "{err}");
    let after = server.show_json("ok");
    assert_eq!(
        before["members"].as_array().unwrap().len(),
        after["members"].as_array().unwrap().len()
    );
    assert_eq!(show(&server, "ok", "work_mem"), "8MB");

    // With pgBackRest, the spec's pgbackrest.conf key is required.
    let nokey = files(
        &server.dir().join("nokey"),
        &[("postgresql.conf", "work_mem = '8MB'\n")],
    );
    server.pgo_ok(&["create", "configmap", "nokey", &format!("--from-file={nokey}")]);
    let err = server.pgo_err(&["create", "cluster", "nb", "--custom-config=nokey"]);
    assert!(
        err.contains("pgbackrest.conf") && err.contains("--pgbackrest=false"),
        "{err}"
    );
    server.pgo_ok(&[
        "create",
        "cluster",
        "nb",
        "--custom-config=nokey",
        "--pgbackrest=false",
    ]);
    assert_eq!(show(&server, "nb", "work_mem"), "8MB");
}

#[test]
fn a_setup_sql_that_fails_fails_the_cluster_with_the_sql_error_as_3_4s_does_on_15() {
    let server = support::fast_server();
    let from = files(
        &server.dir().join("broken"),
        &[("setup.sql", STOCK_SETUP), ("pgbackrest.conf", PGBACKREST_CONF)],
    );
    server.pgo_ok(&["create", "configmap", "broken", &format!("--from-file={from}")]);
    let out = server.pgo(&[
        "create",
        "cluster",
        "sq",
        "--custom-config=broken",
        "--timeout=60",
    ]);
    assert!(!out.status.success(), "{out:?}");
    let view = server.show_json("sq");
    assert_eq!(view["phase"], "Failed", "{view}");
    let message = view["message"].as_str().unwrap_or_default();
    // 3.4's example as it was: PostgreSQL 15 lets only the owner create
    // in a database's public schema, and the script's line 25 does.
    assert!(
        message.contains("setup.sql of broken failed: line 25: ERROR:  permission denied for schema public"),
        "{message}"
    );
}

#[test]
fn the_default_custom_config_is_used_by_every_new_cluster() {
    let server = support::fast_server();
    let from = files(
        &server.dir().join("default"),
        &[
            ("postgresql.conf", "work_mem = '12MB'\n"),
            ("pgbackrest.conf", PGBACKREST_CONF),
        ],
    );
    server.pgo_ok(&[
        "create",
        "configmap",
        "pgo-custom-pg-config",
        &format!("--from-file={from}"),
    ]);
    server.pgo_ok(&["create", "cluster", "dflt"]);
    let view = server.show_json("dflt");
    assert_eq!(view["customConfig"], "pgo-custom-pg-config");
    assert_eq!(show(&server, "dflt", "work_mem"), "12MB");
    // A key=file and a name kubectl would refuse.
    let file = server.dir().join("x.conf");
    std::fs::write(&file, "work_mem = '1MB'\n").unwrap();
    let err = server.pgo_err(&[
        "create",
        "configmap",
        "Bad_Name",
        &format!("--from-file={}", file.display()),
    ]);
    assert!(err.contains("configmap name"), "{err}");
    let err = server.pgo_err(&["create", "configmap", "x", "--from-file=/nonexistent/file"]);
    assert!(err.contains("/nonexistent/file"), "{err}");
    server.pgo_ok(&[
        "create",
        "configmap",
        "keyed",
        &format!("--from-file=postgresql.conf={}", file.display()),
    ]);
    let shown = server.pgo_ok(&["show", "configmap", "keyed"]);
    assert!(
        shown.contains("--- postgresql.conf") && shown.contains("work_mem = '1MB'"),
        "{shown}"
    );
}

#[test]
fn a_restart_that_lowers_max_connections_restarts_the_primary_first() {
    let server = support::fast_server();
    let dir = server.dir().join("conns");
    let from = files(
        &dir,
        &[
            ("postgresql.conf", "max_connections = 100\n"),
            ("pgbackrest.conf", PGBACKREST_CONF),
        ],
    );
    server.pgo_ok(&["create", "configmap", "conns", &format!("--from-file={from}")]);
    server.pgo_ok(&[
        "create",
        "cluster",
        "lc",
        "--custom-config=conns",
        "--replica-count=1",
    ]);
    let view = server.show_json("lc");
    let primary = view["primary"].as_str().unwrap().to_string();
    files(&dir, &[("postgresql.conf", "max_connections = 90\n")]);
    overwrite(&server, "conns", &from);
    server.pgo_ok(&["reload", "lc", "--no-prompt"]);
    server.wait_until(10, "the primary to say it lowers max_connections", || {
        let v = server.show_json("lc");
        member(&v, &primary)["pendingLower"]
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s == "max_connections"))
    });
    // Replicas first would stop the replica ("insufficient parameter
    // settings"): the primary goes first, in place, and keeps its role.
    let out = server.pgo_ok(&["restart", "lc", "--no-prompt", "--timeout=120"]);
    assert!(out.contains(&format!("restarted: primary {primary}")), "{out}");
    let after = server.show_json("lc");
    for m in after["members"].as_array().unwrap() {
        let port = m["port"].as_u64().unwrap() as u16;
        let shown = psql(port, &password(&after, "postgres"), "SHOW max_connections");
        assert_eq!(shown.trim(), "90", "{m}");
    }
    assert!(after["failovers"].as_array().unwrap().is_empty(), "{after}");
}
