//! `pgo test`, `pgo df`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, table};
use pgo_api::rest::{DfResponse, TestResponse};
use std::process::ExitCode;

pub async fn test(client: &Client, name: &str, format: Format) -> Result<ExitCode, CliError> {
    let r: TestResponse = client.get(&format!("/clusters/{}/test", segment(name))).await?;
    let all_up = r.results.iter().all(|t| t.up);
    if !output::structured(format, &r)? {
        let rows: Vec<Vec<String>> = r
            .results
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    t.kind.clone(),
                    format!("{}:{}", t.host, t.port),
                    if t.up { "UP".into() } else { "DOWN".into() },
                    t.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        say!(
            "{}",
            table(&["NAME", "KIND", "HOST:PORT", "STATUS", "ERROR"], &rows, "")
        );
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn df(client: &Client, name: &str, format: Format) -> Result<ExitCode, CliError> {
    let r: DfResponse = client.get(&format!("/clusters/{}/df", segment(name))).await?;
    if !output::structured(format, &r)? {
        let rows: Vec<Vec<String>> = r
            .volumes
            .iter()
            .map(|v| {
                let used = if v.total_bytes == 0 {
                    0.0
                } else {
                    100.0 * (v.total_bytes - v.free_bytes) as f64 / v.total_bytes as f64
                };
                vec![
                    v.name.clone(),
                    v.instance.clone(),
                    output::bytes(v.used_bytes),
                    output::bytes(v.free_bytes),
                    format!("{used:.0}%"),
                    v.path.clone(),
                ]
            })
            .collect();
        say!(
            "{}",
            table(
                &["VOLUME", "INSTANCE", "DATA", "FREE", "FS USED", "PATH"],
                &rows,
                ""
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
