#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Storage configs of pgo.yaml on the local platform: `Storage.<name>.Path`
//! puts a config's volumes in another directory (another disk), chosen per
//! cluster with `--storage-config`, `--replica-storage-config` and on
//! `pgo scale`; a name pgo.yaml lacks, or a config that cannot be, is refused.

mod support;

use support::Server;

fn server_with_disks(disk_a: &std::path::Path, disk_b: &std::path::Path) -> Server {
    let yaml = format!(
        "Pgo:\n  ProbePeriodMs: 200\nPrimaryStorage: local\nStorage:\n  local:\n    Size: 1G\n  disk-a:\n    Size: 2G\n    Path: {}\n  disk-b:\n    AccessMode: ReadWriteOnce\n    Path: {}\n",
        disk_a.display(),
        disk_b.display()
    );
    Server::start_prepared(&[], move |home| {
        std::fs::write(home.join("pgo.yaml"), yaml).unwrap()
    })
}

#[test]
fn replicas_volumes_go_where_their_storage_config_says() {
    let disks = support::reachable_tempdir();
    let (a, b) = (disks.path().join("a"), disks.path().join("b"));
    let server = server_with_disks(&a, &b);
    assert!(a.is_dir() && b.is_dir(), "made at start");

    let err = server.pgo_err(&["create", "cluster", "st", "--replica-storage-config=ssd"]);
    assert!(
        err.contains("--replica-storage-config") && err.contains("\"ssd\""),
        "{err}"
    );
    assert!(err.contains("disk-a, disk-b, local"), "{err}");

    server.pgo_ok(&[
        "create",
        "cluster",
        "st",
        "--replica-count=1",
        "--replica-storage-config=disk-a",
    ]);
    let view = server.show_json("st");
    let replica = support::members(&view, "Replica")[0].clone();
    // The replica's data is on disk a; the primary's where data goes.
    assert!(a.join(&replica).join("pgdata/PG_VERSION").is_file());
    assert!(server.home.join("volumes/st/pgdata/PG_VERSION").is_file());
    let pvcs = server.pgo_ok(&["show", "pvc", "st"]);
    assert!(pvcs.contains(&a.join(&replica).display().to_string()), "{pvcs}");

    // pgo scale --storage-config: the new replica on disk b.
    server.pgo_ok(&["scale", "st", "--replica-count=1", "--storage-config=disk-b"]);
    let view = server.show_json("st");
    let third = support::members(&view, "Replica")
        .into_iter()
        .find(|r| *r != replica)
        .unwrap();
    assert!(b.join(&third).join("pgdata/PG_VERSION").is_file());
    let row = |r: &str| {
        support::psql(
            support::member(&view, r)["port"].as_u64().unwrap() as u16,
            &support::password(&view, "postgres"),
            "select pg_is_in_recovery()",
        )
    };
    assert_eq!(row(&third).trim(), "t");

    // Deleted with its data: gone from the other disks too.
    server.pgo_ok(&["delete", "cluster", "st", "--delete-data", "--no-prompt"]);
    server.wait_until(60, "the data on the other disks to go", || {
        !a.join(&replica).exists() && !b.join(&third).exists()
    });
}

#[test]
fn a_storage_config_that_cannot_be_stops_the_server_naming_it() {
    let err = support::refused_start("Storage:\n  nfs:\n    AccessMode: ReadWriteSometimes\n");
    assert!(
        err.contains("Storage.nfs") && err.contains("ReadWriteSometimes"),
        "{err}"
    );
    let err = support::refused_start("ReplicaStorage: missing\n");
    assert!(err.contains("ReplicaStorage") && err.contains("missing"), "{err}");
}
