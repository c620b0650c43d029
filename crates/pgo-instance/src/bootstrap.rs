//! A new data directory: `initdb`, the configuration pgo owns, and the first
//! users and database.

use crate::osuser::RunAs;
use pgo_api::custom_config;
use pgo_api::instance::{InstanceConfig, PostgresTls};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Present in a volume from a successful initdb until the setup SQL ran.
const SETUP_PENDING: &str = ".pgo-setup-pending";
/// Present in a volume from a restore until the restored primary promoted
/// and its recovery settings were reset.
const RESTORE_PENDING: &str = ".pgo-restore-pending";
/// The file of settings pgo writes; postgresql.conf includes it last.
const PGO_CONF: &str = "pgo.conf";
/// A custom configuration's postgresql.conf, included by pgo.conf between
/// the defaults pgo chooses and the settings it owns.
const CUSTOM_CONF: &str = "pgo-custom.conf";

pub fn read_secret(dir: &Path, file: &str) -> Result<String, String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| format!("cannot read secret {}: {e}", path.display()))
}

pub fn is_initialized(config: &InstanceConfig) -> bool {
    config.pgdata().join("PG_VERSION").is_file()
}

pub fn setup_pending(config: &InstanceConfig) -> bool {
    config.volume_dir.join(SETUP_PENDING).exists()
}

pub fn restore_pending(config: &InstanceConfig) -> bool {
    config.volume_dir.join(RESTORE_PENDING).exists()
}

