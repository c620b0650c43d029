#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The spine end to end: pgo → apiserver → store → operator → instance
//! manager → PostgreSQL, and back, across a SIGKILL of the server.

mod support;

use support::{Server, connect, password, service_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connect_survive_a_server_kill_and_delete() {
    let mut server = Server::start();

    let out = server.pgo_ok(&["create", "cluster", "mycluster"]);
    assert!(out.contains("created cluster mycluster: primary ready"), "{out}");

    // The table names the instance, its role, readiness and both services.
    let table = server.pgo_ok(&["show", "cluster", "mycluster"]);
    assert!(table.contains("cluster mycluster (Ready)"), "{table}");
    let member_line = table
        .lines()
        .find(|l| l.trim_start().starts_with("mycluster "))
        .unwrap();
    assert!(
        member_line.contains("primary") && member_line.contains("yes"),
        "{table}"
    );
    assert!(table.contains("mycluster-replica"), "{table}");

    let view = server.show_json("mycluster");
    assert_eq!(view["phase"], "Ready");
    assert_eq!(view["members"][0]["role"], "Primary");
    assert_eq!(view["members"][0]["ready"], true);
    let port = service_port(&view, "mycluster");

    // Through the primary service, as the application user and as postgres.
    let app = connect(port, "testuser", &password(&view, "testuser"), "userdb")
        .await
        .unwrap();
    app.batch_execute("CREATE TABLE t (id int primary key, v text)")
        .await
        .unwrap();
    for i in 0..100 {
        app.execute("INSERT INTO t VALUES ($1, $2)", &[&i, &format!("row {i}")])
            .await
            .unwrap();
    }
    let n: i64 = app.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 100);
    let admin = connect(port, "postgres", &password(&view, "postgres"), "postgres")
        .await
        .unwrap();
    let owner: String = admin
        .query_one(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'userdb'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "testuser");
    let checksums: String = admin.query_one("SHOW data_checksums", &[]).await.unwrap().get(0);
    assert_eq!(checksums, "on");
    // A wrong password is refused: every TCP connection proves one.
    assert!(connect(port, "testuser", "wrong", "userdb").await.is_err());
    drop(app);
    drop(admin);

    // SIGKILL the server: PostgreSQL keeps serving, and a new server adopts
    // it (same postmaster) and reopens the service on the same port.
    let postmaster = server.postmaster_pid("mycluster");
    server.kill();
    let direct = view["members"][0]["port"].as_u64().unwrap() as u16;
    let still = connect(direct, "testuser", &password(&view, "testuser"), "userdb")
        .await
        .unwrap();
    still.query_one("SELECT 1", &[]).await.unwrap();
    server.restart();
    server.wait_until(30, "the service to forward again", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let again = connect(port, "testuser", &password(&view, "testuser"), "userdb")
        .await
        .unwrap();
    let n: i64 = again
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
    assert_eq!(
        server.postmaster_pid("mycluster"),
        postmaster,
        "PostgreSQL must not restart"
    );
    let view = server.show_json("mycluster");
    assert_eq!(view["phase"], "Ready");
    assert_eq!(service_port(&view, "mycluster"), port);
    drop(again);
    drop(still);

    // Several at once, one of them unknown: that one is reported, the
    // others are deleted, and the exit code says something failed.
    server.pgo_ok(&["create", "cluster", "db2"]);
    let out = server.pgo(&["delete", "cluster", "mycluster", "nosuch", "db2", "--no-prompt"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"nosuch\" not found"), "{stderr}");
    let listing = server.pgo_ok(&["show", "cluster", "all"]);
    assert!(listing.contains("no clusters"), "{listing}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the service must be closed"
    );
    assert!(!support::is_running(postmaster), "the instance must be stopped");
    // The data stays (the spec's default).
    assert!(server.home.join("volumes/mycluster/pgdata/PG_VERSION").exists());
    assert!(server.home.join("volumes/db2/pgdata/PG_VERSION").exists());
}

#[test]
fn delete_with_data_removes_every_volume_of_the_cluster_and_records_it() {
    let server = support::fast_server();
    server.pgo_ok(&["create", "cluster", "gone", "--replica-count=1"]);
    server.pgo_ok(&["create", "cluster", "kept"]);
    let view = server.show_json("gone");
    let replica = support::members(&view, "Replica").remove(0);
    let volumes = server.home.join("volumes");
    assert!(volumes.join(&replica).join("pgdata/PG_VERSION").exists());

    let out = server.pgo_ok(&["delete", "cluster", "gone", "--delete-data", "--no-prompt"]);
    assert!(out.contains("then the data is removed"), "{out}");
    server.wait_until(30, "the data of cluster gone to be removed", || {
        !volumes.join("gone").exists() && !volumes.join(&replica).exists()
    });
    // The removals are on record.
    let status = server.pgo_ok(&["status"]);
    assert!(
        status.contains("gone-rmdata") && status.contains("Succeeded"),
        "{status}"
    );
    // Only that cluster's: the other one keeps serving from its data.
    assert!(volumes.join("kept/pgdata/PG_VERSION").exists());
    assert_eq!(server.show_json("kept")["phase"], "Ready");
    // An unknown name changes nothing.
    let err = server.pgo_err(&["delete", "cluster", "nosuch", "--delete-data", "--no-prompt"]);
    assert!(err.contains("\"nosuch\" not found"), "{err}");
}
