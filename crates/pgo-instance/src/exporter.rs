//! The metrics exporter: its role, kept by the primary's manager, and on the
//! local platform the exporter process itself, supervised by the manager
//! (on Kubernetes a sidecar container runs it).

use crate::bootstrap::{describe, ident, literal, read_secret};
use crate::osuser::RunAs;
use pgo_api::instance::{ExporterConfig, InstanceConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Makes the exporter's role a `pg_monitor` member with its secret's
/// password, and nothing more; run on the primary, again after every start
/// (a restored cluster has its source's roles, not this one's).
pub async fn ensure_role(e: &ExporterConfig, client: &tokio_postgres::Client) -> Result<(), String> {
    let user = read_secret(&e.secret, "username")?;
    let password = read_secret(&e.secret, "password")?;
    let err = |what: &str, e: tokio_postgres::Error| format!("the exporter's role: {what}: {}", describe(&e));
    client
        .batch_execute("SET synchronous_commit TO local")
        .await
        .map_err(|e| err("synchronous_commit", e))?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&user])
        .await
        .map_err(|e| err("look up", e))?
        .is_some();
    let verb = if exists { "ALTER" } else { "CREATE" };
    let (ident, literal) = (ident(&user), literal(&password));
    client
        .batch_execute(&format!(
            "{verb} ROLE {ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {literal}; GRANT pg_monitor TO {ident}"
        ))
        .await
        .map_err(|e| err(verb, e))
}

/// The exporter process of one instance, started again when it exits.
pub struct Supervised {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Starts supervising; an exporter left by an earlier manager (killed
    /// before it could stop its child) is stopped first, so the port is free.
    pub fn start(config: &InstanceConfig, e: &ExporterConfig, run_as: &RunAs) -> Supervised {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (config, e, run_as) = (config.clone(), e.clone(), run_as.clone());
        let task = tokio::spawn(async move {
            stop_left_over(&pid_file(&config));
            let mut backoff = Duration::from_secs(1);
            loop {
                let started = std::time::Instant::now();
                match spawn(&config, &e, &run_as) {
                    Ok(mut child) => {
                        if let Some(pid) = child.id() {
                            let _ = std::fs::write(pid_file(&config), pid.to_string());
                        }
                        tokio::select! {
                            status = child.wait() => {
                                tracing::warn!(status = ?status, "the metrics exporter exited; starting it again");
                            }
                            _ = stopped.changed() => {
                                let _ = child.kill().await;
                                let _ = std::fs::remove_file(pid_file(&config));
                                return;
                            }
                        }
                    }
                    Err(why) => tracing::warn!("the metrics exporter cannot start: {why}"),
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
        Supervised { stop, task }
    }

    /// Stops the exporter and waits until it is gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn pid_file(config: &InstanceConfig) -> PathBuf {
    config.volume_dir.join(".pgo-exporter.pid")
}

fn queries_file(config: &InstanceConfig) -> PathBuf {
    config.volume_dir.join(".pgo-exporter-queries.yaml")
}

/// Stops the exporter of the instance whose volume this is, if one is
/// left running (its manager killed before it could stop it).
pub fn stop_orphan(config: &InstanceConfig) {
    stop_left_over(&pid_file(config));
}

/// An exporter whose pid an earlier manager recorded, if it still runs.
fn stop_left_over(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains(pgo_api::exporter::BINARY) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

/// The exporter as PostgreSQL's user, its credentials in its environment
/// (which only that user and root can read), listening where the config says.
fn spawn(
    config: &InstanceConfig,
    e: &ExporterConfig,
    run_as: &RunAs,
) -> Result<tokio::process::Child, String> {
    let user = read_secret(&e.secret, "username")?;
    let password = read_secret(&e.secret, "password")?;
    let queries = queries_file(config);
    run_as.write(&queries, pgo_api::exporter::QUERIES)?;
    let mut cmd = tokio::process::Command::new(pgo_api::exporter::BINARY);
    cmd.arg(format!("--web.listen-address={}:{}", e.listen_address, e.port))
        .arg(format!("--extend.query-path={}", queries.display()))
        .env_clear()
        .env(
            "DATA_SOURCE_URI",
            format!(
                "{}:{}/postgres?sslmode=disable",
                config.listen_address, config.port
            ),
        )
        .env("DATA_SOURCE_USER", user)
        .env("DATA_SOURCE_PASS", password)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    run_as.apply(&mut cmd);
    cmd.spawn().map_err(|e| {
        format!(
            "cannot run {}: {e} (install the prometheus-postgres-exporter package)",
            pgo_api::exporter::BINARY
        )
    })
}
