//! `/configmaps`: the user's ConfigMaps (`pgo create|show|delete
//! configmap`), a directory of files on the local platform and a
//! ConfigMap on Kubernetes; a custom configuration is one of them.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pgo_api::Pgcluster;
use pgo_api::custom_config::MAX_BYTES;
use pgo_api::rest::{ConfigMapView, CreateConfigMapRequest};
use pgo_store::Api;
use std::sync::Arc;

/// The clusters that took `name` as their custom configuration.
async fn users(state: &AppState, name: &str) -> Result<Vec<String>, ApiError> {
    let (clusters, _) = Api::<Pgcluster>::new(state.store.clone()).list().await?;
    Ok(clusters
        .iter()
        .filter(|c| c.spec.custom_config.as_deref() == Some(name))
        .filter_map(|c| c.metadata.name.clone())
        .collect())
}

/// A ConfigMap's name: a DNS-1123 subdomain, as Kubernetes names them.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(pgo_core::validate::dns1123_label);
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "configmap name {name:?}: at most 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
        )))
    }
}

/// A key is a file name (kubectl's rule): letters, digits, '-', '_', '.'.
fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "--from-file: {key:?} is not a key a ConfigMap can hold (letters, digits, '-', '_' and '.')"
        )))
    }
}

pub async fn create(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiJson(req): super::ApiJson<CreateConfigMapRequest>,
) -> Result<(StatusCode, Json<ConfigMapView>), ApiError> {
    caller.require(Permission::CreateConfigMap)?;
    check_name(&req.name)?;
    if req.data.is_empty() {
        return Err(ApiError::BadRequest(
            "--from-file: a configmap holds at least one file".into(),
        ));
    }
    for key in req.data.keys() {
        check_key(key)?;
    }
    let size: usize = req.data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_BYTES {
        return Err(ApiError::BadRequest(format!(
            "configmap {}: {size} bytes; a configmap holds at most {MAX_BYTES}",
            req.name
        )));
    }
    let exists = state.platform.config_map(&req.name).await?.is_some();
    if exists && !req.overwrite {
        return Err(ApiError::Conflict(format!(
            "configmap {:?} already exists; --overwrite replaces its content",
            req.name
        )));
    }
    state.platform.put_config_map(&req.name, &req.data).await?;
    caller.audit(Permission::CreateConfigMap, &format!("configmap/{}", req.name));
    let status = if exists {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let used_by = users(&state, &req.name).await?;
    Ok((
        status,
        Json(ConfigMapView {
            name: req.name,
            data: req.data,
            used_by,
        }),
    ))
}

pub async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<ConfigMapView>>, ApiError> {
    caller.require(Permission::ShowConfigMap)?;
    let mut names = state.platform.config_maps().await?;
    // The default custom configuration counts even where kubectl made it.
    let default = pgo_api::custom_config::DEFAULT_NAME.to_string();
    if !names.contains(&default) {
        names.push(default);
    }
    let mut out = Vec::new();
    for name in names {
        if let Some(data) = state.platform.config_map(&name).await? {
            let used_by = users(&state, &name).await?;
            out.push(ConfigMapView { name, data, used_by });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

/// A ConfigMap with the clusters that use it; 404 when there is none.
async fn find(state: &AppState, name: String) -> Result<ConfigMapView, ApiError> {
    let data = state
        .platform
        .config_map(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("configmap {name:?} not found")))?;
    let used_by = users(state, &name).await?;
    Ok(ConfigMapView { name, data, used_by })
}

pub async fn show(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ConfigMapView>, ApiError> {
    caller.require(Permission::ShowConfigMap)?;
    Ok(Json(find(&state, name).await?))
}

pub async fn delete(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ConfigMapView>, ApiError> {
    caller.require(Permission::DeleteConfigMap)?;
    let found = find(&state, name).await?;
    if !found.used_by.is_empty() {
        return Err(ApiError::Conflict(format!(
            "configmap {} is the custom configuration of cluster {}; it is kept while a cluster uses it",
            found.name,
            found.used_by.join(", ")
        )));
    }
    state.platform.remove_config_map(&found.name).await?;
    caller.audit(Permission::DeleteConfigMap, &format!("configmap/{}", found.name));
    Ok(Json(found))
}
