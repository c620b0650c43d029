#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Point-in-time recovery into a new cluster, with real pgBackRest and
//! PostgreSQL: exactly the rows committed before the target come back, and
//! a target the repository cannot reach is refused with nothing made.

mod support;

use support::{Server, app_client, backrest_server, connect, count_rows, members, password, until_count};

/// Rows 1-100, a backup, rows 101-200, a moment (returned, as psql writes
/// it), rows 201-300, and the last segment archived: a restore to the
/// moment has exactly rows 1-200.
async fn rows_around_a_moment(server: &Server, cluster: &str) -> String {
    let db = app_client(server, cluster, cluster).await;
    db.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
        .await
        .unwrap();
    server.pgo_ok(&["backup", cluster]);
    // After the backup: only replayed WAL brings these back.
    db.batch_execute("INSERT INTO t SELECT generate_series(101, 200)")
        .await
        .unwrap();
    let target = moment(&db).await;
    db.batch_execute("INSERT INTO t SELECT generate_series(201, 300)")
        .await
        .unwrap();
    archive_the_last_segment(server, cluster).await;
    target
}

/// The database's clock, a second clear of the writes on either side.
async fn moment(db: &tokio_postgres::Client) -> String {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let at: String = db
        .query_one(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    at
}

/// Switches to a new WAL segment and waits until the primary archived the
/// one it left; returns that segment's name.
async fn archive_the_last_segment(server: &Server, cluster: &str) -> String {
    let view = server.show_json(cluster);
    let primary = view["primary"].as_str().unwrap().to_string();
    let admin = support::admin(&view).await;
    let segment: String = admin
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await
        .unwrap()
        .get(0);
    server.wait_until(30, "the last segment to be archived", || {
        let v = server.show_json(cluster);
        let a = &support::member(&v, &primary)["archive"];
        a["lastArchivedWal"]
            .as_str()
            .is_some_and(|w| w >= segment.as_str())
    });
    segment
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restored_to_a_moment_has_exactly_the_rows_committed_before_it() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "src"]);
    let target = rows_around_a_moment(&server, "src").await;

    // To the moment: rows 1-200, and a replica that streams past it.
    let out = server.pgo_ok(&[
        "create",
        "cluster",
        "dst",
        "--restore-from=src",
        &format!("--pitr-target={target}"),
        "--replica-count=1",
    ]);
    assert!(out.contains("created cluster dst"), "{out}");
    let restored = app_client(&server, "dst", "dst").await;
    assert_eq!(
        count_rows(&restored).await,
        200,
        "the rows committed before {target}"
    );
    let max: i32 = restored
        .query_one("SELECT max(id) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(max, 200);
    // A primary now: it takes writes, its replica follows them, and it
    // archives into a repository of its own.
    restored
        .batch_execute("INSERT INTO t VALUES (1000)")
        .await
        .unwrap();
    let replica = members(&server.show_json("dst"), "Replica")[0].clone();
    let view = server.show_json("dst");
    let replica_port = support::member(&view, &replica)["port"].as_u64().unwrap() as u16;
    let follower = connect(replica_port, "testuser", &password(&view, "testuser"), "userdb")
        .await
        .unwrap();
    assert_eq!(
        until_count(&follower, 201).await,
        201,
        "the replica replays past the target"
    );
    server.pgo_ok(&["backup", "dst"]);

    // No target: every archived segment, rows 1-300.
    server.pgo_ok(&["create", "cluster", "whole", "--restore-from=src"]);
    assert_eq!(
        count_rows(&app_client(&server, "whole", "whole").await).await,
        300
    );
}

