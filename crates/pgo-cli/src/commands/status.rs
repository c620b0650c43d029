use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, table};
use crate::output::{say, sayln};
use pgo_api::rest::StatusResponse;
use std::process::ExitCode;

pub async fn run(client: &Client, format: Format) -> Result<ExitCode, CliError> {
    let s: StatusResponse = client.get("/status").await?;
    if output::structured(format, &s)? {
        return Ok(ExitCode::SUCCESS);
    }
    sayln!("platform   {} (nodes: {})", s.platform, s.nodes.join(", "));
    sayln!("clusters   {} ({} ready)", s.clusters, s.clusters_ready);
    sayln!("instances  {} ({} ready)", s.instances, s.instances_ready);
    sayln!("volumes    {}", s.volumes.len());
    if !s.volumes.is_empty() {
        let rows: Vec<Vec<String>> = s
            .volumes
            .iter()
            .map(|v| vec![v.name.clone(), v.cluster.clone(), v.path.clone()])
            .collect();
        say!("{}", table(&["VOLUME", "CLUSTER", "PATH"], &rows, "  "));
    }
    if !s.tasks.is_empty() {
        let rows: Vec<Vec<String>> = s
            .tasks
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.task_type.clone(),
                    t.cluster.clone(),
                    t.phase.clone(),
                    t.message.clone().unwrap_or_default(),
                ]
            })
            .collect();
        sayln!("tasks      {}", s.tasks.len());
        say!(
            "{}",
            table(&["TASK", "TYPE", "CLUSTER", "PHASE", "MESSAGE"], &rows, "  ")
        );
    }
    if s.not_ready.is_empty() {
        sayln!("everything is ready");
    } else {
        sayln!("not ready:");
        for line in &s.not_ready {
            sayln!("  - {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
