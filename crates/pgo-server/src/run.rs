//! `postgres-operator run`: the apiserver and the operator in one process.

use crate::ServerError;
use crate::args::{PlatformKind, RunArgs};
use crate::home::Home;
use pgo_api::config::PgoConfig;
use pgo_apiserver::metrics::ApiMetrics;
use pgo_apiserver::{AppState, auth::Auth, tls};
use pgo_operator::runtime::Metrics;
use pgo_operator::{Context, Hooks, Leadership};
use pgo_platform::Platform;
use pgo_platform::local::{LocalPlatform, LocalSettings, ports};
use pgo_store::Store;
use pgo_store::sqlite::SqliteStore;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::sync::watch;

/// A controller loop that has not turned for this long is wedged: `/livez`
/// fails, and a liveness probe restarts the operator (its loops beat every 5 s).
const LIVENESS_STALE: std::time::Duration = std::time::Duration::from_secs(60);

fn start_err(s: String) -> ServerError {
    ServerError::Start(s)
}

/// A store and a platform, an operator and an apiserver apart: the local
/// platform has one; on Kubernetes, each watched namespace is one.
pub struct Scope {
    /// Empty on the local platform.
    pub namespace: String,
    pub store: Arc<dyn Store>,
    pub platform: Arc<dyn Platform>,
}

/// What the server runs on: its scopes, its settings.
pub struct Backend {
    /// At least one; the first answers requests that name no namespace.
    pub scopes: Vec<Scope>,
    pub config: PgoConfig,
    /// For the log line that says where things are.
    pub describe: String,
    /// Where operators elect one leader (Kubernetes).
    pub election: Option<pgo_kube::leader::Candidate>,
    /// Where the apiserver's CA and users outlive the home (Kubernetes).
    pub keeper: Option<crate::kept::Keeper>,
}

pub fn read_config(path: &std::path::Path) -> Result<Option<PgoConfig>, ServerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let (config, ignored) = PgoConfig::from_yaml_listing_ignored(&text)
                .map_err(|e| start_err(format!("{}: {e}", path.display())))?;
            pgo_core::validate::config(&config).map_err(|e| start_err(format!("{}: {e}", path.display())))?;
            if !ignored.is_empty() {
                // Once, at start: a stock 3.4 pgo.yaml works, and says what
                // in it has no effect here.
                tracing::warn!(
                    file = %path.display(),
                    keys = %ignored.join(", "),
                    "pgo.yaml: keys of pgo 3.4 that this pgo does not act on are ignored"
                );
            }
            Ok(Some(config))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(start_err(format!("cannot read {}: {e}", path.display()))),
    }
}

