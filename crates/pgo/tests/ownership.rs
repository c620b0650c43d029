#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What belongs to a cluster stays its own: its volume is not another's to
//! adopt, and `--delete-data` removes its data and its passwords, even when
//! the cluster was made again under the same name.

mod support;

use support::{Server, fast_server, password};

#[test]
fn a_cluster_cannot_take_another_clusters_volume() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "alpha"]);
    let postmaster = server.postmaster_pid("alpha");
    let err = server.pgo_err(&["create", "cluster", "thief", "--pvc-name=alpha", "--no-wait"]);
    assert!(
        err.contains("HTTP 409") && err.contains("volume alpha belongs to cluster alpha"),
        "{err}"
    );
    let status = server.pgo_ok(&["show", "cluster", "all"]);
    assert!(!status.contains("thief"), "{status}");
    // alpha's PostgreSQL was not touched.
    assert_eq!(server.postmaster_pid("alpha"), postmaster);
    assert_eq!(server.show_json("alpha")["phase"], "Ready");
}

#[test]
fn delete_data_of_a_cluster_made_again_removes_its_data_and_its_passwords() {
    let server = fast_server();
    let volumes = server.home.join("volumes");
    server.pgo_ok(&["create", "cluster", "again"]);
    let first = password(&server.show_json("again"), "postgres");
    server.pgo_ok(&["delete", "cluster", "again", "--delete-data", "--no-prompt"]);
    server.wait_until(30, "the first data removal", || !volumes.join("again").exists());
    assert!(
        !server.home.join("secrets/again-postgres-secret").exists(),
        "the secrets go with the data"
    );

    server.pgo_ok(&["create", "cluster", "again"]);
    let second = password(&server.show_json("again"), "postgres");
    assert_ne!(first, second, "a cluster made again gets new passwords");
    assert!(volumes.join("again/pgdata/PG_VERSION").exists());
    server.pgo_ok(&["delete", "cluster", "again", "--delete-data", "--no-prompt"]);
    server.wait_until(30, "the second data removal", || !volumes.join("again").exists());
    let status = server.pgo_ok(&["status"]);
    assert_eq!(status.matches("again-rmdata-").count(), 2, "{status}");
}
