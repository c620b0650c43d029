#![allow(clippy::unwrap_used, clippy::expect_used)]
//! pgo.yaml: the README's example is valid, and the server follows it.

mod support;

use pgo_api::config::PgoConfig;
use support::Server;

#[test]
fn the_readme_example_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    // The pgo.yaml block (others, such as Prometheus' scrape config, are not).
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.starts_with("Cluster:") || b.contains("\nPgo:"))
        .expect("no pgo.yaml block in the README");
    let config = PgoConfig::from_yaml(block).unwrap();
    assert_eq!(config, PgoConfig::default(), "the README shows the defaults");
    // And its storage configs' example.
    let storage = readme
        .split("```yaml\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.starts_with("PrimaryStorage:"))
        .expect("no storage example in the README");
    let config = PgoConfig::from_yaml(storage).unwrap();
    assert_eq!(config.check_storage(), Ok(()));
    assert_eq!(config.storage_spec("disk2").unwrap().fs_group, Some(26));
}

#[test]
fn the_server_follows_pgo_yaml() {
    let server = Server::start_prepared(&[], |home| {
        std::fs::write(home.join("pgo.yaml"), "Cluster:\n  Strategy: \"7\"\n").unwrap();
    });
    let err = server.pgo_err(&["create", "cluster", "x", "--no-wait"]);
    assert!(
        err.contains("unknown strategy \"7\"") && err.contains("HTTP 400"),
        "{err}"
    );

    let server = Server::start_prepared(&[], |home| {
        std::fs::write(
            home.join("pgo.yaml"),
            "Cluster:\n  Database: appdb\n  User: app\n",
        )
        .unwrap();
    });
    server.pgo_ok(&["create", "cluster", "custom"]);
    let view = server.show_json("custom");
    assert_eq!(view["database"], "appdb");
    assert!(
        view["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["username"] == "app")
    );
}

#[test]
fn a_stock_3_4_pgo_yaml_is_taken_and_what_it_sets_in_vain_is_said_once() {
    // 3.4's file as it shipped, with one replica asked by 3.4's key name.
    let stock =
        include_str!("../../pgo-api/src/testdata/pgo-3.4.yaml").replace("Replicas:  0", "Replicas:  1");
    let server = Server::start_prepared(&[], |home| std::fs::write(home.join("pgo.yaml"), &stock).unwrap());
    let log = server.log();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("does not act on")).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("Cluster.CCPImageTag") && !said[0].contains("Storage"),
        "{}",
        said[0]
    );
    server.pgo_ok(&["create", "cluster", "old"]);
    let view = server.show_json("old");
    assert_eq!(support::members(&view, "Replica").len(), 1, "{view:#}");
    assert!(
        view["backrest"] == false,
        "3.4's file turns pgBackRest off: {view:#}"
    );
    // What the server made of it, defaults filled in.
    let shown = server.pgo_ok(&["show", "config"]);
    let effective: serde_yaml::Value = serde_yaml::from_str(&shown).unwrap();
    assert_eq!(effective["Cluster"]["ReplicaCount"], 1, "{shown}");
    assert_eq!(effective["Cluster"]["Backrest"], false, "{shown}");
    assert_eq!(effective["Pgo"]["AutofailSleepSeconds"], 9, "{shown}");
}

#[test]
fn a_typo_in_pgo_yaml_stops_the_server_naming_it() {
    let err = support::refused_start("Pgo:\n  AutofailSleepSecs: 9\n");
    assert!(
        err.contains("pgo.yaml") && err.contains("AutofailSleepSecs"),
        "{err}"
    );
}

#[test]
fn container_resources_are_named_from_pgo_yaml() {
    let yaml = "ContainerResources:\n  small:\n    RequestsMemory: 256Mi\n    RequestsCPU: 0.1\n    LimitsMemory: 256Mi\n    LimitsCPU: 0.1\n";
    let server = Server::start_prepared(&[], |home| {
        std::fs::write(home.join("pgo.yaml"), yaml).unwrap();
    });
    let err = server.pgo_err(&[
        "create",
        "cluster",
        "x",
        "--resources-config",
        "large",
        "--no-wait",
    ]);
    assert!(
        err.contains("HTTP 400") && err.contains("\"large\"") && err.contains("known: small"),
        "{err}"
    );
    let err = server.pgo_err(&["show", "cluster", "x"]);
    assert!(err.contains("\"x\" not found"), "nothing was made: {err}");
    server.pgo_ok(&["create", "cluster", "sized", "-r", "small", "--no-wait"]);

    let err = support::refused_start("DefaultContainerResources: huge\n");
    assert!(
        err.contains("pgo.yaml") && err.contains("DefaultContainerResources names \"huge\""),
        "{err}"
    );
    let err = support::refused_start(
        "ContainerResources:\n  upside:\n    RequestsMemory: 2Gi\n    RequestsCPU: 1\n    LimitsMemory: 1Gi\n    LimitsCPU: 1\n",
    );
    assert!(
        err.contains("\"upside\"") && err.contains("must not exceed limits"),
        "{err}"
    );
}
