#![allow(clippy::unwrap_used)]
use super::*;
use crate::plan::fixtures::{self, at, cluster, member};
use pgo_api::PgbackupSpec;
use pgo_api::cluster::{BackrestSpec, PgclusterStatus};

const INFO: &str = r#"[{"name":"db","archive":[{"min":"000000010000000000000001","max":"000000010000000000000009"}],"backup":[
 {"label":"20260101-000000F","type":"full","timestamp":{"start":1767225600,"stop":1767225602},"info":{"size":10,"repository":{"delta":5}},"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"prior":null},
 {"label":"20260101-000100F","type":"full","timestamp":{"start":1767225660,"stop":1767225662},"info":{"size":10,"repository":{"delta":5}},"archive":{"start":"000000010000000000000004","stop":"000000010000000000000004"},"prior":null}]}]"#;

fn ready_cluster(backrest: bool) -> Pgcluster {
    let mut c = cluster("db");
    c.spec.backrest = backrest.then_some(BackrestSpec {
        archive_timeout_seconds: 60,
        retention_full: 2,
        retention_diff: None,
    });
    let mut replica = member("db-a", true);
    replica.role = MemberRole::Replica;
    let mut primary = member("db", true);
    primary.archive = Some(pgo_api::cluster::ArchiveStatus {
        stanza_ready: true,
        ..Default::default()
    });
    c.status = Some(PgclusterStatus {
        phase: ClusterPhase::Ready,
        primary: Some("db".into()),
        members: vec![primary, replica],
        ..Default::default()
    });
    c
}

