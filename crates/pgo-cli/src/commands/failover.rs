//! `pgo failover`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, sayln, table};
use crate::wait::{self, Look};
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
    let f = wait::until(
        Instant::now() + Duration::from_secs(300),
        Duration::from_millis(100),
        async || {
            let v: ClusterView = client.get(&path).await?;
            let recorded =
                v.failovers.len() > before.failovers.len() || v.failovers.last() != before.failovers.last();
            Ok(match v.failovers.last() {
                Some(f) if recorded => Look::Done(f.clone()),
                _ => Look::Waiting(format!("failing {name} over to {target}")),
            })
        },
        || format!("the failover of {name} did not finish within 300s; see 'pgo show cluster {name}'"),
    )
    .await?;
    if f.outcome != "succeeded" {
        return Err(CliError::Api(format!("failover to {} {}", f.to, f.outcome)));
    }
    sayln!(
        "{} is the primary of cluster {name} (failover took {:.1}s)",
        f.to,
        f.duration_ms as f64 / 1000.0
    );
    Ok(ExitCode::SUCCESS)
}
