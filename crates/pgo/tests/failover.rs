#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Failover, manual and automatic: fenced, level-triggered, no lost commits.

mod support;

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::writer::{Writer, assert_all_present};
use support::{Server, autofail_server, connect, member, members, password, service_port, signal_all};

fn ready_replicas(server: &Server, cluster: &str) -> usize {
    let v = server.show_json(cluster);
    members(&v, "Replica")
        .iter()
        .filter(|r| member(&v, r)["ready"] == true)
        .count()
}

async fn writable(server: &Server, cluster: &str) -> bool {
    let view = server.show_json(cluster);
    let Ok(Ok(c)) = tokio::time::timeout(
        Duration::from_secs(2),
        connect(
            service_port(&view, cluster),
            "testuser",
            &password(&view, "testuser"),
            "userdb",
        ),
    )
    .await
    else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            c.batch_execute("CREATE TABLE IF NOT EXISTS probe (x int); INSERT INTO probe VALUES (1)")
        )
        .await,
        Ok(Ok(()))
    )
}

async fn wait_writable(server: &Server, cluster: &str, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !writable(server, cluster).await {
        assert!(
            std::time::Instant::now() < deadline,
            "{cluster} did not accept writes again\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_a_writer_loses_no_acknowledged_commit() {
    let server = autofail_server(30);
    server.pgo_ok(&["create", "cluster", "sw", "--replica-count=2"]);
    let view = server.show_json("sw");
    let old = server.primary("sw");
    let old_port = member(&view, &old)["port"].as_u64().unwrap() as u16;
    let target = members(&view, "Replica")[0].clone();
    let query = server.pgo_ok(&["failover", "sw", "--query"]);
    assert!(query.contains(&target) && query.contains("READY"), "{query}");

    let writer = Writer::start(service_port(&view, "sw"), password(&view, "testuser")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = {
        let cmd = server.pgo_command(&["failover", "sw", "--target", &target, "--no-prompt"]);
        tokio::task::spawn_blocking(move || {
            let mut cmd = cmd;
            cmd.output().unwrap()
        })
        .await
        .unwrap()
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{target} is the primary")));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acked = writer.finish().await;
    assert_eq!(server.primary("sw"), target);
    assert_all_present(&server, "sw", &acked).await;

    // The old primary is fenced: it takes no connection, let alone a write.
    assert!(
        connect(old_port, "postgres", &password(&view, "postgres"), "postgres")
            .await
            .is_err()
    );
    // The promoted replica left the replica list; a new one keeps the count.
    server.wait_until(60, "two ready replicas again", || {
        ready_replicas(&server, "sw") == 2
    });
    let v = server.show_json("sw");
    assert!(!members(&v, "Replica").contains(&target));
    let record = &v["failovers"][0];
    assert_eq!(
        (record["from"].as_str(), record["to"].as_str()),
        (Some(old.as_str()), Some(target.as_str()))
    );
    assert_eq!(record["outcome"], "succeeded");
    assert_eq!(record["reason"], "manual");
    assert!(server.pgo_ok(&["show", "cluster", "sw"]).contains("FAILOVER AT"));
    // Its data is kept.
    assert!(server.home.join("volumes/sw/pgdata/PG_VERSION").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_is_replaced_automatically() {
    let server = autofail_server(2);
    server.pgo_ok(&["create", "cluster", "hung", "--replica-count=2", "--autofail"]);
    let old = server.primary("hung");
    let frozen = server.processes_of(&old);
    signal_all(&frozen, Signal::SIGSTOP);
    server.wait_until(60, "an automatic failover", || server.primary("hung") != old);
    wait_writable(&server, "hung", 30).await;
    server.wait_until(60, "the replica count to be restored", || {
        ready_replicas(&server, "hung") == 2
    });
    let v = server.show_json("hung");
    let reason = v["failovers"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("auto: primary hung not ready"), "{reason}");
    // Fenced: the hung processes were killed, not left to wake up.
    server.wait_until(10, "the old primary's processes to be gone", || {
        frozen.iter().all(|&p| !support::is_running(p))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_serves_writes_again_with_its_replicas() {
    let server = autofail_server(2);
    server.pgo_ok(&["create", "cluster", "dead", "--replica-count=2", "--autofail"]);
    let old = server.primary("dead");
    signal_all(&server.processes_of(&old), Signal::SIGKILL);
    wait_writable(&server, "dead", 60).await;
    server.wait_until(60, "two ready replicas", || ready_replicas(&server, "dead") == 2);
    // The status follows the first write by up to one pass.
    server.wait_until(5, "the cluster to be Ready", || {
        server.show_json("dead")["phase"] == "Ready"
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_back_before_the_timer_is_not_failed_over() {
    let server = autofail_server(4);
    server.pgo_ok(&["create", "cluster", "blip", "--replica-count=1", "--autofail"]);
    let frozen = server.processes_of("blip");
    signal_all(&frozen, Signal::SIGSTOP);
    server.wait_until(20, "the primary to be seen not ready", || {
        server.show_json("blip")["phase"] == "NotReady"
    });
    signal_all(&frozen, Signal::SIGCONT);
    server.wait_until(20, "the primary to be ready again", || {
        server.show_json("blip")["phase"] == "Ready"
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let v = server.show_json("blip");
    assert_eq!(v["primary"], "blip");
    assert!(v["failovers"].as_array().is_none_or(|f| f.is_empty()), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_ready_replica_nothing_is_promoted_and_the_status_says_so() {
    let server = autofail_server(1);
    server.pgo_ok(&["create", "cluster", "lonely", "--replica-count=1", "--autofail"]);
    let replica = members(&server.show_json("lonely"), "Replica")[0].clone();
    let frozen_replica = server.processes_of(&replica);
    signal_all(&frozen_replica, Signal::SIGSTOP);
    server.wait_until(20, "the replica to be seen not ready", || {
        ready_replicas(&server, "lonely") == 0
    });
    let frozen_primary = server.processes_of("lonely");
    signal_all(&frozen_primary, Signal::SIGSTOP);
    server.wait_until(30, "the status to say there is no replica to promote", || {
        server.show_json("lonely")["message"]
            .as_str()
            .is_some_and(|m| m.contains("no ready replica to promote"))
    });
    assert_eq!(server.primary("lonely"), "lonely");
    // The primary first: a replica resumed with it could be ready before the
    // primary's next fsynced write clears it, and promoting it then is right.
    signal_all(&frozen_primary, Signal::SIGCONT);
    server.wait_until(30, "the cluster to recover in place", || {
        server.show_json("lonely")["phase"] == "Ready"
    });
    signal_all(&frozen_replica, Signal::SIGCONT);
    server.wait_until(30, "the replica to be ready again", || {
        ready_replicas(&server, "lonely") == 1
    });
    let v = server.show_json("lonely");
    assert_eq!(v["primary"], "lonely");
    assert!(v["failovers"].as_array().is_none_or(|f| f.is_empty()));
}

#[test]
fn bad_targets_are_refused_and_change_nothing() {
    let server = autofail_server(30);
    server.pgo_ok(&["create", "cluster", "solo"]);
    let err = server.pgo_err(&["failover", "solo", "--target", "solo-x", "--no-prompt"]);
    assert!(
        err.contains("no replicas to fail over to") && err.contains("HTTP 400"),
        "{err}"
    );

    server.pgo_ok(&["create", "cluster", "pair", "--replica-count=2"]);
    let replicas = members(&server.show_json("pair"), "Replica");
    let err = server.pgo_err(&["failover", "pair", "--target", "pair", "--no-prompt"]);
    assert!(
        err.contains("is the primary") && err.contains("HTTP 400"),
        "{err}"
    );
    let err = server.pgo_err(&["failover", "pair", "--target", "pair-nope", "--no-prompt"]);
    assert!(
        err.contains("not a replica of cluster pair") && err.contains(&replicas[0]),
        "{err}"
    );
    let frozen = server.processes_of(&replicas[1]);
    signal_all(&frozen, Signal::SIGSTOP);
    server.wait_until(20, "the replica to be not ready", || {
        ready_replicas(&server, "pair") == 1
    });
    let err = server.pgo_err(&["failover", "pair", "--target", &replicas[1], "--no-prompt"]);
    assert!(err.contains("is not ready") && err.contains("HTTP 400"), "{err}");
    signal_all(&frozen, Signal::SIGCONT);
    let err = server.pgo_err(&["failover", "nosuch", "--target", "x", "--no-prompt"]);
    assert!(err.contains("HTTP 404"), "{err}");
    assert_eq!(server.primary("pair"), "pair");
    assert!(
        server.show_json("pair")["failovers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_between_fence_and_promote_finishes_the_failover() {
    let mut server = Server::start_env(&["--test-pause-after-fence-ms", "4000"], &[], |home| {
        std::fs::write(home.join("pgo.yaml"), "Pgo:\n  ProbePeriodMs: 200\n").unwrap();
    });
    server.pgo_ok(&["create", "cluster", "mid", "--replica-count=2"]);
    let replicas = members(&server.show_json("mid"), "Replica");
    let target = replicas[0].clone();
    let mut first = server
        .pgo_command(&["failover", "mid", "--target", &target, "--no-prompt"])
        .spawn()
        .unwrap();
    server.wait_until(30, "the old primary to be fenced", || {
        server.log().contains("failover: old primary fenced")
    });
    // A second failover while one is under way is refused.
    let err = server.pgo_err(&["failover", "mid", "--target", &replicas[1], "--no-prompt"]);
    assert!(
        err.contains("already in progress") && err.contains("HTTP 409"),
        "{err}"
    );
    server.kill();
    let _ = first.kill();
    let _ = first.wait();
    server.restart();
    server.wait_until(60, "the failover to complete after the restart", || {
        server.show_json("mid")["failovers"][0]["outcome"] == "succeeded"
    });
    assert_eq!(server.primary("mid"), target);
    wait_writable(&server, "mid", 30).await;
    // Exactly one instance is a primary.
    let v = server.show_json("mid");
    let pw = password(&v, "postgres");
    let mut primaries = 0;
    for m in v["members"].as_array().unwrap() {
        let port = m["port"].as_u64().unwrap() as u16;
        if let Ok(c) = connect(port, "postgres", &pw, "postgres").await {
            let in_recovery: bool = c
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .unwrap()
                .get(0);
            primaries += usize::from(!in_recovery);
        }
    }
    assert_eq!(primaries, 1);
}

/// What one instance said when asked whether it is a primary.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Primary,
    Replica,
    /// Refused the connection: nothing serves there.
    Refused,
    /// No answer in time (stopped, frozen): it may be anything, so it is
    /// counted apart, never as "not a primary".
    Unknown,
}

/// Asks PostgreSQL on `port` whether it is a primary.
async fn ask(port: u16, password: &str) -> Answer {
    let asked = async {
        let c = match connect(port, "postgres", password, "postgres").await {
            Ok(c) => c,
            Err(e) if is_refused(&e) => return Answer::Refused,
            Err(_) => return Answer::Unknown,
        };
        match c.query_one("SELECT pg_is_in_recovery()", &[]).await {
            Ok(row) if row.get::<_, bool>(0) => Answer::Replica,
            Ok(_) => Answer::Primary,
            Err(_) => Answer::Unknown,
        }
    };
    tokio::time::timeout(Duration::from_millis(300), asked)
        .await
        .unwrap_or(Answer::Unknown)
}

fn is_refused(e: &tokio_postgres::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = inner.source();
    }
    false
}

/// Every 100 ms, asks every instance port ever seen whether it is a primary,
/// and keeps any moment with more than one.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    rounds: usize,
    unknown: usize,
    violations: Vec<String>,
}

impl Sampler {
    fn start(home: std::path::PathBuf, password: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut ports = BTreeSet::new();
            let mut out = Samples::default();
            while !s.load(Ordering::Relaxed) {
                for entry in std::fs::read_dir(home.join("instances"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let config =
                        std::fs::read_to_string(entry.path().join("instance.json")).unwrap_or_default();
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&config) {
                        ports.insert(v["port"].as_u64().unwrap_or(0) as u16);
                    }
                }
                let answers = futures_join(ports.iter().map(|&port| {
                    let pw = password.clone();
                    async move { (port, ask(port, &pw).await) }
                }))
                .await;
                let primaries: Vec<u16> = answers
                    .iter()
                    .filter(|(_, a)| *a == Answer::Primary)
                    .map(|(port, _)| *port)
                    .collect();
                out.rounds += 1;
                out.unknown += answers.iter().filter(|(_, a)| *a == Answer::Unknown).count();
                if primaries.len() > 1 {
                    out.violations
                        .push(format!("two primaries at once on ports {primaries:?}"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            out
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Runs the futures at once and collects their outputs.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// How a chaos round takes the primary down.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Blow {
    Kill,
    Hang,
    /// Its storage freezes (only the first primary's volume is a loop
    /// filesystem that can be frozen).
    Freeze,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_killing_the_primary_loses_no_commit_and_never_makes_two_primaries() {
    let rounds: usize = std::env::var("PGO_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let server = autofail_server(2);
    let storage = support::loopfs::LoopFs::mount(
        &server.dir().join("chaos.img"),
        &server.home.join("volumes/chaos"),
    );
    server.pgo_ok(&[
        "create",
        "cluster",
        "chaos",
        "--sync-replication",
        "--replica-count=2",
        "--autofail",
    ]);
    let view = server.show_json("chaos");
    let pw = password(&view, "postgres");
    let writer = Writer::start(service_port(&view, "chaos"), password(&view, "testuser")).await;
    let sampler = Sampler::start(server.home.clone(), pw.clone());
    let mut failovers = 0;
    let mut blows = Vec::new();
    for round in 0..rounds {
        server.wait_until(90, "the cluster to be whole again", || {
            server.show_json("chaos")["phase"] == "Ready" && ready_replicas(&server, "chaos") == 2
        });
        let before = writer.acked.lock().unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while writer.acked.lock().unwrap().len() < before + 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer made no progress"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let v = server.show_json("chaos");
        let primary = v["primary"].as_str().unwrap().to_string();
        let port = member(&v, &primary)["port"].as_u64().unwrap() as u16;
        let blow = match round % 2 {
            _ if round == 0 => Blow::Freeze,
            0 => Blow::Kill,
            _ => Blow::Hang,
        };
        blows.push(blow);
        let processes = server.processes_of(&primary);
        match blow {
            Blow::Kill => signal_all(&processes, Signal::SIGKILL),
            Blow::Hang => signal_all(&processes, Signal::SIGSTOP),
            Blow::Freeze => storage.freeze(),
        }
        wait_writable(&server, "chaos", 90).await;
        if server.primary("chaos") != primary {
            failovers += 1;
        }
        // Woken again, the old primary must not be a primary: asked on its
        // own port, where no service hides it.
        match blow {
            Blow::Hang => signal_all(&processes, Signal::SIGCONT),
            Blow::Freeze => storage.thaw(),
            Blow::Kill => {}
        }
        if server.primary("chaos") != primary {
            for _ in 0..10 {
                let answer = ask(port, &pw).await;
                assert_ne!(
                    answer,
                    Answer::Primary,
                    "round {round} ({blow:?}): the old primary {primary} serves writes again"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let acked = writer.finish().await;
    let samples = sampler.finish().await;
    assert!(samples.violations.is_empty(), "{:?}", samples.violations);
    assert!(
        samples.rounds > 10,
        "the sampler hardly ran ({} rounds)",
        samples.rounds
    );
    assert_all_present(&server, "chaos", &acked).await;
    // Every hung or frozen primary is failed over; killed ones may restart in place.
    let must = blows.iter().filter(|b| **b != Blow::Kill).count();
    assert!(
        failovers >= must,
        "only {failovers} failovers in {rounds} rounds ({blows:?})"
    );
    eprintln!(
        "chaos: {rounds} rounds {blows:?}, {failovers} failovers, {} acknowledged commits, {} sampling rounds, {} unknown answers",
        acked.len(),
        samples.rounds,
        samples.unknown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_manager_hangs_during_a_failover_is_restarted_and_repointed() {
    let server = autofail_server(30);
    server.pgo_ok(&["create", "cluster", "rp", "--replica-count=2"]);
    let view = server.show_json("rp");
    let replicas = members(&view, "Replica");
    let (target, hung) = (&replicas[0], &replicas[1]);
    // Only its instance manager hangs; its PostgreSQL runs on.
    let manager: u32 = std::fs::read_to_string(server.instance_dir(hung).join("manager.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal_all(&[manager], Signal::SIGSTOP);
    server.pgo_ok(&["failover", "rp", "--target", target, "--no-prompt"]);
    // The cluster goes on: the new primary serves.
    wait_writable(&server, "rp", 30).await;
    // The hung manager is replaced (never woken), and the new one repoints
    // the replica it adopted.
    let pw = password(&view, "postgres");
    server.wait_until(60, "the hung replica to stream from the new primary", || {
        let sql = format!("SELECT count(*) FROM pg_stat_replication WHERE application_name = '{hung}' AND state = 'streaming'");
        support::psql(service_port(&view, "rp"), &pw, &sql).trim() == "1"
    });
    assert!(!support::is_running(manager));
}
