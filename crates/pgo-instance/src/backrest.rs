//! pgBackRest beside PostgreSQL: its configuration, the archive command,
//! the stanza, and running its commands as PostgreSQL's user.
//!
//! Everything pgBackRest keeps per instance (its config, the spool of
//! asynchronous archiving, its locks) is on the instance's volume, outside
//! PGDATA, so it survives restarts and no PostgreSQL tool copies it. It
//! reaches PostgreSQL over TCP like everything else here (`PGHOST`), with
//! the superuser's password in a passfile of its own.

use crate::bootstrap::read_secret;
use crate::osuser::RunAs;
use pgo_api::instance::{BackrestRemote, InstanceBackrest, InstanceConfig, InstanceRestore};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Debian package, named when the binary is missing.
const PACKAGE: &str = "pgbackrest";

/// Where an instance's pgBackRest files are.
pub struct Paths {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub passfile: PathBuf,
}

pub fn paths(config: &InstanceConfig) -> Paths {
    let dir = config.backrest_dir();
    Paths {
        conf: config.backrest_conf(),
        passfile: dir.join(".pgpass"),
        dir,
    }
}

/// The `pgbackrest` binary: `$PGO_PGBACKREST`, else the first on `PATH`.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PGO_PGBACKREST") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("pgbackrest"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("pgbackrest is not installed (the Debian package {PACKAGE}); WAL cannot be archived")
        })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// PostgreSQL's settings for archiving into the repository.
pub fn archive_settings(config: &InstanceConfig, b: &InstanceBackrest) -> Vec<(&'static str, String)> {
    let bin = binary().unwrap_or_else(|_| PathBuf::from("pgbackrest"));
    let command = format!(
        "{} --config={} --stanza={} archive-push \"%p\"",
        shell_quote(&bin.to_string_lossy()),
        shell_quote(&paths(config).conf.to_string_lossy()),
        b.stanza
    );
    vec![
        ("archive_mode", "on".into()),
        ("archive_command", command),
        ("archive_timeout", format!("{}s", b.archive_timeout_seconds)),
    ]
}

/// The `[global]` settings of every config this manager writes for
/// pgBackRest: the repository, and this instance's spool, locks and logs.
fn global(p: &Paths, repo: &Path) -> String {
    global_with(p, vec![("repo1-path", repo.to_string_lossy().into_owned())])
}

