//! `/clusters`: create, list, show, delete.

use crate::auth::{Caller, Permission};
use crate::views;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pgo_api::rest::{ClusterView, CreateClusterRequest, DeleteClusterResponse, SecretView};
use pgo_api::{Pgcluster, labels};
use pgo_core::{names, validate};
use pgo_store::Api;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

fn api(state: &AppState) -> Api<Pgcluster> {
    Api::new(state.store.clone())
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("cluster {name:?} not found"))
}

pub async fn create(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiJson(req): super::ApiJson<CreateClusterRequest>,
) -> Result<(StatusCode, Json<ClusterView>), ApiError> {
    caller.require(Permission::CreateCluster)?;
    let mut spec = validate::create_request(
        &req,
        &state.config,
        &state.platform.strategies(),
        state.platform.backup_support(),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(node) = &spec.node_name {
        let nodes = state.platform.nodes().await?;
        if !nodes.contains(node) {
            return Err(ApiError::NotFound(format!(
                "node {node:?} not found (nodes: {})",
                nodes.join(", ")
            )));
        }
    }
    if let Some(pvc) = &spec.pvc_name {
        volume_is_free(&state, &req.name, pvc).await?;
    }
    if let Some(from) = &spec.restore_from {
        restorable(&state, from).await?;
    }
    if let Some(copy) = &spec.copy_from {
        copy_exists(&state, copy).await?;
    }
    restored_volume_fits(&state, &req.name, &spec).await?;
    if let Some(source) = &spec.secret_from {
        passwords_kept(&state, source, "--secret-from").await?;
    }
    let custom = super::custom_config::take(
        &state,
        spec.custom_config.as_deref(),
        spec.backrest.is_some(),
        "--custom-config",
    )
    .await?;
    spec.custom_config = custom.as_ref().map(|c| c.config_map.clone());
    spec.custom_config_files = custom;
    let mut labels = BTreeMap::from([
        (labels::CLUSTER.to_string(), req.name.clone()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]);
    if let Some(name) = &spec.custom_config {
        labels.insert(labels::CUSTOM_CONFIG.to_string(), name.clone());
    }
    let mut cluster = Pgcluster::new(&req.name, spec);
    cluster.metadata.labels = Some(labels);
    // Deletion always goes through the operator, which stops the instances.
    cluster.metadata.finalizers = Some(vec![labels::CLUSTER_FINALIZER.to_string()]);
    let created = api(&state).create(&cluster).await.map_err(|e| match e {
        pgo_store::StoreError::AlreadyExists { .. } => {
            ApiError::Conflict(format!("cluster {:?} already exists", req.name))
        }
        other => other.into(),
    })?;
    caller.audit(Permission::CreateCluster, &format!("pgcluster/{}", req.name));
    Ok((StatusCode::CREATED, Json(views::cluster(&created))))
}

/// A restore's source has a repository, a backup in it, its users'
/// passwords, and a target inside what the repository can reach; else
/// nothing is made.
async fn restorable(state: &AppState, from: &pgo_api::cluster::RestoreFrom) -> Result<(), ApiError> {
    let source = &from.cluster;
    super::backups::check_target(state, source, from.target.as_ref(), "--restore-from").await?;
    passwords_kept(state, source, "--restore-from").await
}

/// The source cluster's users' passwords are still there: a restored or
/// copied database keeps them.
async fn passwords_kept(state: &AppState, source: &str, what: &str) -> Result<(), ApiError> {
    let superuser = names::secret(source, names::SUPERUSER);
    let found = state.platform.read_secret(&superuser).await?;
    if found.is_none() {
        return Err(ApiError::BadRequest(format!(
            "{what}: the passwords of cluster {source}'s users are not there (never made, or deleted with its data), and the database made from it keeps them"
        )));
    }
    Ok(())
}

/// A cluster whose first volume `pgo restore --to-pvc` filled starts on
/// that data: the restore must have succeeded, nothing else may fill the
/// volume, and the users keep the source's passwords (`--secret-from`).
async fn restored_volume_fits(
    state: &AppState,
    cluster: &str,
    spec: &pgo_api::cluster::PgclusterSpec,
) -> Result<(), ApiError> {
    let volume = names::volume_of(
        cluster,
        spec.pvc_name.as_deref(),
        &names::initial_primary(cluster),
    );
    let Some(task) = pgo_store::Api::<pgo_api::Pgtask>::new(state.store.clone())
        .get_opt(&names::restore_to_pvc_task(&volume))
        .await?
    else {
        return Ok(());
    };
    let volumes = state.platform.volumes().await?;
    if !volumes.iter().any(|v| v.name == volume) {
        // Restored once, and removed since: a record of the past.
        return Ok(());
    }
    let source = &task.spec.cluster_name;
    let phase = task.status.as_ref().map_or("Pending", |s| s.phase.as_str());
    if phase != pgo_api::task::SUCCEEDED {
        return Err(ApiError::Conflict(format!(
            "volume {volume}: the restore of cluster {source} into it is {phase}; see 'pgo status'"
        )));
    }
    if spec.restore_from.is_some() || spec.copy_from.is_some() {
        return Err(ApiError::BadRequest(format!(
            "volume {volume} holds cluster {source}'s data, restored: the cluster starts on it, with no --restore-from or --backup-pvc"
        )));
    }
    if spec.secret_from.as_deref() != Some(source.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "volume {volume} holds cluster {source}'s data, restored, and its users have {source}'s passwords: add --secret-from={source}"
        )));
    }
    Ok(())
}

