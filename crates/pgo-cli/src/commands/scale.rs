//! `pgo scale`, `pgo scaledown`.

use super::{replicas_ready, segment};
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, sayln};
use crate::wait::{self, Look};
use pgo_api::rest::{ClusterView, DeleteClusterResponse, ScaleRequest, ScaledownRequest};
use std::cell::Cell;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn scale(
    client: &Client,
    name: &str,
    add: u32,
    storage_config: Option<&str>,
    resources_config: Option<&str>,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let path = format!("/clusters/{}", segment(name));
    let req = ScaleRequest {
        replica_count: add,
        storage_config: storage_config.map(String::from),
        resources_config: resources_config.map(String::from),
    };
    let view: ClusterView = client.post(&format!("{path}/scale"), &req).await?;
    sayln!("cluster {}: {} replica(s) wanted", view.name, view.replicas);
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    // The last count seen, for the message if the wait runs out.
    let seen = Cell::new((0, 0));
    let ready = wait::until(
        started + Duration::from_secs(timeout),
        Duration::from_millis(100),
        async || {
            let v: ClusterView = client.get(&path).await?;
            let ready = replicas_ready(&v);
            seen.set((ready, v.replicas));
            Ok(if ready >= v.replicas as usize {
                Look::Done(ready)
            } else {
                Look::Waiting(format!("{ready} of {} replicas ready", v.replicas))
            })
        },
        || {
            let (ready, wanted) = seen.get();
            format!("only {ready} of {wanted} replicas were ready within {timeout}s; see 'pgo show cluster {name}'")
        },
    )
    .await?;
    sayln!(
        "{ready} replica(s) ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
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
    wait::until(
        Instant::now() + Duration::from_secs(120),
        Duration::from_millis(100),
        async || {
            let v: ClusterView = client.get(&path).await?;
            Ok(if v.members.iter().any(|m| m.name == target) {
                Look::Waiting(format!("removing replica {target}"))
            } else {
                Look::Done(())
            })
        },
        || format!("replica {target} is still being removed after 120s"),
    )
    .await?;
    sayln!("replica {target} removed");
    Ok(ExitCode::SUCCESS)
}
