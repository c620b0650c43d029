#![allow(clippy::unwrap_used, clippy::expect_used)]
//! pgBackRest with real PostgreSQL: WAL archived from bootstrap on, backups
//! as jobs (from the primary and from a replica), retention, archiving that
//! carries on after a failover, and what is refused.

mod support;

use serde_json::Value;
use support::{Server, app_client, backrest_server, connect, count_rows, member, password, until_count};

fn backups(server: &Server, cluster: &str) -> Value {
    serde_json::from_str(&server.pgo_ok(&["show", "backup", cluster, "-o", "json"])).unwrap()
}

fn primary_archive(server: &Server, cluster: &str) -> Value {
    let view = server.show_json(cluster);
    let primary = view["primary"].as_str().unwrap().to_string();
    member(&view, &primary)["archive"].clone()
}

/// Runs a pgBackRest command for `instance`'s stanza the way the operator's
/// jobs do (as PostgreSQL's user, with the instance's config) and returns
/// what the job recorded.
fn backrest_job(server: &Server, instance: &str, args: &[&str]) -> Value {
    let result = server.dir().join(format!("job-{instance}-{}.json", args[0]));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postgres-operator"))
        .args(["job", "backrest", "--instance-config"])
        .arg(server.instance_dir(instance).join("instance.json"))
        .arg("--result")
        .arg(&result)
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    let recorded: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert_eq!(
        recorded["succeeded"],
        out.status.success(),
        "{recorded}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    recorded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_is_archived_and_backups_are_taken_kept_and_expired() {
    let server = backrest_server("Cluster:\n  BackrestRetentionFull: 1\n");
    server.pgo_ok(&["create", "cluster", "bk", "--replica-count=1"]);
    let view = server.show_json("bk");
    assert_eq!(view["backrest"], true);
    // The replica's copy forced a WAL switch; its segment is archived.
    server.wait_until(30, "the primary to report an archived segment", || {
        primary_archive(&server, "bk")["archivedCount"]
            .as_i64()
            .unwrap_or(0)
            > 0
    });
    let archive = primary_archive(&server, "bk");
    assert_eq!(archive["failedCount"], 0, "{archive}");
    assert!(archive.get("repositoryError").is_none(), "{archive}");
    let shown = server.pgo_ok(&["show", "cluster", "bk"]);
    assert!(shown.contains("archive: pgBackRest, "), "{shown}");
    assert!(!shown.contains("FAILING"), "{shown}");

    let db = app_client(&server, "bk", "bk").await;
    db.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50000)")
        .await
        .unwrap();

    let out = server.pgo_ok(&["backup", "bk"]);
    assert!(out.contains("pgBackRest label ") && out.contains("F\n"), "{out}");
    let out = server.pgo_ok(&["backup", "bk", "--backup-opts=--type=incr", "--backup-standby"]);
    assert!(out.contains("I\n"), "an incremental backup: {out}");

    let list = backups(&server, "bk");
    let items = list["backups"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let (full, incr) = (&items[0], &items[1]);
    assert_eq!(full["phase"], "Succeeded");
    assert_eq!(full["backup"]["type"], "full");
    assert_eq!(full["instance"], "bk", "taken from the primary");
    assert!(
        full["backup"]["sizeBytes"].as_u64().unwrap() > 1_000_000,
        "{full}"
    );
    assert!(full["backup"]["repoSizeBytes"].as_u64().unwrap() > 0, "{full}");
    assert!(
        full["backup"]["walStart"]
            .as_str()
            .unwrap()
            .starts_with("00000001")
    );
    assert_eq!(incr["backup"]["type"], "incr");
    assert_eq!(incr["backup"]["prior"], full["backup"]["label"]);
    assert_ne!(incr["instance"], "bk", "--backup-standby reads a replica: {incr}");
    assert_eq!(list["earliestRestore"], full["backup"]["stop"]);
    assert!(list["repositoryBytes"].as_u64().unwrap() > 0);
    let table = server.pgo_ok(&["show", "backup", "bk"]);
    assert!(table.contains("a restore can reach"), "{table}");

    // A second full backup: retention (1 full) expires the first and the
    // incremental that depends on it.
    server.pgo_ok(&["backup", "bk", "--backup-opts=--type=full"]);
    let list = backups(&server, "bk");
    let phases: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["Expired", "Expired", "Succeeded"], "{list}");
    let info = backrest_job(&server, "bk", &["check"]);
    assert_eq!(info["succeeded"], true, "{info}");
    let repo: Value = serde_json::from_str(info["output"].as_str().unwrap()).unwrap();
    assert_eq!(repo[0]["backup"].as_array().unwrap().len(), 1, "{repo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_primary_archives_to_the_same_repository_after_a_failover() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "fo", "--replica-count=1"]);
    server.pgo_ok(&["backup", "fo"]);
    let view = server.show_json("fo");
    let replica = support::members(&view, "Replica")[0].clone();
    server.pgo_ok(&["failover", "fo", &format!("--target={replica}"), "--no-prompt"]);
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Until the stanza is checked from the new primary too: pgBackRest's
    // lock is the manager's until then, and a check run meanwhile fails.
    while !(server.show_json("fo")["primary"] == replica.as_str()
        && last["archivedCount"].as_i64().unwrap_or(0) > 0
        && last["stanzaReady"] == true)
    {
        // What the archiver and PostgreSQL said, should it never come.
        let log =
            std::fs::read_to_string(server.instance_dir(&replica).join("postgres.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        assert!(
            std::time::Instant::now() < deadline,
            "the new primary did not archive within 60 s: {last}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        last = primary_archive(&server, "fo");
    }
    // The timeline's history is in the repository, archiving works from
    // the new primary, and a backup there finds every segment it needs.
    let history = server
        .dir()
        .join("home/volumes/fo-backrestrepo/archive/db/15-1/00000002.history");
    server.wait_until(30, "the timeline history to be archived", || history.is_file());
    let check = backrest_job(&server, &replica, &["check"]);
    assert_eq!(check["succeeded"], true, "{check}");
    let out = server.pgo_ok(&["backup", "fo"]);
    assert!(out.contains("done"), "{out}");
    let list = backups(&server, "fo");
    let last = list["backups"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["instance"], replica.as_str(), "{last}");
    assert!(
        last["backup"]["walStart"]
            .as_str()
            .unwrap()
            .starts_with("00000002"),
        "{last}"
    );
}

#[test]
fn what_cannot_be_backed_up_is_refused_and_nothing_is_recorded() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "plain", "--pgbackrest=false"]);
    let shown = server.pgo_ok(&["show", "cluster", "plain"]);
    assert!(shown.contains("archive: off"), "{shown}");
    assert!(
        !server.dir().join("home/volumes/plain-backrestrepo").exists(),
        "no repository for a cluster without pgBackRest"
    );
    let err = server.pgo_err(&["backup", "plain"]);
    assert!(
        err.contains("--pgbackrest=false") && err.contains("HTTP 400"),
        "{err}"
    );
    let err = server.pgo_err(&["backup", "nosuch"]);
    assert!(err.contains("cluster \"nosuch\" not found"), "{err}");
    server.pgo_ok(&["create", "cluster", "br"]);
    let err = server.pgo_err(&["backup", "br", "--backup-opts=--repo1-path=/etc"]);
    assert!(err.contains("\"--repo1-path=/etc\" is not an option"), "{err}");
    let err = server.pgo_err(&["backup", "br", "--backup-opts=--type=weekly"]);
    assert!(err.contains("full, diff or incr"), "{err}");
    let err = server.pgo_err(&["backup", "br", "--backup-type=tar"]);
    assert!(err.contains("\"tar\" is not a backup type"), "{err}");
    let err = server.pgo_err(&["backup", "br", "--backup-standby"]);
    assert!(err.contains("has no ready replica"), "{err}");
    let list = backups(&server, "br");
    let phases: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["Failed"],
        "only the standby backup was recorded, and failed: {list}"
    );
    let err = server.pgo_err(&["show", "backup", "nosuch"]);
    assert!(err.contains("not found"), "{err}");

    // Deleting with the data keeps the backups; --delete-backups takes them.
    let volumes = server.dir().join("home/volumes");
    let stanza = volumes.join("br-backrestrepo/backup/db/backup.info");
    server.wait_until(30, "br's stanza to be made", || stanza.is_file());
    server.pgo_ok(&["delete", "cluster", "br", "--delete-data", "--no-prompt"]);
    server.wait_until(60, "br's data to be removed", || !volumes.join("br").exists());
    assert!(
        volumes.join("br-backrestrepo/backup/db/backup.info").is_file(),
        "the repository stays"
    );
    server.pgo_ok(&["create", "cluster", "gone"]);
    assert!(volumes.join("gone-backrestrepo").is_dir());
    let out = server.pgo_ok(&[
        "delete",
        "cluster",
        "gone",
        "--delete-data",
        "--delete-backups",
        "--no-prompt",
    ]);
    assert!(out.contains("the data and backups are removed"), "{out}");
    server.wait_until(60, "gone's data and repository to be removed", || {
        !volumes.join("gone").exists() && !volumes.join("gone-backrestrepo").exists()
    });
}

