//! `POST /clusters/{name}/restart`: every instance restarts, replicas
//! first, then the primary hands over to a restarted replica and comes
//! back as a replica itself: writes stop only for the switchover. The
//! operator's rolling update does it, one member at a time.

use crate::auth::{Caller, Permission};
use crate::views;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use pgo_api::rest::ClusterView;
use std::sync::Arc;

pub async fn restart(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ClusterView>, ApiError> {
    caller.require(Permission::Restart)?;
    super::restore::refuse_while_busy(&state, &name).await?;
    let updated = super::update_cluster(&state, &name, |c| {
        c.spec.restarts += 1;
        Ok(())
    })
    .await?;
    caller.audit(Permission::Restart, &format!("pgcluster/{name}"));
    Ok(Json(views::cluster(&updated)))
}
