//! The manager's loop: bootstrap, start or adopt, probe, restart with backoff.

use crate::InstanceError;
use crate::bootstrap;
use crate::http::{self, Shared};
use crate::isolation;
use crate::osuser::RunAs;
use crate::postmaster::Postmaster;
use crate::probe::{self, StorageCheck};
use pgo_api::instance::{InstanceConfig, InstanceReport};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Probe often while not ready (startup is what everyone waits on), less
/// once ready.
const PROBE_NOT_READY: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed bootstraps before the instance is reported as needing a human.
const FATAL_AFTER: u32 = 3;
/// Connections the HTTPS endpoints keep open at most: the operator, the
/// kubelet's probes and a few people looking.
const MOST_CONNECTIONS: usize = 64;

pub async fn run(
    config_path: PathBuf,
    config: InstanceConfig,
    token: String,
    run_as: RunAs,
    bin: PathBuf,
) -> Result<(), InstanceError> {
    let shared = Arc::new(Shared {
        report: RwLock::new(InstanceReport {
            name: config.name.clone(),
            manager_pid: std::process::id(),
            message: Some("starting".into()),
            ..Default::default()
        }),
        token,
        reload: Notify::new(),
        config: RwLock::new(config.clone()),
        pushed: RwLock::new(None),
        failing_since: RwLock::new(None),
    });
    let addr = format!("{}:{}", config.http_address, config.http_port);
    let listener = crate::listen(&addr).await?;
    let app = http::router(shared.clone());
    let (stop_tx, stop) = watch::channel(false);
    match &config.tls {
        Some(tls) => {
            let tls = crate::https::reloading_server_config(&tls.cert_file, &tls.key_file)?;
            tokio::spawn(crate::https::serve(
                listener,
                tls,
                app,
                stop.clone(),
                MOST_CONNECTIONS,
            ));
        }
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "the HTTP endpoints stopped");
                }
            });
        }
    }
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    tracing::info!(instance = %config.name, %addr, bin = %bin.display(), user = %run_as.name, "instance manager started");
    if config.backrest.as_ref().is_some_and(|b| b.remote.is_some()) {
        tokio::spawn(crate::backrest_server::run(
            config.clone(),
            run_as.clone(),
            stop.clone(),
        ));
    }
    let isolation = config.isolation.clone().map(|check| {
        let seen = Arc::new(RwLock::new(isolation::Confirmation {
            at: std::time::Instant::now(),
            primary: None,
            error: None,
        }));
        let bound = Duration::from_secs(check.bound_seconds);
        tokio::spawn(isolation::watch(config.clone(), check, seen.clone()));
        (seen, bound)
    });
    // Where no sidecar runs it: started with the manager, stopped with it.
    let exporter = config
        .exporter
        .as_ref()
        .filter(|e| e.supervise)
        .map(|e| crate::exporter::Supervised::start(&config, e, &run_as));
    Supervisor {
        config_path,
        config,
        run_as,
        bin,
        shared,
        stop,
        isolation,
        stanza: crate::stanza::Stanza::default(),
        exporter_role: false,
    }
    .run()
    .await;
    if let Some(e) = exporter {
        e.stop().await;
    }
    Ok(())
}

struct Supervisor {
    config_path: PathBuf,
    config: InstanceConfig,
    run_as: RunAs,
    bin: PathBuf,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    /// What the store last said of the primary, and how long a primary may
    /// go without hearing it (Kubernetes only).
    isolation: Option<(Arc<RwLock<isolation::Confirmation>>, Duration)>,
    /// pgBackRest's stanza, made once this instance serves as a primary.
    stanza: crate::stanza::Stanza,
    /// The exporter's role was made sure of since PostgreSQL last started
    /// as a primary.
    exporter_role: bool,
}

