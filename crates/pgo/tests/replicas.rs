#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replicas: streaming from the primary, read through the replica service,
//! added by scale, removed by scaledown, and synchronous when asked.

mod support;

use nix::sys::signal::Signal;
use std::time::Duration;
use support::{
    connect, fast_server, member, members, password, process_tree, service_port, signal_all, targets,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_stream_and_the_replica_service_reads_from_them() {
    let server = fast_server();
    let out = server.pgo_ok(&["create", "cluster", "rep", "--replica-count=2"]);
    assert!(out.contains("primary and 2 replicas ready"), "{out}");
    let view = server.show_json("rep");
    let replicas = members(&view, "Replica");
    assert_eq!(replicas.len(), 2);
    for r in &replicas {
        assert!(r.starts_with("rep-") && r.len() == "rep-".len() + 4, "{r}");
    }
    let pw = password(&view, "testuser");

    let primary = connect(service_port(&view, "rep"), "testuser", &pw, "userdb")
        .await
        .unwrap();
    primary
        .batch_execute("CREATE TABLE t (id int primary key); INSERT INTO t SELECT generate_series(1, 10000)")
        .await
        .unwrap();
    let written: String = primary
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let lsn = |s: &str| {
        let (hi, lo) = s.split_once('/').unwrap();
        (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
    };
    server.wait_until(30, "both replicas to replay the rows and lag to reach 0", || {
        let v = server.show_json("rep");
        replicas.iter().all(|r| {
            let m = member(&v, r);
            m["lagBytes"] == 0 && m["walLsn"].as_str().is_some_and(|l| lsn(l) >= lsn(&written))
        })
    });

    // New connections to the replica service are spread over both replicas,
    // and each sees every row.
    let replica_port = service_port(&view, "rep-replica");
    let mut seen_ports = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let c = connect(replica_port, "testuser", &pw, "userdb").await.unwrap();
        let row = c
            .query_one(
                "SELECT count(*), pg_is_in_recovery(), inet_server_port() FROM t",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 10000);
        assert!(row.get::<_, bool>(1), "the replica service reached the primary");
        seen_ports.insert(row.get::<_, i32>(2));
    }
    assert_eq!(
        seen_ports.len(),
        2,
        "round robin over both replicas: {seen_ports:?}"
    );
    // Replicas refuse writes.
    let c = connect(replica_port, "testuser", &pw, "userdb").await.unwrap();
    assert!(c.batch_execute("INSERT INTO t VALUES (0)").await.is_err());

    // Each replica streams with its own slot.
    let admin = support::admin(&view).await;
    let slots: Vec<String> = admin
        .query(
            "SELECT slot_name FROM pg_replication_slots WHERE active ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected: Vec<String> = replicas.iter().map(|r| r.replace('-', "_")).collect();
    expected.sort();
    assert_eq!(slots, expected);

    // pgo test, df and status, as tables and as JSON.
    let table = server.pgo_ok(&["test", "rep"]);
    assert_eq!(
        table.matches(" UP").count(),
        5,
        "2 services and 3 instances: {table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&server.pgo_ok(&["test", "rep", "-o", "json"])).unwrap();
    assert!(
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["up"] == true),
        "{json}"
    );
    let table = server.pgo_ok(&["df", "rep"]);
    assert!(
        table.contains("VOLUME") && replicas.iter().all(|r| table.contains(r.as_str())),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&server.pgo_ok(&["df", "rep", "-o", "json"])).unwrap();
    let volumes = json["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 3);
    assert!(
        volumes
            .iter()
            .all(|v| v["usedBytes"].as_u64().unwrap() > 10_000_000 && v["freeBytes"].as_u64().unwrap() > 0)
    );
    let status: serde_json::Value = serde_json::from_str(&server.pgo_ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["instances"], 3);
    assert_eq!(status["instancesReady"], 3);
    assert!(server.pgo_ok(&["status"]).contains("instances  3 (3 ready)"));
}

#[test]
fn scale_adds_a_replica_and_scaledown_removes_one_with_or_without_its_data() {
    let server = fast_server();
    server.pgo_ok(&["create", "cluster", "sc", "--replica-count=1"]);
    let out = server.pgo_ok(&["scale", "sc", "--replica-count=1"]);
    assert!(out.contains("2 replica(s) ready"), "{out}");
    let view = server.show_json("sc");
    let replicas = members(&view, "Replica");
    assert_eq!(replicas.len(), 2);
    let query = server.pgo_ok(&["scaledown", "sc", "--query"]);
    assert!(replicas.iter().all(|r| query.contains(r.as_str())), "{query}");

    // Refused, naming why, and nothing changes.
    let err = server.pgo_err(&["scaledown", "sc", "--target", "sc", "--no-prompt"]);
    assert!(
        err.contains("is the primary") && err.contains("HTTP 400"),
        "{err}"
    );
    let err = server.pgo_err(&["scaledown", "sc", "--target", "sc-nope", "--no-prompt"]);
    assert!(
        err.contains("not a replica of cluster sc") && err.contains(&replicas[0]),
        "{err}"
    );
    let err = server.pgo_err(&["scale", "nosuch", "--replica-count=1"]);
    assert!(err.contains("HTTP 404"), "{err}");
    let err = server.pgo_err(&["scale", "sc", "--replica-count=14"]);
    assert!(err.contains("limit of 15"), "{err}");
    assert_eq!(members(&server.show_json("sc"), "Replica").len(), 2);

    let slots = || {
        support::psql(
            service_port(&view, "sc"),
            &password(&view, "postgres"),
            "SELECT slot_name FROM pg_replication_slots ORDER BY 1",
        )
    };
    let volume = |r: &str| server.home.join("volumes").join(r);

    server.pgo_ok(&[
        "scaledown",
        "sc",
        "--target",
        &replicas[0],
        "--delete-data",
        "--no-prompt",
    ]);
    // The data goes in an rmdata task once the replica has stopped.
    server.wait_until(30, "--delete-data to remove the data", || {
        !volume(&replicas[0]).exists()
    });
    assert!(!slots().contains(&replicas[0].replace('-', "_")));

    server.pgo_ok(&["scaledown", "sc", "--target", &replicas[1], "--no-prompt"]);
    assert!(
        volume(&replicas[1]).join("pgdata/PG_VERSION").exists(),
        "data is kept by default"
    );
    assert_eq!(slots().trim(), "", "no slot is left behind");
    let view = server.show_json("sc");
    assert!(members(&view, "Replica").is_empty());
    assert_eq!(view["replicas"], 0, "the cluster does not make them again");
    std::thread::sleep(Duration::from_millis(600));
    assert!(members(&server.show_json("sc"), "Replica").is_empty());
}

/// The replica's PostgreSQL, every process of it.
fn postgres_of(server: &support::Server, instance: &str) -> Vec<u32> {
    process_tree(server.postmaster_pid(instance))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_answering_leaves_the_replica_service_and_comes_back() {
    let server = fast_server();
    server.pgo_ok(&["create", "cluster", "hang", "--replica-count=2"]);
    let view = server.show_json("hang");
    let replicas = members(&view, "Replica");
    let (stuck, healthy) = (&replicas[0], &replicas[1]);
    let stuck_port = member(&view, stuck)["port"].as_u64().unwrap() as i32;

    let frozen = postgres_of(&server, stuck);
    signal_all(&frozen, Signal::SIGSTOP);
    server.wait_until(20, "the stuck replica to leave the replica service", || {
        targets(&server.show_json("hang"), "hang-replica") == [healthy.clone()]
    });
    let pw = password(&view, "testuser");
    for _ in 0..4 {
        let c = connect(service_port(&view, "hang-replica"), "testuser", &pw, "userdb")
            .await
            .unwrap();
        let port: i32 = c
            .query_one("SELECT inet_server_port()", &[])
            .await
            .unwrap()
            .get(0);
        assert_ne!(port, stuck_port, "a new connection went to the stuck replica");
    }
    let v = server.show_json("hang");
    assert_eq!(member(&v, stuck)["ready"], false);
    assert!(
        server.log().contains("member not ready"),
        "readiness changes are logged"
    );

    signal_all(&frozen, Signal::SIGCONT);
    server.wait_until(30, "the replica to come back", || {
        let mut t = targets(&server.show_json("hang"), "hang-replica");
        t.sort();
        let mut both = replicas.clone();
        both.sort();
        t == both
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_replication_a_commit_waits_for_a_replica() {
    let server = fast_server();
    let err = server.pgo_err(&["create", "cluster", "nosync", "--sync-replication", "--no-wait"]);
    assert!(err.contains("--replica-count of at least 1"), "{err}");

    server.pgo_ok(&[
        "create",
        "cluster",
        "safe",
        "--replica-count=2",
        "--sync-replication",
    ]);
    let view = server.show_json("safe");
    let replicas = members(&view, "Replica");
    let admin = support::admin(&view).await;
    let names: String = admin
        .query_one("SHOW synchronous_standby_names", &[])
        .await
        .unwrap()
        .get(0);
    let mut expected = replicas.clone();
    expected.sort();
    for r in &expected {
        assert!(names.contains(&format!("\"{r}\"")), "{names}");
    }
    assert!(names.starts_with("ANY 1 ("), "{names}");
    server.wait_until(20, "both replicas to stream as quorum standbys", || {
        let sql = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'";
        support::psql(service_port(&view, "safe"), &password(&view, "postgres"), sql).trim() == "2"
    });

    // An acknowledged commit is on disk on a replica.
    let app = connect(
        service_port(&view, "safe"),
        "testuser",
        &password(&view, "testuser"),
        "userdb",
    )
    .await
    .unwrap();
    app.batch_execute("CREATE TABLE t (id int)").await.unwrap();
    for i in 0..20 {
        let tx_lsn: String = {
            app.batch_execute("BEGIN").await.unwrap();
            app.execute("INSERT INTO t VALUES ($1)", &[&i]).await.unwrap();
            let lsn: String = app
                .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
                .await
                .unwrap()
                .get(0);
            app.batch_execute("COMMIT").await.unwrap();
            lsn
        };
        let on_replica: bool = admin
            .query_one(
                "SELECT coalesce(max(flush_lsn) >= $1::text::pg_lsn, false) FROM pg_stat_replication",
                &[&tx_lsn],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            on_replica,
            "commit {i} was acknowledged before any replica flushed it"
        );
    }

    // With no replica answering, a commit waits, and says why; it completes
    // once one is back.
    let frozen: Vec<u32> = replicas.iter().flat_map(|r| postgres_of(&server, r)).collect();
    signal_all(&frozen, Signal::SIGSTOP);
    let app2 = connect(
        service_port(&view, "safe"),
        "testuser",
        &password(&view, "testuser"),
        "userdb",
    )
    .await
    .unwrap();
    let commit = tokio::spawn(async move { app2.execute("INSERT INTO t VALUES (-1)", &[]).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !commit.is_finished(),
        "a commit completed with no replica to confirm it"
    );
    server.wait_until(20, "the cluster to say that commits wait", || {
        server.show_json("safe")["message"]
            .as_str()
            .is_some_and(|m| m.contains("commits wait"))
    });
    assert!(
        server
            .pgo_ok(&["show", "cluster", "safe"])
            .contains("commits wait")
    );
    signal_all(&frozen, Signal::SIGCONT);
    let done = tokio::time::timeout(Duration::from_secs(30), commit).await;
    assert!(
        matches!(done, Ok(Ok(Ok(1)))),
        "the waiting commit did not complete: {done:?}"
    );
}

#[test]
fn a_replica_whose_copy_keeps_failing_says_why_and_never_serves() {
    use std::os::unix::fs::PermissionsExt;
    // Real PostgreSQL, but a pg_basebackup that cannot reach the primary.
    let bins = support::reachable_tempdir();
    for entry in std::fs::read_dir(support::pg_bin_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "pg_basebackup" {
            std::os::unix::fs::symlink(entry.path(), bins.path().join(entry.file_name())).unwrap();
        }
    }
    let fake = bins.path().join("pg_basebackup");
    std::fs::write(&fake, "#!/bin/sh\necho 'pg_basebackup: error: connection to server failed: Connection refused' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = support::Server::start_prepared(&["--pg-bin-dir", bins.path().to_str().unwrap()], |home| {
        std::fs::write(home.join("pgo.yaml"), "Pgo:\n  ProbePeriodMs: 200\n").unwrap();
    });
    server.pgo_ok(&["create", "cluster", "broken", "--replica-count=1", "--no-wait"]);
    server.wait_until(60, "the replica to report its failed copy", || {
        let v = server.show_json("broken");
        members(&v, "Replica").first().is_some_and(|r| {
            let m = member(&v, r);
            m["message"]
                .as_str()
                .is_some_and(|s| s.contains("pg_basebackup") && s.contains("Connection refused"))
        })
    });
    // Retried, never ready, never routed to; the primary serves on.
    std::thread::sleep(Duration::from_secs(2));
    let v = server.show_json("broken");
    let r = &members(&v, "Replica")[0];
    assert_eq!(member(&v, r)["ready"], false);
    assert!(targets(&v, "broken-replica").is_empty());
    assert_eq!(v["phase"], "Ready");
    let log = std::fs::read_to_string(server.instance_dir(r).join("instance.log")).unwrap();
    assert!(
        log.matches("pg_basebackup from").count() >= 2,
        "retried with backoff: {log}"
    );
    assert!(!server.home.join("volumes").join(r).join("pgdata").exists());
}