#[test]
fn a_backup_outlives_a_server_killed_while_it_runs() {
    let mut server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "kb"]);
    server.wait_until(30, "the stanza", || {
        primary_archive(&server, "kb")["stanzaReady"] == true
    });
    let out = server.pgo_ok(&["backup", "kb", "--no-wait"]);
    assert!(out.contains("created backup"), "{out}");
    server.wait_until(30, "the backup's job to start", || {
        backups(&server, "kb")["backups"][0]["phase"] == "Running"
    });
    server.kill();
    server.restart();
    server.wait_until(120, "the backup to be recorded by the new server", || {
        backups(&server, "kb")["backups"][0]["phase"] == "Succeeded"
    });
    let list = backups(&server, "kb");
    assert_eq!(list["backups"][0]["backup"]["type"], "full", "{list}");
}

fn labels_and_phases(server: &Server, cluster: &str) -> Vec<(String, String)> {
    backups(server, cluster)["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup"]["label"].as_str().unwrap_or("-").to_string(),
                b["phase"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_backup_is_expired_by_its_label_with_the_backups_that_depend_on_it() {
    let server = backrest_server("");
    server.pgo_ok(&["create", "cluster", "exp"]);
    for opts in ["--type=full", "--type=incr", "--type=full"] {
        server.pgo_ok(&["backup", "exp", &format!("--backup-opts={opts}")]);
    }
    let before = labels_and_phases(&server, "exp");
    let (full, incr, newest) = (&before[0].0, &before[1].0, &before[2].0);
    assert!(
        incr.starts_with(full.as_str()) && incr.ends_with('I'),
        "{before:?}"
    );

    // Refusals change nothing: an unknown label (the message lists the
    // labels there are), and no --target at all.
    let e = server.pgo_err(&[
        "delete",
        "backup",
        "exp",
        "--target=20000101-000000F",
        "--no-prompt",
    ]);
    assert!(
        e.contains("no backup labelled") && e.contains(newest.as_str()),
        "{e}"
    );
    let e = server.pgo_err(&["delete", "backup", "exp", "--no-prompt"]);
    assert!(e.contains("--target"), "{e}");
    assert_eq!(labels_and_phases(&server, "exp"), before);

    let out = server.pgo_ok(&[
        "delete",
        "backup",
        "exp",
        &format!("--target={full}"),
        "--no-prompt",
    ]);
    assert!(out.contains(&format!("with {incr}")), "{out}");
    let after = labels_and_phases(&server, "exp");
    let phases: Vec<&str> = after.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(phases, ["Expired", "Expired", "Succeeded"], "{after:?}");
    let info = backrest_job(&server, "exp", &["check"]);
    let repo: Value = serde_json::from_str(info["output"].as_str().unwrap()).unwrap();
    let kept: Vec<&str> = repo[0]["backup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [newest.as_str()],
        "pgBackRest holds only the newest: {repo}"
    );

    // The last full backup stays: pgBackRest would refuse, and so does pgo.
    let e = server.pgo_err(&[
        "delete",
        "backup",
        "exp",
        &format!("--target={newest}"),
        "--no-prompt",
    ]);
    assert!(e.contains("only full backup"), "{e}");
    // An expired one is no longer in the repository to delete.
    let e = server.pgo_err(&[
        "delete",
        "backup",
        "exp",
        &format!("--target={full}"),
        "--no-prompt",
    ]);
    assert!(e.contains("no backup labelled"), "{e}");
    // Backups go on after a delete.
    server.pgo_ok(&["backup", "exp"]);
    assert_eq!(labels_and_phases(&server, "exp").len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_basebackup_copy_starts_a_new_cluster_as_3_4_did() {
    let server = backrest_server("");
    // A copy needs no pgBackRest.
    server.pgo_ok(&["create", "cluster", "bb", "--pgbackrest=false"]);
    let view = server.show_json("bb");
    let pw = password(&view, "testuser");
    let db = app_client(&server, "bb", "bb").await;
    db.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)")
        .await
        .unwrap();
    let e = server.pgo_err(&[
        "backup",
        "bb",
        "--backup-type=pgbasebackup",
        "--backup-opts=--max-rate=1k",
    ]);
    assert!(e.contains("no options to pg_basebackup"), "{e}");
    let out = server.pgo_ok(&["backup", "bb", "--backup-type=pgbasebackup"]);
    assert!(
        out.contains("copy at bb-backups/") && out.contains("in volume bb-backup"),
        "{out}"
    );
    // Written after the copy: not in it.
    db.batch_execute("INSERT INTO t SELECT generate_series(1001, 2000)")
        .await
        .unwrap();
    let list = backups(&server, "bb");
    let copy = &list["backups"][0];
    assert_eq!(copy["backupType"], "pgbasebackup", "{list}");
    assert_eq!(copy["phase"], "Succeeded", "{list}");
    assert!(
        copy["backup"]["sizeBytes"].as_u64().unwrap() > 1_000_000,
        "{copy}"
    );
    assert!(
        copy["backup"]["walStart"]
            .as_str()
            .unwrap()
            .starts_with("00000001"),
        "{copy}"
    );
    let path = copy["backup"]["label"].as_str().unwrap().to_string();
    assert!(
        list.get("earliestRestore").is_none(),
        "a copy is no pgBackRest restore point: {list}"
    );
    // 'pgo show pvc' lists the cluster's volumes and the copy's path, as
    // 3.4's did, to paste into --backup-path.
    let pvcs: Value = serde_json::from_str(&server.pgo_ok(&["show", "pvc", "bb", "-o", "json"])).unwrap();
    let holds = support::volumes_held(&pvcs);
    assert_eq!(
        holds,
        [
            ("bb".into(), "data".into()),
            ("bb-backup".into(), "pgbasebackup".into())
        ],
        "{pvcs}"
    );
    assert_eq!(pvcs[1]["copies"][0], path.as_str(), "{pvcs}");
    let table = server.pgo_ok(&["show", "pvc", "bb-backup"]);
    assert!(
        table.contains("copies in bb-backup:") && table.contains(&path),
        "{table}"
    );
    assert!(server.pgo_ok(&["show", "pvc", "all"]).contains("bb-backup"));
    let e = server.pgo_err(&["show", "pvc", "nosuch"]);
    assert!(e.contains("no volume is named \"nosuch\""), "{e}");

    // Refused, naming the problem, with nothing made.
    let e = server.pgo_err(&[
        "create",
        "cluster",
        "nope",
        "--backup-pvc=bb-backup",
        "--backup-path=bb-backups/2000-01-01-00-00-00",
        "--secret-from=bb",
    ]);
    assert!(e.contains("no pg_basebackup copy") && e.contains(&path), "{e}");
    let e = server.pgo_err(&[
        "create",
        "cluster",
        "nope",
        "--backup-pvc=bb-backup",
        &format!("--backup-path={path}"),
    ]);
    assert!(e.contains("--secret-from"), "{e}");
    assert!(server.pgo_err(&["show", "cluster", "nope"]).contains("not found"));

    server.pgo_ok(&[
        "create",
        "cluster",
        "bbcopy",
        "--backup-pvc=bb-backup",
        &format!("--backup-path={path}"),
        "--secret-from=bb",
    ]);
    let copy_view = server.show_json("bbcopy");
    assert_eq!(
        password(&copy_view, "testuser"),
        pw,
        "the copy's users keep their passwords"
    );
    let copied = app_client(&server, "bbcopy", "bbcopy").await;
    assert_eq!(
        count_rows(&copied).await,
        1000,
        "exactly the rows of the moment the copy was taken"
    );
    copied.batch_execute("INSERT INTO t VALUES (0)").await.unwrap();

    // The copy stays with its cluster's backups: deleting the cluster's
    // data keeps it.
    server.pgo_ok(&["delete", "cluster", "bb", "--delete-data", "--no-prompt"]);
    let kept = server.dir().join("home/volumes/bb-backup").join(&path);
    assert!(kept.join("PG_VERSION").is_file(), "{}", kept.display());
    server.wait_until(30, "bb's data to be removed", || {
        !server.dir().join("home/volumes/bb").exists()
    });
    // With --delete-backups, a cluster's copies go with it.
    server.pgo_ok(&["backup", "bbcopy", "--backup-type=pgbasebackup"]);
    let volumes = server.dir().join("home/volumes");
    assert!(volumes.join("bbcopy-backup").is_dir());
    server.pgo_ok(&[
        "delete",
        "cluster",
        "bbcopy",
        "--delete-data",
        "--delete-backups",
        "--no-prompt",
    ]);
    server.wait_until(30, "bbcopy's copies to be removed", || {
        !volumes.join("bbcopy-backup").exists()
    });
    assert!(kept.is_dir(), "bb's copies are bb's, not bbcopy's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_taken_from_a_replica_starts_a_new_cluster_too() {
    let server = backrest_server("");
    server.pgo_ok(&[
        "create",
        "cluster",
        "sb",
        "--pgbackrest=false",
        "--replica-count=1",
    ]);
    let view = server.show_json("sb");
    let pw = password(&view, "testuser");
    let db = app_client(&server, "sb", "sb").await;
    db.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 500)")
        .await
        .unwrap();
    let replica = support::members(&view, "Replica")[0].clone();
    // The replica has the rows before the copy is taken from it.
    let replica_port = member(&view, &replica)["port"].as_u64().unwrap() as u16;
    let follower = connect(replica_port, "testuser", &pw, "userdb").await.unwrap();
    assert_eq!(until_count(&follower, 500).await, 500, "the rows on the replica");
    server.pgo_ok(&["backup", "sb", "--backup-type=pgbasebackup", "--backup-standby"]);
    let list = backups(&server, "sb");
    let copy = &list["backups"][0];
    assert_eq!(copy["instance"], replica.as_str(), "{copy}");
    let path = copy["backup"]["label"].as_str().unwrap().to_string();
    server.pgo_ok(&[
        "create",
        "cluster",
        "sbcopy",
        "--backup-pvc=sb-backup",
        &format!("--backup-path={path}"),
        "--secret-from=sb",
    ]);
    let copied = app_client(&server, "sbcopy", "sbcopy").await;
    assert_eq!(count_rows(&copied).await, 500);
    // A primary, not a standby: it takes writes.
    copied.batch_execute("INSERT INTO t VALUES (0)").await.unwrap();
}
