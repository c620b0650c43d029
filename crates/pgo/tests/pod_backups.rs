#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Backups on the Kubernetes platform with the rendered Jobs run for real
//! by the stand-in kubelet: a pg_basebackup copy as a Job from the
//! strategy's template, into the cluster's backup claim, its outcome read
//! from the Job's termination message. Needs root, as CI has.

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

    // pgBackRest is not built here yet: refused, naming what is.
    let e = c.server.pgo_err(&["backup", "db"]);
    assert!(
        e.contains("--backup-type=pgbackrest is not built on the kubernetes platform"),
        "{e}"
    );

    c.pgo_ok(&["backup", "db", "--backup-type=pgbasebackup", "--timeout=120"]);
    let list: serde_json::Value =
        serde_json::from_str(&c.server.pgo_ok(&["show", "backup", "db", "-o", "json"])).unwrap();
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
    let list: serde_json::Value =
        serde_json::from_str(&c.server.pgo_ok(&["show", "backup", "db", "-o", "json"])).unwrap();
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
