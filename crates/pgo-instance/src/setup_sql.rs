//! A custom configuration's setup.sql: run once by psql, right after initdb
//! and before pgo's own users and database are made sure of, as the
//! original's containers ran it (psql meta-commands such as `\c` work).

use crate::bootstrap::{pgpass_line, read_secret};
use crate::osuser::RunAs;
use pgo_api::custom_config::{Placeholders, substitute};
use pgo_api::instance::InstanceConfig;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Present in a volume once setup.sql ran to its end.
const DONE: &str = ".pgo-setup-sql-done";
/// Holds the error of a setup.sql that failed: the cluster stays failed
/// with it, and the script is not run again over what it half made.
const FAILED: &str = ".pgo-setup-sql-failed";

/// How a run of setup.sql ended, when not well.
#[derive(Debug)]
pub enum Failure {
    /// Nothing the script said: PostgreSQL not reachable yet, say.
    Again(String),
    /// The script failed; running it again cannot help.
    Script(String),
}

/// The error of an earlier run that failed, if one did.
pub fn failed(config: &InstanceConfig) -> Option<String> {
    std::fs::read_to_string(config.volume_dir.join(FAILED)).ok()
}

/// Runs the custom setup.sql unless there is none or it ran.
pub async fn run(config: &InstanceConfig, run_as: &RunAs, bin: &Path) -> Result<(), Failure> {
    let Some(custom) = &config.custom else {
        return Ok(());
    };
    let Some(sql) = &custom.setup_sql else {
        return Ok(());
    };
    let done = config.volume_dir.join(DONE);
    if done.exists() {
        return Ok(());
    }
    if let Some(why) = failed(config) {
        return Err(Failure::Script(why));
    }
    let secret = |dir: &Path, file: &str| read_secret(dir, file).map_err(Failure::Again);
    let placeholders = Placeholders {
        user: secret(&config.app_secret, "username")?,
        password: secret(&config.app_secret, "password")?,
        database: config.database.clone(),
        primary_user: secret(&config.replication_secret, "username")?,
        primary_password: secret(&config.replication_secret, "password")?,
        root_password: secret(&config.superuser_secret, "password")?,
    };
    let superuser = secret(&config.superuser_secret, "username")?;
    let passfile = passfile(config, run_as, &superuser, &placeholders).map_err(Failure::Again)?;
    let script = substitute(sql, &placeholders);
    let result = psql(config, run_as, bin, &superuser, &passfile, &script).await;
    let _ = std::fs::remove_file(&passfile);
    match result {
        Ok(()) => {
            run_as.write(&done, "").map_err(Failure::Again)?;
            tracing::info!(config_map = %custom.config_map, "setup.sql ran");
            Ok(())
        }
        Err(Failure::Script(why)) => {
            let why = format!("setup.sql of {} failed: {why}", custom.config_map);
            run_as
                .write(&config.volume_dir.join(FAILED), &why)
                .map_err(Failure::Again)?;
            Err(Failure::Script(why))
        }
        Err(again) => Err(again),
    }
}

/// Every user setup.sql may connect as (`\c PG_DATABASE PG_USER`), for
/// libpq; readable by PostgreSQL's user alone, and removed after.
fn passfile(
    config: &InstanceConfig,
    run_as: &RunAs,
    superuser: &str,
    p: &Placeholders,
) -> Result<PathBuf, String> {
    let text: String = [
        (superuser, &p.root_password),
        (&p.primary_user, &p.primary_password),
        (&p.user, &p.password),
    ]
    .into_iter()
    .map(|(user, password)| pgpass_line(user, password))
    .collect();
    let path = config.volume_dir.join(".pgpass-setup");
    run_as.write(&path, &text)?;
    Ok(path)
}

async fn psql(
    config: &InstanceConfig,
    run_as: &RunAs,
    bin: &Path,
    superuser: &str,
    passfile: &Path,
    script: &str,
) -> Result<(), Failure> {
    let mut cmd = tokio::process::Command::new(bin.join("psql"));
    cmd.args(["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"])
        .arg(format!("--host={}", config.listen_address))
        .arg(format!("--port={}", config.port))
        .arg(format!("--username={superuser}"))
        .arg("--dbname=postgres")
        .env("PGPASSFILE", passfile)
        .env("PGAPPNAME", "pgo-setup-sql")
        // A synchronous primary has no replica yet to wait for.
        .env("PGOPTIONS", "-c synchronous_commit=local")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    run_as.apply(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Again(format!("cannot run {}: {e}", bin.join("psql").display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| Failure::Again(format!("cannot give setup.sql to psql: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Failure::Again(format!("psql: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.replace("psql:<stdin>:", "line "))
        .collect::<Vec<_>>()
        .join(" / ");
    match out.status.code() {
        Some(0) => Ok(()),
        // 3: the script stopped at an error (ON_ERROR_STOP).
        Some(3) => Err(Failure::Script(said)),
        _ => Err(Failure::Again(format!("psql ({}): {said}", out.status))),
    }
}
