//! `pgo restart`: every member restarts, replicas first; the wait ends
//! when each has started since the request and the cluster is ready.

use super::segment;
use crate::CliError;
use crate::client::Client;
use crate::output::{self, sayln};
use crate::wait::{self, Look};
use pgo_api::cluster::{ClusterPhase, MemberRole};
use pgo_api::rest::ClusterView;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn run(
    client: &Client,
    name: &str,
    no_prompt: bool,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    if !output::confirm(
        !no_prompt,
        &format!("Restart cluster {name} (replicas first, then a switchover)?"),
    )? {
        sayln!("nothing restarted");
        return Ok(ExitCode::FAILURE);
    }
    let path = format!("/clusters/{}", segment(name));
    let asked: ClusterView = client
        .post(&format!("{path}/restart"), &serde_json::json!({}))
        .await?;
    let wanted = asked.restarts;
    if no_wait {
        sayln!("cluster {name}: restart {wanted} accepted");
        return Ok(ExitCode::SUCCESS);
    }
    let done = wait::until(
        Instant::now() + Duration::from_secs(timeout),
        Duration::from_millis(100),
        async || {
            let v: ClusterView = client.get(&path).await?;
            let left: Vec<&str> = v
                .members
                .iter()
                .filter(|m| m.restarts < wanted)
                .map(|m| m.name.as_str())
                .collect();
            // Every member ready in the role the cluster gives it: the
            // switchover seen through, not only asked for.
            let all_ready = v.members.iter().all(|m| {
                let role = if v.primary.as_deref() == Some(m.name.as_str()) {
                    MemberRole::Primary
                } else {
                    MemberRole::Replica
                };
                m.ready && m.role == role
            });
            Ok(match v.phase {
                ClusterPhase::Failed => Look::Failed(format!(
                    "cluster {name} failed: {}",
                    v.message.clone().unwrap_or_default()
                )),
                ClusterPhase::Ready if left.is_empty() && all_ready => Look::Done(v),
                _ if left.is_empty() => Look::Waiting("waiting for every member to be ready".into()),
                _ => Look::Waiting(format!("restarting: {} to go", left.join(", "))),
            })
        },
        || {
            format!(
                "cluster {name} did not finish restarting within {timeout}s; see 'pgo show cluster {name}'"
            )
        },
    )
    .await?;
    sayln!(
        "cluster {name} restarted: primary {}",
        done.primary.as_deref().unwrap_or("-")
    );
    Ok(ExitCode::SUCCESS)
}
