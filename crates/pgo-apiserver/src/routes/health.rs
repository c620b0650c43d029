//! `pgo test` (can each endpoint be connected to) and `pgo df` (how full
//! each volume is). The apiserver does the work: it can reach the
//! instances where the CLI may not.

use crate::auth::{Caller, Permission};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use pgo_api::rest::{DfResponse, EndpointTest, TestResponse};
use pgo_core::names;
use std::sync::Arc;
use std::time::Duration;

/// Connects as the application user and runs `SELECT 1`.
async fn try_connect(host: &str, port: u16, user: &str, password: &str, db: &str) -> Result<(), String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname(db)
        .application_name("pgo test")
        .connect_timeout(Duration::from_secs(3));
    let attempt = async {
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let task = tokio::spawn(conn);
        let result = client.simple_query("SELECT 1").await.map_err(|e| e.to_string());
        drop(client);
        let _ = task.await;
        result.map(|_| ())
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

pub async fn test(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<TestResponse>, ApiError> {
    caller.require(Permission::TestCluster)?;
    let c = super::find_cluster(&state, &name).await?;
    let creds = state
        .platform
        .read_secret(&names::secret(&name, &c.spec.user))
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("cluster {name} has no credentials yet")))?;
    let status = c.status.unwrap_or_default();
    let mut targets: Vec<(String, &'static str, String, u16)> = status
        .services
        .iter()
        .map(|s| (s.name.clone(), "service", s.host.clone(), s.port))
        .collect();
    targets.extend(
        status
            .members
            .iter()
            .filter(|m| m.port != 0)
            .map(|m| (m.name.clone(), "instance", m.host.clone(), m.port)),
    );
    let checks = targets.into_iter().map(|(name, kind, host, port)| {
        let creds = creds.clone();
        let db = c.spec.database.clone();
        let slots = &state.testing;
        async move {
            // Bounded across every caller: /test never takes more than a few
            // of PostgreSQL's connection slots, however often it is asked.
            let result = match slots.acquire().await {
                Ok(_slot) => try_connect(&host, port, &creds.username, &creds.password, &db).await,
                Err(e) => Err(e.to_string()),
            };
            EndpointTest {
                name,
                kind: kind.to_string(),
                host,
                port,
                up: result.is_ok(),
                error: result.err(),
            }
        }
    });
    // At once: each waits on the network.
    let results = futures::future::join_all(checks).await;
    Ok(Json(TestResponse {
        cluster: name,
        results,
    }))
}

pub async fn df(
    caller: Caller,
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<DfResponse>, ApiError> {
    caller.require(Permission::DfCluster)?;
    let c = super::find_cluster(&state, &name).await?;
    let status = c.status.unwrap_or_default();
    let mut volumes = Vec::new();
    for m in &status.members {
        let volume = names::volume_of(&name, c.spec.pvc_name.as_deref(), &m.name);
        if let Some(mut usage) = state.platform.volume_usage(&volume).await? {
            usage.instance = m.name.clone();
            volumes.push(usage);
        }
    }
    Ok(Json(DfResponse {
        cluster: name,
        volumes,
    }))
}
