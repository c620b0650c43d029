//! The manager's HTTP endpoints, on the address the platform gave it.
//! Probes (`/healthz`, `/readyz`, `/status`) are open and say nothing
//! secret; control endpoints need the bearer token only the operator holds.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use pgo_api::instance::{DropSlot, InstanceConfig, InstanceReport};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

pub struct Shared {
    pub report: RwLock<InstanceReport>,
    pub token: String,
    pub reload: Notify,
    /// The config in use, for handlers that talk to PostgreSQL.
    pub config: RwLock<InstanceConfig>,
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
        .route("/control/reload", post(reload))
        .route("/control/drop-slot", post(drop_slot))
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
    Json(s.report())
}

/// Compares in time that does not depend on where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "not authenticated" })),
    )
        .into_response()
}

async fn reload(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &s.token) {
        return unauthorized();
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

/// Drops a replica's slot once the replica is gone, so the primary stops
/// keeping WAL for it. A slot still in use is refused, not forced.
async fn drop_slot(State(s): State<Arc<Shared>>, headers: HeaderMap, Json(req): Json<DropSlot>) -> Response {
    if !authorized(&headers, &s.token) {
        return unauthorized();
    }
    let Some(config) = s.config.read().ok().map(|c| c.clone()) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the config lock is poisoned".into(),
        );
    };
    let client = match crate::bootstrap::connect(&config).await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
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
