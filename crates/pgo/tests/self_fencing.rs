#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Self-fencing on Kubernetes: a primary's instance manager that cannot
//! confirm, within its bound, that the store still names it primary stops
//! PostgreSQL, and starts it again once the store names it. A real
//! `postgres-operator instance` and PostgreSQL, the in-memory API server
//! over HTTP, and a proxy between them that the test can cut.

mod support;

use support::pod::{self, Instance, report};

use pgo_kube_fake::{FakeApi, PGCLUSTERS};
use serde_json::json;
use std::path::Path;
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

fn start(dir: &Path, api_port: u16, bound_seconds: u64) -> Instance {
    std::fs::write(dir.join("sa-token"), "service-account-token").unwrap();
    pod::start(
        dir,
        json!({
            "isolation": {
                "apiServer": format!("http://127.0.0.1:{api_port}"),
                "namespace": "pgo",
                "tokenFile": dir.join("sa-token"),
                "boundSeconds": bound_seconds
            }
        }),
    )
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
