//! An instance is a detached `postgres-operator instance` process (the
//! instance manager), its record `instance.json` (which fixes its ports for
//! life), a bearer token for its control endpoints, and `manager.pid`.

use super::manager_http::ManagerHttp;
use super::ports::Ports;
use super::process::{self, cmdline, is_alive, read_pid};
use super::{Layout, LocalSettings, files};
use crate::{InstanceObservation, PlatformError};
use nix::sys::signal::Signal;
use pgo_api::instance::{
    ExporterConfig, InstanceBackrest, InstanceConfig, InstanceReport, InstanceRestore, SlotRequest, Upstream,
};
use pgo_core::desired::InstanceSpec;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONFIG: &str = "instance.json";
const PID: &str = "manager.pid";
const TOKEN: &str = "token";
/// Present while a changed config has not been reloaded by the manager.
const RELOAD_PENDING: &str = "reload.pending";
const LOG: &str = "instance.log";
const POSTGRES_LOG: &str = "postgres.log";

pub fn read_config(dir: &Path) -> Result<Option<Arc<InstanceConfig>>, PlatformError> {
    files::read_json_cached(&dir.join(CONFIG))
}

/// Every instance's record.
fn all_configs(layout: &Layout) -> Result<Vec<Arc<InstanceConfig>>, PlatformError> {
    let dir = layout.instances();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(PlatformError::io(format!("cannot list {}", dir.display()), e)),
    };
    let mut configs = Vec::new();
    for entry in entries.flatten() {
        configs.extend(read_config(&entry.path())?);
    }
    Ok(configs)
}

/// Every instance whose record names `volume_dir`: while one exists, the
/// volume is in use (a stopped instance is started again on the next pass).
pub fn users_of(layout: &Layout, volume_dir: &Path) -> Result<Vec<String>, PlatformError> {
    let mut users: Vec<String> = all_configs(layout)?
        .into_iter()
        .filter(|c| c.volume_dir == volume_dir)
        .map(|c| c.name.clone())
        .collect();
    users.sort();
    Ok(users)
}

/// The file an instance's manager reads its config from.
pub fn config_path(layout: &Layout, name: &str) -> std::path::PathBuf {
    layout.instance(name).join(CONFIG)
}

pub fn config(layout: &Layout, name: &str) -> Result<Option<Arc<InstanceConfig>>, PlatformError> {
    read_config(&layout.instance(name))
}

/// How long a manager may leave `/status` unanswered while its PostgreSQL
/// answers before it is restarted: one slow answer under load is not a hang.
const MANAGER_HANG_RESTART: Duration = Duration::from_secs(3);
/// A `/status` slower than this is not an answer from memory.
const MANAGER_SLOW: Duration = Duration::from_millis(100);
/// `/status` is answered from memory: a manager that takes longer than this
/// on loopback is hung, and the operator must learn it fast. One slow answer
/// only starts the failover timer.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// A manager that answered `/status` this long ago is running: the pass
/// that observed it need not look for its process again.
const ANSWERED_FRESH: Duration = Duration::from_secs(1);

/// What was last seen of an instance's manager.
#[derive(Clone, Copy)]
enum Heard {
    /// It answered `/status`, then.
    Answered(Instant),
    /// It has not answered since then, while its PostgreSQL did.
    Silent(Instant),
}

/// What was last seen of each instance's manager; nothing for one not
/// asked yet, or neither it nor its PostgreSQL answered.
#[derive(Default)]
pub struct Hung(Mutex<HashMap<String, Heard>>);

impl Hung {
    fn heard(&self, name: &str) -> Option<Heard> {
        self.0.lock().ok()?.get(name).copied()
    }

    /// It did not answer, but its PostgreSQL did: hung since the first time.
    fn mark(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            let heard = m.entry(name.to_string()).or_insert(Heard::Silent(Instant::now()));
            if let Heard::Answered(_) = heard {
                *heard = Heard::Silent(Instant::now());
            }
        }
    }

    /// It answered: not hung.
    fn clear(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_string(), Heard::Answered(Instant::now()));
        }
    }

    /// Forgets `name`'s manager: stopped, or about to be.
    pub fn forget(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(name);
        }
    }

    fn answered_within(&self, name: &str, d: Duration) -> bool {
        matches!(self.heard(name), Some(Heard::Answered(t)) if t.elapsed() < d)
    }

    fn longer_than(&self, name: &str, d: Duration) -> bool {
        matches!(self.heard(name), Some(Heard::Silent(t)) if t.elapsed() >= d)
    }
}