impl Supervisor {
    /// For an instance that acts as a primary (it follows nobody) with an
    /// isolation check: may it serve?
    fn isolation_verdict(&self) -> Option<isolation::Verdict> {
        let (seen, bound) = self.isolation.as_ref()?;
        if self.config.primary.is_some() {
            return None;
        }
        let seen = seen.read().ok()?.clone();
        Some(isolation::verdict(
            &self.config.name,
            &seen,
            *bound,
            std::time::Instant::now(),
        ))
    }

    /// Says why this primary does not serve.
    fn isolated(&self, why: String) {
        if self.shared.report().isolated.as_ref() != Some(&why) {
            tracing::error!(instance = %self.config.name, "{why}; PostgreSQL stays stopped");
        }
        self.shared.update(|r| r.isolated = Some(why.clone()));
        self.not_ready(why);
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps, unless asked to stop; true when asked.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.stopping(),
            _ = self.stop.changed() => true,
        }
    }

    /// Says why it is not ready; logged when the reason changes, not on
    /// every retry of a loop that waits.
    fn not_ready(&self, message: String) {
        if self.shared.report().message.as_ref() != Some(&message) {
            tracing::warn!(instance = %self.config.name, "{message}");
        }
        self.shared.update(|r| {
            r.ready = false;
            r.message = Some(message);
        });
    }

    async fn run(mut self) {
        let mut backoff = Duration::from_secs(1);
        let mut failures = 0u32;
        while !self.stopping() {
            match self.prepare().await {
                Ok(()) => {}
                Err(e) => {
                    failures += 1;
                    if failures >= FATAL_AFTER {
                        self.shared.update(|r| r.fatal = Some(e.clone()));
                    }
                    self.not_ready(format!("{e}; retrying in {}s", backoff.as_secs()));
                    if self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            let pgdata = self.config.pgdata();
            // A primary starts (or keeps) PostgreSQL only once the store has
            // named it primary within the bound.
            match self.isolation_verdict() {
                None | Some(isolation::Verdict::Confirmed) => {
                    self.shared.update(|r| r.isolated = None);
                }
                Some(isolation::Verdict::Waiting) => {
                    self.not_ready("waiting for the store to confirm this instance is the primary".into());
                    if self.pause(Duration::from_millis(200)).await {
                        return;
                    }
                    continue;
                }
                Some(isolation::Verdict::Fence(why)) => {
                    if let Some(mut running) = Postmaster::adopt(&pgdata) {
                        running.stop_now().await;
                    }
                    self.isolated(why);
                    if self.pause(Duration::from_millis(500)).await {
                        return;
                    }
                    continue;
                }
            }
            let mut postmaster = match Postmaster::adopt(&pgdata) {
                Some(p) => {
                    let started = started_restarts(&self.config);
                    self.shared.update(|r| r.restarts = started);
                    // The config was just written; what it runs with may be
                    // older (a primary to follow that changed while no
                    // manager was there to reload it).
                    p.reload();
                    tracing::info!(pid = p.pid, "adopted the running postmaster");
                    p
                }
                None if let Err(why) =
                    crate::ports::check_free(&self.config.listen_address, self.config.port) =>
                {
                    // Restarting would only fail the same way: said, and
                    // tried again with backoff until the port is free.
                    self.shared.update(|r| r.fatal = Some(why.clone()));
                    self.not_ready(why);
                    if self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
                None => match Postmaster::start(
                    &self.bin,
                    &pgdata,
                    &self.run_as,
                    self.config.postgres_log.as_deref(),
                ) {
                    Ok(p) => {
                        tracing::info!(pid = p.pid, "started postgres");
                        // Which `pgo restart` this start answers, kept
                        // for a manager that adopts this postmaster.
                        let restarts = self.config.restarts;
                        if let Err(e) = self.run_as.write(
                            &self.config.volume_dir.join(STARTED_RESTARTS),
                            &restarts.to_string(),
                        ) {
                            tracing::warn!("{e}");
                        }
                        self.shared.update(|r| r.restarts = restarts);
                        p
                    }
                    Err(e) => {
                        self.not_ready(e);
                        if self.pause(backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            self.shared.update(|r| r.postmaster_pid = Some(postmaster.pid));
            let outcome = self.monitor(&mut postmaster, &mut backoff, &mut failures).await;
            self.shared.update(|r| {
                r.ready = false;
                r.role = None;
            });
            match outcome {
                Exit::Stop => {
                    self.not_ready("shutting down".into());
                    postmaster
                        .stop(Duration::from_secs(pgo_api::instance::FAST_SHUTDOWN_SECONDS))
                        .await;
                    tracing::info!("postgres stopped; instance manager exiting");
                    return;
                }
                Exit::Isolated(why) => {
                    // Immediate: a fast shutdown would wait for replicas
                    // this node may no longer reach.
                    postmaster.stop_now().await;
                    self.shared.update(|r| r.postmaster_pid = None);
                    self.isolated(why);
                }
                Exit::Crashed(why) => {
                    self.shared.update(|r| r.postmaster_pid = None);
                    // A restore whose target the WAL cannot reach stops the
                    // same way every time: said as fatal, with PostgreSQL's
                    // words, so the cluster fails instead of "restoring".
                    if bootstrap::restore_pending(&self.config)
                        && let Some(line) = self.config.postgres_log.as_deref().and_then(last_fatal)
                    {
                        let why = format!("the restore cannot finish: {line}");
                        self.shared.update(|r| r.fatal = Some(why.clone()));
                    }
                    self.not_ready(format!(
                        "postgres exited ({why}); restarting in {}s",
                        backoff.as_secs()
                    ));
                    if self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// A data directory that exists and configuration written.
    async fn prepare(&mut self) -> Result<(), String> {
        self.reread_config();
        if !bootstrap::is_initialized(&self.config) {
            if self.config.primary.is_some() {
                self.shared
                    .update(|r| r.message = Some("copying the primary's data (pg_basebackup)".into()));
                bootstrap::basebackup(&self.config, &self.run_as, &self.bin).await?;
                tracing::info!("pg_basebackup done");
            } else if let Some(r) = self.config.restore.clone() {
                self.shared.update(|rep| {
                    rep.message = Some(format!("restoring from the repository {}", r.repo_path.display()))
                });
                bootstrap::restore(&self.config, &r, &self.run_as).await?;
                tracing::info!("pgbackrest restore done; PostgreSQL replays WAL to the target");
            } else if let Some(source) = self.config.seed.clone() {
                self.shared.update(|r| {
                    r.message = Some(format!("copying the data directory from {}", source.display()))
                });
                bootstrap::from_copy(&self.config, &source, &self.run_as).await?;
                tracing::info!(from = %source.display(), "copied from a pg_basebackup copy; PostgreSQL replays its WAL");
            } else {
                self.shared
                    .update(|r| r.message = Some("initializing the data directory (initdb)".into()));
                bootstrap::initdb(&self.config, &self.run_as, &self.bin).await?;
                tracing::info!("initdb done");
            }
        }
        if let Some(r) = self.config.restore.clone()
            && let Some(id) = r.id.clone()
            && !bootstrap::restored(&self.config, &id)
        {
            // The operator stopped the instance first; a postmaster still
            // here (adopted) must not run over files being replaced.
            if let Some(mut running) = Postmaster::adopt(&self.config.pgdata()) {
                running
                    .stop(Duration::from_secs(pgo_api::instance::FAST_SHUTDOWN_SECONDS))
                    .await;
            }
            self.shared.update(|rep| {
                rep.message = Some(format!(
                    "restoring in place from the repository {}",
                    r.repo_path.display()
                ))
            });
            bootstrap::restore_in_place(&self.config, &r, &id, &self.run_as).await?;
            tracing::info!(restore = %id, "pgbackrest restore --delta done; PostgreSQL replays WAL to the target");
        }
        bootstrap::write_config(&self.config, &self.run_as)
    }

    /// The platform rewrites the config file and asks for a reload when
    /// what an instance follows changes; what the file says now wins.
    fn reread_config(&mut self) {
        let file = std::fs::read(&self.config_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<InstanceConfig>(&b).map_err(|e| e.to_string()));
        let pushed = self.shared.pushed.read().ok().and_then(|p| p.clone());
        let fresh = match (pushed, file) {
            (Some(p), Ok(f)) if f.changes() == p => {
                // The file caught up: it is the truth again.
                if let Ok(mut slot) = self.shared.pushed.write() {
                    *slot = None;
                }
                Ok(f)
            }
            (Some(p), Ok(f)) => Ok(f.with(&p)),
            (Some(p), Err(_)) => Ok(self.config.with(&p)),
            (None, file) => file,
        };
        match fresh {
            Ok(c) => {
                if let Ok(mut shared) = self.shared.config.write() {
                    *shared = c.clone();
                }
                self.config = c;
            }
            Err(e) => tracing::warn!(path = %self.config_path.display(), "keeping the config in use: {e}"),
        }
    }

    /// PostgreSQL's config written again from the manager's, and reloaded.
    fn reload(&self, postmaster: &Postmaster, done: &str) {
        match bootstrap::write_config(&self.config, &self.run_as) {
            Ok(()) => {
                postmaster.reload();
                tracing::info!("{done}");
            }
            Err(e) => tracing::warn!("reload: {e}"),
        }
    }

    async fn monitor(
        &mut self,
        postmaster: &mut Postmaster,
        backoff: &mut Duration,
        failures: &mut u32,
    ) -> Exit {
        let mut storage = StorageCheck::default();
        let shared = self.shared.clone();
        let mut tls_seen = bootstrap::tls_files_stamp(&self.config);
        loop {
            let ready = shared.report().ready;
            let period = if ready {
                Duration::from_millis(self.config.probe.period_ms)
            } else {
                PROBE_NOT_READY
            };
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = self.stop.changed() => return Exit::Stop,
                _ = shared.reload.notified() => {
                    self.reread_config();
                    self.reload(postmaster, "configuration reloaded");
                }
            }
            if self.stopping() {
                return Exit::Stop;
            }
            if let Some(why) = postmaster.exited() {
                return Exit::Crashed(why);
            }
            // A renewed certificate (the kubelet swaps the Secret's files):
            // PostgreSQL reads its TLS files only at start and reload.
            let tls_now = bootstrap::tls_files_stamp(&self.config);
            if tls_now != tls_seen {
                tls_seen = tls_now;
                self.reload(postmaster, "TLS files changed; PostgreSQL reloaded them");
            }
            if let Some(isolation::Verdict::Fence(why)) = self.isolation_verdict() {
                return Exit::Isolated(why);
            }
            let began = std::time::Instant::now();
            let checked = match probe::probe(&self.config).await {
                Ok(p) => storage
                    .check(
                        &probe::storage_check_file(&self.config),
                        probe::timeout(&self.config),
                    )
                    .await
                    .map(|()| p),
                Err(e) => Err(e),
            };
            match checked {
                Ok(p) => {
                    if bootstrap::restore_pending(&self.config) {
                        let finished = match (p.role, bootstrap::connect(&self.config).await) {
                            (pgo_api::cluster::MemberRole::Primary, Ok(client)) => {
                                bootstrap::finish_restore(&self.config, &client).await
                            }
                            (pgo_api::cluster::MemberRole::Replica, _) => {
                                Err("restoring: replaying WAL to the target".into())
                            }
                            (_, Err(e)) => Err(e),
                        };
                        if let Err(e) = finished {
                            self.not_ready(e);
                            continue;
                        }
                        tracing::info!("restore finished: promoted, recovery settings reset");
                    }
                    if bootstrap::setup_pending(&self.config) {
                        match crate::setup_sql::run(&self.config, &self.run_as, &self.bin).await {
                            Ok(()) => {}
                            Err(crate::setup_sql::Failure::Script(why)) => {
                                // Not half made and called ready: failed,
                                // with PostgreSQL's words.
                                shared.update(|r| r.fatal = Some(why.clone()));
                                self.not_ready(why);
                                continue;
                            }
                            Err(crate::setup_sql::Failure::Again(why)) => {
                                self.not_ready(why);
                                continue;
                            }
                        }
                        let setup = match bootstrap::connect(&self.config).await {
                            Ok(client) => bootstrap::setup(&self.config, &client).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = setup {
                            self.not_ready(e);
                            continue;
                        }
                        tracing::info!("users and database created");
                    }
                    if !ready {
                        tracing::info!(role = %p.role, "ready");
                    }
                    if let Some(e) = &self.config.exporter
                        && p.role == pgo_api::cluster::MemberRole::Primary
                        && !self.exporter_role
                    {
                        let made = match bootstrap::connect(&self.config).await {
                            Ok(client) => crate::exporter::ensure_role(e, &client).await,
                            Err(e) => Err(e),
                        };
                        match made {
                            Ok(()) => self.exporter_role = true,
                            Err(e) => tracing::warn!("{e}"),
                        }
                    }
                    let archive = match (&self.config.backrest, p.role) {
                        (Some(_), pgo_api::cluster::MemberRole::Primary) => {
                            self.stanza.ensure(&self.config, &self.run_as);
                            Some(pgo_api::cluster::ArchiveStatus {
                                repository_error: self.stanza.error(),
                                stanza_ready: self.stanza.made(),
                                ..p.archive
                            })
                        }
                        _ => None,
                    };
                    *backoff = Duration::from_secs(1);
                    *failures = 0;
                    if let Ok(mut f) = shared.failing_since.write() {
                        *f = None;
                    }
                    shared.update(|r| {
                        r.ready = true;
                        r.role = Some(p.role);
                        r.timeline = p.timeline;
                        r.wal_lsn = p.wal_lsn;
                        r.received_lsn = p.received_lsn;
                        r.archive = archive;
                        r.pending_restart = p.pending_restart;
                        r.pending_lower = p.pending_lower;
                        r.message = None;
                        r.fatal = None;
                    });
                }
                Err(e) if bootstrap::restore_pending(&self.config) => {
                    // Not a failure: no connection is taken while WAL is
                    // replayed (hot_standby is off until the promotion).
                    self.not_ready(format!("restoring: replaying WAL to the target ({e})"));
                }
                Err(e) => {
                    // Since the first failing check began: a write stuck on
                    // frozen storage stopped the instance when it was issued.
                    let since = storage.pending_since().unwrap_or(began).min(began);
                    if let Ok(mut f) = shared.failing_since.write() {
                        f.get_or_insert(since);
                    }
                    if ready {
                        tracing::warn!("not ready: {e}");
                    }
                    shared.update(|r| {
                        r.ready = false;
                        r.message = Some(e);
                    });
                }
            }
        }
    }
}

/// The `restarts` of the config PostgreSQL was last started with.
const STARTED_RESTARTS: &str = ".pgo-started-restarts";

fn started_restarts(config: &InstanceConfig) -> u64 {
    std::fs::read_to_string(config.volume_dir.join(STARTED_RESTARTS))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

enum Exit {
    Stop,
    /// A primary that cannot confirm it is still the primary.
    Isolated(String),
    Crashed(String),
}

/// The last `FATAL:` line PostgreSQL wrote to its log, if it logs to a file.
pub(crate) fn last_fatal(log: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .take(200)
        .find(|l| l.contains("FATAL:") && !l.contains("the database system is"))
        .map(|l| l.split_once("FATAL:").map_or(l, |(_, m)| m).trim().to_string())
}
