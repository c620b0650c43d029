#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Backups on the Kubernetes platform with the rendered pods and Jobs run
//! for real by the stand-in kubelet: WAL archived to the cluster's
//! pgBackRest repository host and backups run there, asked by a Job; a
//! pg_basebackup copy as a Job from the strategy's template, into the
//! cluster's backup claim. Outcomes are read from the Jobs' termination
//! messages. Needs root, as CI has.

mod support;

use support::kubelet::cluster_env;

#[test]
fn a_pg_basebackup_copy_runs_as_a_job_from_the_template_and_says_what_it_made() {
    let c = cluster_env(None);
    c.pgo_ok(&["create", "cluster", "db", "--timeout=120"]);
    let view = c.server.show_json("db");
    let host = c.kubelet.service_ip("db").expect("the Service has no address");
    let password = support::password(&view, "postgres");
    support::psql_at(
        &format!("host={host} port=5432"),
        &password,
        "create table kept (v int); insert into kept select generate_series(1, 1000)",
    )
    .unwrap();

    c.pgo_ok(&["backup", "db", "--backup-type=pgbasebackup", "--timeout=120"]);
    let list = backups(&c);
    let copy = &list["backups"][0];
    assert_eq!(copy["phase"], "Succeeded", "{list:#}");
    let path = copy["backup"]["label"].as_str().unwrap();
    assert!(path.starts_with("db-backups/"), "{copy}");
    assert!(
        copy["backup"]["sizeBytes"].as_u64().unwrap() > 1_000_000,
        "{copy}"
    );
    // The copy is whole in the claim, and the Job is gone once recorded.
    let pgdata = c.kubelet.claim_dir("db-backup").join(path);
    assert!(pgdata.join("PG_VERSION").is_file(), "{}", pgdata.display());
    assert!(pgdata.join("backup_label").is_file());
    c.server.wait_until(30, "the Job to be removed", || {
        c.api
            .list(pgo_kube_fake::JOBS)
            .iter()
            .all(|j| j["metadata"]["name"] != copy["name"])
    });

    // 'pgo show pvc' lists the cluster's claims, and the copy's path to
    // paste into --backup-path.
    let pvcs: serde_json::Value =
        serde_json::from_str(&c.server.pgo_ok(&["show", "pvc", "db", "-o", "json"])).unwrap();
    let holds = support::volumes_held(&pvcs);
    let want = [
        ("db", "data"),
        ("db-backrestrepo", "pgbackrest"),
        ("db-backup", "pgbasebackup"),
    ];
    assert_eq!(holds, want.map(|(n, h)| (n.to_string(), h.to_string())), "{pvcs}");
    assert_eq!(pvcs[2]["copies"][0], path, "{pvcs}");

    // A cluster made from the copy: a Job copies it into the new volume
    // before the first pod starts, so no pod of it mounts db's backup
    // claim, which may go before it does.
    c.pgo_ok(&[
        "create",
        "cluster",
        "copy",
        "--backup-pvc=db-backup",
        &format!("--backup-path={path}"),
        "--secret-from=db",
        "--timeout=180",
    ]);
    // Its Service has an address once the stand-in kubelet's next pass saw it.
    c.server.wait_until(30, "copy's Service to have an address", || {
        c.kubelet.service_ip("copy").is_some()
    });
    let host = c.kubelet.service_ip("copy").expect("the Service has no address");
    assert_eq!(
        support::psql_at(
            &format!("host={host} port=5432"),
            &password,
            "select count(*) from kept"
        )
        .as_deref(),
        Ok("1000")
    );
    for d in c.api.list(pgo_kube_fake::DEPLOYMENTS) {
        let text = d["spec"]["template"]["spec"]["volumes"].to_string();
        assert!(
            !text.contains("db-backup"),
            "{} mounts the backup claim: {text}",
            d["metadata"]["name"]
        );
    }
    c.server.wait_until(30, "the seed Job to be removed", || {
        c.api.list(pgo_kube_fake::JOBS).is_empty()
    });
}

