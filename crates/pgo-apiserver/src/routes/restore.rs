//! `pgo restore NAME`: a restore in place is a Pgtask the cluster's
//! reconcile drives (stop, restore the primary, make the replicas again).

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pgo_api::Pgtask;
use pgo_api::rest::{RestoreRequest, RestoreResponse};
use pgo_core::{names, restore, to_pvc, validate};
use pgo_store::{Api, StoreError};
use std::sync::Arc;

/// A failover or a restore has the cluster to itself: nothing else that
/// changes its members may start meanwhile.
pub async fn refuse_while_busy(state: &AppState, name: &str) -> Result<(), ApiError> {
    let tasks = Api::<Pgtask>::new(state.store.clone());
    for (task, what) in [
        (names::failover_task(name), "a failover"),
        (names::restore_task(name), "a restore"),
    ] {
        if tasks.get_opt(&task).await?.is_some() {
            return Err(ApiError::Conflict(format!(
                "{what} of cluster {name} is in progress; try again when it is done"
            )));
        }
    }
    Ok(())
}

pub async fn restore(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    super::ApiJson(req): super::ApiJson<RestoreRequest>,
) -> Result<(StatusCode, Json<RestoreResponse>), ApiError> {
    caller.require(Permission::Restore)?;
    let target = validate::pitr_target(req.pitr_type.as_deref(), req.pitr_target.as_deref())
        .map_err(ApiError::BadRequest)?;
    let options =
        validate::restore_opts(req.backup_opts.as_deref().unwrap_or("")).map_err(ApiError::BadRequest)?;
    let cluster = super::find_cluster(&state, &name).await?;
    if cluster.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    if cluster.spec.backrest.is_none() {
        return Err(ApiError::BadRequest(format!(
            "cluster {name} does not use pgBackRest (it was created with --pgbackrest=false): it has no backups to restore"
        )));
    }
    let support = state.platform.backup_support();
    let (built, what) = match req.to_pvc {
        Some(_) => (support.restores_to_volumes, "pgo restore --to-pvc"),
        None => (support.restores, "pgo restore"),
    };
    if !built {
        return Err(ApiError::BadRequest(format!(
            "{what} is not built on the {} platform yet; `pgo restore {name}` restores in place, and `pgo create cluster NEW --restore-from={name}` into a new cluster",
            state.platform.name()
        )));
    }
    let order = restore::Order { target, options };
    if let Some(volume) = &req.to_pvc {
        return to_pvc(&caller, &state, &name, volume, order).await;
    }
    refuse_while_busy(&state, &name).await?;
    super::backups::check_target(&state, &name, order.target.as_ref(), "pgo restore").await?;
    let task = restore::task(&name, &order);
    Api::<Pgtask>::new(state.store.clone())
        .create(&task)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => {
                ApiError::Conflict(format!("a restore of cluster {name} is already in progress"))
            }
            other => other.into(),
        })?;
    caller.audit(Permission::Restore, &format!("pgcluster/{name}"));
    let what = restore::Task {
        step: restore::Step::Stop,
        order,
        id: String::new(),
        started: None,
    }
    .describe();
    Ok((
        StatusCode::ACCEPTED,
        Json(RestoreResponse {
            name,
            message: format!(
                "restoring to {what}: the cluster stops, its primary is restored, its replicas are made again"
            ),
            task: None,
        }),
    ))
}

/// `pgo restore NAME --to-pvc=VOL`: the cluster's backups restored into a
/// new volume VOL, for a cluster named VOL to start on; the cluster goes
/// on as it is. Refused, with nothing made, when VOL is taken or the
/// target is out of reach.
async fn to_pvc(
    caller: &Caller,
    state: &AppState,
    name: &str,
    volume: &str,
    order: restore::Order,
) -> Result<(StatusCode, Json<RestoreResponse>), ApiError> {
    // The volume is the data of the cluster that will start on it.
    validate::cluster_name(volume).map_err(|e| ApiError::BadRequest(format!("--to-pvc: {e}")))?;
    let volumes = state.platform.volumes().await?;
    if let Some(v) = volumes.iter().find(|v| v.name == volume) {
        return Err(ApiError::Conflict(format!(
            "--to-pvc: volume {volume} exists (cluster {}); name a new one",
            v.cluster
        )));
    }
    if Api::<pgo_api::Pgcluster>::new(state.store.clone())
        .get_opt(volume)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "--to-pvc: cluster {volume} exists, and the volume would be its data; name another"
        )));
    }
    super::backups::check_target(state, name, order.target.as_ref(), "pgo restore --to-pvc").await?;
    let tasks = Api::<Pgtask>::new(state.store.clone());
    let task_name = names::restore_to_pvc_task(volume);
    // A restore recorded earlier whose volume has gone since: its record
    // makes way for this one.
    if let Some(old) = tasks.get_opt(&task_name).await? {
        if !to_pvc::finished(&old) {
            return Err(ApiError::Conflict(format!(
                "a restore into volume {volume} is in progress"
            )));
        }
        tasks.delete_opt(&task_name).await?;
    }
    let what = order.describe();
    tasks
        .create(&to_pvc::task(name, volume, &order))
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => {
                ApiError::Conflict(format!("a restore into volume {volume} is in progress"))
            }
            other => other.into(),
        })?;
    caller.audit(
        Permission::Restore,
        &format!("pgcluster/{name} to volume {volume}"),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(RestoreResponse {
            name: name.to_string(),
            message: format!("restoring to {what} into volume {volume}; the cluster goes on as it is"),
            task: Some(task_name),
        }),
    ))
}
