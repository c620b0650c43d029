use super::segment;
use crate::CliError;
use crate::client::Client;
use crate::output::{self, sayln};
use crate::progress::Progress;
use pgo_api::rest::{ClusterView, DeleteClusterResponse};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What goes with a deleted cluster besides its instances and services.
pub struct Removes {
    pub data: bool,
    pub backups: bool,
}

/// Deletes each name; a name that does not exist is reported and the
/// others are still deleted.
pub async fn cluster(
    client: &Client,
    names: &[String],
    removes: Removes,
    no_prompt: bool,
    no_wait: bool,
    timeout: u64,
) -> Result<ExitCode, CliError> {
    let question = format!(
        "Delete cluster{} {}? Instances and services stop; {}",
        if names.len() > 1 { "s" } else { "" },
        names.join(", "),
        match (removes.data, removes.backups) {
            (true, true) => "ALL DATA, VOLUMES AND BACKUPS ARE REMOVED.",
            (true, false) => "ALL DATA AND VOLUMES ARE REMOVED; backups are kept.",
            (false, true) => "ALL BACKUPS ARE REMOVED; data and volumes are kept.",
            (false, false) => "data, volumes and backups are kept.",
        }
    );
    let mut params = Vec::new();
    if removes.data {
        params.push("delete-data=true");
    }
    if removes.backups {
        params.push("delete-backups=true");
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    if !output::confirm(!no_prompt, &question)? {
        sayln!("nothing deleted");
        return Ok(ExitCode::FAILURE);
    }
    let mut failed = false;
    let mut pending = Vec::new();
    for name in names {
        match client
            .delete::<DeleteClusterResponse>(&format!("/clusters/{}{query}", segment(name)))
            .await
        {
            Ok(r) => {
                sayln!("cluster {}: {}", r.name, r.message);
                pending.push(name.clone());
            }
            Err(CliError::Api(e)) => {
                eprintln!("pgo: {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if !no_wait {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let mut progress = Progress::new();
        for name in pending {
            loop {
                let still = client
                    .get_opt::<ClusterView>(&format!("/clusters/{}", segment(&name)))
                    .await?;
                if still.is_none() {
                    progress.finish();
                    sayln!("cluster {name} deleted");
                    break;
                }
                if Instant::now() >= deadline {
                    progress.finish();
                    eprintln!("pgo: cluster {name} is still being deleted after {timeout}s");
                    failed = true;
                    break;
                }
                progress.update(&format!("waiting for cluster {name} to stop"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
