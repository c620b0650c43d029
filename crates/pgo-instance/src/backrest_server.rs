//! pgBackRest's TLS server beside PostgreSQL, where the repository is on a
//! repository host (Kubernetes): that host takes backups through it, as
//! pgBackRest runs a backup only where the repository is. It runs as
//! PostgreSQL's user with the instance's config, is started again whenever
//! it exits, and stops with the manager.

use crate::backrest::{binary, command, paths};
use crate::osuser::RunAs;
use pgo_api::instance::InstanceConfig;
use std::time::Duration;
use tokio::sync::watch;

/// How long after an exit the server is started again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// Keeps the server running until `stop` turns true. Nothing is started
/// before the manager has written pgBackRest's config.
pub async fn run(config: InstanceConfig, run_as: RunAs, stop: watch::Receiver<bool>) {
    let conf = paths(&config).conf;
    let bin = match binary() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "pgBackRest's TLS server cannot run; backups cannot reach this instance");
            return;
        }
    };
    let server = move || {
        conf.is_file().then(|| {
            let mut cmd = command(&config, &run_as, &bin, &conf);
            cmd.arg("server");
            cmd
        })
    };
    keep_running(server, stop).await
}

/// Runs what `make` gives (nothing yet, when it gives none) and starts it
/// again whenever it exits, until `stop` turns true.
pub(crate) async fn keep_running<F>(make: F, mut stop: watch::Receiver<bool>)
where
    F: Fn() -> Option<tokio::process::Command>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(mut cmd) = make() {
            match cmd.spawn() {
                Ok(mut child) => {
                    tracing::info!(pid = child.id(), "pgBackRest's TLS server started");
                    tokio::select! {
                        status = child.wait() => tracing::warn!(?status, "pgBackRest's TLS server exited; starting it again"),
                        _ = stop.changed() => {
                            let _ = child.kill().await;
                            return;
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot start pgBackRest's TLS server"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_AFTER) => {}
            _ = stop.changed() => return,
        }
    }
}
