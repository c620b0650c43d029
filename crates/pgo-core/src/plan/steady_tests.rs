#![allow(clippy::unwrap_used, clippy::panic)]
use super::super::fixtures::*;
use super::*;
use pgo_api::{Pgcluster, Pgreplica, labels};

fn seen(instances: &[(&str, bool)]) -> Seen {
    Seen {
        instances: instances
            .iter()
            .map(|(name, ready)| {
                let o = InstanceObservation {
                    name: name.to_string(),
                    running: true,
                    ready: *ready,
                    wal_lsn: Some("0/3000000".into()),
                    message: (!ready).then(|| "starting".into()),
                    ..Default::default()
                };
                (name.to_string(), o)
            })
            .collect(),
        strategies: vec!["1".into()],
        ..Default::default()
    }
}

fn stored<'a>(c: &'a Pgcluster, replicas: &'a [Pgreplica]) -> Stored<'a> {
    Stored {
        cluster: c,
        replicas,
        failover: None,
        restore: None,
    }
}

/// [`super::apply`] with the desired state made as the operator makes it.
fn apply(s: &Stored<'_>, seen: &Seen, now: jiff::Timestamp) -> Pass {
    super::apply(s, &desired(s), seen, now)
}

/// [`super::status`] with the desired state made as the operator makes it.
fn status(s: &Stored<'_>, seen: &Seen, applied: &Applied, now: jiff::Timestamp, config: &PgoConfig) -> Plan {
    super::status(s, &desired(s), seen, applied, now, config)
}

fn with_replicas(n: u32) -> Pgcluster {
    let mut c = cluster("db");
    c.spec.replicas = n;
    c
}

#[test]
fn apply_makes_the_primary_then_replicas_once_it_is_ready() {
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let c = with_replicas(2);
    // (case, replicas stored, seen, the actions, whether the status follows)
    type Case<'a> = (&'a str, &'a [Pgreplica], Seen, Vec<&'a str>, bool);
    let cases: Vec<Case> = vec![
        (
            "new: the primary and its services, no replica yet",
            &[],
            seen(&[]),
            vec![
                "EnsureSecret",
                "EnsureSecret",
                "EnsureSecret",
                "EnsureVolume",
                "EnsureInstance",
                "EnsureService",
                "EnsureService",
            ],
            true,
        ),
        (
            "primary ready, replicas missing: they are recorded, all at once",
            &[],
            seen(&[("db", true)]),
            vec![
                "EnsureSecret",
                "EnsureSecret",
                "EnsureSecret",
                "EnsureVolume",
                "EnsureInstance",
                "CreateReplicas",
            ],
            false,
        ),
        (
            "primary ready: every replica is applied",
            &two,
            seen(&[("db", true)]),
            vec![
                "EnsureSecret",
                "EnsureSecret",
                "EnsureSecret",
                "EnsureVolume",
                "EnsureVolume",
                "EnsureVolume",
                "EnsureInstance",
                "EnsureReplica",
                "EnsureReplica",
                "EnsureService",
                "EnsureService",
            ],
            true,
        ),
        (
            "primary down: only replicas that exist are kept",
            &two,
            seen(&[("db", false), ("db-b", true)]),
            vec![
                "EnsureSecret",
                "EnsureSecret",
                "EnsureSecret",
                "EnsureVolume",
                "EnsureVolume",
                "EnsureVolume",
                "EnsureInstance",
                "EnsureReplica",
                "EnsureService",
                "EnsureService",
            ],
            true,
        ),
    ];
    for (case, replicas, seen, want, then_status) in cases {
        let pass = apply(&stored(&c, replicas), &seen, at(0));
        let (plan, follows) = match pass {
            Pass::Only(p) => (p, false),
            Pass::ThenStatus(p) => (p, true),
        };
        assert_eq!(kinds(&plan.actions), want, "{case}");
        assert_eq!(follows, then_status, "{case}");
        assert_eq!(plan.on_failure, OnFailure::ClusterMessage, "{case}");
    }
    let Pass::Only(p) = apply(&stored(&c, &[]), &seen(&[("db", true)]), at(0)) else {
        panic!()
    };
    assert_eq!(p.actions.last(), Some(&Action::CreateReplicas(2)));
}

