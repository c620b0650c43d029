#![allow(clippy::unwrap_used)]
use super::*;
use crate::backup::plan as backup_plan;
use crate::plan::fixtures::{self, at, cluster};
use pgo_api::cluster::PgclusterStatus;
use pgo_api::{PgbackupSpec, Pgcluster};

/// The repository after `20260101-000000F` and its incremental went.
const AFTER: &str = r#"[{"name":"db","archive":[{"min":"000000010000000000000004","max":"000000010000000000000009"}],"backup":[
 {"label":"20260101-000100F","type":"full","timestamp":{"start":1767225660,"stop":1767225662},"info":{"size":10,"repository":{"delta":5}},"archive":{"start":"000000010000000000000004","stop":"000000010000000000000004"},"prior":null}]}]"#;

fn repo(label: &str, type_: &str, prior: Option<&str>) -> RepoBackup {
    RepoBackup {
        label: label.into(),
        type_: type_.into(),
        prior: prior.map(str::to_string),
        ..Default::default()
    }
}

fn backup(name: &str, label: &str, phase: BackupPhase, requested: bool, handled: bool) -> Pgbackup {
    let mut b = Pgbackup::new(
        name,
        PgbackupSpec {
            cluster_name: "db".into(),
            expire_requested: requested.then(|| at(1000).to_string()),
            ..Default::default()
        },
    );
    b.status = Some(PgbackupStatus {
        phase,
        backup: Some(repo(label, "full", None)),
        expire_handled: handled.then(|| at(1000).to_string()),
        ..Default::default()
    });
    b
}

fn with_primary() -> Pgcluster {
    let mut c = cluster("db");
    c.status = Some(PgclusterStatus {
        primary: Some("db".into()),
        ..Default::default()
    });
    c
}

fn run(b: &Pgbackup, c: Option<&Pgcluster>, job: Option<JobState>, siblings: &[Pgbackup]) -> Plan {
    backup_plan(
        &Observed {
            backup: b,
            cluster: c,
            job,
            siblings,
        },
        at(2000),
    )
}

fn status_of(p: &Plan) -> Option<&PgbackupStatus> {
    p.actions.iter().find_map(|a| match a {
        Action::WriteStatus(s) => Some(s),
        _ => None,
    })
}

#[test]
fn an_expire_goes_from_the_request_to_its_end() {
    let primary = with_primary();
    let wanted = backup("b0", "20260101-000000F", BackupPhase::Succeeded, true, false);
    let expiring = backup("b0", "20260101-000000F", BackupPhase::Expiring, true, false);
    let ok = Some(JobState::Succeeded { output: AFTER.into() });
    let incr = backup(
        "b1",
        "20260101-000000F_20260101-000030I",
        BackupPhase::Succeeded,
        false,
        false,
    );
    let kept = backup("b2", "20260101-000100F", BackupPhase::Succeeded, false, false);
    let still_listed = backup("b2", "20260101-000100F", BackupPhase::Expiring, true, false);
    type Case<'a> = (
        &'a str,
        &'a Pgbackup,
        Option<&'a Pgcluster>,
        Option<JobState>,
        BackupPhase,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "starts the job",
            &wanted,
            Some(&primary),
            None,
            BackupPhase::Expiring,
            "expiring backup",
        ),
        (
            "no cluster to reach the repository through",
            &wanted,
            None,
            None,
            BackupPhase::Succeeded,
            "no primary",
        ),
        (
            "a job already there is recorded",
            &wanted,
            Some(&primary),
            Some(JobState::Running),
            BackupPhase::Expiring,
            "",
        ),
        (
            "the job failed",
            &expiring,
            Some(&primary),
            Some(JobState::Failed {
                message: "lock".into(),
            }),
            BackupPhase::Succeeded,
            "failed: lock",
        ),
        (
            "the job is gone",
            &expiring,
            Some(&primary),
            None,
            BackupPhase::Succeeded,
            "gone without a result",
        ),
        (
            "the job succeeded",
            &expiring,
            Some(&primary),
            ok.clone(),
            BackupPhase::Expired,
            "expired by pgo delete backup",
        ),
        (
            "the repository still lists it",
            &still_listed,
            Some(&primary),
            ok,
            BackupPhase::Succeeded,
            "still lists",
        ),
    ];
    for (what, b, c, job, phase, message) in cases {
        let p = run(b, c, job, &[incr.clone(), kept.clone()]);
        let s = status_of(&p).unwrap_or_else(|| panic!("{what}: no status written: {p:?}"));
        assert_eq!(s.phase, phase, "{what}");
        assert!(
            s.message.as_deref().unwrap_or("").contains(message),
            "{what}: {s:?}"
        );
        if phase != BackupPhase::Expiring {
            assert_eq!(
                s.expire_handled, b.spec.expire_requested,
                "{what}: the request is answered once"
            );
        }
    }
}

