//! One `postgres-operator instance` started as a pod's container starts it:
//! from an instance config with secrets as files, on loopback ports the OS
//! assigned. Dropping an [`Instance`] kills the manager and its postmaster.

use pgo_api::instance::InstanceReport;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The token the control endpoints of a [`start`]ed manager require.
pub const TOKEN: &str = "manager-token-0123456789-0123456789";

/// A manager and its PostgreSQL, killed when dropped.
pub struct Instance {
    child: Child,
    pub volume: PathBuf,
    pub http_port: u16,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(text) = std::fs::read_to_string(self.volume.join("pgdata/postmaster.pid"))
            && let Ok(pid) = text.lines().next().unwrap_or_default().trim().parse::<i32>()
        {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- instance log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn secret(dir: &Path, name: &str, user: &str) -> PathBuf {
    let d = dir.join("secrets").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("username"), user).unwrap();
    std::fs::write(d.join("password"), format!("{user}-password-0123456789")).unwrap();
    d
}

/// Starts primary `iso` in `dir`; `extra` is merged into its config.
pub fn start(dir: &Path, extra: Value) -> Instance {
    let volume = dir.join("volume");
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let (port, http_port) = (free_port(), free_port());
    let mut config = json!({
        "name": "iso", "cluster": "iso", "role": "Primary",
        "volumeDir": volume, "listenAddress": "127.0.0.1", "port": port,
        "httpAddress": "127.0.0.1", "httpPort": http_port,
        "allowedCidrs": ["127.0.0.1/32"], "database": "userdb", "appUser": "testuser",
        "superuserSecret": secret(dir, "su", "postgres"),
        "replicationSecret": secret(dir, "repl", "primaryuser"),
        "appSecret": secret(dir, "app", "testuser"),
        "tokenFile": dir.join("token"),
        "pgBinDir": super::pg_bin_dir(),
        "probe": { "periodMs": 200, "timeoutMs": 1000 },
    });
    if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    let path = dir.join("instance.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let log = dir.join("instance.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(super::SERVER)
        .args(["instance", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Instance {
        child,
        volume,
        http_port,
        port,
        log,
    }
}

/// The manager's `/status` over plain HTTP.
pub fn report(i: &Instance) -> Option<InstanceReport> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", i.http_port)).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
}
