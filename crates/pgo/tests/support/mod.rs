//! A real `postgres-operator run` in a temporary home on OS-assigned ports,
//! and the `pgo` binary pointed at it. Dropping a [`Server`] kills the
//! server and every instance manager and postmaster it started, whether the
//! test passed or not.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kube;
pub mod kubelet;
pub mod loopfs;
pub mod pod;
pub mod writer;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PGO: &str = env!("CARGO_BIN_EXE_pgo");
pub const SERVER: &str = env!("CARGO_BIN_EXE_postgres-operator");

pub struct Server {
    dir: tempfile::TempDir,
    pub home: PathBuf,
    child: Option<Child>,
    pub url: String,
    pub pgouser: String,
    pub ca: String,
    log: PathBuf,
    starts: u32,
    /// A command the server runs under (`prlimit …`), if any.
    wrapper: Vec<String>,
    /// The arguments and environment it was started with, for a restart.
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

/// A temporary directory PostgreSQL's OS user can reach.
pub fn reachable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts with extra `run` arguments.
    pub fn start_with(extra: &[&str]) -> Server {
        Server::start_prepared(extra, |_| {})
    }

    /// Starts after `prepare` has put files in the new home (pgo.yaml, say).
    pub fn start_prepared(extra: &[&str], prepare: impl FnOnce(&Path)) -> Server {
        Server::start_env(extra, &[], prepare)
    }

    /// Starts with extra environment for the server (its test hooks).
    pub fn start_env(extra: &[&str], env: &[(&str, &str)], prepare: impl FnOnce(&Path)) -> Server {
        let mut s = Server::prepared(prepare, vec![]);
        s.launch("127.0.0.1:0", extra, env);
        s
    }

    /// Starts with at most `nofile` open files (soft and hard), as a server
    /// on a machine with a low limit would run.
    pub fn start_limited(nofile: u32) -> Server {
        let wrapper = vec![
            "prlimit".into(),
            format!("--nofile={nofile}:{nofile}"),
            "--".into(),
        ];
        let mut s = Server::prepared(|_| {}, wrapper);
        s.launch("127.0.0.1:0", &[], &[]);
        s
    }

    /// A new home, prepared, and a server not started yet.
    fn prepared(prepare: impl FnOnce(&Path), wrapper: Vec<String>) -> Server {
        let dir = reachable_tempdir();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        prepare(&home);
        let log = dir.path().join("server.log");
        Server {
            dir,
            home,
            child: None,
            url: String::new(),
            pgouser: String::new(),
            ca: String::new(),
            log,
            starts: 0,
            wrapper,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn launch(&mut self, listen: &str, extra: &[&str], env: &[(&str, &str)]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env_file = self.home.join("client/env");
        let _ = std::fs::remove_file(&env_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // The local platform unless the test names one.
        let platform: &[&str] = if extra.contains(&"--platform") {
            &[]
        } else {
            &["--platform", "local"]
        };
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(SERVER);
                c
            }
            None => Command::new(SERVER),
        };
        let child = command
            .arg("run")
            .args(platform)
            .arg("--home")
            .arg(&self.home)
            .args(["--listen", listen])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&env_file) {
                for line in text.lines() {
                    let line = line.trim_start_matches("export ");
                    if let Some((k, v)) = line.split_once('=') {
                        match k {
                            "PGO_APISERVER_URL" => self.url = v.to_string(),
                            "PGOUSER" => self.pgouser = v.to_string(),
                            "PGO_CA_CERT" => self.ca = v.to_string(),
                            _ => {}
                        }
                    }
                }
                if !self.url.is_empty() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same apiserver port, with the same arguments.
    /// Sets a variable of the environment the next (re)start gets.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port());
        let extra = self.extra.clone();
        let env = self.env.clone();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.launch(&listen, &extra, &env);
    }

    pub fn pgo_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PGO);
        c.args(args)
            .env("PGO_APISERVER_URL", &self.url)
            .env("PGOUSER", &self.pgouser)
            .env("PGO_CA_CERT", &self.ca)
            .stdin(Stdio::null());
        c
    }

    pub fn pgo(&self, args: &[&str]) -> Output {
        self.pgo_command(args).output().unwrap()
    }

    /// Runs pgo and returns its standard output; fails the test if pgo fails.
    pub fn pgo_ok(&self, args: &[&str]) -> String {
        let out = self.pgo(args);
        assert!(
            out.status.success(),
            "pgo {args:?} failed ({}):\nstdout: {}\nstderr: {}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs pgo, expects it to fail, and returns its standard error.
    pub fn pgo_err(&self, args: &[&str]) -> String {
        let out = self.pgo(args);
        assert!(
            !out.status.success(),
            "pgo {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn show_json(&self, cluster: &str) -> serde_json::Value {
        serde_json::from_str(&self.pgo_ok(&["show", "cluster", cluster, "-o", "json", "--show-secrets"]))
            .unwrap()
    }

    pub fn instance_dir(&self, instance: &str) -> PathBuf {
        self.home.join("instances").join(instance)
    }

    pub fn postmaster_pid(&self, volume: &str) -> u32 {
        let text = std::fs::read_to_string(
            self.home
                .join("volumes")
                .join(volume)
                .join("pgdata/postmaster.pid"),
        )
        .unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Polls `f` until it is true or `secs` pass.
    pub fn wait_until(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nserver log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        pgo_platform::local::kill_instance_processes(&self.home, &self.home.join("volumes"));
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.home.display(), self.log());
            // What each instance manager said: a failure's cause is often there.
            let instances = self.home.join("instances");
            for dir in std::fs::read_dir(&instances).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(dir.path().join("instance.log")).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(40)..].join("\n");
                eprintln!(
                    "--- instance log {} (last 40 lines) ---\n{tail}",
                    dir.path().display()
                );
            }
        }
    }
}

