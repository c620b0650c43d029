#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `postgres-operator crd` prints the CRDs of all six kinds, and the copy
//! committed under deploy/crds/ is what it prints.

mod support;

use std::process::Command;

#[test]
fn the_committed_crds_are_current() {
    let out = Command::new(support::SERVER).arg("crd").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/pgo-crds.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        printed == committed,
        "deploy/crds/pgo-crds.yaml is stale: run `cargo run -q --bin postgres-operator -- crd > deploy/crds/pgo-crds.yaml`"
    );
    let kinds: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("    kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Pgcluster",
            "Pgreplica",
            "Pgbackup",
            "Pgtask",
            "Pgpolicy",
            "Pgupgrade"
        ]
    );
}
