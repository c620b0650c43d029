//! The API over HTTPS: [`pgo_instance::https::serve`] with the API's
//! connection cap.

use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

const MOST_CONNECTIONS: usize = 256;

/// Open API connections allowed: at most [`MOST_CONNECTIONS`], and at most a
/// quarter of the descriptors this process may open, so three quarters stay
/// for the service proxies, the store and the instances.
fn max_connections() -> usize {
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
    stop: watch::Receiver<bool>,
) {
    let cap = max_connections();
    tracing::debug!(cap, "API connection cap");
    pgo_instance::https::serve(listener, tls, app, stop, cap).await
}