/// A new data directory restored from a pgBackRest repository, into a
/// scratch directory renamed into place once whole, as after initdb.
pub async fn restore(
    config: &InstanceConfig,
    r: &pgo_api::instance::InstanceRestore,
    run_as: &RunAs,
) -> Result<(), String> {
    let scratch = scratch(config, run_as, "pgdata.restore")?;
    std::fs::create_dir(&scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    run_as.own(&scratch, 0o700)?;
    crate::backrest::restore(config, r, run_as, &scratch, false).await?;
    into_place(config, &scratch, &[SETUP_PENDING, RESTORE_PENDING], "restored").await
}

/// A new data directory copied from a pg_basebackup copy, then set up
/// (passwords from this cluster's secrets) as after initdb.
pub async fn from_copy(config: &InstanceConfig, source: &Path, run_as: &RunAs) -> Result<(), String> {
    let scratch = scratch(config, run_as, "pgdata.copy")?;
    crate::copies::seed(config, source, run_as, &scratch).await?;
    into_place(config, &scratch, &[SETUP_PENDING], "copied").await
}

/// The marker of a restore in place done, named after its id.
fn restored_marker(config: &InstanceConfig, id: &str) -> PathBuf {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    config.volume_dir.join(format!(".pgo-restored-{id}"))
}

/// Whether the restore in place named `id` was done on this volume.
pub fn restored(config: &InstanceConfig, id: &str) -> bool {
    restored_marker(config, id).exists()
}

/// A restore in place over the existing data directory (`--delta`), with
/// PostgreSQL stopped. Done once per id: a manager that dies half-way does
/// it again, and a half-restored directory is never started meanwhile.
pub async fn restore_in_place(
    config: &InstanceConfig,
    r: &pgo_api::instance::InstanceRestore,
    id: &str,
    run_as: &RunAs,
) -> Result<(), String> {
    let pgdata = config.pgdata();
    crate::backrest::restore(config, r, run_as, &pgdata, true).await?;
    let volume = &config.volume_dir;
    std::fs::write(volume.join(RESTORE_PENDING), b"")
        .map_err(|e| format!("cannot mark {}: {e}", volume.display()))?;
    sync_filesystem(volume).await?;
    std::fs::write(restored_marker(config, id), b"")
        .map_err(|e| format!("cannot mark {}: {e}", volume.display()))?;
    sync_filesystem(volume).await
}

/// Once the restored primary has promoted: its recovery settings reset,
/// so nothing copied from it replays to the restore's target again.
pub async fn finish_restore(config: &InstanceConfig, client: &tokio_postgres::Client) -> Result<(), String> {
    let sql_err = |e: tokio_postgres::Error| format!("finishing the restore: {}", describe(&e));
    for setting in crate::backrest::RESTORE_SETTINGS {
        client
            .batch_execute(&format!("ALTER SYSTEM RESET {setting}"))
            .await
            .map_err(sql_err)?;
    }
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(sql_err)?;
    let marker = config.volume_dir.join(RESTORE_PENDING);
    std::fs::remove_file(&marker).map_err(|e| format!("cannot clear {}: {e}", marker.display()))
}

/// The same with PostgreSQL stopped (a restore replayed inside its job):
/// the settings go from `postgresql.auto.conf` by hand.
pub async fn restore_done_offline(config: &InstanceConfig, run_as: &RunAs) -> Result<(), String> {
    let auto = config.pgdata().join("postgresql.auto.conf");
    let text = std::fs::read_to_string(&auto).map_err(|e| format!("cannot read {}: {e}", auto.display()))?;
    run_as.write(
        &auto,
        &crate::replay::without_settings(&text, crate::backrest::RESTORE_SETTINGS),
    )?;
    let marker = config.volume_dir.join(RESTORE_PENDING);
    std::fs::remove_file(&marker).map_err(|e| format!("cannot clear {}: {e}", marker.display()))?;
    sync_filesystem(&config.volume_dir).await
}

/// Runs initdb into a scratch directory and renames it into place, so an
/// interrupted initdb never leaves a half-made data directory behind.
pub async fn initdb(config: &InstanceConfig, run_as: &RunAs, bin: &Path) -> Result<(), String> {
    let volume = &config.volume_dir;
    let scratch = scratch(config, run_as, "pgdata.initdb")?;
    let superuser = read_secret(&config.superuser_secret, "username")?;
    let password = read_secret(&config.superuser_secret, "password")?;
    let pwfile = volume.join(".pwfile");
    run_as.write(&pwfile, &password)?;
    let mut cmd = tokio::process::Command::new(bin.join("initdb"));
    cmd.arg("--pgdata")
        .arg(&scratch)
        .arg("--data-checksums")
        .arg("--auth=scram-sha-256")
        .arg(format!("--username={superuser}"))
        .arg(format!("--pwfile={}", pwfile.display()))
        .arg("--encoding=UTF8")
        .arg("--locale=C.UTF-8")
        .arg("--no-instructions")
        // Synced below with one syncfs() instead of an fsync per file: the
        // same durability (what PostgreSQL 16's --sync-method=syncfs does).
        .arg("--no-sync")
        .current_dir(volume)
        .kill_on_drop(true);
    run_as.apply(&mut cmd);
    let output = cmd.output().await;
    let _ = std::fs::remove_file(&pwfile);
    let output = output.map_err(|e| format!("cannot run {}: {e}", bin.join("initdb").display()))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed ({}): {}",
            output.status,
            tail(&output.stderr)
        ));
    }
    let conf = scratch.join("postgresql.conf");
    let mut text =
        std::fs::read_to_string(&conf).map_err(|e| format!("cannot read {}: {e}", conf.display()))?;
    text.push_str(&format!(
        "\n# Settings pgo manages; they win over the above.\ninclude_if_exists = '{PGO_CONF}'\n"
    ));
    run_as.write(&conf, &text)?;
    into_place(config, &scratch, &[SETUP_PENDING], "new").await
}

/// The volume made and given to PostgreSQL's user, and `name` in it
/// cleared: where a new data directory is made before it takes the real
/// name.
fn scratch(config: &InstanceConfig, run_as: &RunAs, name: &str) -> Result<PathBuf, String> {
    let volume = &config.volume_dir;
    std::fs::create_dir_all(volume).map_err(|e| format!("cannot create {}: {e}", volume.display()))?;
    run_as.own(volume, 0o700)?;
    let scratch = volume.join(name);
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch).map_err(|e| format!("cannot clear {}: {e}", scratch.display()))?;
    }
    Ok(scratch)
}

