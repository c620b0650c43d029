//! The REST routes. Reads are GET; mutations are POST or DELETE, never GET.

pub(crate) mod backups;
mod clusters;
mod config_maps;
mod custom_config;
mod failover;
mod health;
mod pvcs;
mod reload;
mod restart;
mod restore;
mod scale;
mod schedules;
mod system;

use crate::auth::Caller;
use crate::{ApiError, AppState};
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post};
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/livez", get(system::livez))
        .route("/version", get(system::version))
        .route("/status", get(system::status))
        .route("/config", get(system::config))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/clusters", get(clusters::list).post(clusters::create))
        .route("/clusters/{name}", get(clusters::show).delete(clusters::delete))
        .route("/clusters/{name}/scale", post(scale::scale))
        .route("/clusters/{name}/failover", post(failover::failover))
        .route("/clusters/{name}/scaledown", post(scale::scaledown))
        .route("/clusters/{name}/restore", post(restore::restore))
        .route("/clusters/{name}/restart", post(restart::restart))
        .route("/clusters/{name}/test", get(health::test))
        .route("/clusters/{name}/df", get(health::df))
        .route(
            "/backups",
            get(backups::list).post(backups::create).delete(backups::expire),
        )
        .route("/backups/{name}", get(backups::show))
        .route("/tasks/{name}", get(system::task))
        .route("/pvcs", get(pvcs::list))
        .route("/configmaps", get(config_maps::list).post(config_maps::create))
        .route(
            "/configmaps/{name}",
            get(config_maps::show).delete(config_maps::delete),
        )
        .route("/reload", post(reload::reload))
        .route("/schedules", get(schedules::list).post(schedules::create))
        .route("/schedules/{name}", axum::routing::delete(schedules::delete))
        .fallback(unknown)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count,
        ))
        .with_state(state)
}

/// A JSON body, refused with 400 and a JSON error naming the problem
/// (axum's own rejections are plain text, and some are 415 or 422).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "the request body is refused: {}",
                e.body_text()
            ))),
        }
    }
}

/// Query parameters, refused the same way.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "the query is refused: {}",
                e.body_text()
            ))),
        }
    }
}

/// The cluster named in the path, or 404 naming it.
async fn find_cluster(state: &AppState, name: &str) -> Result<pgo_api::Pgcluster, ApiError> {
    pgo_store::Api::<pgo_api::Pgcluster>::new(state.store.clone())
        .get_opt(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("cluster {name:?} not found")))
}

/// Changes a cluster's spec by `change`, on the version just read; one the
/// operator wrote meanwhile (its status, a finalizer) is read again, so a
/// verb that only adds to the spec is never refused for it. `change` may
/// refuse the cluster as it finds it.
async fn update_cluster(
    state: &AppState,
    name: &str,
    change: impl Fn(&mut pgo_api::Pgcluster) -> Result<(), ApiError>,
) -> Result<pgo_api::Pgcluster, ApiError> {
    let api = pgo_store::Api::<pgo_api::Pgcluster>::new(state.store.clone());
    let mut tries = 0;
    loop {
        let mut c = find_cluster(state, name).await?;
        if c.metadata.deletion_timestamp.is_some() {
            return Err(ApiError::Conflict(format!("cluster {name:?} is being deleted")));
        }
        change(&mut c)?;
        match api.replace(&c).await {
            Ok(updated) => return Ok(updated),
            Err(e) if e.is_conflict() && tries < 10 => tries += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Unknown routes also need credentials: nothing is said to a stranger.
async fn unknown(_caller: Caller, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such API route: {}", uri.path()))
}

/// A known route with another method: credentials first here too, so a
/// stranger cannot map the routes by their 405s.
async fn wrong_method(_caller: Caller, method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
