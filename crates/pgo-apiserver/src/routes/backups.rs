//! `/backups`: `pgo backup` records a Pgbackup, which the operator runs as
//! a job; `pgo show backup` lists a cluster's.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pgo_api::backup::{BackupType, RepoBackup};
use pgo_api::cluster::MemberRole;
use pgo_api::rest::{BackupView, BackupsResponse, CreateBackupRequest, ExpireResponse};
use pgo_api::{Pgbackup, PgbackupSpec, Pgcluster, labels};
use pgo_core::names;
use pgo_store::Api;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

fn view(b: &Pgbackup) -> BackupView {
    BackupView {
        name: b.metadata.name.clone().unwrap_or_default(),
        cluster: b.spec.cluster_name.clone(),
        backup_type: b.spec.backup_type.to_string(),
        backup_opts: b.spec.backup_opts.clone(),
        expire_requested: b.spec.expire_requested.clone(),
        status: b.status.clone().unwrap_or_default(),
    }
}

fn backup_type(s: Option<&str>) -> Result<BackupType, ApiError> {
    match s.unwrap_or("pgbackrest") {
        "pgbackrest" => Ok(BackupType::Pgbackrest),
        "pgbasebackup" => Ok(BackupType::Pgbasebackup),
        other => Err(ApiError::BadRequest(format!(
            "--backup-type: {other:?} is not a backup type (pgbackrest or pgbasebackup)"
        ))),
    }
}

