//! The manager's HTTP endpoints, on the address the platform gave it.
//! Probes (`/healthz`, `/readyz`, `/status`) are open and say nothing
//! secret; control endpoints need the bearer token only the operator holds.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use pgo_api::instance::{ConfigChanges, InstanceConfig, InstanceReport, ReloadRequest, SlotRequest};
use pgo_api::rest::VolumeUsage;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

pub struct Shared {
    pub report: RwLock<InstanceReport>,
    pub token: String,
    pub reload: Notify,
    /// The config in use, for handlers that talk to PostgreSQL.
    pub config: RwLock<InstanceConfig>,
    /// Changes pushed with a reload, newer than the file until the file
    /// says the same.
    pub pushed: RwLock<Option<ConfigChanges>>,
    /// When the readiness check that is still failing began.
    pub failing_since: RwLock<Option<std::time::Instant>>,
}

impl Shared {
    pub fn report(&self) -> InstanceReport {
        self.report.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn update(&self, f: impl FnOnce(&mut InstanceReport)) {
        if let Ok(mut r) = self.report.write() {
            f(&mut r);
        }
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/volume", get(volume))
        .route("/control/reload", post(reload))
        .route("/control/drop-slot", post(drop_slot))
        .route("/control/create-slot", post(create_slot))
        .route("/control/promote", post(promote))
        .with_state(shared)
}

async fn healthz(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let r = s.report();
    Json(serde_json::json!({ "instance": r.name, "managerPid": r.manager_pid }))
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    let r = s.report();
    if r.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = r.message.unwrap_or_else(|| "not ready".into());
        (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Json<InstanceReport> {
    let mut report = s.report();
    if !report.ready {
        report.failing_for_ms = s
            .failing_since
            .read()
            .ok()
            .and_then(|f| *f)
            .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
    }
    Json(report)
}

/// What the volume holds: read from inside the pod, where it is mounted.
async fn volume(State(s): State<Arc<Shared>>) -> Response {
    let Some(config) = s.config.read().ok().map(|c| c.clone()) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the config lock is poisoned".into(),
        );
    };
    let dir = config.volume_dir.clone();
    let usage = tokio::task::spawn_blocking(move || crate::volume::usage(&dir)).await;
    match usage {
        Ok(Ok((used_bytes, free_bytes, total_bytes))) => Json(VolumeUsage {
            name: String::new(),
            instance: config.name.clone(),
            path: config.volume_dir.display().to_string(),
            used_bytes,
            free_bytes,
            total_bytes,
        })
        .into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot stat {}: {e}", config.volume_dir.display()),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Compares in time that does not depend on where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

pub(crate) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "not authenticated" })),
    )
        .into_response()
}

/// The largest reload body read: a few names and an address.
const RELOAD_BODY_LIMIT: usize = 64 * 1024;

async fn reload(State(s): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    // The token first: a stranger's body is never read.
    if !authorized(request.headers(), &s.token) {
        return unauthorized();
    }
    let body = match axum::body::to_bytes(request.into_body(), RELOAD_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read the request: {e}")),
    };
    let request: ReloadRequest = if body.is_empty() {
        ReloadRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a reload request: {e}")),
        }
    };
    if let Some(changes) = request.changes {
        if let Err(e) = changes.validate() {
            return error(StatusCode::BAD_REQUEST, format!("not a reload request: {e}"));
        }
        if let Ok(mut pushed) = s.pushed.write() {
            *pushed = Some(changes);
        }
    }
    s.reload.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "reload": "requested" })),
    )
        .into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// For a control endpoint: the caller must hold the token; then a superuser
/// connection, or the response that says why there is none.
async fn control(s: &Shared, headers: &HeaderMap) -> Result<tokio_postgres::Client, Response> {
    if !authorized(headers, &s.token) {
        return Err(unauthorized());
    }
    let Some(config) = s.config.read().ok().map(|c| c.clone()) else {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the config lock is poisoned".into(),
        ));
    };
    crate::bootstrap::connect(&config)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))
}

fn db_error(e: tokio_postgres::Error) -> Response {
    error(StatusCode::CONFLICT, crate::bootstrap::describe(&e))
}

/// Makes a replica's slot, reserving WAL from now, unless it exists.
async fn create_slot(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(req): Json<SlotRequest>,
) -> Response {
    let client = match control(&s, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let sql = "SELECT pg_create_physical_replication_slot($1, true)
               WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)";
    match client.query(sql, &[&req.slot]).await {
        Ok(rows) => Json(serde_json::json!({ "created": !rows.is_empty() })).into_response(),
        Err(e) => db_error(e),
    }
}

/// Promotes a replica: first it replays all the WAL it has received (so a
/// switchover loses nothing), then `pg_promote`. Promoting a primary is a
/// no-op, so a failover that is resumed can ask again.
async fn promote(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let client = match control(&s, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match client.query_one("SELECT pg_is_in_recovery()", &[]).await {
        Ok(row) if !row.get::<_, bool>(0) => {
            return Json(serde_json::json!({ "promoted": false, "message": "already a primary" }))
                .into_response();
        }
        Ok(_) => {}
        Err(e) => return db_error(e),
    }
    let caught_up =
        "SELECT pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn()";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match client.query_one(caught_up, &[]).await {
            Ok(row) if row.get::<_, bool>(0) => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Ok(_) => {
                return error(
                    StatusCode::CONFLICT,
                    "the replica did not replay what it received within 30s".into(),
                );
            }
            Err(e) => return db_error(e),
        }
    }
    match client.query_one("SELECT pg_promote(true, 60)", &[]).await {
        Ok(row) if row.get::<_, bool>(0) => {
            tracing::info!("promoted to primary");
            Json(serde_json::json!({ "promoted": true })).into_response()
        }
        Ok(_) => error(
            StatusCode::CONFLICT,
            "pg_promote did not finish within 60s".into(),
        ),
        Err(e) => db_error(e),
    }
}

/// Drops a replica's slot once the replica is gone, so the primary stops
/// keeping WAL for it. A slot still in use is refused, not forced.
async fn drop_slot(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(req): Json<SlotRequest>,
) -> Response {
    let client = match control(&s, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let active = match client
        .query_opt(
            "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
            &[&req.slot],
        )
        .await
    {
        Ok(row) => row.map(|r| r.get::<_, bool>(0)),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, crate::bootstrap::describe(&e)),
    };
    match active {
        None => Json(serde_json::json!({ "dropped": false })).into_response(),
        Some(true) => error(StatusCode::CONFLICT, format!("slot {} is in use", req.slot)),
        Some(false) => match client
            .execute("SELECT pg_drop_replication_slot($1)", &[&req.slot])
            .await
        {
            Ok(_) => {
                tracing::info!(slot = %req.slot, "dropped replication slot");
                Json(serde_json::json!({ "dropped": true })).into_response()
            }
            Err(e) => error(StatusCode::CONFLICT, crate::bootstrap::describe(&e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, "secret-token"));
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!authorized(&h, "secret-token"));
        h.insert(header::AUTHORIZATION, "Bearer secret-token".parse().unwrap());
        assert!(authorized(&h, "secret-token"));
    }
}
