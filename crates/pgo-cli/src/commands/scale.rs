//! `pgo scale`, `pgo scaledown`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, sayln};
use crate::progress::Progress;
use pgo_api::cluster::MemberRole;
use pgo_api::rest::{ClusterView, DeleteClusterResponse, ScaleRequest, ScaledownRequest};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn scale(
    client: &Client,
    name: &str,
    add: u32,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let path = format!("/clusters/{}", segment(name));
    let view: ClusterView = client
        .post(&format!("{path}/scale"), &ScaleRequest { replica_count: add })
        .await?;
    sayln!("cluster {}: {} replica(s) wanted", view.name, view.replicas);
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let mut progress = Progress::new();
    loop {
        let v: ClusterView = client.get(&path).await?;
        let ready = v
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Replica && m.ready)
            .count();
        if ready >= v.replicas as usize {
            progress.finish();
            sayln!(
                "{ready} replica(s) ready in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() >= Duration::from_secs(timeout) {
            progress.finish();
            return Err(CliError::Api(format!(
                "only {ready} of {} replicas were ready within {timeout}s; see 'pgo show cluster {name}'",
                v.replicas
            )));
        }
        progress.update(&format!("{ready} of {} replicas ready", v.replicas));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The replicas a scaledown may take.
pub async fn query(client: &Client, name: &str, format: Format) -> Result<ExitCode, CliError> {
    super::failover::replicas(client, name, format, "has no replicas").await
}

pub async fn scaledown(
    client: &Client,
    name: &str,
    target: &str,
    delete_data: bool,
    no_prompt: bool,
) -> Result<ExitCode, CliError> {
    let data = if delete_data { " and its data" } else { "" };
    if !output::confirm(
        !no_prompt,
        &format!("Remove replica {target} of cluster {name}{data}?"),
    )? {
        sayln!("nothing removed");
        return Ok(ExitCode::FAILURE);
    }
    let path = format!("/clusters/{}", segment(name));
    let r: DeleteClusterResponse = client
        .post(
            &format!("{path}/scaledown"),
            &ScaledownRequest {
                target: target.to_string(),
                delete_data,
            },
        )
        .await?;
    sayln!("replica {}: {}", r.name, r.message);
    let started = Instant::now();
    let mut progress = Progress::new();
    loop {
        let v: ClusterView = client.get(&path).await?;
        if !v.members.iter().any(|m| m.name == target) {
            progress.finish();
            sayln!("replica {target} removed");
            return Ok(ExitCode::SUCCESS);
        }
        if started.elapsed() >= Duration::from_secs(120) {
            progress.finish();
            return Err(CliError::Api(format!(
                "replica {target} is still being removed after 120s"
            )));
        }
        progress.update(&format!("removing replica {target}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
