#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The instance manager's control channel as on Kubernetes: a real
//! `postgres-operator instance` serving HTTPS with a certificate for its own
//! instance name from the operator's CA. Plain HTTP, a client that expects
//! another instance, and a client of another CA get nothing; a renewed
//! certificate is served from the next handshake, without a restart.

mod support;

use pgo_platform::pki::Ca;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::pod::{self, TOKEN};

/// Writes a certificate for `name` from `ca` the way a Secret volume
/// updates: new files, then renamed over the old ones.
fn install_cert(dir: &Path, ca: &Ca, name: &str) -> (PathBuf, PathBuf) {
    let (pem, _) = ca.issue(&[name.to_string()], name, 30).unwrap();
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    for (path, text) in [(&key, &pem.key), (&cert, &pem.cert)] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert, key)
}

/// A client that trusts only `ca` and reaches `name` at 127.0.0.1:`port`.
fn client(ca: &Ca, name: &str, port: u16) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.cert.as_bytes()).unwrap()])
        .resolve(name, SocketAddr::from(([127, 0, 0, 1], port)))
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn status(client: &reqwest::Client, name: &str, port: u16) -> Result<u16, String> {
    client
        .get(format!("https://{name}:{port}/status"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:?}"))
}

async fn manager_pid(client: &reqwest::Client, port: u16) -> u32 {
    let report: pgo_api::instance::InstanceReport = client
        .get(format!("https://iso:{port}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    report.manager_pid
}

async fn reload(client: &reqwest::Client, port: u16, token: &str) -> u16 {
    client
        .post(format!("https://iso:{port}/control/reload"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_manager_serves_https_for_its_own_name_and_picks_up_a_renewed_certificate() {
    let dir = support::reachable_tempdir();
    let ca = Ca::generate("test CA", 30).unwrap();
    let (cert, key) = install_cert(dir.path(), &ca, "iso");
    let instance = pod::start(dir.path(), json!({ "tls": { "certFile": cert, "keyFile": key } }));
    let port = instance.http_port;
    let trusted = client(&ca, "iso", port);
    let start = Instant::now();
    while status(&trusted, "iso", port).await != Ok(200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the manager never answered over HTTPS: {:?}",
            status(&trusted, "iso", port).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The control endpoints still want the token.
    assert_eq!(reload(&trusted, port, TOKEN).await, 202);
    assert_eq!(reload(&trusted, port, "not-the-token").await, 401);
    // Plain HTTP gets no answer.
    assert!(pod::report(&instance).is_none());
    // A client that expects another instance, or trusts another CA, refuses it.
    let err = status(&client(&ca, "other", port), "other", port)
        .await
        .unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("certificate"),
        "{err}"
    );
    let stranger = Ca::generate("another CA", 30).unwrap();
    assert!(
        status(&client(&stranger, "iso", port), "iso", port)
            .await
            .is_err()
    );

    // Renewed (here from another CA, to tell them apart): the next
    // handshake serves the new certificate; the manager was not restarted.
    let pid_before = manager_pid(&trusted, port).await;
    install_cert(dir.path(), &stranger, "iso");
    assert_eq!(
        status(&client(&stranger, "iso", port), "iso", port).await,
        Ok(200)
    );
    assert!(status(&client(&ca, "iso", port), "iso", port).await.is_err());
    let pid_after = manager_pid(&client(&stranger, "iso", port), port).await;
    assert_eq!(pid_before, pid_after);
}

/// Writes PostgreSQL's certificate for `name` from `ca`, and the CA, as a
/// Secret volume updates them; the key readable by PostgreSQL alone (and
/// root), as PostgreSQL demands.
fn install_postgres_tls(dir: &Path, ca: &Ca, name: &str) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt;
    let (pem, _) = ca.issue(&[name.to_string()], name, 30).unwrap();
    let files = [
        ("pg.key", &pem.key, 0o640),
        ("pg.crt", &pem.cert, 0o644),
        ("pg-ca.crt", &ca.pem.cert, 0o644),
    ];
    let postgres = nix::unistd::User::from_name("postgres").unwrap().map(|u| u.gid);
    let root = nix::unistd::geteuid().is_root();
    for (file, text, mode) in files {
        let tmp = dir.join(format!("{file}.new"));
        std::fs::write(&tmp, text).unwrap();
        if root {
            nix::unistd::chown(&tmp, None, postgres).unwrap();
        }
        let mode = if root { mode } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::rename(&tmp, dir.join(file)).unwrap();
    }
    json!({ "certFile": dir.join("pg.crt"), "keyFile": dir.join("pg.key"), "caFile": dir.join("pg-ca.crt") })
}

/// psql to `iso` at `port` over TLS, verifying its certificate with `ca`.
fn verified(dir: &Path, ca: &Ca, port: u16) -> Result<String, String> {
    let ca_file = dir.join("client-ca.crt");
    std::fs::write(&ca_file, &ca.pem.cert).unwrap();
    support::psql_at(
        &format!(
            "host=iso hostaddr=127.0.0.1 port={port} sslmode=verify-full sslrootcert={}",
            ca_file.display()
        ),
        "postgres-password-0123456789",
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    )
}

#[tokio::test]
async fn postgres_serves_a_renewed_certificate_without_a_restart() {
    let dir = support::reachable_tempdir();
    let ca = Ca::generate("test CA", 30).unwrap();
    let tls = install_postgres_tls(dir.path(), &ca, "iso");
    let instance = pod::start(dir.path(), json!({ "postgresTls": tls }));
    let start = Instant::now();
    while verified(dir.path(), &ca, instance.port).as_deref() != Ok("t") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "PostgreSQL never answered over TLS: {:?}\n{}",
            verified(dir.path(), &ca, instance.port),
            std::fs::read_to_string(&instance.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let postmaster = std::fs::read_to_string(instance.volume.join("pgdata/postmaster.pid")).unwrap();

    // Renewed, from another CA to tell them apart: served once the manager
    // has seen the files change, by the same postmaster.
    let stranger = Ca::generate("another CA", 30).unwrap();
    install_postgres_tls(dir.path(), &stranger, "iso");
    let start = Instant::now();
    while verified(dir.path(), &stranger, instance.port).as_deref() != Ok("t") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the renewed certificate was never served: {:?}\n{}",
            verified(dir.path(), &stranger, instance.port),
            std::fs::read_to_string(&instance.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(verified(dir.path(), &ca, instance.port).is_err());
    let after = std::fs::read_to_string(instance.volume.join("pgdata/postmaster.pid")).unwrap();
    assert_eq!(
        postmaster.lines().next(),
        after.lines().next(),
        "the postmaster was restarted"
    );
}