/// `--backup-pvc`/`--backup-path` name a whole pg_basebackup copy that a
/// backup recorded; the message lists the copies there are.
async fn copy_exists(state: &AppState, copy: &pgo_api::cluster::CopyFrom) -> Result<(), ApiError> {
    let (all, _) = pgo_store::Api::<pgo_api::Pgbackup>::new(state.store.clone())
        .list()
        .await?;
    let copies = pgo_core::backup::copies_in(&all, &copy.volume);
    if !copies.contains(&copy.path) {
        return Err(ApiError::NotFound(format!(
            "--backup-path: volume {} holds no pg_basebackup copy at {} (copies: {})",
            copy.volume,
            copy.path,
            if copies.is_empty() {
                "none".into()
            } else {
                copies.join(", ")
            }
        )));
    }
    Ok(())
}

/// A volume named by `pvcName` must not be another cluster's: adopting it
/// would take over that cluster's running PostgreSQL.
async fn volume_is_free(state: &AppState, cluster: &str, pvc: &str) -> Result<(), ApiError> {
    let volumes = state.platform.volumes().await?;
    if let Some(v) = volumes.iter().find(|v| v.name == pvc && v.cluster != cluster) {
        return Err(ApiError::Conflict(format!(
            "volume {pvc} belongs to cluster {}; a cluster can only use a volume of its own",
            v.cluster
        )));
    }
    let (clusters, _) = api(state).list().await?;
    let user = clusters.iter().find(|c| {
        let name = c.metadata.name.as_deref().unwrap_or_default();
        name != cluster
            && names::volume_of(name, c.spec.pvc_name.as_deref(), &names::initial_primary(name)) == pvc
    });
    if let Some(other) = user {
        return Err(ApiError::Conflict(format!(
            "volume {pvc} is used by cluster {}",
            other.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    Ok(())
}

pub async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<ClusterView>>, ApiError> {
    caller.require(Permission::ShowCluster)?;
    let (items, _) = api(&state).list().await?;
    Ok(Json(items.iter().map(views::cluster).collect()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ShowQuery {
    show_secrets: bool,
}

pub async fn show(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    super::ApiQuery(q): super::ApiQuery<ShowQuery>,
) -> Result<Json<ClusterView>, ApiError> {
    caller.require(Permission::ShowCluster)?;
    let cluster = api(&state)
        .get_opt(&name)
        .await?
        .ok_or_else(|| not_found(&name))?;
    let mut view = views::cluster(&cluster);
    if q.show_secrets {
        caller.require(Permission::ShowSecrets)?;
        caller.audit(Permission::ShowSecrets, &format!("pgcluster/{name}"));
        let mut secrets = Vec::new();
        for user in [
            names::SUPERUSER,
            names::REPLICATION_USER,
            cluster.spec.user.as_str(),
        ] {
            let secret = names::secret(&name, user);
            if let Some(c) = state.platform.read_secret(&secret).await? {
                secrets.push(SecretView {
                    username: c.username,
                    password: c.password,
                });
            }
        }
        view.secrets = Some(secrets);
    }
    Ok(Json(view))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct DeleteQuery {
    /// Remove the cluster's volumes and data too.
    pub delete_data: bool,
    /// Remove its backups (the pgBackRest repository) too.
    pub delete_backups: bool,
}

pub async fn delete(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    super::ApiQuery(q): super::ApiQuery<DeleteQuery>,
) -> Result<(StatusCode, Json<DeleteClusterResponse>), ApiError> {
    caller.require(Permission::DeleteCluster)?;
    if q.delete_data || q.delete_backups {
        // Marked before the delete, so the teardown knows from its first pass.
        let mut marked = api(&state)
            .get_opt(&name)
            .await?
            .ok_or_else(|| not_found(&name))?;
        let notes = marked.metadata.annotations.get_or_insert_with(Default::default);
        for (asked, note) in [
            (q.delete_data, labels::DELETE_DATA),
            (q.delete_backups, labels::DELETE_BACKUPS),
        ] {
            if asked {
                notes.insert(note.to_string(), "true".to_string());
            }
        }
        api(&state).replace(&marked).await?;
    }
    let outcome = api(&state).delete(&name).await.map_err(|e| {
        if e.is_not_found() {
            not_found(&name)
        } else {
            e.into()
        }
    })?;
    caller.audit(Permission::DeleteCluster, &format!("pgcluster/{name}"));
    let message = match (outcome, q.delete_data, q.delete_backups) {
        (Some(_), false, false) => {
            "deleting: instances and services are being stopped; data and backups are kept"
        }
        (Some(_), true, false) => {
            "deleting: instances and services are being stopped, then the data is removed; backups are kept"
        }
        (Some(_), false, true) => {
            "deleting: instances and services are being stopped, then the backups are removed; data is kept"
        }
        (Some(_), true, true) => {
            "deleting: instances and services are being stopped, then the data and backups are removed"
        }
        (None, _, _) => "deleted",
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(DeleteClusterResponse {
            name,
            message: message.into(),
        }),
    ))
}
