#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The whole server on the Kubernetes platform, with the rendered pods run
//! for real by the stand-in kubelet (`pgo_kube_fake::pods`): PostgreSQL in
//! namespaces of its own, as the pod's user, on volumes made as a kubelet
//! makes them. Needs root, as CI has.

mod support;

use pgo_kube_fake::FakeApi;
use support::kubelet::{Cluster, NEXT_IMAGE, cluster_env, cluster_env_as};

fn psql(host: &str, password: &str, sql: &str) -> Result<String, String> {
    support::psql_at(&format!("host={host} port=5432"), password, sql)
}

#[test]
fn a_cluster_runs_postgres_in_real_pods_and_answers_through_its_service() {
    let mut c = cluster_env(None);

    c.pgo_ok(&["create", "cluster", "db", "--replica-count=1", "--timeout=120"]);
    let pods = c.kubelet.pod_ips();
    let view = c.server.show_json("db");
    assert_eq!(view["phase"], "Ready", "{view:#}");

    // Through the primary Service's address on the pod network.
    let host = c.kubelet.service_ip("db").expect("the Service has no address");
    let password = support::password(&view, "postgres");
    let answer = psql(&host, &password, "select current_setting('data_directory')");
    assert_eq!(answer.as_deref(), Ok("/pgdata/data/pgdata"), "{answer:?}");

    // The replica cloned the primary through the primary Service's name,
    // and streams from it: what is written shows through the replica
    // Service.
    let replicas = support::members(&view, "Replica");
    assert_eq!(replicas.len(), 1, "{view:#}");
    psql(
        &host,
        &password,
        "create table kept (v int); insert into kept values (42)",
    )
    .unwrap();
    let replica_host = c
        .kubelet
        .service_ip("db-replica")
        .expect("the replica Service has no address");
    c.server.wait_until(60, "the row on the replica", || {
        psql(
            &replica_host,
            &password,
            "select pg_is_in_recovery()::text || (select v from kept)",
        )
        .as_deref()
            == Ok("true42")
    });

    // TLS: from outside the pod only over TLS, with a certificate for the
    // Service's name from the operator's CA; the replica streams on TLS.
    let ca = c
        .api
        .get(pgo_kube_fake::SECRETS, "db-manager")
        .expect("the manager's Secret")["data"]["ca.crt"]
        .as_str()
        .map(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b).unwrap()
        })
        .unwrap();
    let ca_file = c.dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca).unwrap();
    let tls = |mode: &str| {
        support::psql_at(
            &format!(
                "host=db.pgo.svc hostaddr={host} port=5432 sslmode={mode} sslrootcert={}",
                ca_file.display()
            ),
            &password,
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        )
    };
    assert_eq!(tls("verify-full").as_deref(), Ok("t"));
    let clear = tls("disable");
    assert!(
        clear.as_ref().is_err_and(|e| e.contains("no pg_hba.conf entry")),
        "{clear:?}"
    );
    assert_eq!(
        psql(
            &host,
            &password,
            "select bool_and(ssl) from pg_stat_ssl join pg_stat_replication using (pid)"
        )
        .as_deref(),
        Ok("t")
    );

    // What the kubelet made: PGDATA private on a claim whose root carries
    // the pod's fsGroup; no log file beside the read-only config.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let claim = c.kubelet.claim_dir("db");
    let pgdata = claim.join("data/pgdata");
    assert_eq!(
        std::fs::metadata(&pgdata).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert_eq!(std::fs::metadata(&pgdata).unwrap().uid(), 999);
    assert_eq!(std::fs::metadata(&claim).unwrap().gid(), 999);
    // A pod's name is its Deployment's and a number.
    let primary_pod = pods
        .keys()
        .find(|p| p.rsplit_once('-').map(|(d, _)| d) == view["primary"].as_str())
        .unwrap()
        .clone();
    let pod = &primary_pod;
    assert!(
        c.kubelet
            .log(pod)
            .contains("database system is ready to accept connections"),
        "PostgreSQL logs to the container's output:\n{}",
        c.kubelet.log(pod)
    );

    // A drain while the operator is down: the pod is deleted (SIGTERM, a
    // clean shutdown), and the Deployment's next pod starts on the same
    // claim, where the kubelet applies the fsGroup again. The primary
    // Service selects the primary instance's own label, so the new pod is
    // routed to as soon as it is ready: no operator in the path.
    c.server.kill();
    c.api.delete(pgo_kube_fake::PODS, &primary_pod);
    c.server.wait_until(120, "a new pod to serve the same data", || {
        // The primary's, the replica's and the repository host's.
        c.kubelet.pod_ips().len() == 3
            && !c.kubelet.pod_ips().contains_key(&primary_pod)
            && psql(&host, &password, "select v from kept").as_deref() == Ok("42")
    });
    assert_eq!(
        std::fs::metadata(&pgdata).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    c.server.restart();

    // Deleted with its data: an rmdata Job runs in a pod on each claim
    // (claims here are retained, so what is left is what the Job left).
    // The repository outlives the cluster (no --delete-backups); its host
    // goes with the cluster.
    c.server
        .pgo_ok(&["delete", "cluster", "db", "--delete-data", "--no-prompt"]);
    c.server
        .wait_until(120, "the rmdata Jobs to remove the PVCs", || {
            c.api.names(pgo_kube_fake::PVCS) == ["db-backrestrepo"]
        });
    c.server.wait_until(60, "the repository host to go", || {
        c.api.names(pgo_kube_fake::DEPLOYMENTS).is_empty()
    });
    let repo = c.kubelet.claim_dir("db-backrestrepo").join("data");
    assert!(
        repo.join("archive/db/archive.info").is_file(),
        "{}",
        repo.display()
    );
    let jobs = c.kubelet.jobs_run();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|(_, ok)| *ok), "{jobs:?}");
    for claim in ["db", replicas[0].as_str()] {
        let left: Vec<_> = std::fs::read_dir(c.kubelet.claim_dir(claim))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{claim}: {left:?}");
    }
}