/// The postmaster serving `pgdata`, from its pid file: only a live process
/// whose command line names that data directory, so a stale pid file and a
/// reused pid never make us signal someone else's process.
pub fn running_postmaster(pgdata: &Path) -> Option<u32> {
    let pid = read_pid(&pgdata.join("postmaster.pid"))?;
    let dir = pgdata.to_string_lossy();
    (is_alive(pid) && cmdline(pid).is_some_and(|c| c.contains("postgres") && c.contains(dir.as_ref())))
        .then_some(pid)
}

/// The running manager of the instance in `dir`, checked by its command line
/// so a reused pid is never taken for it.
fn running_manager(dir: &Path) -> Option<u32> {
    let pid = read_pid(&dir.join(PID))?;
    let config = dir.join(CONFIG);
    let expected = config.to_string_lossy();
    (is_alive(pid) && cmdline(pid).is_some_and(|c| c.contains(expected.as_ref()))).then_some(pid)
}

/// Who a port of instance `name` belongs to in the port record; with an
/// empty `what`, the prefix of all of them.
pub fn port_owner(name: &str, what: &str) -> String {
    format!("instance/{name}/{what}")
}

/// The ports every existing instance record fixes, with their owners.
pub fn ports_in_use(layout: &Layout) -> Result<Vec<(u16, String)>, PlatformError> {
    Ok(all_configs(layout)?
        .into_iter()
        .flat_map(|c| {
            [
                Some((c.port, port_owner(&c.name, "postgres"))),
                Some((c.http_port, port_owner(&c.name, "http"))),
                c.exporter
                    .as_ref()
                    .map(|e| (e.port, port_owner(&c.name, "metrics"))),
            ]
        })
        .flatten()
        .collect())
}

