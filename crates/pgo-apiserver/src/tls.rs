//! The apiserver's certificates: on first start a CA and a server
//! certificate signed by it are made under the home directory; the CLI
//! trusts the CA (`PGO_CA_CERT`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
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

/// The day `days` from now, in UTC.
fn day(days: i64) -> Result<jiff::civil::Date, TlsError> {
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .map_err(|e| TlsError::File {
            path: "the system clock".into(),
            reason: e.to_string(),
        })?;
    Ok(at.to_zoned(jiff::tz::TimeZone::UTC).date())
}

fn validity(params: &mut CertificateParams, days: i64) -> Result<jiff::civil::Date, TlsError> {
    let (from, to) = (day(-1)?, day(days)?);
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            d.month().unsigned_abs(),
            d.day().unsigned_abs(),
        )
    };
    params.not_before = ymd(from);
    params.not_after = ymd(to);
    Ok(to)
}

fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "pgo apiserver CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// True when the server certificate in `dir` ends within [`RENEW_DAYS`], or
/// its end is not on record (one made before validity was bounded).
fn server_cert_due(dir: &Path) -> bool {
    let ends = std::fs::read_to_string(dir.join(SERVER_EXPIRES))
        .ok()
        .and_then(|t| t.trim().parse::<jiff::civil::Date>().ok());
    match (ends, day(RENEW_DAYS)) {
        (Some(ends), Ok(soon)) => ends <= soon,
        _ => true,
    }
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
    let ca = ca_params()?;
    let ca_key = if have_ca {
        let pem = std::fs::read_to_string(&ca_key_path).map_err(|e| TlsError::File {
            path: ca_key_path.display().to_string(),
            reason: e.to_string(),
        })?;
        KeyPair::from_pem(&pem)?
    } else {
        let key = KeyPair::generate()?;
        let mut params = ca.clone();
        validity(&mut params, CA_DAYS)?;
        let ca_cert = params.self_signed(&key)?;
        write(&ca_key_path, &key.serialize_pem(), 0o600)?;
        write(&files.ca_cert, &ca_cert.pem(), 0o644)?;
        key
    };
    let issuer = Issuer::new(ca, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(hosts.to_vec())?;
    server
        .distinguished_name
        .push(DnType::CommonName, "pgo apiserver");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let ends = validity(&mut server, SERVER_DAYS)?;
    let server_cert = server.signed_by(&server_key, &issuer)?;
    write(&files.server_key, &server_key.serialize_pem(), 0o600)?;
    write(&files.server_cert, &server_cert.pem(), 0o644)?;
    write(&dir.join(SERVER_EXPIRES), &format!("{ends}\n"), 0o644)?;
    if have_ca {
        tracing::info!(%ends, "made a new server certificate from the same CA");
    }
    Ok(files)
}

/// rustls with ring, TLS 1.2 as the minimum.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let file_err = |path: &Path, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.server_cert)
        .map_err(|e| file_err(&files.server_cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&files.server_cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(&files.server_cert, "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.server_key)
        .map_err(|e| file_err(&files.server_key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
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
        assert!(ends <= day(SERVER_DAYS).unwrap() && ends > day(SERVER_DAYS - 2).unwrap());
        let (ca, cert) = (
            std::fs::read(&files.ca_cert).unwrap(),
            std::fs::read(&files.server_cert).unwrap(),
        );
        ensure(dir.path(), &hosts).unwrap();
        assert_eq!(std::fs::read(&files.server_cert).unwrap(), cert, "not due: kept");
        // Due within the renewal window: a new one, signed by the same CA.
        std::fs::write(dir.path().join(SERVER_EXPIRES), format!("{}\n", day(10).unwrap())).unwrap();
        ensure(dir.path(), &hosts).unwrap();
        assert_ne!(std::fs::read(&files.server_cert).unwrap(), cert);
        assert_eq!(std::fs::read(&files.ca_cert).unwrap(), ca);
        assert!(server_config(&files).is_ok());
    }
}
