#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bad input gets a clear error that names the problem and changes nothing.

mod support;

use std::process::Command;
use support::{PGO, SERVER, Server, reachable_tempdir};

#[test]
fn names_case_and_missing_clusters() {
    let server = Server::start();
    let err = server.pgo_err(&["Create", "cluster", "x"]);
    assert!(err.contains("use 'create', not 'Create'"), "{err}");

    for bad in ["My", "a..b", "a/b", "a b", "1db", "db-", &"a".repeat(64)] {
        let err = server.pgo_err(&["create", "cluster", bad, "--no-wait"]);
        assert!(
            err.contains("HTTP 400") && err.contains("DNS-1035"),
            "{bad}: {err}"
        );
    }
    let err = server.pgo_err(&["create", "cluster", "x", "--replica-count", "16", "--no-wait"]);
    assert!(err.contains("limit of 15"), "{err}");
    let err = server.pgo_err(&["create", "cluster", "x", "--node-name", "nosuchnode", "--no-wait"]);
    assert!(
        err.contains("node \"nosuchnode\" not found") && err.contains("HTTP 404"),
        "{err}"
    );
    let listing = server.pgo_ok(&["show", "cluster", "all"]);
    assert!(
        listing.contains("no clusters"),
        "refused creates leave nothing: {listing}"
    );

    server.pgo_ok(&["create", "cluster", "dup", "--no-wait"]);
    let err = server.pgo_err(&["create", "cluster", "dup", "--no-wait"]);
    assert!(
        err.contains("already exists") && err.contains("HTTP 409"),
        "{err}"
    );

    let err = server.pgo_err(&["show", "cluster", "nosuch"]);
    assert!(err.contains("\"nosuch\" not found"), "{err}");
    let err = server.pgo_err(&["delete", "cluster", "nosuch", "--no-prompt"]);
    assert!(
        err.contains("\"nosuch\" not found") && err.contains("HTTP 404"),
        "{err}"
    );
}

#[test]
fn an_unreachable_apiserver_and_missing_settings() {
    let dir = reachable_tempdir();
    let user = dir.path().join("pgouser");
    std::fs::write(&user, "admin:pw\n").unwrap();
    let ca = dir.path().join("ca.crt");
    // Any parseable certificate will do: the connection is refused first.
    let server = Server::start();
    std::fs::copy(&server.ca, &ca).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    let out = Command::new(PGO)
        .args(["show", "cluster", "all"])
        .env("PGO_APISERVER_URL", format!("https://127.0.0.1:{closed}"))
        .env("PGOUSER", &user)
        .env("PGO_CA_CERT", &ca)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "pgo: cannot reach the apiserver at https://127.0.0.1:{closed}: "
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line, not a stack: {err}");

    let out = Command::new(PGO)
        .args(["show", "cluster", "all"])
        .env("PGO_APISERVER_URL", &server.url)
        .env("PGOUSER", dir.path().join("missing"))
        .env("PGO_CA_CERT", &ca)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("PGOUSER file") && err.contains("missing"),
        "{err}"
    );
}

fn run_server(home: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(SERVER)
        .args(["run", "--home"])
        .arg(home)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_corrupt_pgouser_file_stops_the_server_naming_file_and_line() {
    let mut server = Server::start();
    server.kill();
    let home = server.home.clone();
    let users = home.join("pgouser");
    let good = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{good}reader::pgoreader\n")).unwrap();
    let out = run_server(&home, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&users.display().to_string()) && err.contains("line 2") && err.contains("empty"),
        "{err}"
    );

    std::fs::write(&users, "garbage without colons\n").unwrap();
    let err = String::from_utf8_lossy(&run_server(&home, &[]).stderr).to_string();
    assert!(err.contains("line 1"), "{err}");

    std::fs::remove_file(&users).unwrap();
    std::fs::write(home.join("pgorole"), "pgoadmin: CreateCluster, Fly\n").unwrap();
    // A missing pgouser is made afresh, but a corrupt pgorole is named.
    let err = String::from_utf8_lossy(&run_server(&home, &[]).stderr).to_string();
    assert!(err.contains("pgorole") && err.contains("Fly"), "{err}");
}

#[test]
fn a_taken_port_is_named() {
    let dir = reachable_tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(SERVER)
        .args(["run", "--home"])
        .arg(dir.path().join("home"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {port}")), "{err}");
}

#[test]
fn one_server_per_home() {
    let server = Server::start();
    let out = run_server(&server.home, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another postgres-operator is running"), "{err}");
}

#[test]
fn a_data_dir_postgres_cannot_reach_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = reachable_tempdir();
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = run_server(
        &dir.path().join("home"),
        &["--data-dir", closed.join("data").to_str().unwrap()],
    );
    if nix::unistd::geteuid().is_root() {
        // PostgreSQL runs as `postgres`, who cannot pass a 0700 root-owned directory.
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&closed.display().to_string()) && err.contains("--data-dir") && err.contains("0700"),
            "{err}"
        );
    } else {
        // Not root: PostgreSQL runs as this user, who owns the directory.
        // The server starts; it is stopped by the timeout below.
        panic!("this test expects to run as root, as CI does (PostgreSQL then runs as 'postgres')");
    }
}
