//! `pgo create|show|delete configmap` and `pgo reload`.

use super::segment;
use crate::CliError;
use crate::args::Format;
use crate::client::Client;
use crate::output::{self, say, sayln, table};
use pgo_api::rest::{ConfigMapView, CreateConfigMapRequest, ReloadRequest, ReloadResponse};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The files `--from-file` names, by key, as kubectl reads them.
fn read_files(from: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut data = BTreeMap::new();
    for arg in from {
        let (key, path) = match arg.split_once('=') {
            Some((k, p)) => (Some(k.to_string()), Path::new(p)),
            None => (None, Path::new(arg.as_str())),
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::Local(format!("--from-file {}: {e}", path.display())))?;
        let files: Vec<(String, std::path::PathBuf)> = if meta.is_dir() {
            if key.is_some() {
                return Err(CliError::Local(format!(
                    "--from-file {arg}: a key names one file, and {} is a directory",
                    path.display()
                )));
            }
            let mut found = Vec::new();
            let entries = std::fs::read_dir(path)
                .map_err(|e| CliError::Local(format!("--from-file {}: {e}", path.display())))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_file()
                    && let Some(name) = p.file_name().and_then(|n| n.to_str())
                {
                    found.push((name.to_string(), p.clone()));
                }
            }
            found
        } else {
            let name = match key {
                Some(k) => k,
                None => path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(String::from)
                    .ok_or_else(|| CliError::Local(format!("--from-file {arg}: no file name")))?,
            };
            vec![(name, path.to_path_buf())]
        };
        for (key, file) in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Local(format!("--from-file {}: {e}", file.display())))?;
            if data.insert(key.clone(), text).is_some() {
                return Err(CliError::Local(format!(
                    "--from-file: key {key:?} is given twice"
                )));
            }
        }
    }
    Ok(data)
}

pub async fn create(
    client: &Client,
    name: &str,
    from: &[String],
    overwrite: bool,
) -> Result<ExitCode, CliError> {
    let data = read_files(from)?;
    let req = CreateConfigMapRequest {
        name: name.to_string(),
        data,
        overwrite,
    };
    let made: ConfigMapView = client.post("/configmaps", &req).await?;
    let keys: Vec<&str> = made.data.keys().map(String::as_str).collect();
    sayln!("configmap {} holds {}", made.name, keys.join(", "));
    if !made.used_by.is_empty() {
        sayln!(
            "cluster {} uses it: 'pgo reload' applies the new content",
            made.used_by.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn show(client: &Client, name: Option<&str>, format: Format) -> Result<ExitCode, CliError> {
    let all: Vec<ConfigMapView> = match name {
        Some(n) => vec![client.get(&format!("/configmaps/{}", segment(n))).await?],
        None => client.get("/configmaps").await?,
    };
    if output::structured(format, &all)? {
        return Ok(ExitCode::SUCCESS);
    }
    if name.is_some() {
        for cm in &all {
            sayln!("configmap {}", cm.name);
            if !cm.used_by.is_empty() {
                sayln!("used by: {}", cm.used_by.join(", "));
            }
            for (key, text) in &cm.data {
                sayln!("--- {key}");
                say!("{text}");
                if !text.ends_with('\n') {
                    sayln!("");
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        sayln!("no configmaps");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.data.keys().cloned().collect::<Vec<_>>().join(","),
                if c.used_by.is_empty() {
                    "-".into()
                } else {
                    c.used_by.join(",")
                },
            ]
        })
        .collect();
    say!("{}", table(&["CONFIGMAP", "KEYS", "USED BY"], &rows, ""));
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(client: &Client, name: &str, no_prompt: bool) -> Result<ExitCode, CliError> {
    if !output::confirm(!no_prompt, &format!("Delete configmap {name}?"))? {
        sayln!("nothing deleted");
        return Ok(ExitCode::FAILURE);
    }
    let gone: ConfigMapView = client.delete(&format!("/configmaps/{}", segment(name))).await?;
    sayln!("deleted configmap {}", gone.name);
    Ok(ExitCode::SUCCESS)
}

pub async fn reload(
    client: &Client,
    names: &[String],
    selector: Option<&str>,
    no_prompt: bool,
) -> Result<ExitCode, CliError> {
    if names.is_empty() && selector.is_none() {
        return Err(CliError::Local(
            "name the clusters to reload, or --selector".into(),
        ));
    }
    let what = match selector {
        Some(s) => format!("the clusters labelled {s}"),
        None => names.join(", "),
    };
    if !output::confirm(!no_prompt, &format!("Reload {what}?"))? {
        sayln!("nothing reloaded");
        return Ok(ExitCode::FAILURE);
    }
    let req = ReloadRequest {
        clusters: names.to_vec(),
        selector: selector.map(String::from),
    };
    let done: ReloadResponse = client.post("/reload", &req).await?;
    for r in &done.results {
        sayln!("reloaded {}: {}", r.cluster, r.messages.join("; "));
    }
    Ok(ExitCode::SUCCESS)
}