/// Marks on the volume what the first start must do (`markers`), then
/// makes the data directory in `scratch` durable and renames it into
/// place: only a complete, durable data directory ever takes the real
/// name. `what` names it in an error.
async fn into_place(
    config: &InstanceConfig,
    scratch: &Path,
    markers: &[&str],
    what: &str,
) -> Result<(), String> {
    let volume = &config.volume_dir;
    for marker in markers {
        std::fs::write(volume.join(marker), b"")
            .map_err(|e| format!("cannot mark {}: {e}", volume.display()))?;
    }
    sync_filesystem(volume).await?;
    std::fs::rename(scratch, config.pgdata())
        .map_err(|e| format!("cannot move the {what} data directory into place: {e}"))?;
    sync_filesystem(volume).await
}

/// Flushes everything written to the filesystem holding `dir`. Off the
/// async workers: its time depends on what else is dirty there, and the
/// manager's endpoints must answer meanwhile.
pub(crate) async fn sync_filesystem(dir: &Path) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        let handle = std::fs::File::open(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
        nix::unistd::syncfs(&handle)
            .map_err(|e| format!("cannot sync the filesystem of {}: {e}", dir.display()))
    })
    .await
    .map_err(|e| format!("the filesystem sync did not finish: {e}"))?;
    let took = started.elapsed();
    if took > std::time::Duration::from_secs(5) {
        tracing::warn!(
            seconds = took.as_secs(),
            "syncfs was slow: other writes on this filesystem were flushed too"
        );
    }
    outcome
}

/// Copies the primary's data directory with pg_basebackup, creating this
/// replica's slot on the primary as part of the copy.
pub async fn basebackup(config: &InstanceConfig, run_as: &RunAs, bin: &Path) -> Result<(), String> {
    let upstream = config
        .primary
        .as_ref()
        .ok_or("a replica needs a primary to copy from")?;
    let volume = &config.volume_dir;
    let scratch = scratch(config, run_as, "pgdata.basebackup")?;
    let passfile = write_passfile(config, run_as)?;
    let user = read_secret(&config.replication_secret, "username")?;
    let run = |create_slot: bool| {
        let mut cmd = tokio::process::Command::new(bin.join("pg_basebackup"));
        cmd.arg("--pgdata")
            .arg(&scratch)
            .arg(format!("--host={}", upstream.host))
            .arg(format!("--port={}", upstream.port))
            .arg(format!("--username={user}"))
            .arg("--no-password")
            .arg("--wal-method=stream")
            .arg("--checkpoint=fast")
            .arg(format!("--slot={}", upstream.slot))
            // Synced below with one syncfs(), as after initdb.
            .arg("--no-sync")
            .env("PGPASSFILE", &passfile)
            .env("PGAPPNAME", &config.name)
            .envs(usable_tls(config).into_iter().flat_map(|tls| {
                [
                    ("PGSSLMODE", std::ffi::OsString::from("verify-full")),
                    ("PGSSLROOTCERT", tls.ca_file.clone().into_os_string()),
                ]
            }))
            .current_dir(volume)
            .kill_on_drop(true);
        if create_slot {
            cmd.arg("--create-slot");
        }
        run_as.apply(&mut cmd);
        cmd.output()
    };
    let mut output = run(true)
        .await
        .map_err(|e| format!("cannot run {}: {e}", bin.join("pg_basebackup").display()))?;
    // A retry after a copy that failed half-way finds its slot made already.
    if !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("already exists") {
        let _ = std::fs::remove_dir_all(&scratch);
        output = run(false)
            .await
            .map_err(|e| format!("cannot run {}: {e}", bin.join("pg_basebackup").display()))?;
    }
    if !output.status.success() {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(format!(
            "pg_basebackup from {}:{} failed ({}): {}",
            upstream.host,
            upstream.port,
            output.status,
            tail(&output.stderr)
        ));
    }
    into_place(config, &scratch, &[], "copied").await
}

/// The last lines of a command's error output, on one line.
pub(crate) fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// The replication user's password for libpq (pg_basebackup, the WAL
/// receiver), readable only by PostgreSQL's user.
fn write_passfile(config: &InstanceConfig, run_as: &RunAs) -> Result<PathBuf, String> {
    let user = read_secret(&config.replication_secret, "username")?;
    let password = read_secret(&config.replication_secret, "password")?;
    let path = config.volume_dir.join(".pgpass");
    run_as.write(&path, &pgpass_line(&user, &password))?;
    Ok(path)
}

