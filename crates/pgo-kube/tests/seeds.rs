#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A cluster made from a pg_basebackup copy (`--backup-pvc`) on
//! Kubernetes: a seed Job fills the primary's PVC before its Deployment is
//! made, against the in-memory API server (the stand-in kubelet runs the
//! real copy in `pgo/tests/pod_backups.rs`).

mod support;

use serde_json::json;
use support::fake_api::*;
use support::{World, ready_with, request};

fn from_copy() -> pgo_api::rest::CreateClusterRequest {
    let mut r = request("copy");
    r.backup_pvc = Some("db-backup".into());
    r.backup_path = Some("db-backups/2026-11-24-10-00-00".into());
    r.secret_from = Some("db".into());
    r
}

#[tokio::test]
async fn the_primary_waits_for_its_seed_job_which_is_tried_again_when_it_fails() {
    let w = World::new();
    // The source, whose users' passwords the copy's keep.
    w.create(request("db")).await;
    w.until("db", ready_with(0)).await;
    w.create(from_copy()).await;
    // The first pass adds the finalizer.
    for _ in 0..3 {
        w.pass("copy").await.unwrap();
    }
    // The Job mounts the new claim and the backup claim, read-only; no
    // Deployment yet, and the cluster says what it waits for.
    let job = w.api.get(JOBS, "copy-seed").expect("no seed Job");
    let volumes = &job["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["persistentVolumeClaim"]["claimName"], "copy");
    assert_eq!(volumes[1]["persistentVolumeClaim"]["claimName"], "db-backup");
    assert_eq!(volumes[1]["persistentVolumeClaim"]["readOnly"], true);
    assert!(w.api.get(DEPLOYMENTS, "copy").is_none());
    w.pass("copy").await.unwrap();
    let status = w.clusters().get("copy").await.unwrap().status.unwrap();
    let said = format!("{status:?}");
    assert!(said.contains("copying the data directory"), "{said}");

    // It fails: its words reach the cluster, and the Job goes so the next
    // pass starts another.
    w.api.patch(
        JOBS,
        "copy-seed",
        json!({ "status": { "failed": 1, "conditions": [{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "cp: No space left on device" }] } }),
    );
    let e = w
        .pass("copy")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("No space left on device") && e.contains("tried again"),
        "{e}"
    );
    let message = w.clusters().get("copy").await.unwrap().status.unwrap().message;
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("No space left on device")),
        "{message:?}"
    );
    assert!(w.api.get(JOBS, "copy-seed").is_none());
    assert!(w.api.get(DEPLOYMENTS, "copy").is_none());

    // Again, and it succeeds: the Deployment follows, mounting no backup
    // claim, and the Job goes.
    w.pass("copy").await.unwrap();
    w.api
        .patch(JOBS, "copy-seed", json!({ "status": { "succeeded": 1 } }));
    w.until("copy", ready_with(0)).await;
    assert!(w.api.get(JOBS, "copy-seed").is_none());
    let deployment = w.api.get(DEPLOYMENTS, "copy").unwrap();
    let mounts = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(!mounts.contains("db-backup"), "{mounts}");
    let pvc = w.api.get(PVCS, "copy").unwrap();
    assert_eq!(
        pvc["metadata"]["annotations"]["pgo.dev/filled-by"], "copy-seed",
        "{pvc}"
    );

    // The Deployment deleted by hand comes back on the data, with no
    // second copy (the backup claim may be gone by then).
    w.api.delete(DEPLOYMENTS, "copy");
    w.pass("copy").await.unwrap();
    assert!(w.api.get(DEPLOYMENTS, "copy").is_some());
    assert!(w.api.get(JOBS, "copy-seed").is_none());
    support::rbac::assert_granted(&w.api.log());
}
