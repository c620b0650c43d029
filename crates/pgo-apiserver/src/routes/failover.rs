//! `pgo failover`: a manual failover is a Pgtask the operator drives.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pgo_api::Pgtask;
use pgo_api::rest::{FailoverRequest, FailoverView};
use pgo_core::{failover, names};
use pgo_store::{Api, StoreError};
use std::sync::Arc;

pub async fn failover(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    super::ApiJson(req): super::ApiJson<FailoverRequest>,
) -> Result<(StatusCode, Json<FailoverView>), ApiError> {
    caller.require(Permission::Failover)?;
    let cluster = super::find_cluster(&state, &name).await?;
    if cluster.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    let status = cluster.status.unwrap_or_default();
    let primary = status
        .primary
        .clone()
        .unwrap_or_else(|| names::initial_primary(&name));
    let tasks: Api<Pgtask> = Api::new(state.store.clone());
    let busy = || ApiError::Conflict(format!("a failover of cluster {name} is already in progress"));
    if tasks.get_opt(&names::failover_task(&name)).await?.is_some() {
        return Err(busy());
    }
    if tasks.get_opt(&names::restore_task(&name)).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "a restore of cluster {name} is in progress; try again when it is done"
        )));
    }
    failover::check_target(&name, &primary, &status.members, &req.target)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let replace = req
        .replace_replica
        .unwrap_or(state.config.cluster.autofail_replace_replica);
    let task = failover::task(
        &name,
        &failover::Order {
            from: primary,
            target: req.target.clone(),
            reason: failover::MANUAL.into(),
            replace,
            replicas: Some(cluster.spec.replicas),
            rejoin: false,
        },
    );
    // The task's name is fixed per cluster: of two requests at once, one
    // creates it and the other finds it taken.
    tasks.create(&task).await.map_err(|e| match e {
        StoreError::AlreadyExists { .. } => busy(),
        other => other.into(),
    })?;
    caller.audit(Permission::Failover, &format!("pgcluster/{name}"));
    Ok((
        StatusCode::ACCEPTED,
        Json(FailoverView {
            task: names::failover_task(&name),
            cluster: name,
            target: req.target,
            phase: "Pending".into(),
            step: None,
            message: None,
        }),
    ))
}
