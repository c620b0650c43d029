//! Self-fencing. On Kubernetes the operator fences a primary by deleting
//! its Deployment, which does not stop PostgreSQL on a node it cannot reach:
//! a partitioned primary would go on taking writes while another is
//! promoted. So the manager of a primary asks the API server every
//! [`PERIOD`] which instance its Pgcluster names primary, and stops
//! PostgreSQL when the answer is another one, or when it has had no answer
//! for the bound. CloudNativePG's isolation check is the model; here only
//! the API server is asked, so a bound is the price of simplicity: an API
//! server that is down for longer than it stops every primary until it is
//! back.

use pgo_api::instance::{InstanceConfig, IsolationCheck};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often the store is asked.
pub const PERIOD: Duration = Duration::from_secs(2);

/// What the last answers said.
#[derive(Clone, Debug)]
pub struct Confirmation {
    /// When the store last answered.
    pub at: Instant,
    /// The primary it named then.
    pub primary: Option<String>,
    /// Why the last question got no answer, if it did not.
    pub error: Option<String>,
}

/// What a primary may do now.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The store named this instance within the bound.
    Confirmed,
    /// Nothing heard yet, still within the bound: keep going.
    Waiting,
    /// Stop PostgreSQL, saying why.
    Fence(String),
}

/// The pure decision: `me` is this instance, `seen` the last confirmation.
pub fn verdict(me: &str, seen: &Confirmation, bound: Duration, now: Instant) -> Verdict {
    match seen.primary.as_deref() {
        Some(other) if other != me => {
            Verdict::Fence(format!("the store names {other} as the primary, not {me}"))
        }
        _ if now.duration_since(seen.at) > bound => Verdict::Fence(format!(
            "cannot confirm for {}s that the store still names {me} primary{}",
            bound.as_secs(),
            seen.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        )),
        Some(_) => Verdict::Confirmed,
        None => Verdict::Waiting,
    }
}

/// Asks the API server, every [`PERIOD`], for the cluster's primary, and
/// keeps the answer in `into`.
pub async fn watch(config: InstanceConfig, check: IsolationCheck, into: Arc<RwLock<Confirmation>>) {
    let client = match client(&check) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("isolation check: {e}");
            if let Ok(mut c) = into.write() {
                c.error = Some(e);
            }
            return;
        }
    };
    let url = format!(
        "{}/apis/{}/{}/namespaces/{}/pgclusters/{}",
        check.api_server.trim_end_matches('/'),
        pgo_api::GROUP,
        pgo_api::VERSION,
        check.namespace,
        config.cluster
    );
    loop {
        let answer = ask(&client, &url, &check).await;
        if let Ok(mut c) = into.write() {
            match answer {
                Ok(primary) => {
                    c.at = Instant::now();
                    c.primary = primary;
                    c.error = None;
                }
                Err(e) => c.error = Some(e),
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

fn client(check: &IsolationCheck) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(PERIOD).no_proxy();
    if let Some(ca) = &check.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
        builder = builder.tls_certs_only([cert]);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The primary the Pgcluster's status names.
async fn ask(client: &reqwest::Client, url: &str, check: &IsolationCheck) -> Result<Option<String>, String> {
    let token = std::fs::read_to_string(&check.token_file)
        .map_err(|e| format!("cannot read {}: {e}", check.token_file.display()))?;
    let resp = client
        .get(url)
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: {}", resp.status()));
    }
    let cluster: serde_json::Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    Ok(cluster["status"]["primary"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(primary: Option<&str>, ago: Duration, now: Instant) -> Confirmation {
        Confirmation {
            at: now.checked_sub(ago).unwrap_or(now),
            primary: primary.map(str::to_string),
            error: Some("connection refused".into()),
        }
    }

    #[test]
    fn a_primary_goes_on_only_while_the_store_names_it_within_the_bound() {
        let now = Instant::now();
        let bound = Duration::from_secs(30);
        let s = Duration::from_secs;
        let cases = [
            (Some("db"), s(1), Verdict::Confirmed),
            (Some("db"), s(29), Verdict::Confirmed),
            (None, s(5), Verdict::Waiting),
        ];
        for (primary, ago, want) in cases {
            assert_eq!(
                verdict("db", &seen(primary, ago, now), bound, now),
                want,
                "{primary:?} {ago:?}"
            );
        }
        let Verdict::Fence(why) = verdict("db", &seen(Some("db-x"), s(1), now), bound, now) else {
            panic!("another primary named: must fence");
        };
        assert!(why.contains("names db-x"), "{why}");
        for primary in [Some("db"), None] {
            let Verdict::Fence(why) = verdict("db", &seen(primary, s(31), now), bound, now) else {
                panic!("silent past the bound: must fence");
            };
            assert!(why.contains("30s") && why.contains("connection refused"), "{why}");
        }
    }
}
