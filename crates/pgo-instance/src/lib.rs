//! The instance manager (`postgres-operator instance`): what runs in every
//! "pod". It bootstraps a data directory with `initdb`, writes PostgreSQL's
//! configuration, runs `postgres` (as the `postgres` OS user when started as
//! root), restarts it with backoff when it crashes, and reports over HTTP on
//! loopback, or HTTPS with its own certificate where it is reached across a
//! network (Kubernetes). It knows nothing of Kubernetes or of the store.
//!
//! PostgreSQL is the manager's child but not tied to it: a manager that dies
//! leaves PostgreSQL serving, and the next one adopts the running postmaster
//! from `postmaster.pid` instead of starting another.

pub mod backrest;
mod backrest_server;
mod bootstrap;
pub mod conf_check;
pub mod copies;
pub mod exporter;
mod http;
pub mod https;
mod isolation;
mod osuser;
mod pgbin;
pub mod ports;
mod postmaster;
pub mod probe;
mod replay;
pub mod repo_host;
mod setup_sql;
mod stanza;
mod supervisor;
pub mod volume;

pub use osuser::RunAs;
pub use pgbin::find as find_pg_bin_dir;

use pgo_api::instance::InstanceConfig;
use std::path::Path;

/// The job of `pgo restore --to-pvc` (and, on Kubernetes, of a cluster
/// restored from a deleted one's repository): restores the repository of
/// the instance whose `config` is given into `volume`, laid out as an
/// instance's volume, replays WAL to the target and promotes there. A
/// cluster that starts on it sets its users' passwords as after initdb.
/// Run again on its own volume (a Job tried again), it goes on: a replay
/// cut short is resumed, a finished one is done. Says what it did.
pub async fn restore_into(
    mut config: InstanceConfig,
    volume: &Path,
    target: Option<pgo_api::cluster::PitrTarget>,
    options: Vec<String>,
) -> Result<String, String> {
    let b = config
        .backrest
        .clone()
        .ok_or_else(|| format!("instance {} has no pgBackRest repository", config.name))?;
    config.volume_dir = volume.to_path_buf();
    let run_as = RunAs::resolve(config.run_as.as_deref()).map_err(|e| e.to_string())?;
    let bin = pgbin::find(config.pg_bin_dir.as_deref()).map_err(|e| e.to_string())?;
    if bootstrap::is_initialized(&config) {
        // Restored by an earlier try, and no cluster has started on it
        // since (its first start clears the setup marker).
        if !bootstrap::setup_pending(&config) {
            return Err(format!("{} holds a data directory already", volume.display()));
        }
        if !bootstrap::restore_pending(&config) {
            return Ok(format!(
                "{} holds the restored data directory already",
                volume.display()
            ));
        }
        println!("the replay into {} was cut short; going on", volume.display());
        replay::to_promotion(&config, &run_as, &bin).await?;
        return Ok(format!("replayed the restore in {} to its end", volume.display()));
    }
    let r = pgo_api::instance::InstanceRestore {
        id: None,
        repo_path: b.repo_path,
        stanza: b.stanza,
        target,
        options,
        remote: b.remote,
    };
    println!("pgbackrest restore into {}: starting", volume.display());
    bootstrap::restore(&config, &r, &run_as).await?;
    println!("pgbackrest restore into {}: done", volume.display());
    replay::to_promotion(&config, &run_as, &bin).await?;
    Ok(format!("restored into {}", volume.display()))
}

/// The job that seeds a new cluster's first volume on Kubernetes
/// (`pgo create cluster --backup-pvc`): the pg_basebackup copy at `copy`
/// becomes the data directory of the instance whose `config` is given,
/// before its pod first starts. Done already (the data is there) is done.
pub async fn seed_into(config: InstanceConfig, copy: &Path) -> Result<String, String> {
    if bootstrap::is_initialized(&config) {
        return Ok(format!(
            "{} holds a data directory already",
            config.volume_dir.display()
        ));
    }
    let run_as = RunAs::resolve(config.run_as.as_deref()).map_err(|e| e.to_string())?;
    println!("copying {} into {}", copy.display(), config.volume_dir.display());
    bootstrap::from_copy(&config, copy, &run_as).await?;
    Ok(format!(
        "copied {} into {}",
        copy.display(),
        config.volume_dir.display()
    ))
}

/// An instance manager's config, from the file at `path`.
pub fn read_config(path: &Path) -> Result<InstanceConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot read the instance config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("{0}")]
    Environment(String),
    #[error("the manager's TLS certificate: {0}")]
    Tls(#[from] https::TlsFileError),
    #[error("cannot listen on {addr} for the instance's HTTP endpoints: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves at the first SIGTERM or SIGINT: how every pgo process is asked
/// to stop.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handlers the process is stopped by the default action.
        _ => std::future::pending().await,
    }
}

/// Listens on `addr` for the endpoints of a manager or a repository host.
async fn listen(addr: &str) -> Result<tokio::net::TcpListener, InstanceError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| InstanceError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Runs the instance described by the config file at `path` until SIGTERM or
/// SIGINT, which shut PostgreSQL down fast.
pub async fn run(path: &Path) -> Result<(), InstanceError> {
    let config_err = |reason: String| InstanceError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| config_err(e.to_string()))?;
    let config: InstanceConfig = serde_json::from_slice(&text).map_err(|e| config_err(e.to_string()))?;
    let token = std::fs::read_to_string(&config.token_file)
        .map_err(|e| config_err(format!("token file {}: {e}", config.token_file.display())))?
        .trim()
        .to_string();
    if token.len() < 16 {
        return Err(config_err(format!(
            "token file {} holds no usable token",
            config.token_file.display()
        )));
    }
    let run_as = osuser::RunAs::resolve(config.run_as.as_deref())?;
    let bin = pgbin::find(config.pg_bin_dir.as_deref())?;
    supervisor::run(path.to_path_buf(), config, token, run_as, bin).await
}