/// Cluster `db` with a replica and automatic failover, ready: the
/// replica's name, the superuser's password, the primary Service's address.
fn autofail_cluster(c: &Cluster) -> (String, String, String) {
    c.server.pgo_ok(&[
        "create",
        "cluster",
        "db",
        "--replica-count=1",
        "--autofail",
        // The spine alone: the repository host's pod is tried in
        // a_cluster_runs_postgres_in_real_pods… and pod_backups.rs.
        "--pgbackrest=false",
        "--timeout=120",
    ]);
    let view = c.server.show_json("db");
    let replica = support::members(&view, "Replica")[0].clone();
    let password = support::password(&view, "postgres");
    (replica, password, c.kubelet.service_ip("db").unwrap())
}

#[test]
fn a_lost_node_fails_over_to_the_replica_and_the_old_primary_never_serves_again() {
    let c = cluster_env(Some("Pgo:\n  ProbePeriodMs: 500\n  AutofailSleepSeconds: 3\n"));
    let (replica, password, host) = autofail_cluster(&c);
    let replica_host = c.kubelet.service_ip("db-replica").unwrap();
    psql(
        &host,
        &password,
        "create table kept (v int); insert into kept values (42)",
    )
    .unwrap();
    // On the replica before the node goes: replication is asynchronous.
    c.server.wait_until(60, "the row on the replica", || {
        psql(&replica_host, &password, "select v from kept").as_deref() == Ok("42")
    });
    let pods = c.kubelet.pod_ips();
    let (old_pod, old_ip) = pods.iter().find(|(p, _)| !p.starts_with(&replica)).unwrap();
    let node = c.kubelet.node_of(old_pod).unwrap();
    assert_ne!(
        Some(node.clone()),
        pods.keys()
            .find(|p| p.starts_with(&replica))
            .and_then(|p| c.kubelet.node_of(p)),
        "the two pods share a node"
    );

    c.kubelet.lose_node(&node);
    c.server.wait_until(120, "the replica to be promoted", || {
        let v = c.server.show_json("db");
        v["primary"] == serde_json::json!(replica) && v["phase"] == "Ready"
    });
    // Writes go on through the primary Service, to the promoted replica,
    // and what was committed before is there.
    c.server
        .wait_until(60, "a write through the primary Service", || {
            psql(&host, &password, "insert into kept values (43)").is_ok()
        });
    assert_eq!(
        psql(
            &host,
            &password,
            "select pg_is_in_recovery()::text || string_agg(v::text, ',' order by v) from kept"
        )
        .as_deref(),
        Ok("false42,43")
    );

    // Its pod was not forced out of the API server (the node is not tainted
    // out of service): it stays, terminating, until its kubelet is back.
    let old = c
        .api
        .get(pgo_kube_fake::PODS, old_pod)
        .expect("the old pod was forced out");
    assert!(old["metadata"]["deletionTimestamp"].is_string(), "{old:#}");

    // The node comes back: its old primary must not serve as a second one.
    c.kubelet.restore_node(&node);
    std::thread::sleep(std::time::Duration::from_secs(3));
    for _ in 0..10 {
        let direct = psql(old_ip, &password, "select pg_is_in_recovery()::text");
        assert!(
            direct.is_err() || direct.as_deref() == Ok("true"),
            "the old primary serves: {direct:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(
        psql(
            &host,
            &password,
            "select string_agg(v::text, ',' order by v) from kept"
        )
        .as_deref(),
        Ok("42,43")
    );
    c.server
        .wait_until(60, "the kubelet back to confirm the old pod's end", || {
            c.api.get(pgo_kube_fake::PODS, old_pod).is_none()
        });
}

/// A uid from an OpenShift namespace's range: no image's passwd names it.
const OPENSHIFT_UID: u32 = 1_000_650_000;

#[test]
fn under_openshifts_restricted_policy_a_killed_primary_pod_restarts_on_its_data_and_loses_no_commit() {
    // The policy assigns the uid and fsGroup and refuses pods that name
    // their own, so pgo names neither (`DisableFSGroup` for the fsGroup).
    let c = cluster_env_as(Some("Cluster:\n  DisableFSGroup: true\n"), Some(OPENSHIFT_UID));
    c.server.pgo_ok(&[
        "create",
        "cluster",
        "db",
        "--replica-count=1",
        "--pgbackrest=false",
        "--timeout=120",
    ]);
    let view = c.server.show_json("db");
    let replica = support::members(&view, "Replica")[0].clone();
    let password = support::password(&view, "postgres");
    let host = c.kubelet.service_ip("db").unwrap();
    psql(&host, &password, "create table kept (v int)").unwrap();
    for v in 1..=100 {
        psql(&host, &password, &format!("insert into kept values ({v})")).unwrap();
    }
    let primary_pod = c
        .kubelet
        .pod_ips()
        .into_keys()
        .find(|p| !p.starts_with(&replica))
        .unwrap();
    // initdb and pg_basebackup ran as that uid (under nss_wrapper), which
    // owns both data directories.
    for claim in ["db", replica.as_str()] {
        let pgdata = c.kubelet.claim_dir(claim).join("data/pgdata");
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&pgdata).unwrap());
        assert_eq!(owner, OPENSHIFT_UID, "{}", pgdata.display());
    }

    // Every process of the pod at once: the manager and PostgreSQL, with
    // no shutdown. The kubelet restarts the container; PostgreSQL recovers
    // from its WAL on the same claim.
    c.kubelet.kill_pod(&primary_pod);
    c.server.wait_until(120, "the pod restarted and serving", || {
        c.kubelet.restarts(&primary_pod).is_some_and(|r| r >= 1)
            && psql(&host, &password, "select count(*) from kept").as_deref() == Ok("100")
    });
    // One primary, the same one: the restart was faster than the failover
    // timer (autofail is off here), and the replica still follows it.
    let view = c.server.show_json("db");
    assert_eq!(view["primary"], "db", "{view:#}");
    psql(&host, &password, "insert into kept values (101)").unwrap();
    let replica_host = c.kubelet.service_ip("db-replica").unwrap();
    c.server.wait_until(60, "the replica to follow again", || {
        psql(&replica_host, &password, "select count(*) from kept").as_deref() == Ok("101")
    });
}

