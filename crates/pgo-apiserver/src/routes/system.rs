//! `/healthz`, `/version`, `/status`.

use crate::auth::{Caller, Permission};
use crate::views;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use pgo_api::cluster::ClusterPhase;
use pgo_api::rest::{StatusResponse, TaskView, VersionResponse, VolumeView};
use pgo_api::{Pgcluster, Pgtask};
use pgo_store::Api;
use std::sync::Arc;

/// Open to all, and says nothing but that the server answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Open to all: 503 when the operator's controller loops stopped turning,
/// so a liveness probe restarts a wedged operator.
pub async fn livez(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    match state.unwell() {
        None => Ok(Json(serde_json::json!({ "status": "ok" }))),
        Some(why) => Err(ApiError::Unavailable(why)),
    }
}

pub async fn version(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<VersionResponse>, ApiError> {
    caller.require(Permission::Version)?;
    Ok(Json(VersionResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        platform: state.platform.name().to_string(),
        api_group: format!("{}/{}", pgo_api::GROUP, pgo_api::VERSION),
    }))
}

pub async fn status(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<StatusResponse>, ApiError> {
    caller.require(Permission::Status)?;
    let (clusters, _) = Api::<Pgcluster>::new(state.store.clone()).list().await?;
    let mut out = StatusResponse {
        platform: state.platform.name().to_string(),
        nodes: state.platform.nodes().await?,
        clusters: clusters.len(),
        ..Default::default()
    };
    for c in &clusters {
        let view = views::cluster(c);
        if view.phase == ClusterPhase::Ready {
            out.clusters_ready += 1;
        } else {
            let why = view
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            out.not_ready
                .push(format!("cluster {} is {}{why}", view.name, view.phase));
        }
        for m in &view.members {
            out.instances += 1;
            if m.ready {
                out.instances_ready += 1;
            } else {
                let why = m.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                out.not_ready
                    .push(format!("instance {} ({}) is not ready{why}", m.name, m.role));
            }
        }
    }
    out.volumes = state
        .platform
        .volumes()
        .await?
        .into_iter()
        .map(|v| VolumeView {
            name: v.name,
            cluster: v.cluster,
            path: v.location,
        })
        .collect();
    // Failovers show in their cluster's history; the other tasks here.
    let (tasks, _) = Api::<Pgtask>::new(state.store.clone()).list().await?;
    for t in tasks
        .iter()
        .filter(|t| t.spec.task_type != pgo_api::task::FAILOVER)
    {
        let view = task_view(t);
        if view.phase == pgo_api::task::FAILED {
            let why = view.message.as_deref().unwrap_or("no reason given");
            out.not_ready.push(format!("task {} failed: {why}", view.name));
        }
        out.tasks.push(view);
    }
    Ok(Json(out))
}

fn task_view(t: &Pgtask) -> TaskView {
    let status = t.status.clone().unwrap_or_default();
    TaskView {
        name: t.metadata.name.clone().unwrap_or_default(),
        task_type: t.spec.task_type.clone(),
        cluster: t.spec.cluster_name.clone(),
        phase: if status.phase.is_empty() {
            "Pending".into()
        } else {
            status.phase
        },
        message: status.message,
    }
}

/// One task and how it goes (a restore into a volume, a data removal).
pub async fn task(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    caller.require(Permission::Status)?;
    let found = Api::<Pgtask>::new(state.store.clone())
        .get_opt(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("task {name:?} not found")))?;
    Ok(Json(task_view(&found)))
}

/// `GET /config`: the configuration the server runs with (pgo.yaml with
/// every default filled in), as `pgo show config` prints it.
pub async fn config(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<axum::Json<pgo_api::config::PgoConfig>, ApiError> {
    caller.require(Permission::ShowConfig)?;
    Ok(axum::Json(state.config.clone()))
}