#[test]
fn the_job_expires_the_set_by_its_label_and_takes_its_dependents_with_it() {
    let wanted = backup("b0", "20260101-000000F", BackupPhase::Succeeded, true, false);
    let p = run(&wanted, Some(&with_primary()), None, &[]);
    let Some(Action::StartJob(job)) = p.actions.first() else {
        panic!("{p:?}")
    };
    assert_eq!(job.name, "b0-expire");
    assert_eq!(
        job.work,
        JobWork::Backrest {
            instance: "db".into(),
            standby: None,
            args: vec!["expire".into(), "--set=20260101-000000F".into()],
        }
    );
    let expiring = backup("b0", "20260101-000000F", BackupPhase::Expiring, true, false);
    let incr = backup(
        "b1",
        "20260101-000000F_20260101-000030I",
        BackupPhase::Succeeded,
        false,
        false,
    );
    let kept = backup("b2", "20260101-000100F", BackupPhase::Succeeded, false, false);
    let p = run(
        &expiring,
        Some(&with_primary()),
        Some(JobState::Succeeded { output: AFTER.into() }),
        &[incr, kept],
    );
    assert_eq!(fixtures::marked(&p), ["b1"]);
    assert_eq!(p.actions.last(), Some(&Action::RemoveJob));
}

#[test]
fn a_handled_request_is_not_tried_again_and_the_job_names_follow_the_phase() {
    let handled = backup("b0", "L", BackupPhase::Succeeded, true, true);
    assert!(!wanted(&handled));
    assert_eq!(run(&handled, Some(&with_primary()), None, &[]).actions, vec![]);
    assert_eq!(crate::backup::job_name(&handled), "b0");
    let asked = backup("b0", "L", BackupPhase::Succeeded, true, false);
    assert_eq!(crate::backup::job_name(&asked), "b0-expire");
    let gone = backup("b0", "L", BackupPhase::Expired, true, true);
    assert_eq!(crate::backup::job_name(&gone), "b0-expire");
    assert_eq!(
        run(&gone, Some(&with_primary()), Some(JobState::Running), &[]).actions,
        vec![Action::RemoveJob],
        "an expired backup only clears a leftover job"
    );
}

#[test]
fn dependents_follow_the_chain_of_priors_and_the_last_full_backup_stays() {
    let all = [
        repo("F1", "full", None),
        repo("F1_D1", "diff", Some("F1")),
        repo("F1_I1", "incr", Some("F1_D1")),
        repo("F2", "full", None),
        repo("F2_I1", "incr", Some("F2")),
    ];
    let labels = |v: Vec<&RepoBackup>| v.into_iter().map(|b| b.label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(dependents("F1", &all)), ["F1_D1", "F1_I1"]);
    assert_eq!(labels(dependents("F1_D1", &all)), ["F1_I1"]);
    assert!(dependents("F2_I1", &all).is_empty());
    assert_eq!(refusal("F1", &all), None);
    assert!(refusal("F2", &all[3..]).is_some_and(|m| m.contains("only full backup")));
    assert_eq!(refusal("F2_I1", &all[3..]), None);
}
