//! `/schedules`: backup schedules, as 3.4's `pgo create|show|delete
//! schedule`. Each is a Pgtask the operator turns into Pgbackups.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pgo_api::Pgtask;
use pgo_api::backup::BackupType;
use pgo_api::rest::{CreateScheduleRequest, ScheduleView};
use pgo_api::task::SCHEDULE;
use pgo_core::schedule::{self, BACKUP_TYPE, PATTERN, SCHEDULE_TYPE};
use pgo_store::{Api, StoreError};
use serde::Deserialize;
use std::sync::Arc;

fn view(t: &Pgtask) -> ScheduleView {
    let p = &t.spec.parameters;
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let status = t.status.clone().unwrap_or_default();
    ScheduleView {
        name: t.metadata.name.clone().unwrap_or_default(),
        cluster: t.spec.cluster_name.clone(),
        schedule: get(PATTERN),
        schedule_type: get(SCHEDULE_TYPE),
        backup_type: get(BACKUP_TYPE),
        last_run: status.last_run,
        message: status.message,
    }
}

pub async fn create(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiJson(req): super::ApiJson<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    caller.require(Permission::CreateSchedule)?;
    schedule::parse(&req.schedule).map_err(ApiError::BadRequest)?;
    let tool = match req.schedule_type.as_deref().unwrap_or("pgbackrest") {
        "pgbackrest" => BackupType::Pgbackrest,
        "pgbasebackup" => BackupType::Pgbasebackup,
        other => {
            return Err(ApiError::BadRequest(format!(
                "--schedule-type: {other:?} is not a schedule type (pgbackrest or pgbasebackup)"
            )));
        }
    };
    let backup_type = match (tool, req.pgbackrest_backup_type.clone()) {
        (BackupType::Pgbasebackup, Some(_)) => {
            return Err(ApiError::BadRequest(
                "--pgbackrest-backup-type is for --schedule-type=pgbackrest; a pg_basebackup copy is always whole".into(),
            ));
        }
        (BackupType::Pgbasebackup, None) => String::new(),
        (BackupType::Pgbackrest, t) => t.unwrap_or_else(|| "full".into()),
    };
    if tool == BackupType::Pgbackrest && !matches!(backup_type.as_str(), "full" | "diff" | "incr") {
        return Err(ApiError::BadRequest(format!(
            "--pgbackrest-backup-type: {backup_type:?} is not full, diff or incr"
        )));
    }
    let cluster = super::find_cluster(&state, &req.cluster_name).await?;
    if tool == BackupType::Pgbackrest && cluster.spec.backrest.is_none() {
        return Err(ApiError::BadRequest(format!(
            "cluster {} does not use pgBackRest (it was created with --pgbackrest=false): it has no repository to back up to",
            req.cluster_name
        )));
    }
    let name = req
        .schedule_name
        .clone()
        .unwrap_or_else(|| schedule::default_name(&req.cluster_name, tool, &backup_type));
    if !pgo_core::validate::dns1123_label(&name) || name.len() > 50 {
        return Err(ApiError::BadRequest(format!(
            "schedule name {name:?}: at most 50 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        )));
    }
    let task = schedule::task(&schedule::Order {
        cluster: req.cluster_name.clone(),
        name: name.clone(),
        pattern: req.schedule.trim().to_string(),
        tool,
        backup_type,
    });
    let created = Api::<Pgtask>::new(state.store.clone())
        .create(&task)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => ApiError::Conflict(format!(
                "schedule {name} exists; delete it first, or name another with --schedule-name"
            )),
            other => other.into(),
        })?;
    caller.audit(Permission::CreateSchedule, &format!("pgtask/{name}"));
    Ok((StatusCode::CREATED, Json(view(&created))))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ListQuery {
    cluster: String,
}

async fn schedules_of(state: &AppState, cluster: &str) -> Result<Vec<Pgtask>, ApiError> {
    let (all, _) = Api::<Pgtask>::new(state.store.clone()).list().await?;
    let mut mine: Vec<Pgtask> = all
        .into_iter()
        .filter(|t| t.spec.task_type == SCHEDULE && (cluster.is_empty() || t.spec.cluster_name == cluster))
        .collect();
    mine.sort_by_key(|t| t.metadata.name.clone());
    Ok(mine)
}

pub async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiQuery(q): super::ApiQuery<ListQuery>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    caller.require(Permission::ShowSchedule)?;
    if !q.cluster.is_empty() {
        super::find_cluster(&state, &q.cluster).await?;
    }
    Ok(Json(
        schedules_of(&state, &q.cluster).await?.iter().map(view).collect(),
    ))
}

pub async fn delete(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Permission::DeleteSchedule)?;
    let tasks = Api::<Pgtask>::new(state.store.clone());
    let found = tasks
        .get_opt(&name)
        .await?
        .filter(|t| t.spec.task_type == SCHEDULE)
        .ok_or_else(|| ApiError::NotFound(format!("schedule {name:?} not found")))?;
    tasks.delete_opt(&name).await?;
    caller.audit(Permission::DeleteSchedule, &format!("pgtask/{name}"));
    Ok(Json(view(&found)))
}
