//! HTTPS in front of an axum router: rustls (TLS 1.2 and 1.3 only), and a
//! server that closes what does nothing. The apiserver and, on Kubernetes,
//! the instance manager both serve this way.
//!
//! The TLS handshake, each request's headers, and the wait for the next
//! request on a kept-alive connection each have a timeout. At most `cap`
//! connections are open at once; more are closed as they come, so idle
//! clients cannot take the descriptors the rest of the process needs.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// For a request's headers, and for the next request on an idle connection.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The address a request came from, put on each request by [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsFileError {
    TlsFileError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The certificate chain and key in two PEM files.
fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsFileError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e))?;
    if certs.is_empty() {
        return Err(file_err(cert, "holds no certificate"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    Ok((certs, key_der))
}

/// The certificate and key in two PEM files, checked to match, ready to serve.
fn certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsFileError> {
    let (certs, key_der) = read_pem(cert, key)?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(CertifiedKey::from_der(certs, key_der, &provider)?)
}

fn protocols() -> Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>, TlsFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?)
}

/// A server config for the certificate and key in `cert` and `key`, read
/// once.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsFileError> {
    let (certs, key_der) = read_pem(cert, key)?;
    let config = protocols()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    Ok(Arc::new(config))
}

/// A server config that reads `cert` and `key` again at a handshake after
/// the certificate file changed (a Kubernetes Secret volume swaps its files
/// when the Secret is renewed). A renewal that does not load keeps the
/// certificate served before, and says why.
pub fn reloading_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsFileError> {
    let first = certified_key(cert, key)?;
    let resolver = Reloading {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        current: Mutex::new((modified(cert), Arc::new(first))),
    };
    let config = protocols()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(Arc::new(config))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().ok()?;
        let now = modified(&self.cert);
        if now != current.0 {
            // Recorded either way: a broken file is reported once, not at
            // every handshake.
            current.0 = now;
            match certified_key(&self.cert, &self.key) {
                Ok(k) => {
                    tracing::info!(cert = %self.cert.display(), "serving the renewed certificate");
                    current.1 = Arc::new(k);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the renewed certificate does not load; serving the one before")
                }
            }
        }
        Some(current.1.clone())
    }
}

/// Serves `app` over TLS on `listener` until `stop` turns true, with at
/// most `cap` connections open.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    mut stop: watch::Receiver<bool>,
    cap: usize,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(Semaphore::new(cap));
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
            tracing::warn!(%peer, cap, "too many connections; closing a new one");
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
