//! The pgBackRest repository host (Kubernetes): the cluster's repository on
//! a volume of its own, served to the pods by pgBackRest's TLS server (they
//! archive into it and restore from it), and backups run here, the only
//! place pgBackRest runs them, when a backup Job asks on the control
//! endpoint. So no storage needs to be shared between pods.

use crate::InstanceError;
use crate::backrest_server::keep_running;
use pgo_api::job::JobResult;
use pgo_api::repo_host::{RepoCommand, RepoHostConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Connections the control endpoint keeps open at most: a backup Job or
/// two, and the kubelet's probes.
const MOST_CONNECTIONS: usize = 16;
/// The largest command body read.
const BODY_LIMIT: usize = 64 * 1024;

struct Shared {
    config: RepoHostConfig,
    token: String,
    bin: PathBuf,
    conf: PathBuf,
    standby_conf: PathBuf,
}

fn config_err(path: &Path, reason: impl ToString) -> InstanceError {
    InstanceError::Config {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Runs the repository host described by the config file at `path` until
/// SIGTERM or SIGINT.
pub async fn run(path: &Path) -> Result<(), InstanceError> {
    let text = std::fs::read(path).map_err(|e| config_err(path, e))?;
    let config: RepoHostConfig = serde_json::from_slice(&text).map_err(|e| config_err(path, e))?;
    let token = std::fs::read_to_string(&config.token_file)
        .map_err(|e| config_err(path, format!("token file {}: {e}", config.token_file.display())))?
        .trim()
        .to_string();
    if token.len() < 16 {
        return Err(config_err(
            path,
            format!("token file {} holds no usable token", config.token_file.display()),
        ));
    }
    let bin = crate::backrest::binary().map_err(InstanceError::Environment)?;
    for dir in [
        config.work_dir.clone(),
        config.work_dir.join("lock"),
        config.work_dir.join("log"),
        config.repo_path.clone(),
    ] {
        std::fs::create_dir_all(&dir)
            .map_err(|e| InstanceError::Environment(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conf = config.work_dir.join("pgbackrest.conf");
    let standby_conf = config.work_dir.join("pgbackrest-standby.conf");
    let write = |file: &Path, text: String| {
        std::fs::write(file, text)
            .map_err(|e| InstanceError::Environment(format!("cannot write {}: {e}", file.display())))
    };
    write(&conf, conf_text(&config, None))?;

    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let server = {
        let (bin, conf) = (bin.clone(), conf.clone());
        move || {
            let mut cmd = tokio::process::Command::new(&bin);
            cmd.arg(format!("--config={}", conf.display()))
                .arg("server")
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            Some(cmd)
        }
    };
    tokio::spawn(keep_running(server, stop.clone()));

    let addr = format!("0.0.0.0:{}", config.http_port);
    let listener = crate::listen(&addr).await?;
    let tls = crate::https::reloading_server_config(&config.cert_file, &config.key_file)?;
    tracing::info!(cluster = %config.cluster, %addr, repo = %config.repo_path.display(), "repository host started");
    let shared = Arc::new(Shared {
        config,
        token,
        bin,
        conf,
        standby_conf,
    });
    crate::https::serve(listener, tls, router(shared), stop, MOST_CONNECTIONS).await;
    Ok(())
}

/// pgBackRest's config here: the repository and its retention, the TLS
/// server the pods reach, and the primary's TLS server, through its
/// Service; with `standby`, that replica's too, which the files are read
/// from (one replica, by its own name: pgBackRest opens several
/// connections, and all must reach the same one).
fn conf_text(c: &RepoHostConfig, standby: Option<&str>) -> String {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut out = String::from("# Written by the pgo repository host; edits are lost.\n[global]\n");
    let mut set = |k: &str, v: String| out.push_str(&format!("{k}={v}\n"));
    set("repo1-path", path(&c.repo_path));
    set("repo1-retention-full", c.retention_full.to_string());
    if let Some(diff) = c.retention_diff {
        set("repo1-retention-diff", diff.to_string());
    }
    set("lock-path", path(&c.work_dir.join("lock")));
    set("log-path", path(&c.work_dir.join("log")));
    set("log-level-file", "off".into());
    set("log-level-console", "warn".into());
    set("log-level-stderr", "off".into());
    set("process-max", "2".into());
    set("compress-type", "lz4".into());
    set("start-fast", "y".into());
    set("tls-server-address", "*".into());
    set("tls-server-port", c.server_port.to_string());
    set("tls-server-ca-file", path(&c.ca_file));
    set("tls-server-cert-file", path(&c.cert_file));
    set("tls-server-key-file", path(&c.key_file));
    set("tls-server-auth", format!("{}={}", c.client_cn, c.stanza));
    if standby.is_some() {
        set("backup-standby", "y".into());
    }
    out.push_str(&format!("\n[{}]\n", c.stanza));
    let hosts: Vec<String> = std::iter::once(c.primary_host.clone())
        .chain(standby.map(str::to_string))
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        let n = i + 1;
        let mut set = |k: &str, v: String| out.push_str(&format!("pg{n}-{k}={v}\n"));
        set("host", host.clone());
        set("host-type", "tls".into());
        set("host-port", c.pg_host_port.to_string());
        set("host-config", path(&c.pg_config));
        set("host-ca-file", path(&c.ca_file));
        set("host-cert-file", path(&c.client_cert_file));
        set("host-key-file", path(&c.client_key_file));
        set("path", path(&c.pg_path));
        set("port", c.pg_port.to_string());
        set("user", c.pg_user.clone());
    }
    out
}

fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/backrest", post(backrest))
        .with_state(shared)
}

/// Ready while pgBackRest's TLS server takes connections: the pods'
/// archiving reaches the host through its Service only then.
async fn readyz(axum::extract::State(s): axum::extract::State<Arc<Shared>>) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let port = s.config.server_port;
    let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(_)) => "ok".into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("pgBackRest's TLS server does not take connections on port {port}"),
        )
            .into_response(),
    }
}

