#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Requests that race: a replica count never drifts from the replicas there
//! are, and a request that is refused changed nothing.

mod support;

use std::time::Duration;
use support::{Server, members};

#[test]
fn parallel_scaledowns_remove_exactly_the_replicas_they_report() {
    let server = support::fast_server();
    server.pgo_ok(&["create", "cluster", "many", "--replica-count=4"]);
    let replicas = members(&server.show_json("many"), "Replica");
    assert_eq!(replicas.len(), 4);
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let target = replicas[i % 4].clone();
                let server = &server;
                s.spawn(move || {
                    server
                        .pgo(&["scaledown", "many", "--target", &target, "--no-prompt"])
                        .status
                        .success()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let removed = outcomes.iter().filter(|ok| **ok).count();
    assert!(removed >= 1, "no scaledown succeeded");
    let want = 4 - removed;
    assert_eq!(server.show_json("many")["replicas"], want as u64);
    server.wait_until(60, "the replicas to match the count", || {
        members(&server.show_json("many"), "Replica").len() == want
    });
    // And it stays so: nothing is made again, nothing more is removed.
    std::thread::sleep(Duration::from_secs(2));
    let v = server.show_json("many");
    assert_eq!(members(&v, "Replica").len(), want, "{v}");
    assert_eq!(v["replicas"], want as u64);
}

#[test]
fn scale_and_scaledown_are_refused_while_a_failover_runs() {
    let server = Server::start_env(&["--test-pause-after-fence-ms", "4000"], &[], |home| {
        std::fs::write(home.join("pgo.yaml"), "Pgo:\n  ProbePeriodMs: 200\n").unwrap();
    });
    server.pgo_ok(&["create", "cluster", "busy", "--replica-count=2"]);
    let replicas = members(&server.show_json("busy"), "Replica");
    let mut failover = server
        .pgo_command(&["failover", "busy", "--target", &replicas[0], "--no-prompt"])
        .spawn()
        .unwrap();
    server.wait_until(30, "the old primary to be fenced", || {
        server.log().contains("failover: old primary fenced")
    });
    let err = server.pgo_err(&["scale", "busy", "--replica-count=1"]);
    assert!(err.contains("HTTP 409") && err.contains("failover"), "{err}");
    let err = server.pgo_err(&["scaledown", "busy", "--target", &replicas[1], "--no-prompt"]);
    assert!(err.contains("HTTP 409") && err.contains("failover"), "{err}");
    assert!(failover.wait().unwrap().success());
    server.wait_until(60, "two replicas again", || {
        members(&server.show_json("busy"), "Replica").len() == 2
    });
    assert_eq!(server.show_json("busy")["replicas"], 2);
}
