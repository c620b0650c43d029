//! `pgo scale` and `pgo scaledown`.

use super::ApiJson;
use crate::auth::{Caller, Permission};
use crate::views;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use pgo_api::rest::{ClusterView, DeleteClusterResponse, ScaleRequest, ScaledownRequest};
use pgo_api::{Pgcluster, Pgreplica, labels};
use pgo_core::validate;
use pgo_store::Api;
use std::sync::Arc;

/// Adds replicas: the operator makes a Pgreplica for each.
pub async fn scale(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ScaleRequest>,
) -> Result<Json<ClusterView>, ApiError> {
    caller.require(Permission::ScaleCluster)?;
    let mut c = super::find_cluster(&state, &name).await?;
    if c.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    super::restore::refuse_while_busy(&state, &name).await?;
    c.spec.replicas = validate::scale(c.spec.replicas, req.replica_count)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    // The whole cluster's, so a member's pod does not change with its
    // role: the rolling update restarts each one on it, replicas first.
    if let Some(name) = &req.resources_config {
        c.spec.resources = Some(
            validate::named_resources(&state.config, name)
                .map_err(|e| ApiError::BadRequest(format!("--resources-config: {e}")))?,
        );
    }
    // The replicas made from now on take it; those there keep theirs.
    if let Some(name) = &req.storage_config {
        c.spec.replica_storage = state
            .config
            .storage_spec(name)
            .map_err(|e| ApiError::BadRequest(format!("--storage-config: {e}")))?
            .for_data();
    }
    // Against the version read: a concurrent change gets 409, not a lost update.
    let updated = Api::<Pgcluster>::new(state.store.clone()).replace(&c).await?;
    caller.audit(Permission::ScaleCluster, &format!("pgcluster/{name}"));
    Ok(Json(views::cluster(&updated)))
}

/// Removes one replica, named; never the primary. One write of the cluster
/// lowers the count and names the replica as leaving; the operator then
/// removes it. Two requests that read the same version cannot both win.
pub async fn scaledown(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ScaledownRequest>,
) -> Result<Json<DeleteClusterResponse>, ApiError> {
    caller.require(Permission::ScaleCluster)?;
    let mut c = super::find_cluster(&state, &name).await?;
    if c.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    super::restore::refuse_while_busy(&state, &name).await?;
    let primary = c.status.as_ref().and_then(|s| s.primary.clone());
    if primary.as_deref() == Some(req.target.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "{} is the primary of cluster {name}, not a replica; fail over first to remove it",
            req.target
        )));
    }
    let going = labels::scaledowns(c.metadata.annotations.as_ref());
    if going.contains_key(&req.target) {
        return Err(ApiError::Conflict(format!(
            "replica {} of cluster {name} is already being removed",
            req.target
        )));
    }
    let (all, _) = Api::<Pgreplica>::new(state.store.clone()).list().await?;
    let live: Vec<&Pgreplica> = all
        .iter()
        .filter(|r| r.spec.cluster_name == name && r.metadata.deletion_timestamp.is_none())
        .filter(|r| r.metadata.name.as_ref().is_some_and(|n| !going.contains_key(n)))
        .collect();
    if !live
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some(req.target.as_str()))
    {
        let names: Vec<&str> = live.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
        return Err(ApiError::BadRequest(format!(
            "{} is not a replica of cluster {name} (its replicas: {})",
            req.target,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    if c.spec.sync_replication && live.len() == 1 {
        return Err(ApiError::BadRequest(format!(
            "cluster {name} uses synchronous replication: removing its last replica would make every commit wait"
        )));
    }
    c.spec.replicas = c.spec.replicas.saturating_sub(1).min(live.len() as u32 - 1);
    let (key, value) = labels::scaledown_note(&req.target, req.delete_data);
    c.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key, value);
    Api::<Pgcluster>::new(state.store.clone()).replace(&c).await?;
    caller.audit(Permission::ScaleCluster, &format!("pgreplica/{}", req.target));
    Ok(Json(DeleteClusterResponse {
        name: req.target.clone(),
        message: if req.delete_data {
            "removing the replica, its slot and its data".into()
        } else {
            "removing the replica and its slot; its data is kept".into()
        },
    }))
}
