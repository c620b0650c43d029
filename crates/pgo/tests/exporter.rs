#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `--metrics` on the local platform: postgres_exporter (the Debian
//! package) beside every instance, supervised by its manager, connecting as
//! a pg_monitor member; scraped for real, and kept in step with failover,
//! scaling and deletion.

mod support;

use support::{Server, member, password, psql, service_port};

fn scrape(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The value of the first sample of `metric` whose line holds `with`.
fn sample(text: &str, metric: &str, with: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            (l.starts_with(&format!("{metric} ")) || l.starts_with(&format!("{metric}{{")))
                && l.contains(with)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn url_of(server: &Server, cluster: &str, instance: &str) -> String {
    let view = server.show_json(cluster);
    member(&view, instance)["metrics"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn exporters_running() -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-af", pgo_api::exporter::BINARY])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn every_instance_has_an_exporter_that_follows_failover_scaling_and_deletion() {
    let server = support::fast_server();
    server.pgo_ok(&["create", "cluster", "mx", "--metrics", "--replica-count=1"]);
    let view = server.show_json("mx");
    let primary = view["primary"].as_str().unwrap().to_string();
    let replica = support::members(&view, "Replica")[0].clone();
    let shown = server.pgo_ok(&["show", "cluster", "mx"]);
    assert!(
        shown.contains(&format!("metrics: {primary} http://127.0.0.1:")),
        "{shown}"
    );

    // The primary's: up, databases, replication seen from the primary,
    // archiving, sizes.
    let url = url_of(&server, "mx", &primary);
    let mut text = String::new();
    server.wait_until(30, "the primary's exporter to see its replica", || {
        text = scrape(&url);
        sample(&text, "pg_up", "").is_some_and(|v| v == 1.0)
            && sample(&text, "pg_replica_lag_bytes", &format!("replica=\"{replica}\"")).is_some()
    });
    assert!(
        sample(&text, "pg_stat_database_xact_commit", "datname=\"userdb\"").is_some(),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pg_replication_is_replica", ""),
        Some(0.0),
        "{text}"
    );
    assert!(sample(&text, "pg_archive_archived_count", "").is_some(), "{text}");
    assert!(
        sample(&text, "pg_database_size_bytes", "datname=\"userdb\"").is_some(),
        "{text}"
    );
    // The replica's: lag in bytes and seconds.
    let rurl = url_of(&server, "mx", &replica);
    server.wait_until(30, "the replica's exporter", || {
        let t = scrape(&rurl);
        sample(&t, "pg_replication_is_replica", "") == Some(1.0)
            && sample(&t, "pg_replication_lag_bytes", "").is_some()
            && sample(&t, "pg_replication_lag_seconds", "").is_some()
    });

    // It connects as a pg_monitor member and nothing more.
    let port = service_port(&view, "mx");
    let role = psql(
        port,
        &password(&view, "postgres"),
        "SELECT rolsuper::text || ' ' || pg_has_role('pgo_exporter', 'pg_monitor', 'member')::text || ' ' || (SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgo_exporter' AND client_addr IS NOT NULL OR usename = 'pgo_exporter')::text FROM pg_roles WHERE rolname = 'pgo_exporter'",
    );
    let fields: Vec<&str> = role.split_whitespace().collect();
    assert_eq!(&fields[..2], ["false", "true"], "{role}");

    // A failover: the new primary's exporter says so; the old primary's
    // instance is gone, and so is its exporter.
    server.pgo_ok(&["failover", "mx", &format!("--target={replica}"), "--no-prompt"]);
    server.wait_until(30, "the new primary's exporter", || {
        sample(&scrape(&rurl), "pg_replication_is_replica", "") == Some(0.0)
    });
    server.wait_until(30, "the old primary's exporter to stop", || {
        scrape(&url).is_empty()
    });

    // Scaling adds one; deleting the cluster leaves none.
    server.wait_until(60, "the replacement replica", || {
        support::members(&server.show_json("mx"), "Replica").len() == 1
    });
    let after = server.show_json("mx");
    let new_replica = support::members(&after, "Replica")[0].clone();
    server.wait_until(30, "the new replica's exporter", || {
        sample(&scrape(&url_of(&server, "mx", &new_replica)), "pg_up", "") == Some(1.0)
    });
    let home = server.home.display().to_string();
    assert_eq!(
        exporters_running().iter().filter(|l| l.contains(&home)).count(),
        2,
        "{:?}",
        exporters_running()
    );
    server.pgo_ok(&["delete", "cluster", "mx", "--no-prompt"]);
    server.wait_until(60, "every exporter to stop", || {
        !exporters_running().iter().any(|l| l.contains(&home))
    });
}
