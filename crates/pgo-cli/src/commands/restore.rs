//! `pgo restore NAME`: a restore in place, asked for on a terminal.

use super::{cluster_table, replicas_ready, segment};
use crate::CliError;
use crate::client::Client;
use crate::output::{self, say, sayln};
use crate::wait::{self, Look};
use pgo_api::cluster::ClusterPhase;
use pgo_api::rest::{ClusterView, RestoreRequest, RestoreResponse, TaskView};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn run(
    client: &Client,
    name: &str,
    req: &RestoreRequest,
    no_prompt: bool,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let to = req.pitr_target.as_deref().unwrap_or("the last archived WAL");
    let question = format!(
        "Restore cluster {name} to {to}? It stops now; what was written after that moment is no longer in it, and its replicas are made again."
    );
    if !output::confirm(!no_prompt, &question)? {
        sayln!("nothing restored");
        return Ok(ExitCode::FAILURE);
    }
    let path = format!("/clusters/{}", segment(name));
    let before: ClusterView = client.get(&path).await?;
    let started = Instant::now();
    let r: RestoreResponse = client.post(&format!("{path}/restore"), req).await?;
    sayln!("cluster {}: {}", r.name, r.message);
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = started + Duration::from_secs(timeout);
    let view = wait::until(
        deadline,
        Duration::from_millis(250),
        async || {
            let view: ClusterView = client.get(&path).await?;
            let restored =
                view.restores.len() > before.restores.len() || view.restores.last() != before.restores.last();
            Ok(match view.phase {
                ClusterPhase::Ready if restored && replicas_ready(&view) >= view.replicas as usize => {
                    Look::Done(view)
                }
                ClusterPhase::Failed => Look::Failed(format!(
                    "cluster {} failed: {}",
                    view.name,
                    view.message.unwrap_or_else(|| "no reason given".into())
                )),
                phase => Look::Waiting(format!(
                    "cluster {} is {phase} {}",
                    view.name,
                    view.message.unwrap_or_default()
                )),
            })
        },
        || format!("cluster {name} was not restored within {timeout}s; see 'pgo show cluster {name}'"),
    )
    .await?;
    sayln!(
        "restored cluster {} in {:.1}s",
        view.name,
        started.elapsed().as_secs_f64()
    );
    say!("{}", cluster_table::render(&view));
    Ok(ExitCode::SUCCESS)
}

/// `pgo restore NAME --to-pvc=VOL`: nothing of the cluster changes, so
/// nothing is asked; waits for the restore's task to end.
pub async fn to_pvc(
    client: &Client,
    name: &str,
    req: &RestoreRequest,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let started = Instant::now();
    let r: RestoreResponse = client
        .post(&format!("/clusters/{}/restore", segment(name)), req)
        .await?;
    sayln!("cluster {}: {}", r.name, r.message);
    let Some(task) = r.task.filter(|_| !no_wait) else {
        return Ok(ExitCode::SUCCESS);
    };
    let deadline = started + Duration::from_secs(timeout);
    let volume = req.to_pvc.as_deref().unwrap_or_default();
    let message = wait::until(
        deadline,
        Duration::from_millis(100),
        async || {
            let t: Option<TaskView> = client.get_opt(&format!("/tasks/{}", segment(&task))).await?;
            let Some(t) = t else {
                return Ok(Look::Failed(format!("the restore's task {task} is gone")));
            };
            Ok(match t.phase.as_str() {
                "Succeeded" => Look::Done(t.message.unwrap_or_default()),
                "Failed" => Look::Failed(t.message.unwrap_or_else(|| "the restore failed".into())),
                _ => Look::Waiting(format!(
                    "restore into {volume}: {}",
                    t.message.unwrap_or_default()
                )),
            })
        },
        || format!("the restore has not finished within {timeout}s; see 'pgo status'"),
    )
    .await?;
    sayln!("done in {:.1}s: {message}", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
