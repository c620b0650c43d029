#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reverse of `support::rbac::assert_granted`: every rule the
//! operator's roles in deploy/rbac.yaml grant was used by some test's
//! operator (and, over every test's requests, each was granted). Run after the rest of the suite, which records its requests
//! (`./scripts/test.sh` does: `--run-ignored only`).

mod support;

use std::collections::BTreeSet;
use support::rbac::{audit_dir, granted, needs};

/// Granted for what no request here can show, each with its reason.
const UNSEEN: &[(&str, &str, &str, &str)] = &[
    (
        "pgo.dev",
        "pgclusters/finalizers",
        "update",
        "owner references with blockOwnerDeletion need it where the OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift); the in-memory API server does not enforce it",
    ),
    (
        "pgo.dev",
        "pgreplicas/finalizers",
        "update",
        "the same, for objects a Pgreplica owns",
    ),
    (
        "",
        "pods",
        "delete",
        "the fence deletes an old primary's pods that are left: Kubernetes collects a deleted Deployment's pods in the background, the in-memory API server at once, so none is left here; and it force-deletes pods on a node tainted out-of-service",
    ),
];

#[test]
#[ignore = "run after the suite, which records what it asked of the API server"]
fn every_rule_granted_to_the_operator_is_used() {
    let dir = audit_dir();
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}: run the whole suite first", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        logs.len() >= 5,
        "only {} recorded logs in {}",
        logs.len(),
        dir.display()
    );
    let mut used = BTreeSet::new();
    for log in &logs {
        for line in std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
        {
            used.insert(needs(line));
        }
    }
    let unseen: BTreeSet<(String, String, String)> = UNSEEN
        .iter()
        .map(|(g, r, v, _)| (g.to_string(), r.to_string(), v.to_string()))
        .collect();
    let granted = granted();
    // Both ways, over every test's requests (the end-to-end ones' too).
    let missing: Vec<_> = used.iter().filter(|rule| !granted.contains(*rule)).collect();
    assert!(missing.is_empty(), "deploy/rbac.yaml does not grant {missing:?}");
    let unused: Vec<_> = granted
        .into_iter()
        .filter(|rule| !used.contains(rule) && !unseen.contains(rule))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/rbac.yaml grants what no test's operator used (trim it, or say why in UNSEEN): {unused:?}"
    );
}
