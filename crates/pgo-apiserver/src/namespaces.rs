//! An operator that watches several namespaces serves each through the
//! same routes: a request names its namespace in the `namespace` query
//! parameter (`pgo --namespace`), and is answered by that namespace's
//! router. One that names none goes to the first.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::Request;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

/// The `namespace` query parameter, if the request has one.
fn asked(req: &Request) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "namespace" && !v.is_empty()).then(|| v.to_string())
    })
}

/// The request without its `namespace` parameter, which no route takes.
fn without_namespace(mut req: Request) -> Request {
    let uri = req.uri();
    let Some(query) = uri.query() else {
        return req;
    };
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("namespace="))
        .collect();
    let path_and_query = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

pub fn router(states: Vec<Arc<AppState>>) -> axum::Router {
    let Some(first) = states.first().cloned() else {
        return axum::Router::new();
    };
    let default = crate::routes::router(first.clone());
    if states.len() == 1 && first.namespace.is_empty() {
        // The local platform: no namespaces to choose from.
        return default.layer(axum::middleware::from_fn(no_namespaces));
    }
    let routers: Arc<BTreeMap<String, axum::Router>> = Arc::new(
        states
            .into_iter()
            .map(|s| (s.namespace.clone(), crate::routes::router(s)))
            .collect(),
    );
    axum::Router::new().fallback(move |req: Request| {
        let (routers, default) = (routers.clone(), default.clone());
        async move {
            let router = match asked(&req) {
                None => default,
                Some(ns) => match routers.get(&ns) {
                    Some(r) => r.clone(),
                    None => {
                        // Not 404, which would read as "no such cluster".
                        return ApiError::BadRequest(format!(
                            "namespace {ns} is not one this operator watches (its --namespace list)"
                        ))
                        .into_response();
                    }
                },
            };
            match router.oneshot(without_namespace(req)).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
}

/// A namespace asked of a server that has none is an error, not ignored.
async fn no_namespaces(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    match asked(&req) {
        Some(ns) => ApiError::BadRequest(format!(
            "this server runs on the local platform, which has no namespaces: drop --namespace {ns}"
        ))
        .into_response(),
        None => next.run(req).await,
    }
}