/// Credentials of `user` from a `show cluster --show-secrets -o json` view.
pub fn password(view: &serde_json::Value, user: &str) -> String {
    view["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == user)
        .unwrap()["password"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Port of the named service in a cluster view.
pub fn service_port(view: &serde_json::Value, service: &str) -> u16 {
    view["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap()["port"]
        .as_u64()
        .unwrap() as u16
}

pub async fn connect(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(db)
        .connect_timeout(Duration::from_secs(5))
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// True while `pid` runs (zombies do not count).
/// The application user's connection to `service` of `cluster`.
pub async fn app_client(server: &Server, cluster: &str, service: &str) -> tokio_postgres::Client {
    let view = server.show_json(cluster);
    connect(
        service_port(&view, service),
        "testuser",
        &password(&view, "testuser"),
        "userdb",
    )
    .await
    .unwrap()
}

/// The rows of table `t`, which the backup and restore tests write.
pub async fn count_rows(c: &tokio_postgres::Client) -> i64 {
    c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0)
}

/// Waits up to 30 s until `c` sees `rows` rows in `t` (a replica that
/// has not replayed the table yet sees none); returns what it saw last.
pub async fn until_count(c: &tokio_postgres::Client, rows: i64) -> i64 {
    let mut seen = 0;
    for _ in 0..300 {
        seen = c
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .map_or(0, |r| r.get::<_, i64>(0));
        if seen == rows {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    seen
}

pub fn is_running(pid: u32) -> bool {
    pgo_platform::local::is_alive(pid)
}

/// A server whose operator probes every 200 ms, for tests that watch
/// readiness change.
pub fn fast_server() -> Server {
    Server::start_prepared(&[], |home| {
        std::fs::write(home.join("pgo.yaml"), "Pgo:\n  ProbePeriodMs: 200\n").unwrap();
    })
}

/// `pid` and every process below it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    all.extend(pgo_platform::local::descendants(pid));
    all
}

pub fn signal_all(pids: &[u32], sig: nix::sys::signal::Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), sig);
    }
}

/// Names of the members of `view` with `role` ("Primary" or "Replica").
pub fn members(view: &serde_json::Value, role: &str) -> Vec<String> {
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == role)
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn member<'a>(view: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap()
}

pub fn targets(view: &serde_json::Value, service: &str) -> Vec<String> {
    view["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Runs `sql` with psql as `postgres` on `port`; its unaligned output.
pub fn psql(port: u16, password: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", "postgres", "-tAc", sql, "postgres"])
        .env("PGPASSWORD", password)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sql` with psql as `postgres` where the libpq string `conninfo`
/// says: its unaligned output, or what psql said when it failed.
pub fn psql_at(conninfo: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(format!("{conninfo} user=postgres dbname=postgres"))
        .args(["-tAc", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// A server with fast probes and a short auto failover timer.
pub fn autofail_server(sleep_seconds: u64) -> Server {
    Server::start_prepared(&[], |home| {
        let yaml = format!("Pgo:\n  ProbePeriodMs: 200\n  AutofailSleepSeconds: {sleep_seconds}\n");
        std::fs::write(home.join("pgo.yaml"), yaml).unwrap();
    })
}

impl Server {
    /// The instance manager and every PostgreSQL process of `instance`.
    pub fn processes_of(&self, instance: &str) -> Vec<u32> {
        let dir = self.instance_dir(instance);
        let mut pids = Vec::new();
        if let Ok(text) = std::fs::read_to_string(dir.join("manager.pid")) {
            pids.push(text.trim().parse().unwrap());
        }
        if let Ok(config) = std::fs::read_to_string(dir.join("instance.json")) {
            let config: serde_json::Value = serde_json::from_str(&config).unwrap();
            let pgdata = Path::new(config["volumeDir"].as_str().unwrap()).join("pgdata/postmaster.pid");
            if let Ok(text) = std::fs::read_to_string(pgdata) {
                pids.extend(process_tree(text.lines().next().unwrap().trim().parse().unwrap()));
            }
        }
        pids
    }

    /// The cluster's current primary, by the store.
    pub fn primary(&self, cluster: &str) -> String {
        self.show_json(cluster)["primary"].as_str().unwrap().to_string()
    }
}

/// A connection as `postgres` through the cluster's primary service.
pub async fn admin(view: &serde_json::Value) -> tokio_postgres::Client {
    let cluster = view["name"].as_str().unwrap();
    connect(
        service_port(view, cluster),
        "postgres",
        &password(view, "postgres"),
        "postgres",
    )
    .await
    .unwrap()
}

/// An HTTPS client that trusts the server's CA.
pub fn https_client(server: &Server) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&server.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .no_proxy()
        .build()
        .unwrap()
}

/// The admin user and password from the server's first start.
pub fn admin_credentials(server: &Server) -> (String, String) {
    let text = std::fs::read_to_string(&server.pgouser).unwrap();
    let (u, p) = text.trim().split_once(':').unwrap();
    (u.to_string(), p.to_string())
}

/// A new apiserver user with `role`, as `postgres-operator user add` makes
/// one: its name and password.
pub fn add_user(server: &Server, name: &str, role: &str) -> (String, String) {
    let out = Command::new(SERVER)
        .args(["user", "add", name, "--role", role, "--home"])
        .arg(&server.home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    let (user, pass) = line.trim().split_once(':').unwrap();
    (user.to_string(), pass.to_string())
}

/// The PostgreSQL binaries the product itself would use (the newest
/// installed), never a version named by hand.
pub fn pg_bin_dir() -> PathBuf {
    pgo_platform::find_pg_bin_dir(None).unwrap()
}

/// Runs `postgres-operator run` on a home holding `pgo_yaml`, expecting it
/// to refuse to start; what it printed on standard error.
pub fn refused_start(pgo_yaml: &str) -> String {
    let dir = reachable_tempdir();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("pgo.yaml"), pgo_yaml).unwrap();
    let out = Command::new(SERVER)
        .args(["run", "--home"])
        .arg(&home)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started with {pgo_yaml:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A fast server with pgo.yaml's `Cluster:` section set to `cluster_yaml`
/// (pgBackRest is on by default).
pub fn backrest_server(cluster_yaml: &str) -> Server {
    let yaml = format!("Pgo:\n  ProbePeriodMs: 200\n{cluster_yaml}");
    Server::start_prepared(&[], move |home| {
        std::fs::write(home.join("pgo.yaml"), yaml).unwrap();
    })
}

/// What `pgo show pvc -o json` lists: each volume's name and what it holds.
pub fn volumes_held(pvcs: &serde_json::Value) -> Vec<(String, String)> {
    pvcs.as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("holds"))
        })
        .collect()
}