#[test]
fn the_replica_service_routes_to_ready_replicas_only() {
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let c = with_replicas(2);
    let Pass::ThenStatus(p) = apply(
        &stored(&c, &two),
        &seen(&[("db", true), ("db-a", false), ("db-b", true)]),
        at(0),
    ) else {
        panic!()
    };
    let targets: Vec<_> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::EnsureService(s) => Some((s.name.as_str(), s.targets.clone(), s.owner_uid.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("db", vec!["db".to_string()], Some("uid-db".to_string())),
            ("db-replica", vec!["db-b".to_string()], Some("uid-db".to_string()))
        ]
    );
}

#[test]
fn a_leaving_replica_stops_loses_its_slot_and_data_then_is_released() {
    let c = with_replicas(1);
    let mut leaving = replica("db", "db-b");
    leaving.metadata.deletion_timestamp = Some(deleted_at());
    leaving.metadata.annotations = Some([(labels::DELETE_DATA.into(), "true".into())].into());
    let replicas = [replica("db", "db-a"), leaving];
    let Pass::ThenStatus(p) = apply(
        &stored(&c, &replicas),
        &seen(&[("db", true), ("db-a", true)]),
        at(0),
    ) else {
        panic!()
    };
    let i = p
        .actions
        .iter()
        .position(|a| *a == Action::RemoveInstance("db-b".into()))
        .unwrap();
    assert_eq!(
        p.actions[i..i + 4],
        [
            Action::RemoveInstance("db-b".into()),
            Action::DropSlot {
                primary: "db".into(),
                slot: names::replication_slot("db-b")
            },
            Action::RequestRmdata {
                volume: "db-b".into(),
                owner_uid: "uid-db-b".into()
            },
            Action::ReleaseReplica("db-b".into()),
        ]
    );
    assert!(
        kinds(&p.actions[..i]).iter().all(|k| k != "EnsureReplica"),
        "the primary is applied (its standby names) before the replica stops"
    );
}

#[test]
fn a_cluster_that_cannot_be_built_is_refused_with_nothing_made() {
    let mut unknown = cluster("db");
    unknown.spec.strategy = "9".into();
    let mut shared = cluster("db");
    shared.spec.pvc_name = Some("data".into());
    let theft = Seen {
        pvc_owner: Some("other".into()),
        ..seen(&[])
    };
    let refused = Seen {
        refusal: Some("template cluster-deployment.json: no such field".into()),
        ..seen(&[])
    };
    for (case, c, seen, why) in [
        ("unknown strategy", &unknown, seen(&[]), "strategy"),
        (
            "another cluster's volume",
            &shared,
            theft,
            "volume data belongs to cluster other",
        ),
        ("the platform refuses", &cluster("db"), refused, "no such field"),
    ] {
        let Pass::Only(p) = apply(&stored(c, &[]), &seen, at(0)) else {
            panic!("{case}")
        };
        let [Action::Record(_), Action::WriteStatus(s)] = p.actions.as_slice() else {
            panic!("{case}: {p:?}")
        };
        assert_eq!(s.phase, ClusterPhase::Failed, "{case}");
        assert!(s.message.as_deref().unwrap().contains(why), "{case}: {s:?}");
        assert_eq!(p.next, Next::After(REFUSED_PERIOD), "{case}");
    }
}

fn config(sleep: u64) -> PgoConfig {
    let mut c = PgoConfig::default();
    c.pgo.autofail_sleep_seconds = sleep;
    c.pgo.probe_period_ms = 2000;
    c
}

/// A cluster of a primary and two replicas that was Ready, with `autofail`.
fn running(autofail: bool, not_ready_since: Option<i64>) -> Pgcluster {
    let mut c = with_replicas(2);
    c.spec.autofail = autofail;
    c.status = Some(PgclusterStatus {
        phase: if not_ready_since.is_some() {
            ClusterPhase::NotReady
        } else {
            ClusterPhase::Ready
        },
        primary: Some("db".into()),
        not_ready_since: not_ready_since.map(|ms| at(ms).to_string()),
        ..Default::default()
    });
    c
}

fn status_of(p: &Plan) -> Option<&PgclusterStatus> {
    p.actions.iter().find_map(|a| match a {
        Action::WriteStatus(s) => Some(&**s),
        _ => None,
    })
}

