//! The work of Jobs: what `postgres-operator job …` does inside a Job's pod.

use crate::ServerError;
use std::path::{Component, Path};

/// Removes `path` and everything under it. Only an absolute path below the
/// root with no `..` is taken: a template that renders a wrong path must not
/// empty the wrong directory. A path already gone is done.
pub fn rmdata(path: &Path) -> Result<(), ServerError> {
    let plain = path.is_absolute()
        && path.components().count() >= 3
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        return Err(ServerError::Start(format!(
            "rmdata: {} is not a path inside a volume (absolute, at least two levels deep, no ..)",
            path.display()
        )));
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => {
            println!("rmdata: removed {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("rmdata: {} is already gone", path.display());
            Ok(())
        }
        Err(e) => Err(ServerError::Start(format!(
            "rmdata: cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// Runs a pgBackRest job and records how it ended in `result`.
pub async fn backrest(
    instance: &Path,
    standby: Option<&Path>,
    result: &Path,
    args: &[String],
) -> Result<(), ServerError> {
    let outcome = pgo_instance::backrest::job(instance, standby, args).await;
    record(
        result,
        outcome,
        &format!("pgbackrest {} succeeded", args.join(" ")),
    )
}

/// The most of the repository's info a Job's result carries: escaped in
/// the result's JSON, beside its message, it stays under the 4 KiB of a
/// termination message.
const INFO_BUDGET: usize = 2800;

/// A cluster's repository host, as a backup Job reaches it.
pub struct RepoHost<'a> {
    pub url: &'a str,
    pub token_file: &'a Path,
    pub ca_file: &'a Path,
}

/// Asks the repository host to run a pgBackRest command (it runs backups,
/// which pgBackRest runs only where the repository is), waits for it, and
/// records how it ended in `result`. The repository's info is kept to
/// what pgo reads, so it fits a Job's termination message (4 KiB).
pub async fn backrest_remote(
    host: &RepoHost<'_>,
    standby: Option<String>,
    result: &Path,
    args: Vec<String>,
) -> Result<(), ServerError> {
    let done = format!("pgbackrest {} succeeded", args.join(" "));
    let command = pgo_api::repo_host::RepoCommand { args, standby };
    let outcome = ask_repo_host(host, &command).await.and_then(|info| {
        pgo_core::backrest::compact_info(&info, pgo_core::names::BACKREST_STANZA, INFO_BUDGET)
    });
    record(result, outcome, &done)
}

async fn ask_repo_host(
    host: &RepoHost<'_>,
    command: &pgo_api::repo_host::RepoCommand,
) -> Result<String, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let ca = reqwest::Certificate::from_pem(&read(host.ca_file)?)
        .map_err(|e| format!("{}: {e}", host.ca_file.display()))?;
    let token = String::from_utf8_lossy(&read(host.token_file)?)
        .trim()
        .to_string();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .connect_timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let url = format!("{}/backrest", host.url.trim_end_matches('/'));
    println!(
        "asking the repository host {url}: pgbackrest {}",
        command.args.join(" ")
    );
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .json(command)
        .send()
        .await
        .map_err(|e| format!("the repository host {url}: {e}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("the repository host {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "the repository host {url} answered {status}: {}",
            text.trim()
        ));
    }
    let answer: pgo_api::job::JobResult = serde_json::from_str(&text)
        .map_err(|e| format!("the repository host {url} answered what pgo does not read ({e}): {text}"))?;
    if answer.succeeded {
        Ok(answer.output)
    } else {
        Err(answer.message)
    }
}

/// Takes a pg_basebackup copy and records how it ended in `result`.
pub async fn basebackup(
    from: &pgo_instance::copies::Source<'_>,
    volume: &Path,
    path: &str,
    result: &Path,
) -> Result<(), ServerError> {
    let outcome = pgo_instance::copies::take(from, volume, path).await;
    record(result, outcome, &format!("pg_basebackup into {path} succeeded"))
}

/// Restores an instance's repository into a new volume and records how it
/// ended in `result`.
pub async fn restore(
    instance: &crate::args::InstanceConfigArg,
    volume: &Path,
    target: Option<pgo_api::cluster::PitrTarget>,
    options: Vec<String>,
    result: &Path,
) -> Result<(), ServerError> {
    let outcome = match instance.read() {
        Ok(config) => pgo_instance::restore_into(config, volume, target, options).await,
        Err(e) => Err(e),
    };
    record_said(result, outcome)
}

/// Seeds a new instance's volume from a pg_basebackup copy and records how
/// it ended in `result`.
pub async fn seed(
    instance: &crate::args::InstanceConfigArg,
    copy: &Path,
    result: &Path,
) -> Result<(), ServerError> {
    let outcome = match instance.read() {
        Ok(config) => pgo_instance::seed_into(config, copy).await,
        Err(e) => Err(e),
    };
    record_said(result, outcome)
}

/// Records how a job that fills a volume ended: what it did is the
/// result's message; it reports nothing more.
fn record_said(result: &Path, outcome: Result<String, String>) -> Result<(), ServerError> {
    let said = outcome.clone().unwrap_or_default();
    record(result, outcome.map(|_| String::new()), &said)
}

/// Records how a job ended in `result`, written whole or not at all, so
/// whoever started it never reads half a result.
fn record(result: &Path, outcome: Result<String, String>, done: &str) -> Result<(), ServerError> {
    let record = match &outcome {
        Ok(output) => pgo_core::job::JobResult {
            succeeded: true,
            message: done.to_string(),
            output: output.clone(),
        },
        Err(e) => pgo_core::job::JobResult {
            succeeded: false,
            message: e.clone(),
            output: String::new(),
        },
    };
    let text = serde_json::to_vec(&record).map_err(|e| ServerError::Start(e.to_string()))?;
    // A file there already is a Job's termination message, made by the
    // kubelet and read once the container ended: written in place. A new
    // one is written aside and renamed, so it is read whole or not at all.
    let written = if result.is_file() {
        std::fs::write(result, text)
    } else {
        let scratch = result.with_extension("json.tmp");
        std::fs::write(&scratch, text).and_then(|()| std::fs::rename(&scratch, result))
    };
    written.map_err(|e| ServerError::Start(format!("cannot write {}: {e}", result.display())))?;
    outcome.map(|_| ()).map_err(ServerError::Start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_a_tree_and_refuses_paths_that_are_not_inside_a_volume() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("pgdata/base")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(data.join("pgdata/base/1"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert!(rmdata(&data).is_ok());
        assert!(!data.exists());
        assert!(dir.path().exists());
        assert!(rmdata(&data).is_ok(), "gone already is done");
        for bad in ["/", "/pgdata", "relative/data", "/pgdata/../etc"] {
            let e = rmdata(Path::new(bad))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("not a path inside a volume"), "{bad}: {e}");
        }
    }
}
