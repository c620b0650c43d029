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
fn a_typo_in_pgo_yaml_stops_the_server_naming_it() {
    let err = support::refused_start("Pgo:\n  AutofailSleepSecs: 9\n");
    assert!(
        err.contains("pgo.yaml") && err.contains("AutofailSleepSecs"),
        "{err}"
    );
}