#[test]
fn status_phase_timer_and_automatic_failover() {
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let all_ready = seen(&[("db", true), ("db-a", true), ("db-b", true)]);
    let mut primary_failing = seen(&[("db", false), ("db-a", true), ("db-b", false)]);
    primary_failing.instances.get_mut("db").unwrap().failing_for_ms = Some(4000);
    let no_ready_replica = seen(&[("db", false), ("db-a", false), ("db-b", false)]);
    let now = at(60_000);
    // (case, cluster, seen, phase, not ready since (ms), failover to, next)
    type Case<'a> = (
        &'a str,
        Pgcluster,
        &'a Seen,
        ClusterPhase,
        Option<i64>,
        Option<&'a str>,
        Duration,
    );
    let cases: Vec<Case> = vec![
        (
            "all ready",
            running(true, None),
            &all_ready,
            ClusterPhase::Ready,
            None,
            None,
            Duration::from_secs(2),
        ),
        (
            "the primary fails: the timer starts when its check began",
            running(true, None),
            &primary_failing,
            ClusterPhase::NotReady,
            Some(56_000),
            None,
            NOT_READY_PERIOD,
        ),
        (
            "not ready for 25 s of 30: still waiting",
            running(true, Some(35_000)),
            &primary_failing,
            ClusterPhase::NotReady,
            Some(35_000),
            None,
            NOT_READY_PERIOD,
        ),
        (
            "not ready for 30 s: the ready replica is promoted",
            running(true, Some(30_000)),
            &primary_failing,
            ClusterPhase::NotReady,
            None,
            Some("db-a"),
            Duration::ZERO,
        ),
        (
            "without autofail the timer runs and nothing is done",
            running(false, Some(0)),
            &primary_failing,
            ClusterPhase::NotReady,
            Some(0),
            None,
            NOT_READY_PERIOD,
        ),
        (
            "no ready replica: never a failover to one that is not",
            running(true, Some(0)),
            &no_ready_replica,
            ClusterPhase::NotReady,
            Some(0),
            None,
            NOT_READY_PERIOD,
        ),
        (
            "the primary comes back: ready, the timer gone",
            running(true, Some(0)),
            &all_ready,
            ClusterPhase::Ready,
            None,
            None,
            Duration::from_secs(2),
        ),
    ];
    for (case, c, seen, phase, since, target, next) in cases {
        let p = status(&stored(&c, &two), seen, &Applied::default(), now, &config(30));
        assert_eq!(p.next, Next::After(next), "{case}");
        if let Some(target) = target {
            let [
                Action::StartFailover {
                    from,
                    target: t,
                    replicas,
                    reason,
                    ..
                },
            ] = p.actions.as_slice()
            else {
                panic!("{case}: {p:?}")
            };
            assert_eq!(
                (from.as_str(), t.as_str(), *replicas),
                ("db", target, 2),
                "{case}"
            );
            assert!(
                reason.starts_with("auto: primary db not ready for 30s"),
                "{case}: {reason}"
            );
            continue;
        }
        let s = status_of(&p).unwrap_or_else(|| panic!("{case}: no status in {p:?}"));
        assert_eq!(s.phase, phase, "{case}");
        assert_eq!(s.not_ready_since, since.map(|ms| at(ms).to_string()), "{case}");
        if case.starts_with("no ready replica") {
            assert!(
                s.message
                    .as_deref()
                    .unwrap()
                    .contains("no ready replica to promote"),
                "{case}"
            );
        }
    }
}

