#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `GET /metrics`: the operator's and the apiserver's series, in
//! Prometheus' text format, for a user with `ShowMetrics` only.

mod support;

use support::*;

/// The value of the series `name{labels}` (labels as printed, in order).
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_reconciles_failovers_clusters_and_requests_for_readers_only() {
    let server = fast_server();
    server.pgo_ok(&["create", "cluster", "met", "--replica-count=1"]);
    let replica = members(&server.show_json("met"), "Replica")[0].clone();
    server.pgo_ok(&["failover", "met", "--target", &replica, "--no-prompt"]);
    server.wait_until(30, "the failover to finish", || {
        server.show_json("met")["failovers"][0]["outcome"] == "succeeded"
    });

    let http = https_client(&server);
    let url = format!("https://127.0.0.1:{}/metrics", server.port());
    // Nobody unauthenticated; a reader may.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (user, pass) = add_user(&server, "scraper", "pgoreader");
    let r = http
        .get(&url)
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers()
    );
    let body = r.text().await.unwrap();

    assert_eq!(value(&body, "pgo_clusters{phase=\"Ready\"}"), Some(1.0), "{body}");
    assert_eq!(
        value(&body, "pgo_clusters{phase=\"Failed\"}"),
        Some(0.0),
        "{body}"
    );
    let ok = value(
        &body,
        "pgo_operator_reconciles_total{controller=\"cluster\",outcome=\"Requeue\"}",
    )
    .unwrap_or_else(|| panic!("no reconciles in {body}"));
    assert!(ok >= 3.0, "{body}");
    assert!(
        body.contains("pgo_operator_reconcile_duration_seconds_bucket{"),
        "{body}"
    );
    assert!(
        body.contains("pgo_operator_queue_depth{controller=\"cluster\"}"),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "pgo_operator_failovers_total{reason=\"Manual\",outcome=\"Succeeded\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            "pgo_operator_failover_duration_seconds_count{reason=\"Manual\"}"
        ),
        Some(1.0),
        "{body}"
    );
    // Routes are counted by pattern, never by the names in their paths.
    let created = value(
        &body,
        "pgo_apiserver_requests_total{method=\"POST\",route=\"/clusters\",code=\"202\"}",
    )
    .or_else(|| {
        value(
            &body,
            "pgo_apiserver_requests_total{method=\"POST\",route=\"/clusters\",code=\"201\"}",
        )
    });
    assert_eq!(created, Some(1.0), "{body}");
    assert!(
        body.contains("route=\"/clusters/{name}\"") && !body.contains("route=\"/clusters/met\""),
        "{body}"
    );
    assert!(
        body.contains("code=\"401\""),
        "the refused scrape is counted: {body}"
    );
    assert!(
        body.trim_end().ends_with("# EOF"),
        "one registry, one end: {body}"
    );
}
