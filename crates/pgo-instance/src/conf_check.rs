//! A custom postgresql.conf checked by the PostgreSQL that would run it:
//! `postgres -C` reads a config file and stops at a parameter it does not
//! know or a value it would refuse, naming it, without a data directory
//! or a server. Each error found is taken out and the file read again, so
//! one check names them all.

use crate::osuser::RunAs;
use pgo_api::custom_config::{self, POSTGRESQL_CONF};
use std::path::Path;

/// The most errors named at once.
const MAX_ERRORS: usize = 20;

/// Checks `text` as this machine's PostgreSQL (`bin`, or the one found)
/// reads it; the error names each parameter it refuses.
pub async fn check(text: &str, bin: Option<&Path>) -> Result<(), String> {
    custom_config::check_postgresql_conf(text)?;
    let bin = crate::pgbin::find(bin).map_err(|e| format!("cannot check {POSTGRESQL_CONF}: {e}"))?;
    let run_as = RunAs::resolve(None).map_err(|e| format!("cannot check {POSTGRESQL_CONF}: {e}"))?;
    let dir = tempdir(&run_as)?;
    let result = check_in(&dir, text, &bin, &run_as).await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut errors = result?;
    errors.extend(missing_libraries(text, &bin));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{POSTGRESQL_CONF} is refused by PostgreSQL ({}): {}",
            bin.display(),
            errors.join("; ")
        ))
    }
}

/// A private directory PostgreSQL's user can read, for the file checked.
fn tempdir(run_as: &RunAs) -> Result<std::path::PathBuf, String> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgo-conf-check-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    run_as.own(&dir, 0o700)?;
    Ok(dir)
}

async fn check_in(dir: &Path, text: &str, bin: &Path, run_as: &RunAs) -> Result<Vec<String>, String> {
    let mut lines: Vec<Option<&str>> = text.lines().map(Some).collect();
    let mut errors = Vec::new();
    while errors.len() < MAX_ERRORS {
        let current: String = lines.iter().map(|l| format!("{}\n", l.unwrap_or(""))).collect();
        run_as.write(&dir.join(POSTGRESQL_CONF), &current)?;
        let mut cmd = tokio::process::Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(dir)
            .args(["-C", "server_version"])
            .kill_on_drop(true);
        run_as.apply(&mut cmd);
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", bin.join("postgres").display()))?;
        if out.status.success() {
            return Ok(errors);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let Some(found) = stderr.lines().find_map(refusal) else {
            return Err(format!(
                "PostgreSQL cannot read {POSTGRESQL_CONF}: {}",
                crate::bootstrap::tail(&out.stderr)
            ));
        };
        // Taken out, so the next read goes past it.
        let before = lines.iter().flatten().count();
        for (i, line) in lines.iter_mut().enumerate() {
            let hit = match &found {
                Refusal::Line(n, _) => i + 1 == *n,
                Refusal::Parameter(name, _) => line.is_some_and(|l| {
                    custom_config::settings(l)
                        .first()
                        .is_some_and(|s| &s.name == name)
                }),
            };
            if hit {
                *line = None;
            }
        }
        errors.push(found.message());
        if lines.iter().flatten().count() == before {
            return Ok(errors);
        }
    }
    Ok(errors)
}

enum Refusal {
    /// A line PostgreSQL refused (an unknown parameter, a syntax error).
    Line(usize, String),
    /// A value PostgreSQL refused for a parameter.
    Parameter(String, String),
}

impl Refusal {
    fn message(&self) -> String {
        match self {
            Refusal::Line(n, what) => format!("line {n}: {what}"),
            Refusal::Parameter(_, what) => what.clone(),
        }
    }
}

/// What one of PostgreSQL's log lines refuses, if it refuses something.
fn refusal(line: &str) -> Option<Refusal> {
    let msg = line.split_once("LOG:  ").map(|(_, m)| m).unwrap_or(line).trim();
    if let Some(rest) = msg.strip_prefix("unrecognized configuration parameter ") {
        // `"foo" in file "/…/postgresql.conf" line 3`
        let (name, _) = rest.split_once(" in file ")?;
        let n = rest.rsplit_once(" line ")?.1.parse().ok()?;
        return Some(Refusal::Line(n, format!("PostgreSQL has no parameter {name}")));
    }
    if msg.starts_with("invalid value for parameter ")
        || msg.starts_with("parameter \"") && msg.contains("requires a")
        || msg.contains("is outside the valid range for parameter")
    {
        let name = msg.split('"').nth(1)?.to_string();
        // PostgreSQL's own words, less the file it read.
        return Some(Refusal::Parameter(name, msg.to_string()));
    }
    if msg.starts_with("syntax error in file ") {
        let n = msg
            .split(" line ")
            .nth(1)?
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()?;
        return Some(Refusal::Line(n, "syntax error".into()));
    }
    None
}

/// Libraries in shared_preload_libraries that this PostgreSQL does not
/// have: the server would not start (`postgres -C` does not load them).
fn missing_libraries(text: &str, bin: &Path) -> Vec<String> {
    let Some(setting) = custom_config::settings(text)
        .into_iter()
        .rev()
        .find(|s| s.name == "shared_preload_libraries")
    else {
        return vec![];
    };
    let Some(libdir) = pkglibdir(bin) else {
        return vec![];
    };
    setting
        .value
        .trim_matches('\'')
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let file = if l.ends_with(".so") {
                (*l).to_string()
            } else {
                format!("{l}.so")
            };
            let path = file.strip_prefix("$libdir/").unwrap_or(&file);
            !libdir.join(path).is_file()
        })
        .map(|l| {
            format!(
                "line {}: shared_preload_libraries names {l}, which is not in {}",
                setting.line,
                libdir.display()
            )
        })
        .collect()
}

/// Where this PostgreSQL's libraries are (`pg_config --pkglibdir`, or
/// beside `bin` as the packages lay it out).
fn pkglibdir(bin: &Path) -> Option<std::path::PathBuf> {
    let out = std::process::Command::new(bin.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|o| o.status.success());
    match out {
        Some(o) => Some(String::from_utf8_lossy(&o.stdout).trim().into()),
        None => bin.parent().map(|p| p.join("lib")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn postgresqls_refusals_are_read() {
        let line = r#"2026-11-25 04:34:46.181 GMT [27502] LOG:  unrecognized configuration parameter "foo_bar" in file "/tmp/x/postgresql.conf" line 3"#;
        match refusal(line) {
            Some(Refusal::Line(3, m)) => assert_eq!(m, "PostgreSQL has no parameter \"foo_bar\""),
            _ => panic!("not read"),
        }
        let line = r#"2026-11-25 04:34:40.604 GMT [27075] LOG:  invalid value for parameter "log_timezone": "Mars/Base""#;
        match refusal(line) {
            Some(Refusal::Parameter(name, m)) => {
                assert_eq!(name, "log_timezone");
                assert_eq!(m, r#"invalid value for parameter "log_timezone": "Mars/Base""#);
            }
            _ => panic!("not read"),
        }
        assert!(refusal("LOG:  skipping missing configuration file \"x\"").is_none());
    }
}
