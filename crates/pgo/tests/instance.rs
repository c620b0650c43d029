#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The instance manager supervises PostgreSQL and is supervised in turn.

mod support;

use pgo_api::instance::InstanceReport;
use std::os::unix::fs::PermissionsExt;
use support::{Server, is_running};

fn report(server: &Server, instance: &str) -> Option<InstanceReport> {
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(server.instance_dir(instance).join("instance.json")).ok()?,
    )
    .ok()?;
    let port = config["httpPort"].as_u64()?;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port as u16)).ok()?;
    use std::io::{Read, Write};
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
}

fn kill9(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

#[test]
fn a_crashed_postgres_is_restarted_and_reported_not_ready_meanwhile() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "crashy"]);
    let before = server.postmaster_pid("crashy");
    kill9(before);
    let mut saw_not_ready = false;
    server.wait_until(30, "postgres to be restarted", || {
        match report(&server, "crashy") {
            Some(r) if !r.ready => {
                saw_not_ready = true;
                false
            }
            Some(r) => r.ready && r.postmaster_pid.is_some_and(|p| p != before),
            None => false,
        }
    });
    assert!(saw_not_ready, "the crash must be visible as not ready");
    let log = std::fs::read_to_string(server.instance_dir("crashy").join("instance.log")).unwrap();
    assert!(log.contains("postgres exited"), "{log}");
    server.wait_until(30, "the cluster to be Ready again", || {
        server.show_json("crashy")["phase"] == "Ready"
    });
}

#[test]
fn a_killed_instance_manager_is_restarted_and_adopts_the_running_postgres() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "adopt"]);
    let postmaster = server.postmaster_pid("adopt");
    let manager: u32 = std::fs::read_to_string(server.instance_dir("adopt").join("manager.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill9(manager);
    // The operator is level-triggered: it sees the manager gone and starts
    // another, which takes over the postmaster instead of starting one.
    server.wait_until(30, "a new instance manager", || {
        report(&server, "adopt").is_some_and(|r| r.manager_pid != manager && r.ready)
    });
    assert!(is_running(postmaster));
    assert_eq!(server.postmaster_pid("adopt"), postmaster);
    let log = std::fs::read_to_string(server.instance_dir("adopt").join("instance.log")).unwrap();
    assert!(log.contains("adopted the running postmaster"), "{log}");
}

#[test]
fn control_endpoints_need_the_operators_token() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "ctl"]);
    let dir = server.instance_dir("ctl");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("instance.json")).unwrap()).unwrap();
    let port = config["httpPort"].as_u64().unwrap();
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let post = |auth: Option<&str>| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        let header = auth
            .map(|a| format!("Authorization: Bearer {a}\r\n"))
            .unwrap_or_default();
        write!(s, "POST /control/reload HTTP/1.1\r\nHost: x\r\n{header}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines().next().unwrap().to_string()
    };
    assert!(post(None).contains("401"));
    assert!(post(Some("not-the-token")).contains("401"));
    assert!(post(Some(token.trim())).contains("202"));
    let mode = std::fs::metadata(dir.join("token")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_bootstrap_that_keeps_failing_marks_the_cluster_failed_with_the_reason() {
    // PostgreSQL's binaries, but an initdb that fails as on a full disk.
    let bins = support::reachable_tempdir();
    for entry in std::fs::read_dir(support::pg_bin_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "initdb" {
            std::os::unix::fs::symlink(entry.path(), bins.path().join(entry.file_name())).unwrap();
        }
    }
    let initdb = bins.path().join("initdb");
    std::fs::write(
        &initdb,
        "#!/bin/sh\necho 'initdb: error: could not create directory: No space left on device' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&initdb, std::fs::Permissions::from_mode(0o755)).unwrap();

    let server = Server::start_with(&["--pg-bin-dir", bins.path().to_str().unwrap()]);
    let err = server.pgo_err(&["create", "cluster", "full", "--timeout", "60"]);
    assert!(
        err.contains("cluster full failed") && err.contains("No space left on device"),
        "{err}"
    );
    let view = server.show_json("full");
    assert_eq!(view["phase"], "Failed");
    assert!(
        view["message"].as_str().unwrap().contains("initdb failed"),
        "{view}"
    );
    // Nothing half-made is left in the volume.
    assert!(!server.home.join("volumes/full/pgdata").exists());
    assert!(!server.home.join("volumes/full/pgdata.initdb").exists());
}

/// POSTs `body` to the manager's `path` with `token` (if any); the status
/// code and the body.
fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string(),
    )
}

#[test]
fn the_control_endpoint_takes_only_validated_changes_and_never_a_trust_line() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "ctl"]);
    let dir = server.instance_dir("ctl");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("instance.json")).unwrap()).unwrap();
    let port = config["httpPort"].as_u64().unwrap() as u16;
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let token = token.trim();

    // What was tried: a whole config with a newline in allowedCidrs.
    let mut evil = config.clone();
    evil["allowedCidrs"] = serde_json::json!(["127.0.0.1/32\nhost all all 0.0.0.0/0 trust"]);
    let body = serde_json::json!({ "config": evil }).to_string();
    let (code, text) = post(port, "/control/reload", Some(token), &body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("unknown field"), "{text}");
    // A change that is allowed, with a value that would escape its quotes.
    let body = r#"{"changes": {"role": "Primary", "syncStandbys": ["x\" , \"y"]}}"#;
    let (code, text) = post(port, "/control/reload", Some(token), body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("syncStandbys"), "{text}");
    // No token, no reading of the body.
    let (code, _) = post(port, "/control/reload", None, r#"{"changes": {}}"#);
    assert_eq!(code, 401);
    let (code, _) = post(port, "/control/reload", Some("wrong-token-wrong-token"), "{}");
    assert_eq!(code, 401);

    std::thread::sleep(std::time::Duration::from_millis(500));
    let hba = std::fs::read_to_string(server.home.join("volumes/ctl/pgdata/pg_hba.conf")).unwrap();
    assert!(!hba.contains("trust"), "{hba}");
    assert!(!hba.contains("0.0.0.0/0"), "{hba}");
    let view = server.show_json("ctl");
    assert_eq!(view["phase"], "Ready");
}

#[test]
fn a_data_directory_opened_to_its_group_is_made_private_before_postgres_starts_again() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "grouped"]);
    let before = server.postmaster_pid("grouped");
    let pgdata = server.home.join("volumes/grouped/pgdata");
    // What a kubelet does to a volume on every mount when the pod has an
    // fsGroup and no `fsGroupChangePolicy: OnRootMismatch`: group rwx,
    // recursively, and setgid on directories. PostgreSQL reads its data
    // directory's mode only when it starts, so the running one carries on.
    for args in [vec!["-R", "g+rwX"], vec!["g+s"]] {
        let out = std::process::Command::new("chmod")
            .args(&args)
            .arg(&pgdata)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&pgdata), 0o2770);
    // Its next start: before the fix, PostgreSQL refused the directory
    // ("has invalid permissions") and the manager retried for good.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(before as i32),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .unwrap();
    server.wait_until(60, "postgres to start again on the same data", || {
        report(&server, "grouped").is_some_and(|r| r.ready && r.postmaster_pid.is_some_and(|p| p != before))
    });
    assert_eq!(mode(&pgdata), 0o700, "the data directory is private again");
}
