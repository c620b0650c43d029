//! `pgo failover`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, sayln, table};
use crate::progress::Progress;
use pgo_api::cluster::MemberRole;
use pgo_api::rest::{ClusterView, FailoverRequest, FailoverView};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The replicas of a cluster with what choosing one needs: readiness, node,
/// WAL received and lag. `none` is said when there are none.
pub async fn replicas(client: &Client, name: &str, format: Format, none: &str) -> Result<ExitCode, CliError> {
    let v: ClusterView = client.get(&format!("/clusters/{}", segment(name))).await?;
    let replicas: Vec<_> = v
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Replica)
        .collect();
    if output::structured(format, &replicas)? {
        return Ok(ExitCode::SUCCESS);
    }
    if replicas.is_empty() {
        sayln!("cluster {name} {none}");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = replicas
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                if m.ready { "yes".into() } else { "no".into() },
                m.node.clone(),
                m.received_lsn
                    .clone()
                    .or(m.wal_lsn.clone())
                    .unwrap_or_else(|| "-".into()),
                m.lag_bytes.map_or("-".into(), |l| l.to_string()),
            ]
        })
        .collect();
    say!(
        "{}",
        table(&["REPLICA", "READY", "NODE", "WAL RECEIVED", "LAG"], &rows, "")
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run(
    client: &Client,
    name: &str,
    target: &str,
    no_prompt: bool,
    replace: Option<bool>,
) -> Result<ExitCode, CliError> {
    if !output::confirm(
        !no_prompt,
        &format!("Fail cluster {name} over to {target}? The current primary is stopped."),
    )? {
        sayln!("nothing changed");
        return Ok(ExitCode::FAILURE);
    }
    let path = format!("/clusters/{}", segment(name));
    let before: ClusterView = client.get(&path).await?;
    let started: FailoverView = client
        .post(
            &format!("{path}/failover"),
            &FailoverRequest {
                target: target.to_string(),
                replace_replica: replace,
            },
        )
        .await?;
    sayln!(
        "failover of cluster {} to {} started",
        started.cluster,
        started.target
    );
    let t0 = Instant::now();
    let mut progress = Progress::new();
    loop {
        let v: ClusterView = client.get(&path).await?;
        if v.failovers.len() > before.failovers.len() || v.failovers.last() != before.failovers.last() {
            progress.finish();
            if let Some(f) = v.failovers.last() {
                if f.outcome == "succeeded" {
                    sayln!(
                        "{} is the primary of cluster {name} (failover took {:.1}s)",
                        f.to,
                        f.duration_ms as f64 / 1000.0
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(CliError::Api(format!("failover to {} {}", f.to, f.outcome)));
            }
        }
        if t0.elapsed() > Duration::from_secs(300) {
            progress.finish();
            return Err(CliError::Api(format!(
                "the failover of {name} did not finish within 300s; see 'pgo show cluster {name}'"
            )));
        }
        progress.update(&format!("failing {name} over to {target}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