#[test]
fn a_restore_the_repository_cannot_serve_is_refused_and_nothing_is_made() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "src"]);
    let err = server.pgo_err(&["create", "cluster", "early", "--restore-from=src"]);
    assert!(err.contains("no backup of cluster src"), "{err}");
    server.pgo_ok(&["backup", "src"]);
    // (the cluster asked for, its flags, what the refusal says)
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "early",
            &["--restore-from=src", "--pitr-target=2000-01-01 00:00:00+00"],
            &["before the end of the first backup", "a restore can reach"],
        ),
        (
            "late",
            &["--restore-from=src", "--pitr-target=2999-01-01 00:00:00+00"],
            &["past the last WAL src archived"],
        ),
        (
            "odd",
            &["--restore-from=src", "--pitr-target=yesterday"],
            &["a moment with its time zone"],
        ),
        (
            "lsn",
            &["--restore-from=src", "--pitr-type=lsn", "--pitr-target=x"],
            &["a WAL position"],
        ),
        (
            "opt",
            &["--restore-from=src", "--backup-opts=--repo1-path=/"],
            &["is not an option pgo passes to pgbackrest restore"],
        ),
        (
            "none",
            &["--restore-from=nosuch"],
            &["cluster nosuch has no pgBackRest repository"],
        ),
    ];
    for (name, flags, said) in cases {
        let args: Vec<&str> = ["create", "cluster", name].iter().chain(flags).copied().collect();
        let err = server.pgo_err(&args);
        assert!(said.iter().all(|s| err.contains(s)), "{name}: {err}");
    }
    for name in ["early", "late", "odd", "lsn", "opt", "none"] {
        assert!(
            server.pgo(&["show", "cluster", name]).status.code() != Some(0),
            "{name} was made"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_reaches_a_moment_after_a_failover_on_the_new_timeline() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "tl", "--replica-count=1"]);
    let db = app_client(&server, "tl", "tl").await;
    db.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
        .await
        .unwrap();
    server.pgo_ok(&["backup", "tl"]);
    let replica = members(&server.show_json("tl"), "Replica")[0].clone();
    server.pgo_ok(&["failover", "tl", &format!("--target={replica}"), "--no-prompt"]);
    // The status names the target as the failover starts; the primary
    // service points at it once it is promoted.
    server.wait_until(60, "the new primary to serve", || {
        let v = server.show_json("tl");
        v["primary"] == replica.as_str()
            && v["phase"] == "Ready"
            && support::targets(&v, "tl") == [replica.clone()]
    });
    // Timeline 2: these rows exist only on the promoted replica's WAL.
    let db = app_client(&server, "tl", "tl").await;
    db.batch_execute("INSERT INTO t SELECT generate_series(101, 150)")
        .await
        .unwrap();
    let target = moment(&db).await;
    db.batch_execute("INSERT INTO t SELECT generate_series(151, 200)")
        .await
        .unwrap();
    let segment = archive_the_last_segment(&server, "tl").await;
    assert!(segment.starts_with("00000002"), "{segment}");
    server.pgo_ok(&[
        "create",
        "cluster",
        "back",
        "--restore-from=tl",
        &format!("--pitr-target={target}"),
    ]);
    let restored = app_client(&server, "back", "back").await;
    assert_eq!(
        count_rows(&restored).await,
        150,
        "rows from both timelines, up to {target}"
    );
    let timeline: i32 = restored
        .query_one("SELECT timeline_id FROM pg_control_checkpoint()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(timeline >= 3, "promoted after timeline 2: {timeline}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restored_in_place_goes_back_to_the_moment_and_makes_its_replicas_again() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "ip", "--replica-count=1"]);
    let target = rows_around_a_moment(&server, "ip").await;
    let db = app_client(&server, "ip", "ip").await;

    // A target the repository cannot reach stops nothing.
    let err = server.pgo_err(&[
        "restore",
        "ip",
        "--pitr-target=2000-01-01 00:00:00+00",
        "--no-prompt",
    ]);
    assert!(err.contains("a restore can reach"), "{err}");
    assert_eq!(server.show_json("ip")["phase"], "Ready");
    assert_eq!(count_rows(&db).await, 300, "the refused restore changed nothing");

    let old_replica = members(&server.show_json("ip"), "Replica")[0].clone();
    let out = server.pgo_ok(&["restore", "ip", &format!("--pitr-target={target}"), "--no-prompt"]);
    assert!(out.contains("restored cluster ip"), "{out}");
    let view = server.show_json("ip");
    assert_eq!(view["restores"].as_array().unwrap().len(), 1, "{view}");
    let restored = app_client(&server, "ip", "ip").await;
    assert_eq!(
        count_rows(&restored).await,
        200,
        "the rows committed before {target}"
    );
    // A new replica, copied from the restored primary, follows it.
    let replica = members(&view, "Replica")[0].clone();
    assert_ne!(replica, old_replica, "the replica is made again");
    restored
        .batch_execute("INSERT INTO t VALUES (1000)")
        .await
        .unwrap();
    let port = support::member(&view, &replica)["port"].as_u64().unwrap() as u16;
    let follower = connect(port, "testuser", &password(&view, "testuser"), "userdb")
        .await
        .unwrap();
    assert_eq!(
        until_count(&follower, 201).await,
        201,
        "the replica replays past the target"
    );
    let old_volume = server.dir().join("home/volumes").join(&old_replica);
    server.wait_until(30, "the old replica's volume to be removed", || {
        !old_volume.exists()
    });
    // Backups go on, on the new timeline.
    server.pgo_ok(&["backup", "ip"]);
}