/// A libpq password file's line for `user` on every host, port and database.
pub(crate) fn pgpass_line(user: &str, password: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:{}:{}\n", escape(user), escape(password))
}

/// A value inside a libpq connection string.
fn conninfo_value(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A standby name no instance can have (names never hold ':'): what a
/// synchronous primary waits for while it has no replica, so a commit is
/// never acknowledged by nobody.
pub const NO_REPLICA_YET: &str = "pgo:no-replica-yet";

/// ANY 1 of every replica: a commit is acknowledged once one of them has it
/// on disk; with none streaming, commits wait. Asynchronous: empty.
pub fn synchronous_standby_names(synchronous: bool, standbys: &[String]) -> String {
    let mut names: Vec<&str> = standbys.iter().map(String::as_str).collect();
    if names.is_empty() {
        if !synchronous {
            return String::new();
        }
        names.push(NO_REPLICA_YET);
    }
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect();
    format!("ANY 1 ({})", quoted.join(", "))
}

fn conf_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Writes the settings and access rules pgo owns; run before every start so
/// a changed port or network takes effect.
pub fn write_config(config: &InstanceConfig, run_as: &RunAs) -> Result<(), String> {
    config
        .validate()
        .map_err(|e| format!("the instance config is refused: {e}"))?;
    let pgdata = config.pgdata();
    // pgo's choices, which a custom postgresql.conf may change.
    let defaults = [
        ("max_wal_senders", "10".into()),
        ("max_replication_slots", "10".into()),
        ("log_line_prefix", conf_literal("%m [%p] ")),
        // The default 5 s would add 5 s to every promotion before the
        // other replicas look for the new primary.
        ("wal_retrieve_retry_interval", conf_literal("500ms")),
    ];
    // What the manager, replication and failover depend on; the custom
    // file's lines for these are comments (custom_config::OWNED).
    let owned = [
        ("listen_addresses", conf_literal(&config.listen_address)),
        ("port", config.port.to_string()),
        // TCP only: nothing to get wrong about socket directories and peers.
        ("unix_socket_directories", conf_literal("")),
        ("password_encryption", conf_literal("scram-sha-256")),
        ("wal_level", conf_literal("replica")),
        ("hot_standby", "on".into()),
        // pg_rewind needs it to bring a former primary back.
        ("wal_log_hints", "on".into()),
        ("logging_collector", "off".into()),
    ];
    let mut conf =
        String::from("# Written by the pgo instance manager at every start and reload; edits are lost.\n");
    for (k, v) in defaults {
        conf.push_str(&format!("{k} = {v}\n"));
    }
    let custom = config.custom.as_ref().and_then(|c| c.postgresql_conf.as_deref());
    let custom_path = pgdata.join(CUSTOM_CONF);
    match custom {
        Some(text) => {
            run_as.write(&custom_path, &custom_config::without_owned(text))?;
            conf.push_str(&format!("include_if_exists = '{CUSTOM_CONF}'\n"));
        }
        None => match std::fs::remove_file(&custom_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", custom_path.display())),
        },
    }
    for (k, v) in owned {
        conf.push_str(&format!("{k} = {v}\n"));
    }
    if let Some(b) = &config.backrest {
        crate::backrest::write(config, b, run_as)?;
        for (k, v) in crate::backrest::archive_settings(config, b) {
            conf.push_str(&format!("{k} = {}\n", conf_literal(&v)));
        }
    }
    let tls = usable_tls(config);
    if let Some(tls) = tls {
        let path = |p: &Path| conf_literal(&p.to_string_lossy());
        conf.push_str("ssl = on\n");
        conf.push_str(&format!("ssl_cert_file = {}\n", path(&tls.cert_file)));
        conf.push_str(&format!("ssl_key_file = {}\n", path(&tls.key_file)));
        conf.push_str(&format!("ssl_ca_file = {}\n", path(&tls.ca_file)));
        conf.push_str("ssl_min_protocol_version = 'TLSv1.2'\n");
    }
    let standby_signal = pgdata.join("standby.signal");
    match &config.primary {
        Some(up) => {
            let passfile = write_passfile(config, run_as)?;
            let user = read_secret(&config.replication_secret, "username")?;
            let mut conninfo = format!(
                "host={} port={} user={} passfile={} application_name={}",
                conninfo_value(&up.host),
                up.port,
                conninfo_value(&user),
                conninfo_value(&passfile.to_string_lossy()),
                conninfo_value(&config.name)
            );
            if let Some(tls) = tls {
                conninfo.push_str(&format!(
                    " sslmode=verify-full sslrootcert={}",
                    conninfo_value(&tls.ca_file.to_string_lossy())
                ));
            }
            conf.push_str(&format!("primary_conninfo = {}\n", conf_literal(&conninfo)));
            conf.push_str(&format!("primary_slot_name = {}\n", conf_literal(&up.slot)));
            if !standby_signal.exists() {
                run_as.write(&standby_signal, "")?;
            }
        }
        None => {
            let value = synchronous_standby_names(config.synchronous, &config.sync_standbys);
            conf.push_str(&format!("synchronous_standby_names = {}\n", conf_literal(&value)));
        }
    }
    run_as.write(&pgdata.join(PGO_CONF), &conf)?;

    let replication_user = read_secret(&config.replication_secret, "username")?;
    let mut rules = hba(&config.allowed_cidrs, &replication_user, tls.is_some());
    if let Some(c) = &config.custom
        && let Some(custom) = &c.pg_hba_conf
    {
        rules.push_str(&format!(
            "\n# From the custom configuration {}; pgo's rules above come first.\n",
            c.config_map
        ));
        rules.push_str(custom);
        rules.push('\n');
    }
    run_as.write(&pgdata.join("pg_hba.conf"), &rules)
}

/// The TLS files, when every one of them is there. A pod made from a
/// template older than its config (a custom strategy not updated, or the
/// moment before a rolling update restarts it) lacks some: PostgreSQL then
/// stays as it was, in the clear, rather than refuse every client or fail
/// to start.
fn usable_tls(config: &InstanceConfig) -> Option<&PostgresTls> {
    let tls = config.postgres_tls.as_ref()?;
    let missing = missing_files(tls);
    if missing.is_empty() {
        return Some(tls);
    }
    tracing::warn!(missing = %missing.join(", "), "PostgreSQL's TLS files are not mounted; connections stay in the clear until the pod is made from a template that mounts them");
    None
}

/// When each of PostgreSQL's TLS files last changed; `None` without TLS.
pub fn tls_files_stamp(config: &InstanceConfig) -> Option<Vec<Option<std::time::SystemTime>>> {
    let tls = config.postgres_tls.as_ref()?;
    Some(
        tls.files()
            .into_iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect(),
    )
}

fn missing_files(tls: &PostgresTls) -> Vec<String> {
    tls.files()
        .into_iter()
        .filter(|f| !f.exists())
        .map(|f| f.display().to_string())
        .collect()
}

/// pg_hba.conf: every connection proves a password; with TLS, one from
/// another host also comes over TLS (the pod's own loopback, where the
/// manager and the exporter connect, never leaves it).
fn hba(cidrs: &[String], replication_user: &str, tls: bool) -> String {
    let mut hba = String::from(
        "# Written by the pgo instance manager at every start; edits are lost.\n# TCP only; every connection proves a password (SCRAM).\n",
    );
    if tls {
        for lo in ["127.0.0.1/32", "::1/128"] {
            hba.push_str(&format!("host all all {lo} scram-sha-256\n"));
        }
    }
    let kind = if tls { "hostssl" } else { "host" };
    for cidr in cidrs {
        hba.push_str(&format!("{kind} all all {cidr} scram-sha-256\n"));
        hba.push_str(&format!(
            "{kind} replication {replication_user} {cidr} scram-sha-256\n"
        ));
    }
    hba
}

pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Creates the replication user, the application user and its database.
/// Every statement may run twice: a manager that died half-way runs it again.
pub async fn setup(config: &InstanceConfig, client: &tokio_postgres::Client) -> Result<(), String> {
    let repl_user = read_secret(&config.replication_secret, "username")?;
    let repl_pass = read_secret(&config.replication_secret, "password")?;
    let app_user = read_secret(&config.app_secret, "username")?;
    let app_pass = read_secret(&config.app_secret, "password")?;
    let sql_err = |what: &str, e: tokio_postgres::Error| format!("setup: {what}: {}", describe(&e));
    // Before any replica exists, a synchronous primary would wait for ever
    // on its own bootstrap. Nothing a client wrote is here yet.
    client
        .batch_execute("SET synchronous_commit TO local")
        .await
        .map_err(|e| sql_err("synchronous_commit", e))?;
    for (user, pass, attrs) in [
        (&repl_user, &repl_pass, "LOGIN REPLICATION"),
        (&app_user, &app_pass, "LOGIN"),
    ] {
        let exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[user])
            .await
            .map_err(|e| sql_err("look up role", e))?
            .is_some();
        let verb = if exists { "ALTER" } else { "CREATE" };
        client
            .batch_execute(&format!(
                "{verb} ROLE {} WITH {attrs} PASSWORD {}",
                ident(user),
                literal(pass)
            ))
            .await
            .map_err(|e| sql_err(&format!("{verb} ROLE {user}"), e))?;
    }
    let db = &config.database;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[db])
        .await
        .map_err(|e| sql_err("look up database", e))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!(
                "CREATE DATABASE {} OWNER {}",
                ident(db),
                ident(&app_user)
            ))
            .await
            .map_err(|e| sql_err(&format!("CREATE DATABASE {db}"), e))?;
    }
    let marker = config.volume_dir.join(SETUP_PENDING);
    std::fs::remove_file(&marker).map_err(|e| format!("cannot clear {}: {e}", marker.display()))?;
    Ok(())
}