#[test]
fn status_carries_endpoints_errors_lag_and_is_not_rewritten_unchanged() {
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let c = running(true, None);
    let mut seen = seen(&[("db", true), ("db-a", true), ("db-b", true)]);
    seen.instances.get_mut("db").unwrap().wal_lsn = Some("0/3000100".into());
    let applied = Applied {
        endpoints: [(
            "db".to_string(),
            Endpoint {
                host: "127.0.0.1".into(),
                port: 7000,
            },
        )]
        .into(),
        replica_errors: [("db-b".to_string(), "manager not answering".to_string())].into(),
    };
    let p = status(&stored(&c, &two), &seen, &applied, at(0), &config(30));
    let s = status_of(&p).unwrap();
    assert_eq!(
        (s.services[0].host.as_str(), s.services[0].port),
        ("127.0.0.1", 7000)
    );
    let b = s.members.iter().find(|m| m.name == "db-b").unwrap();
    assert_eq!(b.message.as_deref(), Some("manager not answering"));
    assert_eq!(
        s.members.iter().find(|m| m.name == "db-a").unwrap().lag_bytes,
        Some(0x100)
    );
    assert_eq!(
        p.next,
        Next::After(NOT_READY_PERIOD),
        "a replica with an error is looked at soon"
    );
    assert!(p.actions.contains(&Action::WriteReplicaStatus(
        "db-b".into(),
        PgreplicaStatus {
            ready: true,
            message: Some("manager not answering".into())
        }
    )));

    // Written back, the same observation plans nothing to write.
    let mut written = c.clone();
    written.status = Some(s.clone());
    let mut replicas = two.clone();
    for r in &mut replicas {
        let name = r.metadata.name.clone().unwrap();
        r.status = Some(replica_status(s.members.iter().find(|m| m.name == name)));
    }
    let again = status(
        &stored(&written, &replicas),
        &seen,
        &applied,
        at(5000),
        &config(30),
    );
    assert_eq!(again.actions, [], "nothing changed, nothing written");
}

#[test]
fn a_fatal_primary_fails_the_cluster_and_sync_replication_says_commits_wait() {
    let c = cluster("db");
    let mut fatal = seen(&[("db", false)]);
    fatal.instances.get_mut("db").unwrap().fatal = Some("initdb: disk full".into());
    let p = status(&stored(&c, &[]), &fatal, &Applied::default(), at(0), &config(30));
    let s = status_of(&p).unwrap();
    assert_eq!(s.phase, ClusterPhase::Failed);
    assert_eq!(s.message.as_deref(), Some("instance db: initdb: disk full"));

    let mut sync = with_replicas(1);
    sync.spec.sync_replication = true;
    let replicas = [replica("db", "db-a")];
    let p = status(
        &stored(&sync, &replicas),
        &seen(&[("db", true)]),
        &Applied::default(),
        at(0),
        &config(30),
    );
    let s = status_of(&p).unwrap();
    assert_eq!(s.phase, ClusterPhase::Ready);
    assert!(s.message.as_deref().unwrap().contains("commits wait"), "{s:?}");
}

#[test]
fn apply_failed_fails_a_create_and_keeps_a_running_clusters_phase() {
    let creating = cluster("db");
    assert_eq!(
        apply_failed(&stored(&creating, &[]), "no".into(), at(0)).phase,
        ClusterPhase::Failed
    );
    let notready = running(true, Some(0));
    let s = apply_failed(&stored(&notready, &[]), "no".into(), at(0));
    assert_eq!(s.phase, ClusterPhase::NotReady);
    assert_eq!(s.not_ready_since, Some(at(0).to_string()), "the timer is kept");
}