#[test]
fn a_restore_past_the_end_of_a_deleted_clusters_archive_fails_saying_why() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "gone"]);
    server.pgo_ok(&["backup", "gone"]);
    // Deleted with its data kept: its repository and passwords remain,
    // but what its archive reaches is no longer known to the apiserver.
    server.pgo_ok(&["delete", "cluster", "gone", "--no-prompt"]);
    let out = std::process::Command::new("date")
        .args(["-u", "-d", "+1 hour", "+%Y-%m-%d %H:%M:%S+00"])
        .output()
        .unwrap();
    let later = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let err = server.pgo_err(&[
        "create",
        "cluster",
        "late",
        "--restore-from=gone",
        &format!("--pitr-target={later}"),
        "--timeout=120",
    ]);
    assert!(
        err.contains("cluster late failed")
            && err.contains("recovery ended before configured recovery target was reached"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_in_place_finishes_after_the_server_is_killed_during_it() {
    let mut server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "kr"]);
    let target = rows_around_a_moment(&server, "kr").await;
    let out = server.pgo_ok(&[
        "restore",
        "kr",
        &format!("--pitr-target={target}"),
        "--no-prompt",
        "--no-wait",
    ]);
    assert!(out.contains("restoring to"), "{out}");
    server.wait_until(30, "the restore to be under way", || {
        server.show_json("kr")["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("restoring to"))
    });
    server.kill();
    server.restart();
    server.wait_until(120, "the restore to finish under the new server", || {
        let v = server.show_json("kr");
        v["phase"] == "Ready" && v["restores"].as_array().is_some_and(|r| r.len() == 1)
    });
    assert_eq!(count_rows(&app_client(&server, "kr", "kr").await).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_to_a_new_volume_leaves_the_cluster_as_it_is_and_a_cluster_starts_on_it() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "live"]);
    let target = rows_around_a_moment(&server, "live").await;
    let primary_pid = server.postmaster_pid("live");

    // Refused, with nothing made: a volume that exists, a bad target.
    let e = server.pgo_err(&["restore", "live", "--to-pvc=live"]);
    assert!(e.contains("volume live exists"), "{e}");
    let e = server.pgo_err(&[
        "restore",
        "live",
        "--to-pvc=early",
        "--pitr-target=2000-01-01 00:00:00+00",
    ]);
    assert!(e.contains("a restore can reach"), "{e}");
    assert!(!server.dir().join("home/volumes/early").exists());

    let out = server.pgo_ok(&[
        "restore",
        "live",
        "--to-pvc=restored",
        &format!("--pitr-target={target}"),
    ]);
    assert!(
        out.contains("restored into volume restored")
            && out.contains("pgo create cluster restored --secret-from=live"),
        "{out}"
    );
    // The cluster went on: same postmaster, every row.
    assert_eq!(server.postmaster_pid("live"), primary_pid);
    assert_eq!(count_rows(&app_client(&server, "live", "live").await).await, 300);
    let e = server.pgo_err(&["restore", "live", "--to-pvc=restored"]);
    assert!(e.contains("volume restored exists"), "{e}");

    // The cluster that starts on it needs the source's passwords.
    let e = server.pgo_err(&["create", "cluster", "restored"]);
    assert!(e.contains("--secret-from=live"), "{e}");
    server.pgo_ok(&["create", "cluster", "restored", "--secret-from=live"]);
    let restored = app_client(&server, "restored", "restored").await;
    assert_eq!(
        count_rows(&restored).await,
        200,
        "the rows committed before {target}"
    );
    restored
        .batch_execute("INSERT INTO t VALUES (1000)")
        .await
        .unwrap();
    // It archives into a repository of its own and backs up there.
    server.pgo_ok(&["backup", "restored"]);
}
