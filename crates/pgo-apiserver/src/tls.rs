//! The apiserver's certificates: on first start a CA and a server
//! certificate signed by it are made under the home directory; the CLI
//! trusts the CA (`PGO_CA_CERT`).

use pgo_platform::pki::{self, Ca, PkiError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Serve(#[from] pgo_instance::https::TlsFileError),
}

pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TlsFiles {
    pub fn in_dir(dir: &Path) -> Self {
        TlsFiles {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    let err = |e: std::io::Error| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)
}

/// How long the CA is valid. Rotating it means a new `ca.crt` for every
/// client: remove the TLS directory and start the server again.
const CA_DAYS: i64 = 3650;
/// How long a server certificate is valid. It is made anew from the same CA
/// at a start within [`RENEW_DAYS`] of its end, so clients notice nothing.
const SERVER_DAYS: i64 = 365;
const RENEW_DAYS: i64 = 30;
/// Beside the server certificate: the day it ends (`YYYY-MM-DD`).
const SERVER_EXPIRES: &str = "server.expires";
const CA_NAME: &str = "pgo apiserver CA";

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// True when the server certificate in `dir` ends within [`RENEW_DAYS`], or
/// its end is not on record (one made before validity was bounded).
fn server_cert_due(dir: &Path) -> bool {
    let ends = std::fs::read_to_string(dir.join(SERVER_EXPIRES))
        .ok()
        .and_then(|t| t.trim().parse::<jiff::civil::Date>().ok());
    pki::due(ends, RENEW_DAYS)
}

/// Makes the CA and the server certificate in `dir` unless they exist, and
/// a new server certificate from the same CA when the old one is due.
/// `hosts` are the names and addresses the server answers on.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles::in_dir(dir);
    let ca_key_path = dir.join("ca.key");
    let have_ca = files.ca_cert.exists() && ca_key_path.exists();
    if have_ca && files.server_cert.exists() && files.server_key.exists() && !server_cert_due(dir) {
        return Ok(files);
    }
    let ca = if have_ca {
        let pem = pki::Pem {
            cert: read(&files.ca_cert)?,
            key: read(&ca_key_path)?,
        };
        Ca::from_pem(CA_NAME, pem)?
    } else {
        let ca = Ca::generate(CA_NAME, CA_DAYS)?;
        write(&ca_key_path, &ca.pem.key, 0o600)?;
        write(&files.ca_cert, &ca.pem.cert, 0o644)?;
        ca
    };
    let (server, ends) = ca.issue(hosts, "pgo apiserver", SERVER_DAYS)?;
    write(&files.server_key, &server.key, 0o600)?;
    write(&files.server_cert, &server.cert, 0o644)?;
    write(&dir.join(SERVER_EXPIRES), &format!("{ends}\n"), 0o644)?;
    if have_ca {
        tracing::info!(%ends, "made a new server certificate from the same CA");
    }
    Ok(files)
}

/// rustls with ring, TLS 1.2 as the minimum.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(pgo_instance::https::server_config(
        &files.server_cert,
        &files.server_key,
    )?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_server_certificate_is_bounded_and_renewed_from_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["127.0.0.1".to_string()];
        let files = ensure(dir.path(), &hosts).unwrap();
        let ends: jiff::civil::Date = std::fs::read_to_string(dir.path().join(SERVER_EXPIRES))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(ends <= pki::day(SERVER_DAYS).unwrap() && ends > pki::day(SERVER_DAYS - 2).unwrap());
        let (ca, cert) = (
            std::fs::read(&files.ca_cert).unwrap(),
            std::fs::read(&files.server_cert).unwrap(),
        );
        ensure(dir.path(), &hosts).unwrap();
        assert_eq!(std::fs::read(&files.server_cert).unwrap(), cert, "not due: kept");
        // Due within the renewal window: a new one, signed by the same CA.
        std::fs::write(
            dir.path().join(SERVER_EXPIRES),
            format!("{}\n", pki::day(10).unwrap()),
        )
        .unwrap();
        ensure(dir.path(), &hosts).unwrap();
        assert_ne!(std::fs::read(&files.server_cert).unwrap(), cert);
        assert_eq!(std::fs::read(&files.ca_cert).unwrap(), ca);
        assert!(server_config(&files).is_ok());
    }
}