pub async fn ensure(
    layout: &Layout,
    settings: &LocalSettings,
    http: &ManagerHttp,
    hung: &Hung,
    ports: &Ports,
    spec: &InstanceSpec,
) -> Result<(), PlatformError> {
    let dir = layout.instance(&spec.name);
    let existing = read_config(&dir)?;
    if existing.is_none() {
        files::private_dir(&dir)?;
    }
    let (port, http_port) = match &existing {
        Some(c) => (c.port, c.http_port),
        None => (
            ports.allocate(&port_owner(&spec.name, "postgres"))?,
            ports.allocate(&port_owner(&spec.name, "http"))?,
        ),
    };
    let token = dir.join(TOKEN);
    // Written before the first config: a config means a token.
    if existing.is_none() && !token.exists() {
        let t = crate::password(40)
            .map_err(|_| PlatformError::Invalid("the system random source failed".into()))?;
        files::write_atomic(&token, t.as_bytes(), 0o600)?;
    }
    let config = InstanceConfig {
        name: spec.name.clone(),
        cluster: spec.cluster.clone(),
        role: spec.role,
        volume_dir: layout.volume(&spec.volume),
        listen_address: "127.0.0.1".into(),
        port,
        http_address: "127.0.0.1".into(),
        http_port,
        allowed_cidrs: vec!["127.0.0.1/32".into()],
        database: spec.database.clone(),
        app_user: spec.app_user.clone(),
        superuser_secret: layout.secret(&spec.superuser_secret),
        replication_secret: layout.secret(&spec.replication_secret),
        app_secret: layout.secret(&spec.app_secret),
        token_file: token,
        pg_bin_dir: settings.pg_bin_dir.clone(),
        primary: upstream(layout, spec)?,
        sync_standbys: spec.sync_standbys.clone(),
        synchronous: spec.synchronous,
        run_as: None,
        probe: settings.probe,
        // The operator fences here itself: it reaches every process.
        isolation: None,
        tls: None,
        postgres_log: Some(dir.join(POSTGRES_LOG)),
        // Loopback only: nothing crosses a network.
        postgres_tls: None,
        backrest: spec.backrest.as_ref().map(|b| InstanceBackrest {
            repo_path: layout.volume(&b.repo_volume),
            stanza: b.stanza.clone(),
            archive_timeout_seconds: b.settings.archive_timeout_seconds,
            retention_full: b.settings.retention_full,
            retention_diff: b.settings.retention_diff,
            remote: None,
        }),
        restore: spec.restore.as_ref().map(|r| InstanceRestore {
            id: r.id.clone(),
            repo_path: layout.volume(&r.repo_volume),
            stanza: r.stanza.clone(),
            target: r.target.clone(),
            options: r.options.clone(),
            remote: None,
        }),
        seed: spec.seed.as_ref().map(|s| layout.volume(&s.volume).join(&s.path)),
        custom: spec.custom_files.clone(),
        reloads: spec.reloads,
        restarts: spec.restarts,
        exporter: match &spec.exporter_secret {
            Some(secret) => Some(ExporterConfig {
                listen_address: "127.0.0.1".into(),
                // Kept for life, as the instance's other ports are.
                port: match existing.as_ref().and_then(|c| c.exporter.as_ref()) {
                    Some(e) => e.port,
                    None => ports.allocate(&port_owner(&spec.name, "metrics"))?,
                },
                secret: layout.secret(secret),
                supervise: true,
            }),
            None => None,
        },
    };
    let pending = dir.join(RELOAD_PENDING);
    if existing.as_deref() != Some(&config) {
        if existing.is_some() {
            // Marked first: a reload that fails is asked for again on the
            // next pass, not forgotten because the file is already written.
            files::write_atomic(&pending, b"", 0o600)?;
        }
        files::write_json(&dir.join(CONFIG), &config)?;
    }
    // Answered this pass's `/status`: running, and not hung.
    let running = hung.answered_within(&spec.name, ANSWERED_FRESH)
        || match running_manager(&dir) {
            Some(pid) if hung.longer_than(&spec.name, MANAGER_HANG_RESTART) => {
                // PostgreSQL answers; its manager does not. A new manager
                // adopts the running postmaster: no failover for a hung
                // supervisor.
                tracing::warn!(instance = %spec.name, pid, "the instance manager does not answer; restarting it");
                process::signal(pid, Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(5);
                while is_alive(pid) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                hung.forget(&spec.name);
                running_manager(&dir).is_some()
            }
            Some(_) => true,
            None => false,
        };
    if running {
        if pending.exists() {
            // What it follows or waits for changed: it re-reads its config.
            control(
                http,
                &config,
                "/control/reload",
                &serde_json::json!({}),
                Duration::from_secs(5),
            )
            .await?;
            std::fs::remove_file(&pending)
                .map_err(|e| PlatformError::io(format!("cannot remove {}", pending.display()), e))?;
        }
        return Ok(());
    }
    // A manager that starts reads the config as it is now.
    let _ = std::fs::remove_file(&pending);
    spawn(&dir, settings).await
}

/// Where a replica streams from: the instance it follows, on this machine.
fn upstream(layout: &Layout, spec: &InstanceSpec) -> Result<Option<Upstream>, PlatformError> {
    let Some(follow) = &spec.follows else {
        return Ok(None);
    };
    let primary = config(layout, &follow.primary)?.ok_or_else(|| {
        PlatformError::Invalid(format!(
            "instance {} follows {}, which does not exist",
            spec.name, follow.primary
        ))
    })?;
    Ok(Some(Upstream {
        host: primary.listen_address.clone(),
        port: primary.port,
        slot: follow.slot.clone(),
    }))
}

/// Calls an authenticated control endpoint of an instance manager.
async fn control(
    http: &ManagerHttp,
    config: &InstanceConfig,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(), PlatformError> {
    let token = std::fs::read_to_string(&config.token_file)
        .map_err(|e| PlatformError::io(format!("cannot read {}", config.token_file.display()), e))?;
    http.post_json(
        &config.http_address,
        config.http_port,
        path,
        token.trim(),
        body,
        timeout,
    )
    .await
    .map_err(|e| PlatformError::Invalid(format!("instance {}: {path}: {e}", config.name)))
}

fn existing(layout: &Layout, name: &str) -> Result<Arc<InstanceConfig>, PlatformError> {
    config(layout, name)?.ok_or_else(|| PlatformError::Invalid(format!("instance {name} does not exist")))
}

/// Promotes the instance `name`.
pub async fn promote(layout: &Layout, http: &ManagerHttp, name: &str) -> Result<(), PlatformError> {
    // A promotion first replays everything the replica received.
    control(
        http,
        &*existing(layout, name)?,
        "/control/promote",
        &serde_json::json!({}),
        Duration::from_secs(120),
    )
    .await
}

/// Creates or drops (`path`) `slot` on the instance `primary`.
pub async fn slot(
    layout: &Layout,
    http: &ManagerHttp,
    primary: &str,
    slot: &str,
    path: &str,
) -> Result<(), PlatformError> {
    let config = existing(layout, primary)?;
    control(
        http,
        &config,
        path,
        &serde_json::to_value(SlotRequest {
            slot: slot.to_string(),
        })
        .map_err(|e| PlatformError::Invalid(e.to_string()))?,
        Duration::from_secs(10),
    )
    .await
}

async fn spawn(dir: &Path, settings: &LocalSettings) -> Result<(), PlatformError> {
    let mut cmd = tokio::process::Command::new(&settings.exe);
    cmd.arg("instance").arg("--config").arg(dir.join(CONFIG));
    let pid = process::spawn_detached(cmd, "the instance manager", &dir.join(LOG), &dir.join(PID))?;
    tracing::info!(instance = %dir.display(), pid, "started instance manager");
    Ok(())
}

pub async fn observe(
    layout: &Layout,
    http: &ManagerHttp,
    hung: &Hung,
    node: &str,
    name: &str,
) -> Result<Option<InstanceObservation>, PlatformError> {
    let dir = layout.instance(name);
    let Some(config) = read_config(&dir)? else {
        return Ok(None);
    };
    let mut seen = InstanceObservation {
        name: name.to_string(),
        node: node.to_string(),
        host: config.listen_address.clone(),
        port: config.port,
        metrics: config
            .exporter
            .as_ref()
            .map(|e| format!("http://{}:{}/metrics", e.listen_address, e.port)),
        ..Default::default()
    };
    let report =
        http.get_json::<InstanceReport>(&config.http_address, config.http_port, "/status", STATUS_TIMEOUT);
    tokio::pin!(report);
    // `/status` is answered from memory at once. If it is slow, PostgreSQL
    // is asked directly at the same time, so a hung manager costs one
    // timeout, not two in a row.
    let (report, direct) = match tokio::time::timeout(MANAGER_SLOW, &mut report).await {
        Ok(r) => (r, None),
        Err(_) => {
            // Done when `/status` gives up, so a hung instance costs one timeout.
            let direct =
                tokio::time::timeout(STATUS_TIMEOUT - MANAGER_SLOW, pgo_instance::probe::probe(&config));
            let (r, d) = tokio::join!(report, direct);
            let d = d.unwrap_or_else(|_| Err("PostgreSQL did not answer in time".to_string()));
            (r, Some(d))
        }
    };
    match report {
        Ok(r) => {
            hung.clear(name);
            seen.running = true;
            seen.ready = r.ready;
            seen.role = r.role;
            seen.timeline = r.timeline;
            seen.wal_lsn = r.wal_lsn;
            seen.received_lsn = r.received_lsn;
            seen.message = r.message;
            seen.fatal = r.fatal;
            seen.failing_for_ms = r.failing_for_ms;
            seen.archive = r.archive;
            seen.pending_restart = r.pending_restart;
            seen.pending_lower = r.pending_lower;
            // Started before the cluster's latest `pgo restart`.
            seen.outdated = r.restarts < config.restarts;
            seen.restarts = r.restarts;
        }
        Err(e) => {
            seen.running = running_manager(&dir).is_some();
            seen.message = Some(if seen.running {
                // Either starting (its endpoints are not up yet) or stuck.
                if e.is_connect() {
                    "the instance manager is starting".to_string()
                } else {
                    format!("the instance manager does not answer: {e}")
                }
            } else {
                "the instance manager is not running".into()
            });
            if seen.running && !e.is_connect() {
                // Is PostgreSQL itself fine? Asked directly, the way the
                // manager would: a new connection and the readiness query.
                // Only then is the manager restarted; an instance hung whole
                // is left to the failover, which fences it.
                let direct = match direct {
                    Some(d) => d,
                    None => pgo_instance::probe::probe(&config).await,
                };
                match direct {
                    Ok(p) => {
                        hung.mark(name);
                        tracing::warn!(
                            instance = name,
                            "the instance manager does not answer, but PostgreSQL does"
                        );
                        seen.ready = true;
                        seen.role = Some(p.role);
                        seen.timeline = p.timeline;
                        seen.wal_lsn = p.wal_lsn;
                        seen.received_lsn = p.received_lsn;
                    }
                    Err(pg) => {
                        // Hung whole, not the manager alone: the failover's.
                        hung.forget(name);
                        seen.message = Some(format!(
                            "the instance manager does not answer ({e}), nor does PostgreSQL ({pg})"
                        ));
                    }
                }
            }
        }
    }
    Ok(Some(seen))
}

/// How long a fence waits for the postmaster to go before it says it is
/// still under way (and the failover asks again).
const FENCE_WAIT: Duration = Duration::from_secs(5);

/// Kills the instance's manager, postmaster and every backend at once. A
/// process asleep on hung storage cannot die until the storage answers, but
/// the kill is pending and nothing will restart it: the instance counts as
/// fenced once its postmaster is gone and its port refuses connections,
/// whatever backends still wait in the kernel. Then its record goes.
pub async fn fence(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    let dir = layout.instance(name);
    let Some(config) = read_config(&dir)? else {
        return Ok(());
    };
    let postmaster = running_postmaster(&config.pgdata());
    let mut doomed: Vec<u32> = running_manager(&dir).into_iter().collect();
    if let Some(pm) = postmaster {
        doomed.push(pm);
        doomed.extend(process::descendants(pm));
    }
    for &pid in &doomed {
        process::signal(pid, Signal::SIGKILL);
    }
    pgo_instance::exporter::stop_orphan(&config);
    let deadline = Instant::now() + FENCE_WAIT;
    loop {
        let postmaster_gone = postmaster.is_none_or(|pm| !is_alive(pm));
        if postmaster_gone && refuses(&config.listen_address, config.port).await {
            break;
        }
        if Instant::now() >= deadline {
            return Err(PlatformError::InProgress(format!(
                "fencing {name}: its postmaster has not died after SIGKILL (asleep on hung storage?)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stuck: Vec<u32> = doomed.into_iter().filter(|&p| is_alive(p)).collect();
    if !stuck.is_empty() {
        tracing::warn!(
            instance = name,
            ?stuck,
            "fenced; these processes wait on hung storage and die when it answers"
        );
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| PlatformError::io(format!("cannot remove {}", dir.display()), e))?;
    tracing::info!(instance = name, "fenced instance");
    Ok(())
}

/// True when nothing accepts a connection on `host:port`.
async fn refuses(host: &str, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(Duration::from_millis(200), connect).await {
        Ok(Ok(_)) => false,
        Ok(Err(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        // A listener that no one serves: not fenced yet.
        Err(_) => false,
    }
}

/// Stops the instance's manager, which shuts PostgreSQL down (fast) as it
/// exits; its files and ports stay, for the ensure that starts it again.
pub async fn stop_manager(layout: &Layout, name: &str) {
    if let Some(pid) = running_manager(&layout.instance(name)) {
        process::stop(pid, Signal::SIGTERM, Duration::from_secs(60)).await;
    }
}

pub async fn remove(layout: &Layout, name: &str) -> Result<(), PlatformError> {
    let dir = layout.instance(name);
    if !dir.exists() {
        return Ok(());
    }
    let postmaster = read_config(&dir)?.and_then(|c| running_postmaster(&c.pgdata()));
    let backends = postmaster.map(process::descendants).unwrap_or_default();
    // A hung postmaster cannot shut down in order: it goes first, at once.
    if let Some(pid) = postmaster.filter(|&p| process::is_stopped(p)) {
        process::signal(pid, Signal::SIGKILL);
    }
    if let Some(pid) = running_manager(&dir) {
        // The manager shuts PostgreSQL down fast on SIGTERM.
        process::stop(pid, Signal::SIGTERM, Duration::from_secs(60)).await;
    }
    // A postmaster whose manager was killed must not go on serving, nor may
    // its backends once it is gone.
    if let Some(pid) = postmaster.filter(|&p| is_alive(p)) {
        process::stop(pid, Signal::SIGINT, Duration::from_secs(60)).await;
    }
    for pid in backends {
        if is_alive(pid) {
            process::signal(pid, Signal::SIGKILL);
        }
    }
    if let Some(config) = read_config(&dir)? {
        pgo_instance::exporter::stop_orphan(&config);
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| PlatformError::io(format!("cannot remove {}", dir.display()), e))?;
    tracing::info!(instance = name, "removed instance");
    Ok(())
}
