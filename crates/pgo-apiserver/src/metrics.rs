//! `GET /metrics`: the server's series in Prometheus' text format — the
//! apiserver's requests, clusters by phase, and whatever else is
//! registered in the same registry (the operator's, in `postgres-operator
//! run`). Scraping needs the `ShowMetrics` permission, as any read does.

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pgo_api::Pgcluster;
use pgo_api::cluster::ClusterPhase;
use pgo_store::Api;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/clusters/{name}`), never the path: names
    /// would make a series per cluster, and strangers' paths one each.
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// The apiserver's series and the registry every series is scraped from.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    clusters: Family<PhaseLabel, Gauge>,
}

impl ApiMetrics {
    /// Registers the apiserver's series into `registry` (which may hold
    /// others, the operator's), and scrapes all of it.
    pub fn new(mut registry: Registry) -> ApiMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        let clusters = Family::<PhaseLabel, Gauge>::default();
        registry.sub_registry_with_prefix("pgo_apiserver").register(
            "requests",
            "Requests answered, by method, route and status code",
            requests.clone(),
        );
        registry.sub_registry_with_prefix("pgo").register(
            "clusters",
            "Clusters by phase, as stored when scraped",
            clusters.clone(),
        );
        ApiMetrics {
            registry: Arc::new(registry),
            requests,
            clusters,
        }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new(Registry::default())
    }
}

/// Counts every answer by its route.
pub async fn count(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let response = next.run(req).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            code: response.status().as_u16(),
        })
        .inc();
    response
}

pub async fn scrape(caller: Caller, State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    caller.require(Permission::ShowMetrics)?;
    // Every watched namespace's.
    let mut clusters = Vec::new();
    for store in &state.stores {
        clusters.extend(Api::<Pgcluster>::new(store.clone()).list().await?.0);
    }
    for phase in ClusterPhase::ALL {
        let n = clusters
            .iter()
            .filter(|c| c.status.as_ref().map(|s| s.phase).unwrap_or_default() == phase)
            .count();
        state
            .metrics
            .clusters
            .get_or_create(&PhaseLabel {
                phase: phase.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.metrics.registry)
        .map_err(|e| ApiError::Internal(format!("encoding the metrics: {e}")))?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