#[test]
fn a_copy_from_a_replica_goes_through_the_replica_service_with_tls_verified() {
    let c = cluster_env(None);
    c.pgo_ok(&["create", "cluster", "db", "--replica-count=1", "--timeout=120"]);
    let view = c.server.show_json("db");
    let replica = support::members(&view, "Replica")[0].clone();
    c.pgo_ok(&[
        "backup",
        "db",
        "--backup-type=pgbasebackup",
        "--backup-standby",
        "--timeout=120",
    ]);
    let list = backups(&c);
    let copy = &list["backups"][0];
    assert_eq!(copy["phase"], "Succeeded", "{list:#}");
    assert_eq!(copy["instance"], replica.as_str(), "{copy}");
    let path = copy["backup"]["label"].as_str().unwrap();
    let pgdata = c.kubelet.claim_dir("db-backup").join(path);
    // A copy of a standby is a standby's data: pg_basebackup says where
    // it started in its backup_label, from the replica.
    let label = std::fs::read_to_string(pgdata.join("backup_label")).unwrap();
    assert!(label.contains("BACKUP FROM: standby"), "{label}");
}

/// What `pgo show backup db` lists, as JSON.
fn backups(c: &support::kubelet::Cluster) -> serde_json::Value {
    serde_json::from_str(&c.server.pgo_ok(&["show", "backup", "db", "-o", "json"])).unwrap()
}

/// Cluster db's backup of pgBackRest type `kind` (full, diff, incr).
fn backup_of_type(c: &support::kubelet::Cluster, kind: &str) -> serde_json::Value {
    let list = backups(c);
    list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backup"]["type"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} backup: {list:#}"))
}

fn primary_archive(c: &support::kubelet::Cluster) -> serde_json::Value {
    let view = c.server.show_json("db");
    let primary = view["primary"].as_str().unwrap().to_string();
    support::member(&view, &primary)["archive"].clone()
}

