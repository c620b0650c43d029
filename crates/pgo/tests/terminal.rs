#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a person at a terminal sees: delete asks first, and the apiserver
//! speaks nothing older than TLS 1.2.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use support::{PGO, Server};

/// Runs pgo under a pseudo-terminal (util-linux `script`), answering `input`.
fn on_a_terminal(server: &Server, args: &str, input: &str) -> String {
    let mut child = Command::new("script")
        .args(["-qec", &format!("{PGO} {args}"), "/dev/null"])
        .env("PGO_APISERVER_URL", &server.url)
        .env("PGOUSER", &server.pgouser)
        .env("PGO_CA_CERT", &server.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn delete_asks_on_a_terminal_and_no_keeps_the_cluster() {
    let server = Server::start();
    server.pgo_ok(&["create", "cluster", "asked", "--no-wait"]);
    let screen = on_a_terminal(&server, "delete cluster asked", "n\n");
    assert!(
        screen.contains("Delete cluster asked?") && screen.contains("data, volumes and backups are kept"),
        "{screen}"
    );
    assert!(screen.contains("nothing deleted"), "{screen}");
    server.pgo_ok(&["show", "cluster", "asked"]);

    let screen = on_a_terminal(&server, "delete cluster asked", "y\n");
    assert!(screen.contains("cluster asked deleted"), "{screen}");
    assert!(!server.pgo(&["show", "cluster", "asked"]).status.success());
}

#[test]
fn the_apiserver_refuses_tls_older_than_1_2() {
    let server = Server::start();
    let addr = server.url.trim_start_matches("https://").to_string();
    let handshake = |flag: &str| {
        Command::new("openssl")
            .args(["s_client", "-connect", &addr, flag, "-CAfile", &server.ca])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let modern = handshake("-tls1_2");
    let text = String::from_utf8_lossy(&modern.stdout);
    assert!(
        text.contains("Protocol  : TLSv1.2") && !text.contains("Cipher is (NONE)"),
        "TLS 1.2 must work: {text}"
    );
    let old = handshake("-tls1_1");
    let text = String::from_utf8_lossy(&old.stdout);
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(
        text.contains("Cipher is (NONE)"),
        "TLS 1.1 must be refused: {text}"
    );
    assert!(err.contains("handshake failure"), "{err}");
    assert!(!old.status.success());
}
