//! The postmaster: started by this manager, or adopted from a previous one.

use crate::osuser::RunAs;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub struct Postmaster {
    pub pid: u32,
    /// Present when we started it; an adopted one is not our child.
    child: Option<tokio::process::Child>,
}

fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    kill(Pid::from_raw(raw), None).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

/// PostgreSQL refuses a data directory open to others. A kubelet that
/// applies a pod's `fsGroup` on mount makes it group-writable and setgid
/// (2770) on every start; it is made 0700 again before each one.
pub fn private_data_dir(pgdata: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(pgdata).map_err(|e| format!("cannot read {}: {e}", pgdata.display()))?;
    if meta.permissions().mode() & 0o7777 != 0o700 {
        std::fs::set_permissions(pgdata, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make {} private (0700): {e}", pgdata.display()))?;
    }
    Ok(())
}

impl Postmaster {
    /// Starts PostgreSQL, logging to `log`, or where this manager logs.
    pub fn start(bin: &Path, pgdata: &Path, run_as: &RunAs, log: Option<&Path>) -> Result<Self, String> {
        Self::start_with(bin, pgdata, run_as, log, &[])
    }

    /// The same, with `settings` given on the command line, where they win
    /// over every configuration file.
    pub fn start_with(
        bin: &Path,
        pgdata: &Path,
        run_as: &RunAs,
        log: Option<&Path>,
        settings: &[(&str, String)],
    ) -> Result<Self, String> {
        let open = |log: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("cannot open {}: {e}", log.display()))
        };
        private_data_dir(pgdata)?;
        let (stdout, stderr) = match log {
            Some(log) => (Stdio::from(open(log)?), Stdio::from(open(log)?)),
            None => (Stdio::inherit(), Stdio::inherit()),
        };
        let mut cmd = tokio::process::Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(pgdata);
        for (name, value) in settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.current_dir(pgdata)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false);
        run_as.apply(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.join("postgres").display()))?;
        let pid = child.id().ok_or("postgres exited at once")?;
        Ok(Postmaster {
            pid,
            child: Some(child),
        })
    }

    /// The postmaster already serving `pgdata`, if there is one.
    pub fn adopt(pgdata: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let ours = cmdline.contains("postgres") && cmdline.contains(pgdata.to_string_lossy().as_ref());
        (ours && alive(pid)).then_some(Postmaster { pid, child: None })
    }

    /// `Some(reason)` once it has exited.
    pub fn exited(&mut self) -> Option<String> {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("cannot wait for it: {e}")),
            },
            None => (!alive(self.pid)).then(|| "the adopted postmaster is gone".to_string()),
        }
    }

    fn signal(&self, sig: Signal) {
        if let Ok(raw) = i32::try_from(self.pid) {
            let _ = kill(Pid::from_raw(raw), sig);
        }
    }

    pub fn reload(&self) {
        self.signal(Signal::SIGHUP);
    }

    /// Fast shutdown (SIGINT): open transactions roll back, a checkpoint is
    /// written. If that takes too long, immediate (SIGQUIT), then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        self.stop_with(&[
            (Signal::SIGINT, grace),
            (Signal::SIGQUIT, Duration::from_secs(5)),
            (Signal::SIGKILL, Duration::from_secs(5)),
        ])
        .await
    }

    /// Immediate shutdown (SIGQUIT), then SIGKILL: no waiting on anyone.
    pub async fn stop_now(&mut self) {
        self.stop_with(&[
            (Signal::SIGQUIT, Duration::from_secs(5)),
            (Signal::SIGKILL, Duration::from_secs(5)),
        ])
        .await
    }

    async fn stop_with(&mut self, steps: &[(Signal, Duration)]) {
        for &(sig, wait) in steps {
            self.signal(sig);
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if self.exited().is_some() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
