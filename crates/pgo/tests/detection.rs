#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What readiness must see: a postmaster that takes no new connection, and
//! a manager that hangs over a PostgreSQL that is fine.

mod support;

use nix::sys::signal::Signal;
use std::time::Duration;
use support::loopfs::LoopFs;
use support::writer::{Writer, assert_all_present};
use support::{autofail_server, is_running, password, service_port, signal_all};

fn manager_pid(server: &support::Server, instance: &str) -> u32 {
    std::fs::read_to_string(server.instance_dir(instance).join("manager.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_accepts_no_new_connection_is_not_ready_and_is_failed_over() {
    let server = autofail_server(2);
    server.pgo_ok(&["create", "cluster", "mute", "--replica-count=1", "--autofail"]);
    // Only the postmaster stops: its backends and the manager run on, so a
    // probe on a kept connection would still answer.
    let postmaster = server.postmaster_pid("mute");
    signal_all(&[postmaster], Signal::SIGSTOP);
    server.wait_until(20, "the primary to be seen not ready", || {
        let v = server.show_json("mute");
        v["phase"] == "NotReady" || v["primary"] != "mute"
    });
    server.wait_until(60, "an automatic failover", || {
        server.show_json("mute")["failovers"][0]["outcome"] == "succeeded"
    });
    let v = server.show_json("mute");
    assert_ne!(v["primary"], "mute");
    let reason = v["failovers"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("no new connection"), "{reason}");
    // Fenced: the stopped postmaster was killed, not left to wake up.
    server.wait_until(10, "the old postmaster to be gone", || !is_running(postmaster));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_manager_over_a_healthy_postgres_is_restarted_not_failed_over() {
    let server = autofail_server(2);
    server.pgo_ok(&["create", "cluster", "calm", "--replica-count=1", "--autofail"]);
    let postmaster = server.postmaster_pid("calm");
    let manager = manager_pid(&server, "calm");
    signal_all(&[manager], Signal::SIGSTOP);
    server.wait_until(30, "a new instance manager", || {
        let now = manager_pid(&server, "calm");
        now != manager && is_running(now)
    });
    assert!(!is_running(manager), "the hung manager was killed");
    // Longer than the failover timer: nothing was failed over.
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.wait_until(20, "the cluster to be ready", || {
        server.show_json("calm")["phase"] == "Ready"
    });
    let v = server.show_json("calm");
    assert_eq!(v["primary"], "calm");
    assert!(v["failovers"].as_array().is_none_or(|f| f.is_empty()), "{v}");
    // The new manager adopted PostgreSQL instead of restarting it.
    assert_eq!(server.postmaster_pid("calm"), postmaster);
    assert!(
        server
            .log()
            .contains("the instance manager does not answer; restarting it")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_whose_storage_freezes_is_fenced_and_failed_over_losing_no_commit() {
    let server = autofail_server(2);
    let storage = LoopFs::mount(
        &server.dir().join("frozen.img"),
        &server.home.join("volumes/frozen"),
    );
    server.pgo_ok(&[
        "create",
        "cluster",
        "frozen",
        "--replica-count=1",
        "--sync-replication",
        "--autofail",
    ]);
    let view = server.show_json("frozen");
    let old_port = support::member(&view, "frozen")["port"].as_u64().unwrap() as u16;
    let old = server.processes_of("frozen");
    let writer = Writer::start(service_port(&view, "frozen"), password(&view, "testuser")).await;
    server.wait_until(30, "the writer to commit", || {
        writer.acked.lock().unwrap().len() >= 20
    });

    storage.freeze();
    server.wait_until(60, "an automatic failover", || {
        server.show_json("frozen")["failovers"][0]["outcome"] == "succeeded"
    });
    let v = server.show_json("frozen");
    assert_ne!(v["primary"], "frozen");
    let reason = v["failovers"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("has not taken a write"), "{reason}");
    // Fenced while frozen: nothing takes a connection on the old port.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err(),
        "the old primary's port still accepts connections"
    );
    // A new client writes through the service while the old primary is frozen.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let write = async {
            let c = support::connect(
                service_port(&view, "frozen"),
                "testuser",
                &password(&view, "testuser"),
                "userdb",
            )
            .await
            .ok()?;
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS after_freeze (x int); INSERT INTO after_freeze VALUES (1)",
            )
            .await
            .ok()
        };
        if let Ok(Some(())) = tokio::time::timeout(Duration::from_secs(3), write).await {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no write on the new primary\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Thawed: what waited on the storage dies, and nothing starts it again.
    storage.thaw();
    server.wait_until(20, "the old primary's processes to be gone", || {
        old.iter().all(|&p| !is_running(p))
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err());
    assert!(!server.instance_dir("frozen").exists());
    let acked = writer.finish().await;
    assert_all_present(&server, "frozen", &acked).await;
}
