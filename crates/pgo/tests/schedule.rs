#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Backup schedules with real pgBackRest: a schedule fires, its backups
//! succeed and retention prunes them; bad patterns are refused; a schedule
//! goes with its cluster.

mod support;

use serde_json::Value;
use support::backrest_server;

#[test]
fn a_schedule_fires_backups_that_retention_prunes() {
    let server = backrest_server("Cluster:\n  BackrestRetentionFull: 1\n");
    server.pgo_ok(&["create", "cluster", "sc"]);
    let err = server.pgo_err(&["create", "schedule", "sc", "--schedule=every day"]);
    assert!(err.contains("is not a cron pattern"), "{err}");
    let err = server.pgo_err(&[
        "create",
        "schedule",
        "sc",
        "--schedule=0 1 * * *",
        "--pgbackrest-backup-type=weekly",
    ]);
    assert!(err.contains("not full, diff or incr"), "{err}");
    let err = server.pgo_err(&["create", "schedule", "nosuch", "--schedule=0 1 * * *"]);
    assert!(err.contains("not found"), "{err}");
    // Every 10 seconds (a seconds field first).
    let out = server.pgo_ok(&["create", "schedule", "sc", "--schedule=*/10 * * * * *"]);
    assert!(out.contains("created schedule sc-pgbackrest-full"), "{out}");
    let err = server.pgo_err(&["create", "schedule", "sc", "--schedule=0 1 * * *"]);
    assert!(err.contains("exists"), "{err}");
    let succeeded = || -> Vec<Value> {
        let list: Value =
            serde_json::from_str(&server.pgo_ok(&["show", "backup", "sc", "-o", "json"])).unwrap();
        list["backups"].as_array().unwrap().clone()
    };
    server.wait_until(90, "two scheduled backups to be taken", || {
        succeeded()
            .iter()
            .filter(|b| b["phase"] == "Succeeded" || b["phase"] == "Expired")
            .count()
            >= 2
    });
    let all = succeeded();
    assert!(
        all.iter()
            .all(|b| b["name"].as_str().unwrap().starts_with("sc-pgbackrest-full-")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|b| b["phase"] == "Expired"),
        "retention (1 full) pruned the older: {all:?}"
    );
    let shown: Value =
        serde_json::from_str(&server.pgo_ok(&["show", "schedule", "sc", "-o", "json"])).unwrap();
    assert_eq!(shown[0]["schedule"], "*/10 * * * * *");
    assert!(shown[0]["lastRun"].is_string(), "{shown}");
    let out = server.pgo_ok(&["delete", "schedule", "sc", "--no-prompt"]);
    assert!(out.contains("deleted schedule sc-pgbackrest-full"), "{out}");
    let out = server.pgo_ok(&["show", "schedule", "sc"]);
    assert!(out.contains("no schedules"), "{out}");
    // A schedule goes with its cluster.
    server.pgo_ok(&[
        "create",
        "schedule",
        "sc",
        "--schedule=0 1 * * *",
        "--schedule-name=nightly",
    ]);
    server.pgo_ok(&["delete", "cluster", "sc", "--no-prompt"]);
    let tasks = || server.pgo_ok(&["status", "-o", "json"]);
    // It notices within 30 s, the longest a schedule waits to look again.
    server.wait_until(45, "the schedule to go with its cluster", || {
        !tasks().contains("nightly")
    });
}

#[test]
fn a_pg_basebackup_schedule_takes_copies_without_pgbackrest() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "cp", "--pgbackrest=false"]);
    let err = server.pgo_err(&["create", "schedule", "cp", "--schedule=0 1 * * *"]);
    assert!(err.contains("does not use pgBackRest"), "{err}");
    let err = server.pgo_err(&[
        "create",
        "schedule",
        "cp",
        "--schedule=0 1 * * *",
        "--schedule-type=pgbasebackup",
        "--pgbackrest-backup-type=incr",
    ]);
    assert!(err.contains("always whole"), "{err}");
    let out = server.pgo_ok(&[
        "create",
        "schedule",
        "cp",
        "--schedule=*/5 * * * * *",
        "--schedule-type=pgbasebackup",
    ]);
    assert!(out.contains("created schedule cp-pgbasebackup"), "{out}");
    let copies = || -> Vec<Value> {
        let list: Value =
            serde_json::from_str(&server.pgo_ok(&["show", "backup", "cp", "-o", "json"])).unwrap();
        list["backups"].as_array().unwrap().clone()
    };
    server.wait_until(60, "a scheduled copy", || {
        copies().iter().any(|b| b["phase"] == "Succeeded")
    });
    let done = copies().into_iter().find(|b| b["phase"] == "Succeeded").unwrap();
    assert_eq!(done["backupType"], "pgbasebackup", "{done}");
    let path = done["backup"]["label"].as_str().unwrap();
    assert!(
        server
            .dir()
            .join("home/volumes/cp-backup")
            .join(path)
            .join("PG_VERSION")
            .is_file(),
        "{done}"
    );
}
