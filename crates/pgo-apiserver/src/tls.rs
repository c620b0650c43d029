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

/// Makes the CA and the server certificate in `dir` unless they exist.
/// `hosts` are the names and addresses the server answers on.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles::in_dir(dir);
    if files.ca_cert.exists() && files.server_cert.exists() && files.server_key.exists() {
        return Ok(files);
    }
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "pgo apiserver CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
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
    let server_cert = server.signed_by(&server_key, &issuer)?;

    write(&dir.join("ca.key"), &ca_key.serialize_pem(), 0o600)?;
    write(&files.server_key, &server_key.serialize_pem(), 0o600)?;
    write(&files.server_cert, &server_cert.pem(), 0o644)?;
    write(&files.ca_cert, &ca_cert.pem(), 0o644)?;
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