/// A connection as the superuser, over TCP.
pub async fn connect(config: &InstanceConfig) -> Result<tokio_postgres::Client, String> {
    let user = read_secret(&config.superuser_secret, "username")?;
    let password = read_secret(&config.superuser_secret, "password")?;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.listen_address)
        .port(config.port)
        .user(&user)
        .password(password)
        .dbname("postgres")
        .application_name("pgo-instance-manager")
        .connect_timeout(Duration::from_secs(2));
    let (client, connection) =
        tokio::time::timeout(Duration::from_secs(3), pg.connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| "connecting to PostgreSQL timed out".to_string())?
            .map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The server's message where there is one, not just "db error".
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_used_only_when_every_file_is_mounted() {
        let dir = std::env::temp_dir().join(format!("pgo-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = PostgresTls {
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
            ca_file: dir.join("ca.crt"),
        };
        std::fs::write(&tls.cert_file, "x").unwrap();
        std::fs::write(&tls.key_file, "x").unwrap();
        assert_eq!(missing_files(&tls), [tls.ca_file.display().to_string()]);
        std::fs::write(&tls.ca_file, "x").unwrap();
        assert!(missing_files(&tls).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_tls_only_the_pods_own_loopback_may_connect_in_the_clear() {
        let cidrs = ["0.0.0.0/0".to_string()];
        let plain = hba(&cidrs, "primaryuser", false);
        assert!(
            plain.contains("\nhost all all 0.0.0.0/0 scram-sha-256\n"),
            "{plain}"
        );
        assert!(!plain.contains("hostssl"));
        let tls = hba(&cidrs, "primaryuser", true);
        let rules: Vec<&str> = tls.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "host all all 127.0.0.1/32 scram-sha-256",
                "host all all ::1/128 scram-sha-256",
                "hostssl all all 0.0.0.0/0 scram-sha-256",
                "hostssl replication primaryuser 0.0.0.0/0 scram-sha-256",
            ]
        );
    }

    #[test]
    fn synchronous_replication_never_becomes_asynchronous() {
        let two = ["db-a".to_string(), "db-b".to_string()];
        assert_eq!(synchronous_standby_names(true, &two), r#"ANY 1 ("db-a", "db-b")"#);
        assert_eq!(
            synchronous_standby_names(true, &[]),
            r#"ANY 1 ("pgo:no-replica-yet")"#,
            "no replica: commits wait"
        );
        assert_eq!(synchronous_standby_names(false, &[]), "");
    }
}