pub async fn create(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiJson(req): super::ApiJson<CreateBackupRequest>,
) -> Result<(StatusCode, Json<BackupView>), ApiError> {
    caller.require(Permission::CreateBackup)?;
    let backup_type = backup_type(req.backup_type.as_deref())?;
    let opts = match backup_type {
        BackupType::Pgbackrest => {
            pgo_core::backup::backup_opts(&req.backup_opts).map_err(ApiError::BadRequest)?
        }
        BackupType::Pgbasebackup if req.backup_opts.trim().is_empty() => Vec::new(),
        BackupType::Pgbasebackup => {
            return Err(ApiError::BadRequest(format!(
                "--backup-opts {:?}: pgo passes no options to pg_basebackup (it copies with --wal-method=stream --checkpoint=fast)",
                req.backup_opts
            )));
        }
    };
    let cluster = super::find_cluster(&state, &req.cluster_name).await?;
    let name = &req.cluster_name;
    if cluster.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
    }
    let runs = match backup_type {
        BackupType::Pgbackrest => state.platform.backup_support().backrest,
        BackupType::Pgbasebackup => state.platform.runs_copies(),
    };
    if !runs {
        return Err(ApiError::BadRequest(format!(
            "--backup-type={backup_type} is not built on the {} platform yet",
            state.platform.name()
        )));
    }
    if backup_type == BackupType::Pgbackrest
        && req.standby
        && !state.platform.backup_support().standby_backups
    {
        return Err(ApiError::BadRequest(format!(
            "--backup-standby with --backup-type=pgbackrest is not built on the {} platform yet; --backup-type=pgbasebackup --backup-standby copies a replica",
            state.platform.name()
        )));
    }
    if backup_type == BackupType::Pgbackrest && cluster.spec.backrest.is_none() {
        return Err(ApiError::BadRequest(format!(
            "cluster {name} does not use pgBackRest (it was created with --pgbackrest=false): it has no repository to back up to; --backup-type=pgbasebackup takes a copy instead"
        )));
    }
    let api = Api::<Pgbackup>::new(state.store.clone());
    let (existing, _) = api.list().await?;
    if let Some(busy) = pgo_core::backup::unfinished(&existing, name) {
        return Err(ApiError::Conflict(format!(
            "backup {} of cluster {name} has not finished yet; one backup at a time",
            busy.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string();
    let mut backup = Pgbackup::new(
        &format!("{name}-backup-{stamp}"),
        PgbackupSpec {
            cluster_name: name.clone(),
            backup_type,
            backup_opts: opts,
            standby: req.standby,
            storage: cluster.spec.backups_storage(),
            expire_requested: None,
        },
    );
    backup.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), name.clone()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    let created = api.create(&backup).await.map_err(|e| match e {
        pgo_store::StoreError::AlreadyExists { .. } => ApiError::Conflict(format!(
            "a backup of cluster {name} was asked for this very second"
        )),
        other => other.into(),
    })?;
    caller.audit(
        Permission::CreateBackup,
        &format!(
            "pgbackup/{}",
            created.metadata.name.as_deref().unwrap_or_default()
        ),
    );
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// One backup, as cheaply as a wait for it can ask: no repository walk.
pub async fn show(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<Json<BackupView>, ApiError> {
    caller.require(Permission::ShowBackup)?;
    let found = Api::<Pgbackup>::new(state.store.clone())
        .get_opt(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("backup {name:?} not found")))?;
    Ok(Json(view(&found)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ListQuery {
    cluster: String,
}

pub async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiQuery(q): super::ApiQuery<ListQuery>,
) -> Result<Json<BackupsResponse>, ApiError> {
    caller.require(Permission::ShowBackup)?;
    if q.cluster.is_empty() {
        return Err(ApiError::BadRequest(
            "name the cluster: /backups?cluster=NAME".into(),
        ));
    }
    let cluster = Api::<Pgcluster>::new(state.store.clone())
        .get_opt(&q.cluster)
        .await?;
    let all = of_cluster(&state, &q.cluster).await?;
    let mine: Vec<&Pgbackup> = all.iter().collect();
    // A deleted cluster's repository stays, and so do its Pgbackups.
    if cluster.is_none() && mine.is_empty() {
        return Err(ApiError::NotFound(format!(
            "cluster {:?} not found, and no backups of it are recorded",
            q.cluster
        )));
    }
    let range = reachable(cluster.as_ref(), &mine);
    let backups: Vec<BackupView> = mine.into_iter().map(view).collect();
    let repository_bytes = match state
        .platform
        .volume_usage(&names::backrest_repo_volume(&q.cluster))
        .await
    {
        Ok(u) => u.map(|u| u.used_bytes),
        Err(e) => {
            tracing::warn!(cluster = %q.cluster, error = %e, "cannot measure the repository");
            None
        }
    };
    Ok(Json(BackupsResponse {
        cluster: q.cluster,
        backups,
        earliest_restore: range.earliest.map(|t| t.to_string()),
        latest_restore: range.latest.map(|t| t.to_string()),
        repository_bytes,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ExpireQuery {
    cluster: String,
    target: String,
}

/// `pgo delete backup NAME --target=LABEL`: asks the operator to expire
/// that backup (and what depends on it) through pgBackRest. Refused, with
/// nothing changed, when the label is unknown, a backup runs, or it is the
/// last full backup, which pgBackRest would keep anyway.
pub async fn expire(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiQuery(q): super::ApiQuery<ExpireQuery>,
) -> Result<(StatusCode, Json<ExpireResponse>), ApiError> {
    caller.require(Permission::DeleteBackup)?;
    if q.cluster.is_empty() || q.target.is_empty() {
        return Err(ApiError::BadRequest(
            "name the cluster and the backup's label: --target=LABEL (see 'pgo show backup NAME')".into(),
        ));
    }
    let cluster = super::find_cluster(&state, &q.cluster).await?;
    if cluster.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::Conflict(format!(
            "cluster {:?} is being deleted",
            q.cluster
        )));
    }
    let mine = of_cluster(&state, &q.cluster).await?;
    if let Some(busy) = pgo_core::backup::unfinished(&mine, &q.cluster) {
        return Err(ApiError::Conflict(format!(
            "backup {} of cluster {} has not finished yet; try again once it has",
            busy.metadata.name.as_deref().unwrap_or_default(),
            q.cluster
        )));
    }
    let in_repo: Vec<&Pgbackup> = mine
        .iter()
        .filter(|b| pgo_core::backup::in_repository(b))
        .collect();
    let repo: Vec<RepoBackup> = in_repo
        .iter()
        .filter_map(|b| b.status.as_ref()?.backup.clone())
        .collect();
    let Some(target) = in_repo.iter().find(|b| {
        b.status
            .as_ref()
            .and_then(|s| s.backup.as_ref())
            .is_some_and(|r| r.label == q.target)
    }) else {
        let labels: Vec<&str> = repo.iter().map(|r| r.label.as_str()).collect();
        return Err(ApiError::NotFound(format!(
            "--target: cluster {} has no backup labelled {:?} in its repository (it has: {})",
            q.cluster,
            q.target,
            if labels.is_empty() {
                "none".into()
            } else {
                labels.join(", ")
            }
        )));
    };
    if let Some(why) = pgo_core::expire::refusal(&q.target, &repo) {
        return Err(ApiError::BadRequest(why));
    }
    let with = pgo_core::expire::dependents(&q.target, &repo)
        .into_iter()
        .map(|r| r.label.clone())
        .collect();
    let mut asked = (*target).clone();
    asked.spec.expire_requested = Some(jiff::Timestamp::now().to_string());
    let api = Api::<Pgbackup>::new(state.store.clone());
    let stored = api.replace(&asked).await?;
    caller.audit(
        Permission::DeleteBackup,
        &format!(
            "pgbackup/{} ({})",
            stored.metadata.name.as_deref().unwrap_or_default(),
            q.target
        ),
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(ExpireResponse {
            backup: view(&stored),
            with,
        }),
    ))
}

/// The moments a restore from a cluster's repository can reach: from the
/// end of its oldest backup still there to the last WAL archived or the
/// end of its newest backup, whichever is later (unknown once the cluster
/// is gone).
pub struct Reachable {
    pub earliest: Option<jiff::Timestamp>,
    pub latest: Option<jiff::Timestamp>,
}

pub fn reachable(cluster: Option<&Pgcluster>, backups: &[&Pgbackup]) -> Reachable {
    let stops: Vec<jiff::Timestamp> = backups
        .iter()
        .filter(|b| pgo_core::backup::in_repository(b))
        .filter_map(|b| b.status.as_ref())
        .filter_map(|s| s.backup.as_ref()?.stop.parse::<jiff::Timestamp>().ok())
        .collect();
    let earliest = stops.iter().min().copied();
    // The newest backup's end is reachable whatever the archiver has
    // reported yet; past it, what the primary last archived.
    let newest_backup = stops.iter().max().copied();
    let archived = cluster
        .and_then(last_archived)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    // Unknown once the cluster is gone: its archive may reach further.
    let latest = cluster
        .and(newest_backup.max(archived))
        .filter(|l| earliest.is_some_and(|e| *l >= e));
    Reachable { earliest, latest }
}

/// Refuses a restore from `source`'s repository that cannot be done: no
/// repository, no backup in it, or a time target outside what it can
/// reach (the message names the range). `what` names the flag.
pub async fn check_target(
    state: &AppState,
    source: &str,
    target: Option<&pgo_api::cluster::PitrTarget>,
    what: &str,
) -> Result<(), ApiError> {
    let repo = names::backrest_repo_volume(source);
    let volumes = state.platform.volumes().await?;
    if !volumes.iter().any(|v| v.name == repo && v.cluster == source) {
        return Err(ApiError::NotFound(format!(
            "{what}: cluster {source} has no pgBackRest repository (no volume {repo})"
        )));
    }
    let backups = of_cluster(state, source).await?;
    let refs: Vec<&Pgbackup> = backups.iter().collect();
    let cluster = Api::<Pgcluster>::new(state.store.clone()).get_opt(source).await?;
    let range = reachable(cluster.as_ref(), &refs);
    let Some(earliest) = range.earliest else {
        return Err(ApiError::BadRequest(format!(
            "{what}: no backup of cluster {source} is in its repository; take one with 'pgo backup {source}'"
        )));
    };
    if let Some(t) = target.filter(|t| t.type_ == pgo_api::cluster::PitrType::Time) {
        let at = pgo_core::validate::parse_time(&t.value)
            .ok_or_else(|| ApiError::BadRequest(format!("--pitr-target: {:?} is not a moment", t.value)))?;
        let range_text = match range.latest {
            Some(l) => format!("{earliest} to {l}"),
            None => format!("{earliest} to the end of its archived WAL"),
        };
        if at < earliest {
            return Err(ApiError::BadRequest(format!(
                "--pitr-target {at} is before the end of the first backup of {source}; a restore can reach {range_text}"
            )));
        }
        if range.latest.is_some_and(|l| at > l) {
            return Err(ApiError::BadRequest(format!(
                "--pitr-target {at} is past the last WAL {source} archived; a restore can reach {range_text}"
            )));
        }
    }
    Ok(())
}

/// The backups recorded of `cluster`, in the order they were asked for.
pub async fn of_cluster(state: &AppState, cluster: &str) -> Result<Vec<Pgbackup>, ApiError> {
    let (all, _) = Api::<Pgbackup>::new(state.store.clone()).list().await?;
    let mut mine: Vec<Pgbackup> = all
        .into_iter()
        .filter(|b| b.spec.cluster_name == cluster)
        .collect();
    mine.sort_by_key(|b| b.metadata.name.clone());
    Ok(mine)
}

/// When the primary last archived a WAL segment.
fn last_archived(c: &Pgcluster) -> Option<String> {
    let status = c.status.as_ref()?;
    let primary = status.primary.as_ref()?;
    status
        .members
        .iter()
        .find(|m| &m.name == primary && m.role == MemberRole::Primary)?
        .archive
        .as_ref()?
        .last_archived_time
        .clone()
}
