//! `pgo show pvc NAME|all`: volumes, and the copies a volume of
//! pg_basebackup copies holds (the paths `pgo create cluster
//! --backup-path` takes).

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, table};
use pgo_api::rest::PvcView;
use std::process::ExitCode;

pub async fn show(client: &Client, name: &str, format: Format) -> Result<ExitCode, CliError> {
    let all: Vec<PvcView> = client.get(&format!("/pvcs?name={}", segment(name))).await?;
    if output::structured(format, &all)? {
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.cluster.clone(),
                v.holds.clone(),
                v.used_bytes.map_or_else(|| "-".into(), output::bytes),
                v.location.clone(),
            ]
        })
        .collect();
    let mut text = table(&["VOLUME", "CLUSTER", "HOLDS", "USED", "WHERE"], &rows, "");
    for v in all.iter().filter(|v| !v.copies.is_empty()) {
        text.push_str(&format!("\ncopies in {}:\n", v.name));
        for c in &v.copies {
            text.push_str(&format!("  {c}\n"));
        }
    }
    say!("{text}");
    Ok(ExitCode::SUCCESS)
}
