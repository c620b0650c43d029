//! A job is a detached `postgres-operator job …` process with a directory
//! of its own: `job.json` (what it does), `job.pid`, `job.log`, and
//! `result.json`, which the job writes as it ends. Detached like instance
//! managers, so a backup outlives a server that stops or is killed, and the
//! next server reads how it went.

use super::process::{self, cmdline, is_alive, read_pid};
use super::{Layout, LocalSettings, files, instances};
use crate::PlatformError;
use pgo_core::job::{JobResult, JobSpec, JobState, JobWork};
use std::path::Path;

const SPEC: &str = "job.json";
const PID: &str = "job.pid";
const LOG: &str = "job.log";
const RESULT: &str = "result.json";

fn running(dir: &Path) -> bool {
    let Some(pid) = read_pid(&dir.join(PID)) else {
        return false;
    };
    let result = dir.join(RESULT);
    let expected = result.to_string_lossy();
    is_alive(pid) && cmdline(pid).is_some_and(|c| c.contains(expected.as_ref()))
}

/// Starts the job unless it has been started.
pub async fn start(layout: &Layout, settings: &LocalSettings, job: &JobSpec) -> Result<(), PlatformError> {
    let dir = layout.job(&job.name);
    if dir.join(SPEC).exists() {
        return Ok(());
    }
    files::private_dir(&dir)?;
    let mut cmd = tokio::process::Command::new(&settings.exe);
    cmd.arg("job");
    let config = |name: &str| -> Result<std::path::PathBuf, PlatformError> {
        instances::config(layout, name)?
            .ok_or_else(|| PlatformError::Invalid(format!("instance {name} does not exist")))?;
        Ok(instances::config_path(layout, name))
    };
    match &job.work {
        JobWork::Backrest {
            instance,
            standby,
            args,
        } => {
            cmd.arg("backrest")
                .arg("--instance-config")
                .arg(config(instance)?);
            if let Some(s) = standby {
                cmd.arg("--standby-config").arg(config(s)?);
            }
            cmd.arg("--result").arg(dir.join(RESULT)).arg("--").args(args);
        }
        JobWork::Basebackup {
            instance,
            volume,
            path,
        } => {
            let c = instances::config(layout, instance)?
                .ok_or_else(|| PlatformError::Invalid(format!("instance {instance} does not exist")))?;
            cmd.arg("basebackup")
                .arg("--host")
                .arg(&c.listen_address)
                .arg("--port")
                .arg(c.port.to_string())
                .arg("--secret-dir")
                .arg(&c.replication_secret);
            if let Some(bin) = &c.pg_bin_dir {
                cmd.arg("--pg-bin-dir").arg(bin);
            }
            cmd.arg("--volume")
                .arg(layout.volume(volume))
                .arg("--path")
                .arg(path)
                .arg("--result")
                .arg(dir.join(RESULT));
        }
        JobWork::Restore {
            instance,
            volume,
            target,
            options,
        } => {
            cmd.arg("restore")
                .arg("--instance-config")
                .arg(config(instance)?)
                .arg("--volume")
                .arg(layout.volume(volume))
                .arg("--result")
                .arg(dir.join(RESULT));
            if let Some(t) = target {
                cmd.arg("--pitr-type").arg(t.type_.as_str());
                cmd.arg("--pitr-target").arg(&t.value);
            }
            cmd.arg("--").args(options);
        }
    }
    // Recorded before it starts: a server killed in between finds a job
    // that did not run, and says so, rather than starting it twice.
    files::write_json(&dir.join(SPEC), job)?;
    let pid = process::spawn_detached(cmd, "the job", &dir.join(LOG), &dir.join(PID))?;
    tracing::info!(job = %job.name, pid, "started job");
    Ok(())
}

/// How the job went; `None` when there is no such job.
pub fn state(layout: &Layout, name: &str) -> Result<Option<JobState>, PlatformError> {
    let dir = layout.job(name);
    if !dir.join(SPEC).exists() {
        return Ok(None);
    }
    if let Some(result) = files::read_json::<JobResult>(&dir.join(RESULT))? {
        return Ok(Some(result.into()));
    }
    // The pid file is written just after the start: give a job that has
    // none yet the benefit of the doubt for a moment.
    let young = std::fs::metadata(dir.join(SPEC))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() < 5));
    if running(&dir) || (young && !dir.join(PID).exists()) {
        return Ok(Some(JobState::Running));
    }
    let log = std::fs::read_to_string(dir.join(LOG)).unwrap_or_default();
    let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(Some(JobState::Failed {
        message: format!("the job's process ended without a result (killed?); its log ends: {last}"),
    }))
}

pub fn remove(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    let dir = layout.job(name);
    if running(&dir) {
        return Err(PlatformError::InProgress(format!("job {name} still runs")));
    }
    files::remove_dir(&dir)
}
