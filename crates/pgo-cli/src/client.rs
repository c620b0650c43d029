//! The REST client: HTTPS to the apiserver with the CA it was given, HTTP
//! Basic credentials from the PGOUSER file.

use crate::CliError;
use crate::args::Cli;
use pgo_api::rest::ErrorBody;
use reqwest::{Method, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct Client {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    /// Sent as the `namespace` query parameter of every request.
    namespace: Option<String>,
}

fn pgouser_path(cli: &Cli) -> Result<PathBuf, CliError> {
    if let Some(p) = &cli.pgouser {
        return Ok(p.clone());
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".pgouser"))
        .ok_or_else(|| CliError::Usage("set PGOUSER to the file holding username:password".into()))
}

fn credentials(cli: &Cli) -> Result<(String, String), CliError> {
    let path = pgouser_path(cli)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read the PGOUSER file {}: {e} (set PGOUSER to the file the server printed at its first start)",
            path.display()
        ))
    })?;
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    match line.trim().split_once(':') {
        Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err(CliError::Usage(format!(
            "the PGOUSER file {} must hold username:password",
            path.display()
        ))),
    }
}

fn tls(cli: &Cli) -> Result<rustls::ClientConfig, CliError> {
    let ca = cli.pgo_ca_cert.as_ref().ok_or_else(|| {
        CliError::Usage("set PGO_CA_CERT (or --pgo-ca-cert) to the apiserver's CA certificate".into())
    })?;
    let bad = |e: String| CliError::Usage(format!("cannot use the CA certificate {}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("it holds no certificate".into()));
    }
    for c in certs {
        roots.add(c).map_err(|e| bad(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The innermost cause, which is the one a person can act on.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

impl Client {
    pub fn new(cli: &Cli) -> Result<Self, CliError> {
        let base = cli.apiserver_url.trim_end_matches('/').to_string();
        // Credentials go in every request: never over plain HTTP.
        if !base.starts_with("https://") {
            return Err(CliError::Usage(format!(
                "the apiserver URL {base:?} must start with https:// (pgo sends credentials only over TLS)"
            )));
        }
        let namespace = cli.namespace.clone().filter(|n| !n.is_empty());
        if let Some(ns) = &namespace
            && !pgo_core::validate::dns1123_label(ns)
        {
            return Err(CliError::Usage(format!(
                "--namespace {ns:?} is not a namespace name (at most 63 of a-z, 0-9 and '-', starting and ending with a letter or digit)"
            )));
        }
        let (user, password) = credentials(cli)?;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .no_proxy();
        builder = builder.tls_backend_preconfigured(tls(cli)?);
        let http = builder
            .build()
            .map_err(|e| CliError::Local(format!("cannot build the HTTP client: {}", root_cause(&e))))?;
        Ok(Client {
            http,
            base,
            user,
            password,
            namespace,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, Vec<u8>), CliError> {
        let url = match &self.namespace {
            Some(ns) => {
                let join = if path.contains('?') { '&' } else { '?' };
                format!("{}{path}{join}namespace={ns}", self.base)
            }
            None => format!("{}{path}", self.base),
        };
        let mut req = self
            .http
            .request(method, url)
            .basic_auth(&self.user, Some(&self.password));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        Ok((status, bytes.to_vec()))
    }

    fn decode<T: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<T, CliError> {
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(bytes).trim().to_string());
            return Err(CliError::Api(format!("{message} (HTTP {})", status.as_u16())));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| CliError::Api(format!("unexpected answer from the apiserver: {e}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let (status, bytes) = self.send::<()>(Method::GET, path, None).await?;
        Self::decode(status, &bytes)
    }

    /// `None` on 404.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, CliError> {
        let (status, bytes) = self.send::<()>(Method::GET, path, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::decode(status, &bytes).map(Some)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, CliError> {
        let (status, bytes) = self.send(Method::POST, path, Some(body)).await?;
        Self::decode(status, &bytes)
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let (status, bytes) = self.send::<()>(Method::DELETE, path, None).await?;
        Self::decode(status, &bytes)
    }
}
