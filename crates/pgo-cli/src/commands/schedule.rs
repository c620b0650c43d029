//! `pgo create|show|delete schedule`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, sayln, table};
use pgo_api::rest::{CreateScheduleRequest, ScheduleView};
use std::process::ExitCode;

pub async fn create(client: &Client, req: &CreateScheduleRequest) -> Result<ExitCode, CliError> {
    let made: ScheduleView = client.post("/schedules", req).await?;
    sayln!(
        "created schedule {} of cluster {}: a {} backup at \"{}\" (UTC)",
        made.name,
        made.cluster,
        made.backup_type,
        made.schedule
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client, cluster: &str) -> Result<Vec<ScheduleView>, CliError> {
    client
        .get(&format!("/schedules?cluster={}", segment(cluster)))
        .await
}

pub async fn show(client: &Client, cluster: &str, format: Format) -> Result<ExitCode, CliError> {
    let all = list(client, cluster).await?;
    if output::structured(format, &all)? {
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        sayln!("cluster {cluster} has no schedules");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.schedule.clone(),
                s.schedule_type.clone(),
                s.backup_type.clone(),
                s.last_run.clone().unwrap_or_else(|| "-".into()),
                s.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &["SCHEDULE", "CRON (UTC)", "TYPE", "BACKUP", "LAST", "MESSAGE"],
            &rows,
            ""
        )
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(
    client: &Client,
    cluster: &str,
    name: Option<&str>,
    no_prompt: bool,
) -> Result<ExitCode, CliError> {
    let all = list(client, cluster).await?;
    let doomed: Vec<&ScheduleView> = all.iter().filter(|s| name.is_none_or(|n| s.name == n)).collect();
    if doomed.is_empty() {
        return Err(CliError::Api(match name {
            Some(n) => format!("cluster {cluster} has no schedule {n:?}"),
            None => format!("cluster {cluster} has no schedules"),
        }));
    }
    let names: Vec<&str> = doomed.iter().map(|s| s.name.as_str()).collect();
    if !output::confirm(!no_prompt, &format!("Delete schedule {}?", names.join(", ")))? {
        sayln!("nothing deleted");
        return Ok(ExitCode::FAILURE);
    }
    for s in names {
        let gone: ScheduleView = client.delete(&format!("/schedules/{}", segment(s))).await?;
        sayln!("deleted schedule {}", gone.name);
    }
    Ok(ExitCode::SUCCESS)
}
