//! `pgo scale` and `pgo scaledown`.

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
    Json(req): Json<ScaleRequest>,
) -> Result<Json<ClusterView>, ApiError> {
    caller.require(Permission::ScaleCluster)?;
    let mut c = super::find_cluster(&state, &name).await?;
    if c.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    c.spec.replicas = validate::scale(c.spec.replicas, req.replica_count)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let updated = Api::<Pgcluster>::new(state.store.clone()).replace(&c).await?;
    caller.audit(Permission::ScaleCluster, &format!("pgcluster/{name}"));
    Ok(Json(views::cluster(&updated)))
}

/// Removes one replica, named; never the primary.
pub async fn scaledown(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Json(req): Json<ScaledownRequest>,
) -> Result<Json<DeleteClusterResponse>, ApiError> {
    caller.require(Permission::ScaleCluster)?;
    let mut c = super::find_cluster(&state, &name).await?;
    let primary = c.status.as_ref().and_then(|s| s.primary.clone());
    if primary.as_deref() == Some(req.target.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "{} is the primary of cluster {name}, not a replica; fail over first to remove it",
            req.target
        )));
    }
    let replicas_api: Api<Pgreplica> = Api::new(state.store.clone());
    let (all, _) = replicas_api.list().await?;
    let live: Vec<&Pgreplica> = all
        .iter()
        .filter(|r| r.spec.cluster_name == name && r.metadata.deletion_timestamp.is_none())
        .collect();
    let Some(target) = live
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(req.target.as_str()))
    else {
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
    };
    if c.spec.sync_replication && live.len() == 1 {
        return Err(ApiError::BadRequest(format!(
            "cluster {name} uses synchronous replication: removing its last replica would make every commit wait"
        )));
    }
    // The count first: a crash between the two writes leaves one replica too
    // many (which a retry removes), never one made again.
    c.spec.replicas = c.spec.replicas.saturating_sub(1).min(live.len() as u32 - 1);
    Api::<Pgcluster>::new(state.store.clone()).replace(&c).await?;
    if req.delete_data {
        let mut marked = (*target).clone();
        marked
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(labels::DELETE_DATA.to_string(), "true".to_string());
        replicas_api.replace(&marked).await?;
    }
    replicas_api.delete(&req.target).await?;
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