fn backup(phase: Option<BackupPhase>, standby: bool, opts: &[&str]) -> Pgbackup {
    let mut b = Pgbackup::new(
        "db-backup-1",
        PgbackupSpec {
            cluster_name: "db".into(),
            standby,
            backup_opts: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    );
    b.status = phase.map(|phase| PgbackupStatus {
        phase,
        started: Some(at(60_000).to_string()),
        instance: Some("db".into()),
        ..Default::default()
    });
    b
}

fn succeeded(name: &str, label: &str) -> Pgbackup {
    let mut b = backup(Some(BackupPhase::Succeeded), false, &[]);
    b.metadata.name = Some(name.into());
    b.status.as_mut().unwrap().backup = Some(RepoBackup {
        label: label.into(),
        ..Default::default()
    });
    b
}

fn kinds(p: &Plan) -> Vec<String> {
    fixtures::kinds(&p.actions)
}

fn written(p: &Plan) -> Option<&PgbackupStatus> {
    p.actions.iter().find_map(|a| match a {
        Action::WriteStatus(s) => Some(s),
        _ => None,
    })
}

#[test]
fn a_backup_goes_from_pending_to_its_end() {
    let ready = ready_cluster(true);
    let off = ready_cluster(false);
    let mut not_ready = ready_cluster(true);
    not_ready.status.as_mut().unwrap().phase = ClusterPhase::NotReady;
    let mut no_stanza = ready_cluster(true);
    no_stanza.status.as_mut().unwrap().members[0].archive = None;
    let mut lonely = ready_cluster(true);
    lonely.status.as_mut().unwrap().members.truncate(1);
    let ok = Some(JobState::Succeeded { output: INFO.into() });
    // Cut to fit a termination message: the labels left out are not gone.
    let mut truncated: serde_json::Value = serde_json::from_str(INFO).unwrap();
    truncated[0]["pgoTruncated"] = true.into();
    let cut = Some(JobState::Succeeded {
        output: truncated.to_string(),
    });
    let old = [
        succeeded("db-backup-0", "20250101-000000F"),
        succeeded("db-backup-k", "20260101-000000F"),
    ];
    type Case<'a> = (
        &'a str,
        Pgbackup,
        Option<&'a Pgcluster>,
        Option<JobState>,
        &'a [&'a str],
        Option<BackupPhase>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "starts from the primary",
            backup(None, false, &["--type=full"]),
            Some(&ready),
            None,
            &["StartJob", "WriteStatus"],
            Some(BackupPhase::Running),
            "from primary db",
        ),
        (
            "starts from a replica",
            backup(None, true, &[]),
            Some(&ready),
            None,
            &["StartJob", "WriteStatus"],
            Some(BackupPhase::Running),
            "from replica db-a",
        ),
        (
            "no replica to take it from",
            backup(None, true, &[]),
            Some(&lonely),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Failed),
            "no ready replica",
        ),
        (
            "waits for the cluster",
            backup(None, false, &[]),
            Some(&not_ready),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Pending),
            "waiting for cluster db: it to be ready",
        ),
        (
            "waits for the stanza",
            backup(None, false, &[]),
            Some(&no_stanza),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Pending),
            "stanza to be made",
        ),
        (
            "no such cluster",
            backup(None, false, &[]),
            None,
            None,
            &["WriteStatus"],
            Some(BackupPhase::Failed),
            "cluster \"db\" not found",
        ),
        (
            "no pgBackRest",
            backup(None, false, &[]),
            Some(&off),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Failed),
            "--pgbackrest=false",
        ),
        (
            "an option pgo does not pass",
            backup(None, false, &["--repo1-path=/etc"]),
            Some(&ready),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Failed),
            "\"--repo1-path=/etc\" is not an option",
        ),
        (
            "a job started by a pass that ended",
            backup(None, false, &[]),
            Some(&ready),
            Some(JobState::Running),
            &["WriteStatus"],
            Some(BackupPhase::Running),
            "",
        ),
        (
            "runs",
            backup(Some(BackupPhase::Running), false, &[]),
            Some(&ready),
            Some(JobState::Running),
            &[],
            None,
            "",
        ),
        (
            "succeeds and marks what retention took",
            backup(Some(BackupPhase::Running), false, &[]),
            Some(&ready),
            ok.clone(),
            &["WriteStatus", "MarkExpired", "RemoveJob"],
            Some(BackupPhase::Succeeded),
            "20260101-000100F",
        ),
        (
            "succeeds, its list cut short: nothing is taken for expired",
            backup(Some(BackupPhase::Running), false, &[]),
            Some(&ready),
            cut,
            &["WriteStatus", "RemoveJob"],
            Some(BackupPhase::Succeeded),
            "20260101-000100F",
        ),
        (
            "fails with the job's words",
            backup(Some(BackupPhase::Running), false, &[]),
            Some(&ready),
            Some(JobState::Failed {
                message: "disk full".into(),
            }),
            &["WriteStatus", "RemoveJob"],
            Some(BackupPhase::Failed),
            "disk full",
        ),
        (
            "its job vanished",
            backup(Some(BackupPhase::Running), false, &[]),
            Some(&ready),
            None,
            &["WriteStatus"],
            Some(BackupPhase::Failed),
            "gone without a result",
        ),
        (
            "finished: a job left over goes",
            backup(Some(BackupPhase::Succeeded), false, &[]),
            Some(&ready),
            ok,
            &["RemoveJob"],
            None,
            "",
        ),
    ];
    for (what, b, c, job, want, phase, message) in cases {
        let o = Observed {
            backup: &b,
            cluster: c,
            job,
            siblings: &old,
        };
        let p = plan(&o, at(61_000));
        assert_eq!(
            kinds(&p),
            want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{what}"
        );
        let status = written(&p);
        assert_eq!(status.map(|s| s.phase), phase, "{what}");
        if !message.is_empty() {
            let said = status.and_then(|s| s.message.clone()).unwrap_or_default();
            assert!(said.contains(message), "{what}: {said}");
        }
        if let Some(Action::MarkExpired { backup, .. }) = p.actions.get(1) {
            assert_eq!(
                backup, "db-backup-0",
                "{what}: only what the repository no longer lists"
            );
        }
    }
}

#[test]
fn the_job_backs_up_with_the_options_given() {
    let ready = ready_cluster(true);
    let b = backup(None, true, &["--type=incr"]);
    let p = plan(
        &Observed {
            backup: &b,
            cluster: Some(&ready),
            job: None,
            siblings: &[],
        },
        at(0),
    );
    let Some(Action::StartJob(job)) = p.actions.first() else {
        panic!("{p:?}")
    };
    assert_eq!(
        job.work,
        JobWork::Backrest {
            instance: "db".into(),
            standby: Some("db-a".into()),
            args: vec!["backup".into(), "--type=incr".into()],
        }
    );
}

