#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The apiserver's doors: HTTPS only, Basic auth on every route but
//! /healthz, roles checked per permission, an audit line per mutation.

mod support;

use support::{Server, admin_credentials as admin, https_client as client};

#[tokio::test]
async fn credentials_roles_and_the_open_health_check() {
    let server = Server::start();
    let http = client(&server);
    let url = |p: &str| format!("{}{p}", server.url);

    // /healthz needs nothing and says nothing secret.
    let r = http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
    // /livez too: the controllers' loops turn (a liveness probe's question).
    let r = http.get(url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);

    // Everything else: 401 without credentials or with wrong ones.
    for path in [
        "/clusters",
        "/version",
        "/status",
        "/clusters/x",
        "/no/such/route",
    ] {
        let r = http.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not authenticated");
    }
    let (user, pass) = admin(&server);
    let get_as = |path: &str, user: &str, pass: &str| {
        let req = http.get(url(path)).basic_auth(user, Some(pass));
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(get_as("/clusters", &user, "wrong").await, 401);
    assert_eq!(get_as("/clusters", "nobody", &pass).await, 401);
    assert_eq!(get_as("/clusters", &user, &pass).await, 200);

    // Plain HTTP is not served: the TLS handshake fails and nothing answers.
    let plain = http
        .get(url("/healthz").replace("https://", "http://"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP must not be answered: {plain:?}");

    // A pgoreader may show but not create: 403 naming the permission.
    let (reader, reader_pass) = support::add_user(&server, "reader", "pgoreader");
    let (reader, reader_pass) = (reader.as_str(), reader_pass.as_str());
    let users = std::fs::read_to_string(server.home.join("pgouser")).unwrap();
    assert!(!users.contains(reader_pass), "passwords are stored hashed");
    let r = http
        .post(url("/clusters"))
        .basic_auth(reader, Some(reader_pass))
        .json(&serde_json::json!({ "name": "denied" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("CreateCluster") && msg.contains("pgoreader"),
        "{msg}"
    );
    assert_eq!(get_as("/clusters", reader, reader_pass).await, 200);
    let r = http
        .get(url("/clusters/x?showSecrets=true"))
        .basic_auth(reader, Some(reader_pass))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a missing cluster is 404 before any secret is looked at"
    );

    // Mutations are not GETs.
    assert_eq!(get_as("/clusters/x/delete", &user, &pass).await, 404);

    // An audit line per mutation, never a password.
    let r = http
        .delete(url("/clusters/nosuch"))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    server.pgo_ok(&["create", "cluster", "audited", "--no-wait"]);
    let log = server.log();
    assert!(
        log.contains("allowed") && log.contains("CreateCluster") && log.contains("pgcluster/audited"),
        "{log}"
    );
    assert!(log.contains("denied"), "{log}");
    assert!(!log.contains(&pass) && !log.contains(reader_pass));
}

#[test]
fn the_client_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    for f in [
        "pgouser",
        "pgorole",
        "tls/server.key",
        "tls/ca.key",
        "client/pgouser",
    ] {
        let mode = std::fs::metadata(server.home.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let text = std::fs::read_to_string(&server.pgouser).unwrap();
    assert!(text.starts_with("admin:"));
}

#[tokio::test]
async fn a_3_4_pgouser_with_plaintext_passwords_works_is_warned_of_and_hashes_in_place() {
    let server = Server::start();
    let http = client(&server);
    let url = format!("{}/clusters", server.url);
    // 3.4's form, appended as an upgrader would bring it: the server
    // reloads the file.
    let users = server.home.join("pgouser");
    let mut text = std::fs::read_to_string(&users).unwrap();
    text.push_str("readonlyuser:testpass:pgoreader\n");
    std::fs::write(&users, &text).unwrap();
    let status = |pass: &'static str| {
        let req = http.get(&url).basic_auth("readonlyuser", Some(pass));
        async move { req.send().await.unwrap().status() }
    };
    // The server sees the file's new mtime at the next request.
    assert_eq!(status("testpass").await, 200);
    assert_eq!(status("wrong").await, 401);
    let log = server.log();
    assert!(
        log.contains("plaintext passwords")
            && log.contains("readonlyuser")
            && log.contains(&users.display().to_string())
            && log.contains("postgres-operator user hash"),
        "{log}"
    );

    let out = std::process::Command::new(support::SERVER)
        .args(["user", "hash", "--home"])
        .arg(&server.home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("readonlyuser"));
    let hashed = std::fs::read_to_string(&users).unwrap();
    assert!(
        !hashed.contains("testpass") && hashed.contains("readonlyuser:"),
        "{hashed}"
    );
    // The same password works against the hash.
    assert_eq!(status("testpass").await, 200);
    assert_eq!(status("wrong").await, 401);
}