fn events(p: &Plan) -> Vec<(crate::event::Reason, String)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(e) => Some((e.reason, e.message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_phase_change_or_a_new_refusal_is_told_once() {
    use crate::event::Reason;
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let failing = seen(&[("db", false), ("db-a", true), ("db-b", true)]);
    let p = status(
        &stored(&running(true, None), &two),
        &failing,
        &Applied::default(),
        at(0),
        &config(30),
    );
    assert_eq!(
        events(&p),
        [(Reason::NotReady, "the primary is not ready: starting".to_string())]
    );
    let p = status(
        &stored(&running(true, Some(0)), &two),
        &failing,
        &Applied::default(),
        at(1),
        &config(30),
    );
    assert_eq!(events(&p), [], "still not ready: nothing new to tell");
    let back = seen(&[("db", true), ("db-a", true), ("db-b", true)]);
    let p = status(
        &stored(&running(true, Some(0)), &two),
        &back,
        &Applied::default(),
        at(2),
        &config(30),
    );
    assert_eq!(events(&p)[0].0, Reason::Ready);

    let mut unknown = cluster("db");
    unknown.spec.strategy = "9".into();
    let Pass::Only(first) = apply(&stored(&unknown, &[]), &seen(&[]), at(0)) else {
        panic!()
    };
    assert_eq!(events(&first).len(), 1);
    assert_eq!(events(&first)[0].0, Reason::Refused);
    let Some(Action::WriteStatus(s)) = first.actions.last() else {
        panic!()
    };
    unknown.status = Some((**s).clone());
    let Pass::Only(again) = apply(&stored(&unknown, &[]), &seen(&[]), at(30_000)) else {
        panic!()
    };
    assert_eq!(
        events(&again),
        [],
        "the same refusal is not told again every 30 s"
    );
}

/// What a rolling update does next: the restarted instance, or the
/// switchover's target.
fn rolling_step(p: &Plan) -> Option<String> {
    p.actions.iter().find_map(|a| match a {
        Action::RestartInstance(i) => Some(format!("restart {}", i.name)),
        Action::StartFailover {
            target,
            rejoin,
            replace,
            reason,
            ..
        } => {
            assert!(*rejoin && *replace, "a rolling update's old primary comes back");
            assert!(reason.starts_with(failover::ROLLING_UPDATE), "{reason}");
            Some(format!("switchover to {target}"))
        }
        _ => None,
    })
}

#[test]
fn a_rolling_update_restarts_one_member_at_a_time_replicas_first() {
    let two = [replica("db", "db-a"), replica("db", "db-b")];
    let outdated = |mut s: Seen, names: &[&str]| {
        for n in names {
            s.instances.get_mut(*n).unwrap().outdated = true;
        }
        s
    };
    let all = || seen(&[("db", true), ("db-a", true), ("db-b", true)]);
    // (case, replicas stored, seen, the next step)
    type Case<'a> = (&'a str, &'a [Pgreplica], Seen, Option<&'a str>);
    let one = [replica("db", "db-a")];
    let mut single = running(false, None);
    single.spec.replicas = 0;
    let cases: Vec<Case> = vec![
        ("nothing outdated", &two, all(), None),
        (
            "every member outdated: a replica first",
            &two,
            outdated(all(), &["db", "db-a", "db-b"]),
            Some("restart db-a"),
        ),
        (
            "one replica done: the next",
            &two,
            outdated(all(), &["db", "db-b"]),
            Some("restart db-b"),
        ),
        (
            "a replica restarting (not ready): nothing else goes down",
            &two,
            outdated(
                seen(&[("db", true), ("db-a", false), ("db-b", true)]),
                &["db", "db-b"],
            ),
            None,
        ),
        (
            "replicas done: a switchover to the most advanced updated one",
            &two,
            outdated(all(), &["db"]),
            Some("switchover to db-a"),
        ),
        (
            "the primary not ready: a rolling update waits (autofail decides)",
            &two,
            outdated(seen(&[("db", false), ("db-a", true), ("db-b", true)]), &["db"]),
            None,
        ),
        (
            "the primary lowers max_connections: it goes first, in place",
            &two,
            {
                let mut s = outdated(all(), &["db", "db-a", "db-b"]);
                s.instances.get_mut("db").unwrap().pending_lower = vec!["max_connections".into()];
                s
            },
            Some("restart db"),
        ),
        (
            "a replica that lowers it: replicas first as ever",
            &two,
            {
                let mut s = outdated(all(), &["db", "db-a", "db-b"]);
                s.instances.get_mut("db-b").unwrap().pending_lower = vec!["max_connections".into()];
                s
            },
            Some("restart db-a"),
        ),
    ];
    for (case, replicas, seen, want) in cases {
        let p = status(
            &stored(&running(false, None), replicas),
            &seen,
            &Applied::default(),
            at(0),
            &config(30),
        );
        assert_eq!(rolling_step(&p).as_deref(), want, "{case}");
    }
    // A cluster being scaled waits for it to end.
    let p = status(
        &stored(&running(false, None), &one),
        &outdated(seen(&[("db", true), ("db-a", true)]), &["db", "db-a"]),
        &Applied::default(),
        at(0),
        &config(30),
    );
    assert_eq!(rolling_step(&p), None, "two replicas wanted, one made");
    // With no replica the primary is restarted where it is.
    let p = status(
        &stored(&single, &[]),
        &outdated(seen(&[("db", true)]), &["db"]),
        &Applied::default(),
        at(0),
        &config(30),
    );
    assert_eq!(rolling_step(&p).as_deref(), Some("restart db"));
    assert_eq!(events(&p)[0].0, crate::event::Reason::RollingUpdate);
    let db = status_of(&p)
        .unwrap()
        .members
        .iter()
        .find(|m| m.name == "db")
        .unwrap();
    assert!(db.outdated, "pgo show cluster says which members wait");
}