fn local(args: &RunArgs, home: &Home) -> Result<Backend, ServerError> {
    let data_dir = args.data_dir.clone().unwrap_or_else(|| home.default_data_dir());
    let data_dir = if data_dir.is_absolute() {
        data_dir
    } else {
        std::env::current_dir()
            .map_err(|e| start_err(format!("cannot resolve {}: {e}", data_dir.display())))?
            .join(data_dir)
    };
    let pg_bin = pgo_instance::find_pg_bin_dir(args.pg_bin_dir.as_deref())?;
    let run_as = pgo_instance::RunAs::resolve(None)?;
    crate::reach::check(&data_dir, run_as.uid, run_as.gid).map_err(|why| {
        start_err(format!(
            "PostgreSQL's OS user {} cannot reach the data directory {}: {why}. Start with --data-dir on a path it can reach (for example --data-dir /var/lib/pgo), or let it through with chmod o+x on that directory",
            run_as.name,
            data_dir.display()
        ))
    })?;
    let config = read_config(&home.config())?.unwrap_or_default();
    // A storage config's Path is made now, and PostgreSQL's user must
    // reach it as it reaches the data directory.
    for (name, storage) in &config.storage {
        let Some(path) = &storage.path else { continue };
        std::fs::create_dir_all(path)
            .map_err(|e| start_err(format!("pgo.yaml Storage.{name}.Path {}: {e}", path.display())))?;
        crate::reach::check(path, run_as.uid, run_as.gid).map_err(|why| {
            start_err(format!(
                "pgo.yaml Storage.{name}.Path: PostgreSQL's OS user {} cannot reach {}: {why}",
                run_as.name,
                path.display()
            ))
        })?;
    }
    // The managers prove readiness at least as often as the operator looks.
    let probe = pgo_api::instance::ProbeSettings {
        period_ms: config.pgo.probe_period_ms.clamp(50, 500),
        timeout_ms: config.pgo.probe_timeout_ms.max(100),
    };
    let port_range = match &config.pgo.local_port_range {
        Some(r) => ports::parse_range(r).map_err(|e| start_err(format!("Pgo.LocalPortRange: {e}")))?,
        None => ports::DEFAULT_RANGE,
    };
    ports::check_range(&port_range, ports::ephemeral_range()).map_err(start_err)?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&home.store()).map_err(|e| start_err(e.to_string()))?);
    let exe = std::env::current_exe().map_err(|e| start_err(format!("cannot find this binary: {e}")))?;
    let platform: Arc<dyn Platform> = Arc::new(
        LocalPlatform::new(LocalSettings {
            home: home.root.clone(),
            data_dir: data_dir.clone(),
            exe,
            pg_bin_dir: Some(pg_bin.clone()),
            probe,
            port_range,
        })
        .map_err(|e| start_err(e.to_string()))?,
    );
    Ok(Backend {
        scopes: vec![Scope {
            namespace: String::new(),
            store,
            platform,
        }],
        config,
        describe: format!(
            "local platform, data in {}, PostgreSQL from {}",
            data_dir.display(),
            pg_bin.display()
        ),
        election: None,
        keeper: None,
    })
}

/// Every service proxy holds two descriptors per connection: the soft
/// limit is raised to the hard one, as servers do.
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(soft, hard, error = %e, "cannot raise the open-files limit");
    }
}

