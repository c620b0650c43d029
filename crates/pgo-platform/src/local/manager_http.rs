//! The operator's HTTP client for its instance managers on loopback.
//!
//! Every pass of every cluster asks each manager's `/status`, so this is
//! hyper's pooled client and nothing more: reqwest's URL parsing (with
//! IDNA), redirect and retry layers were a fifth of an idle server's CPU at
//! 100 clusters, for requests that never redirect, are never retried (the
//! next pass asks again) and never leave 127.0.0.1.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Why a call to a manager failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing accepted the connection: the manager is not listening yet.
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// It answered, but not with success.
    #[error("{status}: {body}")]
    Refused { status: http::StatusCode, body: String },
    #[error("{0}")]
    Other(String),
}

impl CallError {
    pub fn is_connect(&self) -> bool {
        matches!(self, CallError::Connect(_))
    }
}

#[derive(Clone)]
pub struct ManagerHttp {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for ManagerHttp {
    fn default() -> Self {
        Self::new()
    }
}

impl ManagerHttp {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // One request is in flight per manager at a time: one kept
            // connection each is enough; more held ~2 MB of idle buffers
            // at 100 clusters.
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        ManagerHttp { client }
    }

    /// `GET http://host:port/path`, its JSON body decoded.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let request = http::Request::get(uri(host, port, path)?)
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Other(e.to_string()))?;
        let body = self.call(request, timeout).await?;
        serde_json::from_slice(&body).map_err(|e| CallError::Other(format!("cannot decode the answer: {e}")))
    }

    /// `POST http://host:port/path` with a bearer token and a JSON body.
    pub async fn post_json(
        &self,
        host: &str,
        port: u16,
        path: &str,
        token: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<(), CallError> {
        let request = http::Request::post(uri(host, port, path)?)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| CallError::Other(e.to_string()))?;
        self.call(request, timeout).await.map(|_| ())
    }

    async fn call(&self, request: http::Request<Full<Bytes>>, timeout: Duration) -> Result<Bytes, CallError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Connect(crate::error_chain(&e))
                } else {
                    CallError::Other(crate::error_chain(&e))
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Other(format!("cannot read the answer: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(CallError::Refused {
                    status,
                    body: String::from_utf8_lossy(&body).trim().to_string(),
                });
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }
}

fn uri(host: &str, port: u16, path: &str) -> Result<http::Uri, CallError> {
    format!("http://{host}:{port}{path}")
        .parse()
        .map_err(|e| CallError::Other(format!("bad manager address {host}:{port}{path}: {e}")))
}
