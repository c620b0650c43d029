//! `/pvcs`: `pgo show pvc NAME|all`, a cluster's volumes (its data, its
//! repository, its copies) or one volume, and the copies a volume of
//! pg_basebackup copies holds, to start a cluster from.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use pgo_api::Pgbackup;
use pgo_api::rest::PvcView;
use pgo_core::names;
use pgo_store::Api;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ListQuery {
    /// A cluster, a volume, or `all`.
    name: String,
}

fn holds(cluster: &str, volume: &str) -> &'static str {
    if volume == names::backrest_repo_volume(cluster) {
        "pgbackrest"
    } else if volume == names::basebackup_volume(cluster) {
        "pgbasebackup"
    } else {
        "data"
    }
}

pub async fn list(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    super::ApiQuery(q): super::ApiQuery<ListQuery>,
) -> Result<Json<Vec<PvcView>>, ApiError> {
    caller.require(Permission::ShowPVC)?;
    if q.name.is_empty() {
        return Err(ApiError::BadRequest(
            "name a cluster, a volume, or all: /pvcs?name=NAME".into(),
        ));
    }
    let volumes = state.platform.volumes().await?;
    let mut chosen: Vec<_> = volumes
        .into_iter()
        .filter(|v| q.name == "all" || v.cluster == q.name || v.name == q.name)
        .collect();
    if chosen.is_empty() && q.name != "all" {
        return Err(ApiError::NotFound(format!(
            "no volume is named {:?} or belongs to a cluster of that name",
            q.name
        )));
    }
    chosen.sort_by(|a, b| (&a.cluster, &a.name).cmp(&(&b.cluster, &b.name)));
    let (backups, _) = Api::<Pgbackup>::new(state.store.clone()).list().await?;
    let mut out = Vec::new();
    for v in chosen {
        let used_bytes = match state.platform.volume_usage(&v.name).await {
            Ok(u) => u.map(|u| u.used_bytes),
            Err(e) => {
                tracing::warn!(volume = %v.name, error = %e, "cannot measure the volume");
                None
            }
        };
        let copies = pgo_core::backup::copies_in(&backups, &v.name);
        out.push(PvcView {
            holds: holds(&v.cluster, &v.name).to_string(),
            name: v.name,
            cluster: v.cluster,
            location: v.location,
            used_bytes,
            copies,
        });
    }
    Ok(Json(out))
}