#[test]
fn pgbackrest_archives_to_the_repository_host_which_runs_the_backups() {
    let c = cluster_env(None);
    c.pgo_ok(&["create", "cluster", "db", "--replica-count=1", "--timeout=120"]);
    let view = c.server.show_json("db");
    let host = c.kubelet.service_ip("db").expect("the Service has no address");
    let password = support::password(&view, "postgres");
    let at = format!("host={host} port=5432");
    support::psql_at(
        &at,
        &password,
        "create table kept (v int); insert into kept select generate_series(1, 1000)",
    )
    .unwrap();

    // WAL reaches the repository host's claim through pgBackRest's TLS
    // protocol: the primary's pod mounts no repository.
    support::psql_at(&at, &password, "select pg_switch_wal()").unwrap();
    c.server
        .wait_until(60, "the primary to report an archived segment", || {
            primary_archive(&c)["archivedCount"].as_i64().unwrap_or(0) > 0
        });
    let archive = primary_archive(&c);
    assert_eq!(archive["failedCount"], 0, "{archive}\n{}", c.pod_logs());
    let repo = c.kubelet.claim_dir("db-backrestrepo").join("data");
    assert!(
        repo.join("archive/db/archive.info").is_file(),
        "{}",
        repo.display()
    );

    // A backup: a Job asks the repository host, which reads the primary's
    // data directory through the primary Service.
    c.pgo_ok(&["backup", "db", "--timeout=180"]);
    let list = backups(&c);
    let full = &list["backups"][0];
    assert_eq!(full["phase"], "Succeeded", "{list:#}");
    let label = full["backup"]["label"].as_str().unwrap();
    assert!(label.ends_with('F'), "{full}");
    assert!(
        full["backup"]["sizeBytes"].as_u64().unwrap() > 1_000_000,
        "{full}"
    );
    assert!(repo.join("backup/db").join(label).is_dir(), "{label}");

    // A failover: the promoted replica archives to the same repository,
    // on its new timeline, and the host backs it up through the primary
    // Service, which follows it.
    let replica = support::members(&c.server.show_json("db"), "Replica")[0].clone();
    c.pgo_ok(&["failover", "db", "--target", &replica, "--no-prompt"]);
    c.server.wait_until(90, "the failover to finish", || {
        let v = c.server.show_json("db");
        v["primary"] == serde_json::json!(replica)
            && v["members"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["ready"] == true)
    });
    // The Service follows the new primary once its endpoints do, as
    // kube-proxy's do: a client tries again meanwhile.
    c.server
        .wait_until(30, "the primary Service to reach the new primary", || {
            support::psql_at(&at, &password, "select pg_is_in_recovery()").as_deref() == Ok("f")
        });
    support::psql_at(
        &at,
        &password,
        "insert into kept values (1001); select pg_switch_wal()",
    )
    .unwrap();
    c.server.wait_until(60, "the new primary to archive", || {
        let a = primary_archive(&c);
        a["archivedCount"].as_i64().unwrap_or(0) > 0 && a["failedCount"] == 0
    });
    assert!(
        std::fs::read_dir(repo.join("archive/db/15-1"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("00000002")),
        "no WAL of timeline 2 in the repository"
    );

    // An incremental one on top of the full one, on the new timeline.
    c.pgo_ok(&["backup", "db", "--backup-opts=--type=incr", "--timeout=180"]);
    let incr = backup_of_type(&c, "incr");
    assert_eq!(incr["backup"]["prior"], label, "{incr}");

    // From a replica: the host reads the files from that one replica, by
    // its pod's own name; the primary only starts and stops the backup.
    let replica = support::members(&c.server.show_json("db"), "Replica")[0].clone();
    c.pgo_ok(&[
        "backup",
        "db",
        "--backup-standby",
        "--backup-opts=--type=diff",
        "--timeout=180",
    ]);
    let diff = backup_of_type(&c, "diff");
    assert_eq!(diff["phase"], "Succeeded", "{diff}");
    assert_eq!(diff["instance"], replica.as_str(), "{diff}");

    // Deleted with its backups: the host is stopped before its repository
    // is emptied, and nothing of the cluster is left.
    c.pgo_ok(&[
        "delete",
        "cluster",
        "db",
        "--delete-data",
        "--delete-backups",
        "--no-prompt",
    ]);
    c.server.wait_until(60, "the cluster's PVCs to be removed", || {
        c.api.names(pgo_kube_fake::PVCS).is_empty()
    });
    c.server.wait_until(30, "the repository host to go", || {
        c.api.names(pgo_kube_fake::DEPLOYMENTS).is_empty()
    });
    assert!(!repo.join("backup").exists(), "{}", repo.display());
}

/// The database's clock, a second clear of the writes on either side, as
/// pgBackRest reads a target.
fn moment(at: &str, password: &str) -> String {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let t = support::psql_at(
        at,
        password,
        "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t
}

#[test]
fn point_in_time_recovery_through_the_repository_host_into_a_new_cluster_and_in_place() {
    let c = cluster_env(None);
    c.pgo_ok(&["create", "cluster", "src", "--timeout=120"]);
    let view = c.server.show_json("src");
    let password = support::password(&view, "postgres");
    // A cluster's Service has an address once the stand-in kubelet's next
    // pass has seen it: until then a query fails, and a wait tries again.
    let at = |cluster: &str| {
        c.kubelet
            .service_ip(cluster)
            .map(|host| format!("host={host} port=5432"))
            .ok_or_else(|| format!("the Service {cluster} has no address yet"))
    };
    let sql = |cluster: &str, sql: &str| support::psql_at(&at(cluster)?, &password, sql);
    sql(
        "src",
        "create table t (id int); insert into t select generate_series(1, 100)",
    )
    .unwrap();
    c.pgo_ok(&["backup", "src", "--timeout=180"]);
    // After the backup: only replayed WAL brings these back.
    sql("src", "insert into t select generate_series(101, 200)").unwrap();
    let target = moment(&at("src").unwrap(), &password);
    sql("src", "insert into t select generate_series(201, 300)").unwrap();
    let segment = sql("src", "select pg_walfile_name(pg_current_wal_lsn())").unwrap();
    sql("src", "select pg_switch_wal()").unwrap();
    c.server.wait_until(60, "the last segment to be archived", || {
        let view = c.server.show_json("src");
        let primary = view["primary"].as_str().unwrap().to_string();
        support::member(&view, &primary)["archive"]["lastArchivedWal"]
            .as_str()
            .is_some_and(|w| w >= segment.as_str())
    });

    // Into a new cluster, through src's repository host, with src's client
    // certificate: rows 1-200, and it archives to a repository of its own.
    c.pgo_ok(&[
        "create",
        "cluster",
        "dst",
        "--restore-from=src",
        &format!("--pitr-target={target}"),
        "--timeout=180",
    ]);
    c.server.wait_until(60, "dst's Service to route", || {
        sql("dst", "select count(*) from t").is_ok()
    });
    assert_eq!(sql("dst", "select count(*) from t").as_deref(), Ok("200"));
    sql("dst", "insert into t values (1000)").unwrap();
    c.pgo_ok(&["backup", "dst", "--timeout=180"]);

    // Into a new volume (3.4's --to-pvc), by a Job that replays WAL to the
    // target and promotes there: the volume needs nothing of src after,
    // and a cluster starts on it with src's passwords.
    let out = c.pgo_ok(&[
        "restore",
        "src",
        "--to-pvc=vol",
        &format!("--pitr-target={target}"),
        "--no-prompt",
        "--timeout=180",
    ]);
    assert!(out.contains("restored into volume vol"), "{out}");
    let data = c.kubelet.claim_dir("vol").join("data");
    let auto = std::fs::read_to_string(data.join("pgdata/postgresql.auto.conf")).unwrap();
    assert!(!auto.contains("restore_command"), "{auto}");
    assert!(!data.join("pgdata/recovery.signal").exists());
    assert!(!data.join(".pgo-restore-pending").exists());
    c.pgo_ok(&["create", "cluster", "vol", "--secret-from=src", "--timeout=180"]);
    c.server.wait_until(60, "vol's Service to route", || {
        sql("vol", "select count(*) from t").is_ok()
    });
    assert_eq!(sql("vol", "select count(*) from t").as_deref(), Ok("200"));

    // In place: src goes back to the same moment.
    let out = c.pgo_ok(&[
        "restore",
        "src",
        &format!("--pitr-target={target}"),
        "--no-prompt",
        "--timeout=180",
    ]);
    assert!(out.contains("restored cluster src"), "{out}");
    c.server.wait_until(60, "src's Service to route", || {
        sql("src", "select count(*) from t").is_ok()
    });
    assert_eq!(sql("src", "select count(*) from t").as_deref(), Ok("200"));

    // A deleted cluster's repository host goes with it, its repository's
    // claim stays: a cluster restored from it is filled by a Job that
    // mounts the claim and replays all of dst's archive (its 200 rows and
    // the one written before its backup).
    c.pgo_ok(&["delete", "cluster", "dst", "--no-prompt"]);
    c.server.wait_until(60, "dst and its repository host to go", || {
        c.api.get(pgo_kube_fake::PGCLUSTERS, "dst").is_none()
            && c.api
                .get(pgo_kube_fake::DEPLOYMENTS, "dst-backrest-repo")
                .is_none()
    });
    c.pgo_ok(&[
        "create",
        "cluster",
        "again",
        "--restore-from=dst",
        "--timeout=180",
    ]);
    c.server.wait_until(60, "again's Service to route", || {
        sql("again", "select count(*) from t").is_ok()
    });
    assert_eq!(sql("again", "select count(*) from t").as_deref(), Ok("201"));
    for d in c.api.list(pgo_kube_fake::DEPLOYMENTS) {
        let text = d["spec"]["template"]["spec"]["volumes"].to_string();
        assert!(
            !text.contains("dst-backrestrepo"),
            "{} mounts dst's repository: {text}",
            d["metadata"]["name"]
        );
    }
}