/// The image each pod of the API server runs, by pod.
fn pod_images(api: &FakeApi) -> std::collections::BTreeMap<String, String> {
    api.list(pgo_kube_fake::PODS)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn a_new_instance_image_rolls_one_pod_at_a_time_and_loses_no_commit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let mut c = cluster_env(Some("Pgo:\n  ProbePeriodMs: 500\n  AutofailSleepSeconds: 3\n"));
    let (replica, password, host) = autofail_cluster(&c);
    psql(&host, &password, "create table kept (v int)").unwrap();

    // An operator restarted on the same instance image restarts no pod.
    let before = c.kubelet.pod_ips();
    c.server.restart();
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(
        c.kubelet.pod_ips().keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );

    // Writes all along; each one acknowledged must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (stop, acked, host, password) = (stop.clone(), acked.clone(), host.clone(), password.clone());
        std::thread::spawn(move || {
            let mut v = 0;
            while !stop.load(Ordering::Relaxed) {
                v += 1;
                if psql(&host, &password, &format!("insert into kept values ({v})")).is_ok() {
                    acked.lock().unwrap().push(v);
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };

    let acks = || acked.lock().unwrap().len();
    c.server.wait_until(30, "writes to go through", || acks() >= 5);

    // The operator now names another instance image.
    c.server.set_env("PGO_INSTANCE_IMAGE", NEXT_IMAGE);
    c.server.restart();
    c.server
        .wait_until(240, "every pod on the new image and the cluster ready", || {
            let images = pod_images(&c.api);
            let v = c.server.show_json("db");
            images.len() == 2
                && images.values().all(|i| i == NEXT_IMAGE)
                && v["phase"] == "Ready"
                && v["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().all(|m| m["ready"] == true && m["outdated"].is_null()))
        });
    // Writes go on after the rollout too, to the new primary.
    let during = acks();
    c.server
        .wait_until(30, "writes to the new primary", || acks() >= during + 5);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    // The replica went first; then a switchover, and the old primary came
    // back as a replica on its own volume: no new claim.
    let v = c.server.show_json("db");
    assert_eq!(v["primary"], serde_json::json!(replica), "{v:#}");
    assert_eq!(support::members(&v, "Replica"), ["db"], "{v:#}");
    let failovers = v["failovers"].as_array().unwrap();
    assert_eq!(failovers.len(), 1, "{v:#}");
    assert!(
        failovers[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("rolling update"),
        "{v:#}"
    );
    let log = c.server.log();
    let replica_first = log.find(&format!("restarting replica {replica}")).expect(&log);
    assert!(
        replica_first < log.find("starting a failover").expect(&log),
        "{log}"
    );
    let mut claims = c.api.names(pgo_kube_fake::PVCS);
    claims.sort();
    assert_eq!(claims, ["db".to_string(), replica.clone()]);

    // Every acknowledged write is on the new primary, and the old one
    // follows it.
    let acked = acked.lock().unwrap().clone();
    let rows = psql(&host, &password, "select count(*) from kept").unwrap();
    let missing = psql(
        &host,
        &password,
        &format!(
            "select count(*) from unnest(array[{}]) a where a not in (select v from kept)",
            acked.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        ),
    )
    .unwrap();
    assert_eq!(missing, "0", "acknowledged writes lost ({rows} rows kept)");
    psql(&host, &password, "insert into kept values (-1)").unwrap();
    let replica_host = c.kubelet.service_ip("db-replica").unwrap();
    c.server
        .wait_until(60, "the old primary to follow the new one", || {
            psql(
                &replica_host,
                &password,
                "select pg_is_in_recovery()::text || count(*) from kept where v = -1",
            )
            .as_deref()
                == Ok("true1")
        });
}