pub async fn run(args: RunArgs) -> Result<(), ServerError> {
    raise_descriptor_limit();
    let test_pause_after_fence_ms = args.test_pause_after_fence_ms;
    let home = Home::open(&args.home)?;
    // One server per home: two would fight over the same instances.
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.lock())
        .map_err(|e| start_err(format!("cannot open {}: {e}", home.lock().display())))?;
    let _lock =
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|_| {
            start_err(format!(
                "another postgres-operator is running with home {}",
                home.root.display()
            ))
        })?;

    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        start_err(format!(
            "cannot listen on {} (port {}): {e}",
            args.listen,
            args.listen.port()
        ))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| start_err(format!("cannot read the bound address: {e}")))?;

    let backend = match args.platform {
        PlatformKind::Local => local(&args, &home)?,
        PlatformKind::Kubernetes => crate::kubernetes::backend(&args, &home).await?,
    };
    let Backend {
        scopes,
        config,
        describe,
        election,
        keeper,
    } = backend;

    let restored = match &keeper {
        Some(k) => k.restore(&home).await?,
        None => None,
    };
    home.ensure_auth()?;

    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        hostname,
    ];
    let ip = bound.ip().to_string();
    if !hosts.contains(&ip) && !bound.ip().is_unspecified() {
        hosts.push(ip);
    }
    let mut tls_files = tls::ensure(&home.tls_dir(), &hosts).map_err(|e| start_err(e.to_string()))?;
    if let Some(k) = &keeper
        && k.keep(&home, restored).await? == crate::kept::Kept::Replaced
    {
        // Another operator's CA is the one kept: the certificate made
        // from this start's own CA is made again from it.
        let _ = std::fs::remove_file(&tls_files.server_cert);
        let _ = std::fs::remove_file(&tls_files.server_key);
        tls_files = tls::ensure(&home.tls_dir(), &hosts).map_err(|e| start_err(e.to_string()))?;
    }
    let auth = Auth::load(&home.users(), &home.roles()).map_err(|e| start_err(e.to_string()))?;
    let tls_config = tls::server_config(&tls_files).map_err(|e| start_err(e.to_string()))?;

    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    let url = if bound.is_ipv6() && !bound.ip().is_unspecified() {
        format!("https://[{host}]:{}", bound.port())
    } else {
        format!("https://{host}:{}", bound.port())
    };
    let exports = home.write_client_files(&tls_files.ca_cert, &url)?;

    let (stop_tx, stop) = watch::channel(false);
    let hooks = || Hooks {
        pause_after_fence: test_pause_after_fence_ms.map(std::time::Duration::from_millis),
        ..Hooks::default()
    };
    // One registry, scraped on the apiserver's /metrics.
    let mut registry = Registry::default();
    let operator_metrics = Metrics::register(registry.sub_registry_with_prefix("pgo_operator"));
    let api_metrics = ApiMetrics::new(registry);
    // One controller runtime per scope, each with heartbeats of its own:
    // a wedged loop in one namespace is not hidden by another's.
    let contexts: Vec<Arc<Context>> = scopes
        .iter()
        .map(|scope| {
            Arc::new(
                Context::new(
                    pgo_operator::cached(scope.store.clone()),
                    scope.platform.clone(),
                    config.clone(),
                )
                .with_hooks(hooks())
                .with_metrics(Arc::new(operator_metrics.with_own_heartbeats())),
            )
        })
        .collect();
    let scope_metrics: Vec<(String, Arc<Metrics>)> = scopes
        .iter()
        .zip(&contexts)
        .map(|(s, ctx)| (s.namespace.clone(), ctx.metrics.clone()))
        .collect();
    let liveness: pgo_apiserver::Liveness = Arc::new(move || {
        scope_metrics.iter().find_map(|(namespace, metrics)| {
            metrics
                .heartbeats
                .stale(LIVENESS_STALE, tokio::time::Instant::now())
                .map(|(controller, age)| {
                    let within = if namespace.is_empty() {
                        String::new()
                    } else {
                        format!(" (namespace {namespace})")
                    };
                    format!(
                        "the {controller} controller's loop{within} has not turned for {}s",
                        age.as_secs()
                    )
                })
        })
    });
    let (leading_tx, leading) = watch::channel(election.is_none());
    // Without an election (the local platform) this server leads: the
    // sender goes unused, and a closed channel keeps what it last said.
    let campaign = election.map(|e| {
        tracing::info!(identity = %e.election.identity, lease = %e.election.lease_name, "campaigning for the lease");
        tokio::spawn(e.campaign(leading_tx, stop.clone()))
    });
    let mut operators: Vec<tokio::task::JoinHandle<Leadership>> = contexts
        .into_iter()
        .map(|ctx| {
            tokio::spawn(pgo_operator::run_while_leading(
                ctx,
                leading.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let stores: Vec<Arc<dyn Store>> = scopes.iter().map(|s| s.store.clone()).collect();
    let first = scopes
        .first()
        .ok_or_else(|| start_err("no namespace to serve".into()))?;
    // Every namespace's state is made from this one.
    let base = AppState::new(first.store.clone(), first.platform.clone(), auth, config)
        .counting(stores)
        .with_metrics(api_metrics)
        .with_liveness(liveness);
    let states: Vec<Arc<AppState>> = scopes
        .iter()
        .map(|s| Arc::new(base.in_namespace(&s.namespace, s.store.clone(), s.platform.clone())))
        .collect();
    let app = pgo_apiserver::namespaced_router(states);
    let api = tokio::spawn(pgo_apiserver::serve(listener, tls_config, app, stop));
    tracing::info!(%url, home = %home.root.display(), "postgres-operator running: {describe}");
    println!(
        "postgres-operator is running. To use pgo:\n{exports}(also in {})",
        home.client_dir().join("env").display()
    );

    let lost = tokio::select! {
        _ = pgo_instance::shutdown_signal() => false,
        (ended, _, _) = futures::future::select_all(operators.iter_mut()) => matches!(ended, Ok(Leadership::Lost)),
    };
    if lost {
        tracing::error!("no longer the leader: stopping, to campaign again from a fresh start");
    } else {
        tracing::info!("stopping; PostgreSQL instances keep running and are adopted at the next start");
    }
    let _ = stop_tx.send(true);
    for operator in operators {
        if !operator.is_finished() {
            let _ = operator.await;
        }
    }
    if let Some(campaign) = campaign {
        let _ = campaign.await;
    }
    let _ = api.await;
    if lost {
        return Err(start_err("lost the leader lease".into()));
    }
    Ok(())
}
