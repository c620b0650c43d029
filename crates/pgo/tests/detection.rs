#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What readiness must see: a postmaster that takes no new connection, and
//! a manager that hangs over a PostgreSQL that is fine.

mod support;

use nix::sys::signal::Signal;
use std::time::Duration;
use support::{autofail_server, is_running, signal_all};

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
