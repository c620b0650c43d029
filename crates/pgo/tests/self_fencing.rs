#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Self-fencing on Kubernetes: a primary's instance manager that cannot
//! confirm, within its bound, that the store still names it primary stops
//! PostgreSQL, and starts it again once the store names it. A real
//! `postgres-operator instance` and PostgreSQL, the in-memory API server
//! over HTTP, and a proxy between them that the test can cut.

mod support;

use pgo_api::instance::InstanceReport;
use pgo_kube_fake::{FakeApi, PGCLUSTERS};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Forwards TCP to the API server until cut: then nothing listens.
struct Cuttable {
    port: u16,
    upstream: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cuttable {
    async fn open(port: u16, upstream: u16) -> Cuttable {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let t = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                t.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Cuttable {
            port,
            upstream,
            tasks,
        }
    }

    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restore(&mut self) {
        *self = Cuttable::open(self.port, self.upstream).await;
    }
}

/// A manager and its PostgreSQL, killed when dropped.
struct Instance {
    child: Child,
    volume: std::path::PathBuf,
    http_port: u16,
    port: u16,
    log: std::path::PathBuf,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn secret(dir: &Path, name: &str, user: &str) -> std::path::PathBuf {
    let d = dir.join("secrets").join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("username"), user).unwrap();
    std::fs::write(d.join("password"), format!("{user}-password-0123456789")).unwrap();
    d
}

fn start(dir: &Path, api_port: u16, bound_seconds: u64) -> Instance {
    let volume = dir.join("volume");
    std::fs::write(dir.join("token"), "manager-token-0123456789-0123456789").unwrap();
    std::fs::write(dir.join("sa-token"), "service-account-token").unwrap();
    let (port, http_port) = (free_port(), free_port());
    let config = json!({
        "name": "iso", "cluster": "iso", "role": "Primary",
        "volumeDir": volume, "listenAddress": "127.0.0.1", "port": port,
        "httpAddress": "127.0.0.1", "httpPort": http_port,
        "allowedCidrs": ["127.0.0.1/32"], "database": "userdb", "appUser": "testuser",
        "superuserSecret": secret(dir, "su", "postgres"),
        "replicationSecret": secret(dir, "repl", "primaryuser"),
        "appSecret": secret(dir, "app", "testuser"),
        "tokenFile": dir.join("token"),
        "pgBinDir": support::pg_bin_dir(),
        "probe": { "periodMs": 200, "timeoutMs": 1000 },
        "isolation": {
            "apiServer": format!("http://127.0.0.1:{api_port}"),
            "namespace": "pgo",
            "tokenFile": dir.join("sa-token"),
            "boundSeconds": bound_seconds
        }
    });
    let path = dir.join("instance.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let log = dir.join("instance.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(support::SERVER)
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

fn report(i: &Instance) -> Option<InstanceReport> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", i.http_port)).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
}

async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

fn refuses(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_cut_off_from_the_api_server_stops_postgres_within_its_bound() {
    let api = FakeApi::new(&[]);
    api.put(
        PGCLUSTERS,
        json!({
            "apiVersion": "pgo.dev/v1", "kind": "Pgcluster",
            "metadata": { "name": "iso", "namespace": "pgo" },
            "spec": {}, "status": { "primary": "iso" }
        }),
    );
    let mut link = Cuttable::open(0, api.serve_http()).await;
    let dir = support::reachable_tempdir();
    let bound = 3;
    let instance = start(dir.path(), link.port, bound);
    until(60, "the primary to be ready", || {
        report(&instance).is_some_and(|r| r.ready)
    })
    .await;

    // The store names another primary: PostgreSQL stops at once.
    api.patch(PGCLUSTERS, "iso", json!({ "status": { "primary": "iso-other" } }));
    until(10, "the primary to fence itself", || {
        report(&instance).is_some_and(|r| {
            r.isolated
                .as_deref()
                .is_some_and(|w| w.contains("names iso-other"))
        }) && refuses(instance.port)
    })
    .await;
    // Named again: it serves again.
    api.patch(PGCLUSTERS, "iso", json!({ "status": { "primary": "iso" } }));
    until(30, "the primary to serve again", || {
        report(&instance).is_some_and(|r| r.ready && r.isolated.is_none())
    })
    .await;

    // Cut off from the API server: it stops within the bound (plus one
    // question's period and one probe).
    link.cut();
    let took = until(bound + 5, "the cut-off primary to fence itself", || {
        report(&instance).is_some_and(|r| {
            r.isolated
                .as_deref()
                .is_some_and(|w| w.contains("cannot confirm"))
        }) && refuses(instance.port)
    })
    .await;
    eprintln!("self-fenced {took:?} after the cut (bound {bound}s)");
    // Nothing starts it while it is cut off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(refuses(instance.port));
    link.restore().await;
    until(30, "the primary to serve again once it hears the store", || {
        report(&instance).is_some_and(|r| r.ready && r.isolated.is_none())
    })
    .await;
}
