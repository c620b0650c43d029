#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fake over HTTP: what is written is read back, and a watch from a
//! version delivers every later change in order.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn request(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_watch_delivers_changes_after_its_version() {
    let api = pgo_kube_fake::FakeApi::new(&[]);
    let port = api.serve_http();
    let coll = "/apis/pgo.dev/v1/namespaces/pgo/pgclusters";
    request(
        port,
        "POST",
        coll,
        r#"{"apiVersion":"pgo.dev/v1","kind":"Pgcluster","metadata":{"name":"a"}}"#,
    );
    let list = request(port, "GET", coll, "");
    assert!(list.contains("\"name\":\"a\""), "{list}");
    let version: u64 = list
        .split("\"resourceVersion\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut watch = TcpStream::connect(("127.0.0.1", port)).unwrap();
    watch.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        watch,
        "GET {coll}?watch=true&resourceVersion={version} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    request(
        port,
        "POST",
        coll,
        r#"{"apiVersion":"pgo.dev/v1","kind":"Pgcluster","metadata":{"name":"b"}}"#,
    );
    let mut reader = BufReader::new(watch);
    let mut seen = String::new();
    while !seen.contains("\"name\":\"b\"") {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the watch ended: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("\"type\":\"ADDED\""), "{seen}");
    assert!(
        !seen.contains("\"name\":\"a\""),
        "a change before the version was sent again: {seen}"
    );
}