/// Runs one pgBackRest command for the stanza, then `info`, and answers
/// with how it went, as a job reports it. The command is killed if the
/// caller goes away.
async fn backrest(
    axum::extract::State(s): axum::extract::State<Arc<Shared>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    if !crate::http::authorized(request.headers(), &s.token) {
        return crate::http::unauthorized();
    }
    let body = match axum::body::to_bytes(request.into_body(), BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")).into_response(),
    };
    let command: RepoCommand = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a command: {e}")).into_response(),
    };
    axum::Json(match run_command(&s, &command).await {
        Ok(output) => JobResult {
            succeeded: true,
            output,
            ..Default::default()
        },
        Err(message) => JobResult {
            message,
            ..Default::default()
        },
    })
    .into_response()
}

async fn run_command(s: &Shared, command: &RepoCommand) -> Result<String, String> {
    // One command at a time takes the stanza's lock, so one standby config
    // file serves them all.
    let conf = match &command.standby {
        None => &s.conf,
        Some(host) => {
            std::fs::write(&s.standby_conf, conf_text(&s.config, Some(host)))
                .map_err(|e| format!("cannot write {}: {e}", s.standby_conf.display()))?;
            &s.standby_conf
        }
    };
    let what = command.args.join(" ");
    tracing::info!(command = %what, standby = ?command.standby, "pgbackrest: starting");
    pgbackrest(s, conf, &command.args, None).await?;
    tracing::info!(command = %what, "pgbackrest: done");
    pgbackrest(
        s,
        conf,
        &["info".to_string(), "--output=json".to_string()],
        Some(Duration::from_secs(120)),
    )
    .await
}

async fn pgbackrest(
    s: &Shared,
    conf: &Path,
    args: &[String],
    timeout: Option<Duration>,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(&s.bin);
    cmd.arg(format!("--config={}", conf.display()))
        .arg(format!("--stanza={}", s.config.stanza))
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    crate::backrest::finish(cmd, &s.bin, args, timeout).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> RepoHostConfig {
        serde_json::from_value(serde_json::json!({
            "cluster": "db", "stanza": "db", "repoPath": "/backrestrepo/db", "workDir": "/tmp/pgbackrest",
            "serverPort": 8432, "httpPort": 8009, "certFile": "/t/tls.crt", "keyFile": "/t/tls.key",
            "caFile": "/t/ca.crt", "clientCertFile": "/t/client.crt", "clientKeyFile": "/t/client.key",
            "clientCn": "pgbackrest@db", "tokenFile": "/t/token", "primaryHost": "db.ns.svc",
            "pgHostPort": 8432,
            "pgConfig": "/pgdata/pgbackrest/pgbackrest.conf", "pgPath": "/pgdata/pgdata",
            "pgPort": 5432, "pgUser": "postgres", "retentionFull": 2,
        }))
        .unwrap()
    }

    #[test]
    fn backups_reach_the_primary_through_its_service_and_a_standby_backup_a_replica() {
        let text = conf_text(&config(), None);
        for line in [
            "repo1-path=/backrestrepo/db",
            "repo1-retention-full=2",
            "tls-server-auth=pgbackrest@db=db",
            "[db]",
            "pg1-host=db.ns.svc",
            "pg1-host-type=tls",
            "pg1-host-config=/pgdata/pgbackrest/pgbackrest.conf",
            "pg1-host-cert-file=/t/client.crt",
            "pg1-path=/pgdata/pgdata",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("pg2-") && !text.contains("backup-standby"),
            "{text}"
        );
        let standby = conf_text(&config(), Some("db-x1y2.db-pods.ns.svc"));
        assert!(standby.lines().any(|l| l == "backup-standby=y"), "{standby}");
        assert!(
            standby.lines().any(|l| l == "pg2-host=db-x1y2.db-pods.ns.svc"),
            "{standby}"
        );
    }
}
