//! HTTPS: rustls (TLS 1.2 and 1.3 only) in front of the axum router.
//!
//! A connection that does nothing is closed: the TLS handshake, each
//! request's headers, and the wait for the next request on a kept-alive
//! connection each have [`HANDSHAKE_TIMEOUT`] or [`IDLE_TIMEOUT`]. At most
//! [`max_connections`] are open at once; more are closed as they come, so
//! idle clients can never take the descriptors the service proxies in the
//! same process need.

use crate::auth::Peer;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// For a request's headers, and for the next request on an idle connection.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const MOST_CONNECTIONS: usize = 256;

/// Open API connections allowed: at most [`MOST_CONNECTIONS`], and at most a
/// quarter of the descriptors this process may open, so three quarters stay
/// for the service proxies, the store and the instances.
pub fn max_connections() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(soft / 4)
        .unwrap_or(MOST_CONNECTIONS)
        .clamp(16, MOST_CONNECTIONS)
}

/// Serves `app` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let cap = max_connections();
    let slots = Arc::new(Semaphore::new(cap));
    tracing::debug!(cap, "API connection cap");
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, cap, "too many API connections; closing a new one");
            drop(tcp);
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app
            .clone()
            .map_request(move |mut r: hyper::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(Peer(peer));
                r
            });
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IDLE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