/// As [`global`], with the repository given as settings: a path, or a
/// repository host.
fn global_with(p: &Paths, repo: Vec<(&'static str, String)>) -> String {
    let mut out = String::from("[global]\n");
    for (k, v) in repo.into_iter().chain([
        ("spool-path", p.dir.join("spool").to_string_lossy().into_owned()),
        ("lock-path", p.dir.join("lock").to_string_lossy().into_owned()),
        ("log-path", p.dir.join("log").to_string_lossy().into_owned()),
        ("log-level-file", "off".into()),
        ("log-level-console", "warn".into()),
        ("log-level-stderr", "off".into()),
        ("process-max", "2".into()),
    ]) {
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

/// The repository host, reached over TLS, and this instance's TLS server,
/// which that host reaches; both ends authorize the cluster's client CN.
fn remote_settings(r: &BackrestRemote, stanza: &str) -> Vec<(&'static str, String)> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        ("repo1-host", r.repo_host.clone()),
        ("repo1-host-type", "tls".into()),
        ("repo1-host-port", r.repo_port.to_string()),
        ("repo1-host-config", path(&r.repo_config)),
        ("repo1-host-ca-file", path(&r.ca_file)),
        ("repo1-host-cert-file", path(&r.client_cert_file)),
        ("repo1-host-key-file", path(&r.client_key_file)),
        ("tls-server-address", "*".into()),
        ("tls-server-port", r.server_port.to_string()),
        ("tls-server-ca-file", path(&r.ca_file)),
        ("tls-server-cert-file", path(&r.server_cert_file)),
        ("tls-server-key-file", path(&r.server_key_file)),
        ("tls-server-auth", format!("{}={stanza}", r.client_cn)),
    ]
}

/// `pgbackrest.conf`: the repository, asynchronous archiving, retention,
/// and this instance's PostgreSQL.
pub fn conf(config: &InstanceConfig, b: &InstanceBackrest, superuser: &str) -> String {
    let p = paths(config);
    let mut out = String::from("# Written by the pgo instance manager; edits are lost.\n");
    out.push_str(&match &b.remote {
        None => global(&p, &b.repo_path),
        Some(r) => global_with(&p, remote_settings(r, &b.stanza)),
    });
    let mut set = |k: &str, v: &str| out.push_str(&format!("{k}={v}\n"));
    set("repo1-retention-full", &b.retention_full.to_string());
    if let Some(diff) = b.retention_diff {
        set("repo1-retention-diff", &diff.to_string());
    }
    set("archive-async", "y");
    set("compress-type", "lz4");
    set("start-fast", "y");
    out.push_str(&format!("\n[{}]\n", b.stanza));
    out.push_str(&format!("pg1-path={}\n", config.pgdata().to_string_lossy()));
    out.push_str(&format!("pg1-port={}\n", config.port));
    out.push_str(&format!("pg1-user={superuser}\n"));
    out
}

/// The instance's pgBackRest directories (config, spool, locks, logs),
/// PostgreSQL's user's alone.
fn make_dirs(p: &Paths, run_as: &RunAs) -> Result<(), String> {
    for dir in [
        p.dir.clone(),
        p.dir.join("spool"),
        p.dir.join("lock"),
        p.dir.join("log"),
    ] {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        run_as.own(&dir, 0o700)?;
    }
    Ok(())
}

/// Writes pgBackRest's files and gives the repository to PostgreSQL's
/// user; run before every start, as PostgreSQL's own config is.
pub fn write(config: &InstanceConfig, b: &InstanceBackrest, run_as: &RunAs) -> Result<(), String> {
    let p = paths(config);
    make_dirs(&p, run_as)?;
    if b.remote.is_none() {
        std::fs::create_dir_all(&b.repo_path)
            .map_err(|e| format!("cannot create the repository {}: {e}", b.repo_path.display()))?;
        run_as.own(&b.repo_path, 0o750)?;
    }
    let superuser = read_secret(&config.superuser_secret, "username")?;
    let password = read_secret(&config.superuser_secret, "password")?;
    run_as.write(&p.passfile, &crate::bootstrap::pgpass_line(&superuser, &password))?;
    run_as.write(&p.conf, &conf(config, b, &superuser))
}

/// Where pgBackRest connects to PostgreSQL: its own address, or loopback
/// when it listens on every address.
fn pg_host(config: &InstanceConfig) -> &str {
    match config.listen_address.as_str() {
        "*" | "0.0.0.0" | "" => "127.0.0.1",
        "::" => "::1",
        other => other,
    }
}

/// `pgbackrest --config=<conf>` as PostgreSQL's user, reaching this
/// instance's PostgreSQL (`PGHOST`, the passfile); killed when dropped.
pub(crate) fn command(
    config: &InstanceConfig,
    run_as: &RunAs,
    bin: &Path,
    conf: &Path,
) -> tokio::process::Command {
    let p = paths(config);
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg(format!("--config={}", conf.display()))
        .env("PGHOST", pg_host(config))
        .env("PGPASSFILE", &p.passfile)
        .env("PGCONNECT_TIMEOUT", "5")
        .current_dir(&p.dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if config.postgres_tls.is_some() {
        cmd.env("PGSSLMODE", "prefer");
    }
    run_as.apply(&mut cmd);
    cmd
}

/// What a pgBackRest command printed, on success.
pub struct Output {
    pub stdout: String,
}

/// Runs `pgbackrest --config=<conf> --stanza=<stanza> <args>` as
/// PostgreSQL's user, reaching this instance's PostgreSQL; an error
/// carries the last lines it printed.
async fn run_with(
    config: &InstanceConfig,
    stanza: &str,
    run_as: &RunAs,
    conf: &Path,
    args: &[String],
    timeout: Option<Duration>,
) -> Result<Output, String> {
    let bin = binary()?;
    let mut cmd = command(config, run_as, &bin, conf);
    cmd.arg(format!("--stanza={stanza}")).args(args);
    let stdout = finish(cmd, &bin, args, timeout).await?;
    Ok(Output { stdout })
}

/// Runs a pgBackRest command to its end (or `timeout`) and returns what it
/// printed; an error carries the last lines it printed.
pub(crate) async fn finish(
    mut cmd: tokio::process::Command,
    bin: &Path,
    args: &[String],
    timeout: Option<Duration>,
) -> Result<String, String> {
    let what = args.first().map(String::as_str).unwrap_or("pgbackrest");
    let output = match timeout {
        Some(t) => tokio::time::timeout(t, cmd.output())
            .await
            .map_err(|_| format!("pgbackrest {what} did not finish within {}s", t.as_secs()))?,
        None => cmd.output().await,
    }
    .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "pgbackrest {what} failed ({}): {}",
            output.status,
            last_lines(&output.stderr, &output.stdout)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// pgBackRest writes its errors to the console (stdout) at `warn` and
/// above; the last few lines of both, on one line.
fn last_lines(stderr: &[u8], stdout: &[u8]) -> String {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(stdout),
        String::from_utf8_lossy(stderr)
    );
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// Makes the stanza, or checks that the one there is this cluster's
/// (pgBackRest refuses a repository of another database system).
pub async fn stanza_create(
    config: &InstanceConfig,
    b: &InstanceBackrest,
    run_as: &RunAs,
) -> Result<(), String> {
    run_with(
        config,
        &b.stanza,
        run_as,
        &paths(config).conf,
        &["stanza-create".to_string()],
        Some(Duration::from_secs(60)),
    )
    .await
    .map(|_| ())
}

fn read_config(path: &Path) -> Result<InstanceConfig, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// What a backup or expire job does (`postgres-operator job backrest`):
/// the pgBackRest command for the instance whose config is at `instance`,
/// and then the repository's `info`, as JSON, which it returns. With
/// `standby`, a backup reads the files from that replica's data directory
/// (pgBackRest's `backup-standby`), so the primary only starts and stops it.
pub async fn job(instance: &Path, standby: Option<&Path>, args: &[String]) -> Result<String, String> {
    let config = read_config(instance)?;
    let b = config
        .backrest
        .clone()
        .ok_or_else(|| format!("instance {} does not archive with pgBackRest", config.name))?;
    let run_as = RunAs::resolve(config.run_as.as_deref()).map_err(|e| e.to_string())?;
    let conf = match standby {
        None => paths(&config).conf,
        Some(path) => {
            let replica = read_config(path)?;
            let superuser = read_secret(&config.superuser_secret, "username")?;
            let mut text =
                conf(&config, &b, &superuser).replacen("[global]\n", "[global]\nbackup-standby=y\n", 1);
            text.push_str(&format!("pg2-path={}\n", replica.pgdata().to_string_lossy()));
            text.push_str(&format!("pg2-port={}\n", replica.port));
            text.push_str(&format!("pg2-user={superuser}\n"));
            let file = paths(&config).dir.join("pgbackrest-standby.conf");
            run_as.write(&file, &text)?;
            file
        }
    };
    let what = args.join(" ");
    println!("pgbackrest {what}: starting");
    run_with(&config, &b.stanza, &run_as, &conf, args, None).await?;
    println!("pgbackrest {what}: done");
    let info = run_with(
        &config,
        &b.stanza,
        &run_as,
        &conf,
        &["info".to_string(), "--output=json".to_string()],
        Some(Duration::from_secs(120)),
    )
    .await?;
    Ok(info.stdout)
}

/// Restores a new data directory into `scratch` (empty, PostgreSQL's
/// user's) from `r`'s repository. PostgreSQL then replays archived WAL to
/// the target and promotes; with `hot_standby` off until then, it takes no
/// connection while half restored. The config its `restore_command` names
/// is left pointing at the data directory's final path, so it holds after
/// the rename.
pub async fn restore(
    config: &InstanceConfig,
    r: &InstanceRestore,
    run_as: &RunAs,
    scratch: &Path,
    delta: bool,
) -> Result<(), String> {
    let p = paths(config);
    make_dirs(&p, run_as)?;
    // A repository host answers for itself (pgBackRest names a missing
    // stanza); a local one is checked first, to say which directory.
    if r.remote.is_none() && !has_stanza(&r.repo_path, &r.stanza) {
        return Err(format!(
            "the repository {} holds no stanza {:?} to restore from",
            r.repo_path.display(),
            r.stanza
        ));
    }
    let conf = p.dir.join("restore.conf");
    let repo = match &r.remote {
        None => global(&p, &r.repo_path),
        Some(remote) => global_with(&p, remote_settings(remote, &r.stanza)),
    };
    let text = format!("# Written by the pgo instance manager for a restore.\n{repo}");
    // pgBackRest copies its command line into `restore_command`: the
    // config names the scratch directory for the restore, and the final
    // one once the files are there.
    let with_pgdata = |pgdata: &Path| format!("{text}\n[{}]\npg1-path={}\n", r.stanza, pgdata.display());
    run_as.write(&conf, &with_pgdata(scratch))?;
    let mut args = vec![
        "restore".to_string(),
        "--recovery-option=hot_standby=off".to_string(),
    ];
    if delta {
        // Over the data there: only what differs from the backup is
        // copied, and what the backup lacks is removed.
        args.push("--delta".into());
    }
    match &r.target {
        Some(t) if t.type_ == pgo_api::cluster::PitrType::Immediate => {
            args.push("--type=immediate".into());
            args.push("--target-action=promote".into());
        }
        Some(t) => {
            args.push(format!("--type={}", t.type_.as_str()));
            args.push(format!("--target={}", backrest_target(t)));
            args.push("--target-action=promote".into());
        }
        // To the end of the archive, then promoted.
        None => {}
    }
    args.extend(r.options.iter().cloned());
    run_with(config, &r.stanza, run_as, &conf, &args, None).await?;
    run_as.write(&conf, &with_pgdata(&config.pgdata()))?;
    // A backup taken from a replica says nothing of standbys here; this is
    // a primary's data, whatever signal file came along.
    let _ = std::fs::remove_file(scratch.join("standby.signal"));
    Ok(())
}

/// A target as pgBackRest reads it: a time as `YYYY-MM-DD HH:MM:SS.ffffff+00`
/// (pgo keeps it in RFC 3339, in UTC), which PostgreSQL reads too.
fn backrest_target(t: &pgo_api::cluster::PitrTarget) -> String {
    match t.type_ {
        pgo_api::cluster::PitrType::Time => match t.value.strip_suffix('Z') {
            Some(utc) => format!("{}+00", utc.replacen('T', " ", 1)),
            None => t.value.clone(),
        },
        _ => t.value.clone(),
    }
}

/// The settings a restore leaves in `postgresql.auto.conf`, reset once the
/// restored primary has promoted: a replica copied from it must not stop
/// at the restore's target, nor fetch WAL from the other cluster's
/// repository.
pub const RESTORE_SETTINGS: &[&str] = &[
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_lsn",
    "recovery_target_xid",
    "recovery_target_name",
    "recovery_target_action",
    "recovery_target_inclusive",
    "recovery_target_timeline",
    "hot_standby",
];

/// True when the repository at `repo` holds `stanza`.
fn has_stanza(repo: &Path, stanza: &str) -> bool {
    repo.join("backup").join(stanza).join("backup.info").is_file()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> (InstanceConfig, InstanceBackrest) {
        let c: InstanceConfig = serde_json::from_value(serde_json::json!({
            "name": "db-a1b2", "cluster": "db", "role": "Primary", "volumeDir": "/v/db",
            "listenAddress": "127.0.0.1", "port": 5432, "httpAddress": "127.0.0.1", "httpPort": 8008,
            "allowedCidrs": ["127.0.0.1/32"], "database": "userdb", "appUser": "testuser",
            "superuserSecret": "/s", "replicationSecret": "/r", "appSecret": "/a", "tokenFile": "/t",
        }))
        .unwrap();
        let b = InstanceBackrest {
            repo_path: "/v/db-backrestrepo".into(),
            stanza: "db".into(),
            archive_timeout_seconds: 60,
            retention_full: 2,
            retention_diff: Some(3),
            remote: None,
        };
        (c, b)
    }

    #[test]
    fn the_config_names_the_repository_retention_and_this_instance() {
        let (c, b) = config();
        let text = conf(&c, &b, "postgres");
        for line in [
            "repo1-path=/v/db-backrestrepo",
            "repo1-retention-full=2",
            "repo1-retention-diff=3",
            "archive-async=y",
            "spool-path=/v/db/pgbackrest/spool",
            "[db]",
            "pg1-path=/v/db/pgdata",
            "pg1-port=5432",
            "pg1-user=postgres",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn a_time_target_is_written_the_way_pgbackrest_reads_it() {
        use pgo_api::cluster::{PitrTarget, PitrType};
        let t = |type_, value: &str| {
            backrest_target(&PitrTarget {
                type_,
                value: value.into(),
            })
        };
        assert_eq!(
            t(PitrType::Time, "2026-11-24T17:33:49.217814Z"),
            "2026-11-24 17:33:49.217814+00"
        );
        assert_eq!(t(PitrType::Lsn, "0/3000060"), "0/3000060");
    }

    #[test]
    fn the_archive_command_quotes_its_paths_for_the_shell() {
        let (mut c, b) = config();
        c.volume_dir = "/v/it's".into();
        let settings = archive_settings(&c, &b);
        let command = &settings.iter().find(|(k, _)| *k == "archive_command").unwrap().1;
        assert!(
            command.contains(r"--config='/v/it'\''s/pgbackrest/pgbackrest.conf' --stanza=db archive-push"),
            "{command}"
        );
        assert!(settings.contains(&("archive_timeout", "60s".to_string())));
    }
}
