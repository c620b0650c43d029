//! How the operator talks to the instance manager in a pod: its open
//! `/status` and `/volume`, and its token-guarded control endpoints, over
//! HTTPS. A trait, so controller tests can stand in for pods that do not
//! exist.

use super::ca::InstanceCa;
use pgo_api::instance::InstanceReport;
use pgo_api::rest::VolumeUsage;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The port every instance manager listens on inside its pod.
pub const MANAGER_PORT: u16 = 8008;

/// A manager: the instance it serves (the name its certificate must carry)
/// and its pod's IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerAddr {
    pub instance: String,
    pub ip: String,
}

#[async_trait::async_trait]
pub trait Managers: Send + Sync + 'static {
    async fn status(&self, at: &ManagerAddr) -> Result<InstanceReport, String>;
    async fn volume(&self, at: &ManagerAddr) -> Result<VolumeUsage, String>;
    /// POSTs `body` to the control endpoint `path` with the bearer `token`.
    async fn control(
        &self,
        at: &ManagerAddr,
        token: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(), String>;
}

/// The managers over HTTPS on the pod network. A server is trusted when its
/// certificate comes from the operator's CA and names the instance asked
/// for; the connection goes to the pod's IP whatever DNS says.
pub struct HttpManagers {
    ca: Arc<InstanceCa>,
    port: u16,
    /// A client per instance, pinned to the pod IP it was made for, so
    /// connections are kept alive between probes.
    clients: Mutex<HashMap<String, (String, reqwest::Client)>>,
}

/// Clients kept at most; past this the cache starts again (instances come
/// and go; a fresh client costs one handshake).
const MOST_CLIENTS: usize = 4096;

impl HttpManagers {
    /// `ca`: the CA that signs every manager's certificate.
    pub fn new(port: u16, ca: Arc<InstanceCa>) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(HttpManagers {
            ca,
            port,
            clients: Mutex::new(HashMap::new()),
        })
    }

    async fn client(&self, at: &ManagerAddr) -> Result<reqwest::Client, String> {
        if let Ok(clients) = self.clients.lock()
            && let Some((ip, client)) = clients.get(&at.instance)
            && *ip == at.ip
        {
            return Ok(client.clone());
        }
        let ca = self.ca.get().await.map_err(|e| e.to_string())?;
        let ca = reqwest::Certificate::from_pem(ca.pem.cert.as_bytes())
            .map_err(|e| format!("the instance managers' CA: {e}"))?;
        let ip: IpAddr = at
            .ip
            .parse()
            .map_err(|e| format!("instance {}: pod IP {:?}: {e}", at.instance, at.ip))?;
        let client = reqwest::Client::builder()
            // /status is answered from memory: a slow answer is a hung manager.
            .timeout(Duration::from_millis(1000))
            .no_proxy()
            .https_only(true)
            .tls_certs_only([ca])
            .resolve(&at.instance, SocketAddr::new(ip, self.port))
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        if let Ok(mut clients) = self.clients.lock() {
            if clients.len() >= MOST_CLIENTS {
                clients.clear();
            }
            clients.insert(at.instance.clone(), (at.ip.clone(), client.clone()));
        }
        Ok(client)
    }

    fn url(&self, at: &ManagerAddr, path: &str) -> String {
        format!("https://{}:{}{path}", at.instance, self.port)
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, at: &ManagerAddr, path: &str) -> Result<T, String> {
        let url = self.url(at, path);
        let resp = self
            .client(at)
            .await?
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url} at {}: {}", at.ip, pgo_platform::error_chain(&e)))?;
        let resp = resp.error_for_status().map_err(|e| format!("{url}: {e}"))?;
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

#[async_trait::async_trait]
impl Managers for HttpManagers {
    async fn status(&self, at: &ManagerAddr) -> Result<InstanceReport, String> {
        self.get(at, "/status").await
    }

    async fn volume(&self, at: &ManagerAddr) -> Result<VolumeUsage, String> {
        self.get(at, "/volume").await
    }

    async fn control(
        &self,
        at: &ManagerAddr,
        token: &str,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(), String> {
        let url = self.url(at, path);
        let resp = self
            .client(at)
            .await?
            .post(&url)
            .timeout(timeout)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{url} at {}: {}", at.ip, pgo_platform::error_chain(&e)))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(format!("{url}: {status}: {}", text.trim()));
        }
        Ok(())
    }
}
