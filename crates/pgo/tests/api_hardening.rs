#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The apiserver as an attacker meets it: bad requests are 400 in JSON,
//! strangers learn no routes, failed logins are slow for them only, and
//! idle connections cannot starve the service proxies in the same process.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::{Server, admin_credentials, https_client};

#[tokio::test]
async fn bad_requests_are_400_in_json_and_strangers_learn_no_routes() {
    let server = Server::start();
    let http = https_client(&server);
    let (user, pass) = admin_credentials(&server);
    let url = |p: &str| format!("{}{p}", server.url);
    let json_error = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.expect("a JSON error body");
        (status, body["error"].as_str().unwrap_or_default().to_string())
    };

    // A misspelt field is refused, not ignored (it gave 0 replicas).
    let r = http
        .post(url("/clusters"))
        .basic_auth(&user, Some(&pass))
        .json(&serde_json::json!({ "name": "typo", "replicaCont": 2 }))
        .send()
        .await
        .unwrap();
    let (status, error) = json_error(r).await;
    assert_eq!(status, 400);
    assert!(error.contains("replicaCont"), "{error}");
    // A body that is not JSON, or not said to be: 400 in JSON too.
    for (body, content_type) in [("{not json", "application/json"), ("{}", "text/plain")] {
        let r = http
            .post(url("/clusters"))
            .basic_auth(&user, Some(&pass))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, error) = json_error(r).await;
        assert_eq!(status, 400, "{body}: {error}");
    }
    let r = http
        .get(url("/clusters/x?showSecret=true"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 400);
    assert!(server.pgo_ok(&["show", "cluster", "all"]).trim().lines().count() <= 1);

    // A method a route does not take: 401 to a stranger, 405 to a user.
    let r = http.put(url("/clusters")).send().await.unwrap();
    assert_eq!(json_error(r).await.0, 401);
    let r = http
        .put(url("/clusters"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(r).await.0, 405);

    // The store is the owner's alone.
    let mode = std::fs::metadata(server.home.join("store.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "store.db is {mode:o}");
    // A user whose name the pgouser file would skip as a comment.
    let out = std::process::Command::new(support::SERVER)
        .args(["user", "add", "#x", "--role", "pgoadmin", "--home"])
        .arg(&server.home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid user name"));
    // Credentials never go over plain HTTP.
    let err = server.pgo_err(&["--apiserver-url", &server.url.replace("https", "http"), "version"]);
    assert!(err.contains("must start with https://"), "{err}");
}

async fn timed(http: &reqwest::Client, url: &str, user: &str, pass: &str) -> (u16, Duration) {
    let start = Instant::now();
    let r = http.get(url).basic_auth(user, Some(pass)).send().await.unwrap();
    (r.status().as_u16(), start.elapsed())
}

#[tokio::test]
async fn failed_logins_are_logged_throttled_and_tell_no_user_names() {
    let server = Server::start();
    let http = https_client(&server);
    let (user, pass) = admin_credentials(&server);
    let url = format!("{}/clusters", server.url);
    assert_eq!(timed(&http, &url, &user, &pass).await.0, 200);

    // An unknown user costs the hashing a known one does: no faster answer
    // tells which names exist (it was 200 times faster).
    let (status, known) = timed(&http, &url, &user, "wrong-1").await;
    assert_eq!(status, 401);
    let (status, unknown) = timed(&http, &url, "nobody", "wrong-2").await;
    assert_eq!(status, 401);
    assert!(
        unknown * 4 >= known,
        "an unknown user was answered in {unknown:?}, a known one in {known:?}"
    );

    // After a few failures the address waits, told so with 429.
    let mut throttled = None;
    for i in 0..10 {
        let r = http
            .get(&url)
            .basic_auth(&user, Some(format!("wrong-again-{i}")))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            throttled = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
        assert_eq!(r.status(), 401);
    }
    let retry_after = throttled.expect("no 429 after repeated failures");
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    // A user who has logged in is not locked out by someone else's guessing.
    assert_eq!(timed(&http, &url, &user, &pass).await.0, 200);
    let log = server.log();
    assert!(log.contains("login failed") && log.contains("nobody"), "{log}");
    assert!(!log.contains("wrong-again"), "passwords never appear in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_api_connections_cannot_starve_the_service_proxies() {
    let server = Server::start_limited(256);
    server.pgo_ok(&["create", "cluster", "fds"]);
    let view = server.show_json("fds");
    let port = server.port();
    // Far more idle connections than the server may hold open for the API.
    let mut idle = Vec::new();
    for _ in 0..400 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            idle.push(s);
        }
    }
    // PostgreSQL through the cluster's service still answers.
    let c = support::admin(&view).await;
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    // The server closes what says nothing, and the API answers again.
    std::thread::sleep(Duration::from_secs(7));
    let mut closed = 0;
    for s in &mut idle {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match s.read(&mut [0u8; 16]) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {}
        }
    }
    assert_eq!(closed, idle.len());
    drop(idle);
    assert!(server.pgo_ok(&["version"]).contains("server"));
}
