//! `POST /reload`: `pgo reload`, as 3.4 named it. Each cluster takes its
//! custom configuration again, checked whole first (one that PostgreSQL
//! would refuse changes no cluster), and every instance reloads.

use super::custom_config;
use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use pgo_api::Pgcluster;
use pgo_api::rest::{ReloadRequest, ReloadResponse, ReloadResult};
use pgo_store::Api;
use std::sync::Arc;

/// `key=value[,key=value]`, every pair required.
fn parse_selector(s: &str) -> Result<Vec<(String, String)>, ApiError> {
    s.split(',')
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| ApiError::BadRequest(format!("--selector: {pair:?} is not key=value")))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub async fn reload(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiJson(req): super::ApiJson<ReloadRequest>,
) -> Result<Json<ReloadResponse>, ApiError> {
    caller.require(Permission::Reload)?;
    let mut clusters = Vec::new();
    for name in &req.clusters {
        clusters.push(super::find_cluster(&state, name).await?);
    }
    if let Some(selector) = &req.selector {
        let wanted = parse_selector(selector)?;
        let (all, _) = Api::<Pgcluster>::new(state.store.clone()).list().await?;
        let chosen: Vec<Pgcluster> = all
            .into_iter()
            .filter(|c| {
                let labels = crate::views::cluster_labels(c);
                wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        if chosen.is_empty() {
            return Err(ApiError::NotFound(format!(
                "--selector {selector}: no cluster has these labels"
            )));
        }
        clusters.extend(chosen);
    }
    if clusters.is_empty() {
        return Err(ApiError::BadRequest(
            "name the clusters to reload, or --selector".into(),
        ));
    }
    clusters.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    clusters.dedup_by(|a, b| a.metadata.name == b.metadata.name);
    // Every configuration checked before any cluster changes.
    let mut planned = Vec::new();
    for c in clusters {
        let name = c.metadata.name.clone().unwrap_or_default();
        if c.metadata.deletion_timestamp.is_some() {
            return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
        }
        let files = match &c.spec.custom_config {
            Some(cm) => {
                custom_config::take(
                    &state,
                    Some(cm),
                    c.spec.backrest.is_some(),
                    &format!("cluster {name}"),
                )
                .await?
            }
            None => None,
        };
        planned.push((c, files));
    }
    let mut results = Vec::new();
    for (c, files) in planned {
        let name = c.metadata.name.clone().unwrap_or_default();
        let mut messages = Vec::new();
        match (&files, &c.spec.custom_config_files) {
            (Some(new), Some(old)) if new == old => messages.push(format!(
                "configmap {} is as the cluster took it; PostgreSQL reloads",
                new.config_map
            )),
            (Some(new), _) => messages.push(format!(
                "configmap {} taken again; PostgreSQL reloads it",
                new.config_map
            )),
            (None, _) => messages.push("no custom configuration; PostgreSQL reloads".into()),
        }
        if let Some(f) = &files {
            messages.extend(f.warnings());
        }
        let config_map = files.as_ref().map(|f| f.config_map.clone());
        let taken = c.spec.custom_config.clone();
        super::update_cluster(&state, &name, |c| {
            // What was checked is what was named when it was read.
            if c.spec.custom_config != taken {
                return Err(ApiError::Conflict(format!(
                    "cluster {name}: its custom configuration changed during the reload; reload it again"
                )));
            }
            if let Some(f) = &files {
                c.spec.custom_config_files = Some(f.clone());
            }
            c.spec.reloads += 1;
            Ok(())
        })
        .await?;
        caller.audit(Permission::Reload, &format!("pgcluster/{name}"));
        results.push(ReloadResult {
            cluster: name,
            config_map,
            messages,
        });
    }
    Ok(Json(ReloadResponse { results }))
}
