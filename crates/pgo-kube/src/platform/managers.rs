//! How the operator talks to the instance manager in a pod: its open
//! `/status` and `/volume`, and its token-guarded control endpoints. A
//! trait, so controller tests can stand in for pods that do not exist.

use pgo_api::instance::InstanceReport;
use pgo_api::rest::VolumeUsage;
use serde_json::Value;
use std::time::Duration;

/// The port every instance manager listens on inside its pod.
pub const MANAGER_PORT: u16 = 8008;

#[async_trait::async_trait]
pub trait Managers: Send + Sync + 'static {
    async fn status(&self, host: &str) -> Result<InstanceReport, String>;
    async fn volume(&self, host: &str) -> Result<VolumeUsage, String>;
    /// POSTs `body` to the control endpoint `path` with the bearer `token`.
    async fn control(
        &self,
        host: &str,
        token: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(), String>;
}

/// The managers over plain HTTP on the pod network.
pub struct HttpManagers {
    http: reqwest::Client,
    port: u16,
}

impl HttpManagers {
    pub fn new(port: u16) -> Result<Self, String> {
        // reqwest's TLS stack needs a process-wide provider even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // /status is answered from memory: a slow answer is a hung manager.
            .timeout(Duration::from_millis(1000))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpManagers { http, port })
    }

    fn url(&self, host: &str, path: &str) -> String {
        if host.contains(':') {
            format!("http://[{host}]:{}{path}", self.port)
        } else {
            format!("http://{host}:{}{path}", self.port)
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, host: &str, path: &str) -> Result<T, String> {
        let url = self.url(host, path);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = resp.error_for_status().map_err(|e| format!("{url}: {e}"))?;
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

#[async_trait::async_trait]
impl Managers for HttpManagers {
    async fn status(&self, host: &str) -> Result<InstanceReport, String> {
        self.get(host, "/status").await
    }

    async fn volume(&self, host: &str) -> Result<VolumeUsage, String> {
        self.get(host, "/volume").await
    }

    async fn control(
        &self,
        host: &str,
        token: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = self.url(host, path);
        let resp = self
            .http
            .post(&url)
            .timeout(timeout)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(format!("{url}: {status}: {}", text.trim()));
        }
        Ok(())
    }
}
