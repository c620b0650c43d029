//! A service is a TCP proxy on 127.0.0.1. Its port is recorded the first
//! time, so it is the same after the server restarts; its targets can change
//! under it (repointing on failover) without closing the listener.

use super::ports::Ports;
use super::{Layout, files};
use crate::{Endpoint, PlatformError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

#[derive(Serialize, Deserialize)]
struct ServiceRecord {
    name: String,
    cluster: String,
    port: u16,
}

struct Proxy {
    port: u16,
    targets: watch::Sender<Vec<SocketAddr>>,
    task: JoinHandle<()>,
}

pub struct Proxies {
    layout: Layout,
    ports: Arc<Ports>,
    running: Mutex<HashMap<String, Proxy>>,
}

fn port_owner(service: &str) -> String {
    format!("service/{service}/")
}

/// The ports every service record fixes, with their owners.
pub fn ports_in_use(layout: &Layout) -> Result<Vec<(u16, String)>, PlatformError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(layout.services())
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some(r) = files::read_json::<ServiceRecord>(&entry.path())? {
            out.push((r.port, port_owner(&r.name)));
        }
    }
    Ok(out)
}

impl Proxies {
    pub fn new(layout: Layout, ports: Arc<Ports>) -> Self {
        Proxies {
            layout,
            ports,
            running: Mutex::new(HashMap::new()),
        }
    }

    pub async fn ensure(
        &self,
        name: &str,
        cluster: &str,
        targets: Vec<SocketAddr>,
    ) -> Result<Endpoint, PlatformError> {
        let mut running = self.running.lock().await;
        if let Some(proxy) = running.get(name) {
            proxy.targets.send_if_modified(|t| {
                let changed = *t != targets;
                if changed {
                    tracing::info!(service = name, ?targets, "service repointed");
                    *t = targets;
                }
                changed
            });
            return Ok(endpoint(proxy.port));
        }
        let record_path = self.layout.service(name);
        let recorded = files::read_json::<ServiceRecord>(&record_path)?;
        let port = match &recorded {
            Some(r) => r.port,
            None => self.ports.allocate(&port_owner(name))?,
        };
        let listener =
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|source| PlatformError::PortInUse {
                    name: name.to_string(),
                    port,
                    holder: pgo_instance::ports::who_listens(port)
                        .unwrap_or_else(|| "another process".into()),
                    record: record_path.display().to_string(),
                    source,
                })?;
        let port = listener
            .local_addr()
            .map_err(|e| PlatformError::io("cannot read a bound port", e))?
            .port();
        if recorded.is_none() {
            files::write_json(
                &record_path,
                &ServiceRecord {
                    name: name.to_string(),
                    cluster: cluster.to_string(),
                    port,
                },
            )?;
        }
        let (tx, rx) = watch::channel(targets);
        let task = tokio::spawn(serve(name.to_string(), listener, rx));
        tracing::info!(service = name, port, "service listening");
        running.insert(
            name.to_string(),
            Proxy {
                port,
                targets: tx,
                task,
            },
        );
        Ok(endpoint(port))
    }

    pub async fn remove(&self, name: &str) -> Result<(), PlatformError> {
        if let Some(proxy) = self.running.lock().await.remove(name) {
            proxy.task.abort();
        }
        self.ports.release(&port_owner(name))?;
        let path = self.layout.service(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PlatformError::io(format!("cannot remove {}", path.display()), e)),
        }
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
    }
}

async fn serve(name: String, listener: TcpListener, targets: watch::Receiver<Vec<SocketAddr>>) {
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (client, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let candidates = targets.borrow().clone();
        let start = next.fetch_add(1, Ordering::Relaxed);
        let name = name.clone();
        tokio::spawn(async move {
            // Round robin; a target that refuses is skipped for the next.
            for i in 0..candidates.len() {
                let target = candidates[(start + i) % candidates.len()];
                match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(target)).await {
                    Ok(Ok(mut upstream)) => {
                        let mut client = client;
                        let _ = upstream.set_nodelay(true);
                        let _ = client.set_nodelay(true);
                        let _ = copy_bidirectional(&mut client, &mut upstream).await;
                        return;
                    }
                    _ => tracing::debug!(service = %name, %target, "target refused a connection"),
                }
            }
            // No target: the client sees the connection close at once.
        });
    }
}
