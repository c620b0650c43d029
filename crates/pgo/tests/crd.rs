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
    // `kubectl get` shows more than names: every kind has printer
    // columns, its age among them.
    let docs: Vec<&str> = printed
        .split("\n---\n")
        .filter(|d| d.contains("kind: CustomResourceDefinition"))
        .collect();
    assert_eq!(docs.len(), 6);
    for doc in docs {
        let crd: serde_json::Value = serde_yaml::from_str(doc).unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind} has no printer columns"))
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert!(
            columns.len() >= 2 && columns.contains(&"Age"),
            "{kind}: {columns:?}"
        );
        if kind == "Pgcluster" {
            // The API server refuses a hand-written cluster pgo would
            // refuse: no port, a size that is not a quantity, a change to
            // what cannot change. A rule the API server cannot cost-bound
            // fails the CRD, so what a regular expression reads is bounded.
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            let rules = schema["x-kubernetes-validations"]
                .as_array()
                .expect("Pgcluster has no validation rules");
            let messages: Vec<&str> = rules.iter().filter_map(|r| r["message"].as_str()).collect();
            for needle in [
                "spec.port",
                "primaryStorage.size",
                "replicaStorage.size",
                "cannot change",
            ] {
                assert!(
                    messages.iter().any(|m| m.contains(needle)),
                    "{needle}: {messages:?}"
                );
            }
            let size = &schema["properties"]["spec"]["properties"]["primaryStorage"]["properties"]["size"];
            assert_eq!(size["maxLength"], 32, "{size}");
        }
    }
}

#[test]
fn the_committed_operator_conf_is_current() {
    let out = Command::new(support::SERVER)
        .arg("operator-conf")
        .output()
        .unwrap();
    assert!(out.status.success());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/operator-conf.yaml");
    assert!(
        out.stdout == std::fs::read(&path).unwrap(),
        "deploy/operator-conf.yaml is stale: run `cargo run -q --bin postgres-operator -- operator-conf > deploy/operator-conf.yaml`"
    );
}

#[test]
fn render_prints_the_objects_of_a_cluster_and_refuses_bad_input() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pgcluster.yaml");
    let out = Command::new(support::SERVER)
        .arg("render")
        .arg("-f")
        .arg(&example)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(yaml.matches("\nkind: Deployment").count(), 2, "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&example)
            .unwrap()
            .replace("strategy: \"1\"", "strategy: \"9\""),
    )
    .unwrap();
    let out = Command::new(support::SERVER)
        .arg("render")
        .arg("-f")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown strategy \"9\""));
    std::fs::write(&bad, "kind: Deployment\n").unwrap();
    let out = Command::new(support::SERVER)
        .arg("render")
        .arg("-f")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("render takes Pgclusters and Pgreplicas"));
}
