//! Processes on this machine: whether a pid is alive and is what we think it
//! is, and signalling them.

use super::Layout;
use crate::PlatformError;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

/// True when `pid` runs (a zombie does not count).
pub fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if kill(Pid::from_raw(raw), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// The pid in a pid file's first line.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

pub fn signal(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        // A process that is already gone is what we wanted.
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

/// The state letter of `pid` (`R`, `S`, `T` for stopped, `Z`, …).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// `pid`'s children, grandchildren and so on.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let ppid = std::fs::read_to_string(format!("/proc/{child}/stat"))
                    .ok()
                    .and_then(|s| {
                        s.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    });
                if ppid == Some(parent) && !all.contains(&child) {
                    all.push(child);
                }
            }
        }
        i += 1;
    }
    all.remove(0);
    all
}

/// True when `pid` is stopped (SIGSTOP, or a debugger): hung.
pub fn is_stopped(pid: u32) -> bool {
    state(pid) == Some('T')
}

/// Sends `first`, waits up to `grace` for the process to go, then SIGKILL.
/// A stopped (hung) process cannot shut down in order: it is killed at once.
pub async fn stop(pid: u32, first: Signal, grace: Duration) {
    if is_stopped(pid) {
        signal(pid, Signal::SIGKILL);
    }
    signal(pid, first);
    let deadline = Instant::now() + grace;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            signal(pid, Signal::SIGKILL);
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops every instance manager and postmaster under `home` whose pid
/// files are found, and every other process whose command line names
/// `home` or `data_dir` (jobs, pgBackRest's archiving daemons): what a
/// test harness does so nothing outlives it. Managers go first (SIGKILL),
/// so none starts PostgreSQL again; postmasters get an immediate shutdown
/// (SIGQUIT), for SIGKILL would leave their System V shared memory segment
/// behind for good, and a machine that runs the tests often runs out of
/// them (initdb then fails); whatever is left after 5 s is SIGKILLed.
pub fn kill_instance_processes(home: &Path, data_dir: &Path) {
    let me = std::process::id();
    let marks = [
        home.to_string_lossy().into_owned(),
        data_dir.to_string_lossy().into_owned(),
    ];
    let named = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
            .filter(|pid| {
                *pid != me && cmdline(*pid).is_some_and(|c| marks.iter().any(|m| c.contains(m.as_str())))
            })
            .collect()
    };
    // A postmaster's command line is `postgres -D <pgdata>`; its children
    // rename themselves (`postgres: …`) and name no path.
    let is_postmaster =
        |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres");
    let (mut postmasters, others): (Vec<u32>, Vec<u32>) =
        named().into_iter().partition(|p| is_postmaster(*p));
    for pid in others {
        signal(pid, Signal::SIGKILL);
    }
    postmasters.extend(kill_recorded(home, data_dir));
    for pid in &postmasters {
        signal(*pid, Signal::SIGQUIT);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while postmasters.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in postmasters.into_iter().chain(named()) {
        signal(pid, Signal::SIGKILL);
    }
}

/// SIGKILLs the managers the instance directories record, and returns the
/// postmasters they record, for the caller to stop.
fn kill_recorded(home: &Path, data_dir: &Path) -> Vec<u32> {
    let layout = Layout::new(home, data_dir);
    let Ok(entries) = std::fs::read_dir(layout.instances()) else {
        return Vec::new();
    };
    let mut postmasters = Vec::new();
    for entry in entries.flatten() {
        if let Some(pid) = read_pid(&entry.path().join("manager.pid"))
            && cmdline(pid).is_some_and(|c| c.contains(" instance "))
        {
            signal(pid, Signal::SIGKILL);
        }
        if let Ok(Some(config)) = super::instances::read_config(&entry.path())
            && let Some(pid) = super::instances::running_postmaster(&config.pgdata())
        {
            postmasters.push(pid);
        }
    }
    postmasters
}

/// Starts `cmd` detached: its own process group (a signal to the server's
/// group, or the server's death, does not reach it), its output appended
/// to `log`, its pid written to `pid_file`. It is reaped when it exits, so
/// it does not linger as a zombie. `what` names it in errors.
pub fn spawn_detached(
    mut cmd: tokio::process::Command,
    what: &str,
    log: &Path,
    pid_file: &Path,
) -> Result<u32, PlatformError> {
    let open = |e| PlatformError::io(format!("cannot open {}", log.display()), e);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(open)?;
    let err = out.try_clone().map_err(open)?;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| PlatformError::io(format!("cannot start {what}"), e))?;
    let pid = child
        .id()
        .ok_or_else(|| PlatformError::Invalid(format!("{what} exited at once")))?;
    super::files::write_atomic(pid_file, format!("{pid}\n").as_bytes(), 0o600)?;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}
