use super::{cluster_table, segment};
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output;
use crate::output::{say, sayln};
use pgo_api::rest::ClusterView;
use std::process::ExitCode;

pub async fn cluster(
    client: &Client,
    names: &[String],
    format: Format,
    secrets: bool,
) -> Result<ExitCode, CliError> {
    let query = if secrets { "?showSecrets=true" } else { "" };
    let mut views: Vec<ClusterView> = Vec::new();
    let mut missing = Vec::new();
    let all = names.iter().any(|n| n == "all");
    if all {
        let list: Vec<ClusterView> = client.get("/clusters").await?;
        for v in list {
            if secrets {
                views.push(
                    client
                        .get(&format!("/clusters/{}{query}", segment(&v.name)))
                        .await?,
                );
            } else {
                views.push(v);
            }
        }
    } else {
        for name in names {
            match client
                .get_opt::<ClusterView>(&format!("/clusters/{}{query}", segment(name)))
                .await?
            {
                Some(v) => views.push(v),
                None => missing.push(name.clone()),
            }
        }
    }
    let single = !all && names.len() == 1;
    let printed = match (single, views.first()) {
        (true, Some(v)) => output::structured(format, v)?,
        (true, None) => format != Format::Table,
        _ => output::structured(format, &views)?,
    };
    if !printed {
        if views.is_empty() && all {
            sayln!("no clusters");
        }
        for (i, v) in views.iter().enumerate() {
            if i > 0 {
                sayln!();
            }
            say!("{}", cluster_table::render(v));
        }
    }
    for name in &missing {
        eprintln!("pgo: cluster {name:?} not found");
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