#[test]
fn backup_opts_are_checked() {
    assert_eq!(
        backup_opts(" --type=diff  --start-fast ").unwrap(),
        ["--type=diff", "--start-fast"]
    );
    assert!(
        backup_opts("--type=weekly")
            .unwrap_err()
            .contains("full, diff or incr")
    );
    assert!(
        backup_opts("--config=/tmp/x")
            .unwrap_err()
            .contains("--config=/tmp/x")
    );
}

fn copy(phase: Option<BackupPhase>) -> Pgbackup {
    let mut b = backup(phase, false, &[]);
    b.spec.backup_type = BackupType::Pgbasebackup;
    b
}

#[test]
fn a_pg_basebackup_copy_goes_into_the_backup_volume_without_pgbackrest() {
    // No pgBackRest and no stanza: a copy needs neither.
    let mut off = ready_cluster(false);
    off.status.as_mut().unwrap().members[0].archive = None;
    let observe = |b: &Pgbackup, job| {
        plan(
            &Observed {
                backup: b,
                cluster: Some(&off),
                job,
                siblings: &[],
            },
            at(0),
        )
    };
    let p = observe(&copy(None), None);
    assert_eq!(kinds(&p), ["EnsureVolume", "StartJob", "WriteStatus"]);
    let Some(Action::EnsureVolume(v)) = p.actions.first() else {
        panic!("{p:?}")
    };
    assert_eq!((v.name.as_str(), v.cluster.as_str()), ("db-backup", "db"));
    let Some(Action::StartJob(job)) = p.actions.get(1) else {
        panic!("{p:?}")
    };
    assert_eq!(
        job.work,
        JobWork::Basebackup {
            instance: "db".into(),
            volume: "db-backup".into(),
            path: "db-backups/2026-01-01-00-00-00".into(),
        }
    );
    let mut with_opts = copy(None);
    with_opts.spec.backup_opts = vec!["--max-rate=1k".into()];
    let p = observe(&with_opts, None);
    assert_eq!(written(&p).map(|s| s.phase), Some(BackupPhase::Failed));

    let reported = r#"{"label":"db-backups/2026-01-01-00-00-00","type":"pgbasebackup","sizeBytes":42,"repoSizeBytes":42,"walStart":"000000010000000000000002","walStop":""}"#;
    let p = observe(
        &copy(Some(BackupPhase::Running)),
        Some(JobState::Succeeded {
            output: reported.into(),
        }),
    );
    assert_eq!(kinds(&p), ["WriteStatus", "RemoveJob"]);
    let done = written(&p).unwrap();
    assert_eq!(done.phase, BackupPhase::Succeeded);
    let made = done.backup.as_ref().unwrap();
    assert_eq!(
        (made.label.as_str(), made.size_bytes),
        ("db-backups/2026-01-01-00-00-00", 42)
    );
    assert_eq!(made.start, at(60_000).to_string(), "from when the job started");
    let p = observe(
        &copy(Some(BackupPhase::Running)),
        Some(JobState::Succeeded { output: "{".into() }),
    );
    assert_eq!(written(&p).map(|s| s.phase), Some(BackupPhase::Failed));
}

#[test]
fn retention_marks_only_what_pgbackrest_held() {
    let ready = ready_cluster(true);
    let mut a_copy = succeeded("db-copy", "db-backups/2025-01-01-00-00-00");
    a_copy.spec.backup_type = BackupType::Pgbasebackup;
    let siblings = [a_copy, succeeded("db-backup-0", "20250101-000000F")];
    let p = plan(
        &Observed {
            backup: &backup(Some(BackupPhase::Running), false, &[]),
            cluster: Some(&ready),
            job: Some(JobState::Succeeded { output: INFO.into() }),
            siblings: &siblings,
        },
        at(61_000),
    );
    assert_eq!(
        fixtures::marked(&p),
        ["db-backup-0"],
        "a copy is not in the repository"
    );
    assert_eq!(
        copies_in(&siblings, "db-backup"),
        ["db-backups/2025-01-01-00-00-00"]
    );
}
