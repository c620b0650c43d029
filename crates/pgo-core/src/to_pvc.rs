//! `pgo restore NAME --to-pvc=VOL` (3.4's form): a cluster's backups
//! restored into a new volume, the cluster untouched. A Pgtask records it;
//! its job leaves in the volume a data directory that a cluster named VOL
//! starts on (`pgo create cluster VOL --secret-from=NAME`), replaying WAL to
//! the target and promoting. Pure; the task controller acts.

use crate::backup::POLL;
use crate::desired::VolumeSpec;
use crate::job::{JobSpec, JobState, JobWork};
use crate::names;
use crate::restore::Order;
use pgo_api::cluster::StorageSpec;
use pgo_api::task::{FAILED, RESTORE_TO_PVC, RUNNING, SUCCEEDED, VOLUME};
use pgo_api::{Pgcluster, Pgtask, PgtaskSpec, PgtaskStatus, labels};
use std::collections::BTreeMap;
use std::time::Duration;

/// The task: restore `source`'s repository into `volume`.
pub fn task(source: &str, volume: &str, order: &Order) -> Pgtask {
    let mut parameters = order.parameters();
    parameters.insert(VOLUME.to_string(), volume.to_string());
    let mut t = Pgtask::new(
        &names::restore_to_pvc_task(volume),
        PgtaskSpec {
            cluster_name: source.to_string(),
            task_type: RESTORE_TO_PVC.to_string(),
            parameters,
        },
    );
    t.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), source.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    t
}

pub fn finished(t: &Pgtask) -> bool {
    t.status.as_ref().is_some_and(PgtaskStatus::finished)
}

/// What a pass sees.
pub struct Observed<'a> {
    pub task: &'a Pgtask,
    /// The cluster whose backups are restored.
    pub source: Option<&'a Pgcluster>,
    /// The state of the job named after the task.
    pub job: Option<JobState>,
}

#[derive(Debug, PartialEq)]
pub enum Action {
    EnsureVolume(VolumeSpec),
    StartJob(JobSpec),
    WriteStatus(PgtaskStatus),
    RemoveJob,
    /// A failed restore's volume goes, so the restore can be asked again.
    RemoveVolume(String),
}

#[derive(Debug, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub next: Option<Duration>,
}

pub fn plan(o: &Observed<'_>, now: jiff::Timestamp) -> Plan {
    let status = o.task.status.clone().unwrap_or_default();
    let name = o.task.metadata.name.clone().unwrap_or_default();
    let source = &o.task.spec.cluster_name;
    let done = |actions: Vec<Action>| Plan { actions, next: None };
    if finished(o.task) {
        return done(o.job.is_some().then_some(Action::RemoveJob).into_iter().collect());
    }
    let volume = o.task.spec.parameters.get(VOLUME).cloned().unwrap_or_default();
    let failed = |message: String, mut extra: Vec<Action>| {
        let mut actions = vec![Action::WriteStatus(PgtaskStatus {
            phase: FAILED.into(),
            message: Some(message),
            finished: Some(now.to_string()),
            ..status.clone()
        })];
        actions.append(&mut extra);
        done(actions)
    };
    if status.phase == RUNNING || o.job.is_some() {
        return match &o.job {
            None => failed(
                "the restore's job is gone without a result".into(),
                vec![Action::RemoveVolume(volume.clone())],
            ),
            Some(JobState::Running) => {
                let write = (status.phase != RUNNING).then(|| {
                    Action::WriteStatus(PgtaskStatus {
                        phase: RUNNING.into(),
                        started: status.started.clone().or_else(|| Some(now.to_string())),
                        ..status.clone()
                    })
                });
                Plan {
                    actions: write.into_iter().collect(),
                    next: Some(POLL),
                }
            }
            Some(JobState::Failed { message }) => failed(
                format!("the restore into volume {volume} failed: {message}"),
                vec![Action::RemoveJob, Action::RemoveVolume(volume.clone())],
            ),
            Some(JobState::Succeeded { .. }) => done(vec![
                Action::WriteStatus(PgtaskStatus {
                    phase: SUCCEEDED.into(),
                    message: Some(format!(
                        "restored into volume {volume}; start it with: pgo create cluster {volume} --secret-from={source}"
                    )),
                    finished: Some(now.to_string()),
                    ..status.clone()
                }),
                Action::RemoveJob,
            ]),
        };
    }
    let order = match Order::of(&o.task.spec.parameters) {
        Ok(order) => order,
        Err(e) => return failed(format!("task {name}: {e}"), vec![]),
    };
    if volume.is_empty() {
        return failed(format!("task {name} names no volume"), vec![]);
    }
    let Some(primary) = crate::backup::repository_instance(o.source) else {
        return failed(
            format!("cluster {source} has no primary to reach its repository through"),
            vec![],
        );
    };
    let storage = o
        .source
        .map_or_else(StorageSpec::default, |c| c.spec.primary_storage.clone());
    Plan {
        actions: vec![
            // The volume is the cluster-to-be's, named like it.
            Action::EnsureVolume(VolumeSpec {
                name: volume.clone(),
                cluster: volume.clone(),
                storage,
            }),
            Action::StartJob(JobSpec {
                name,
                cluster: source.clone(),
                work: JobWork::Restore {
                    instance: primary,
                    volume: volume.clone(),
                    target: order.target.clone(),
                    options: order.options.clone(),
                },
            }),
            Action::WriteStatus(PgtaskStatus {
                phase: RUNNING.into(),
                message: Some(format!("restoring into volume {volume} to {}", order.describe())),
                started: Some(now.to_string()),
                ..status
            }),
        ],
        next: Some(POLL),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::plan::fixtures::{at, cluster};
    use pgo_api::cluster::{PgclusterStatus, PitrTarget, PitrType};

    fn source() -> Pgcluster {
        let mut c = cluster("db");
        c.status = Some(PgclusterStatus {
            primary: Some("db".into()),
            ..Default::default()
        });
        c
    }

    fn with_phase(phase: &str) -> Pgtask {
        let order = Order {
            target: Some(PitrTarget {
                type_: PitrType::Time,
                value: "2026-01-01T00:00:00Z".into(),
            }),
            options: vec!["--set=L".into()],
        };
        let mut t = task("db", "restored", &order);
        t.status = (!phase.is_empty()).then(|| PgtaskStatus {
            phase: phase.into(),
            ..Default::default()
        });
        t
    }

    fn kinds(p: &Plan) -> Vec<String> {
        crate::plan::fixtures::kinds(&p.actions)
    }

    #[test]
    fn a_restore_into_a_volume_goes_from_the_request_to_its_end() {
        let src = source();
        let ok = Some(JobState::Succeeded {
            output: String::new(),
        });
        let bad = Some(JobState::Failed {
            message: "no backup".into(),
        });
        type Case<'a> = (
            &'a str,
            Pgtask,
            Option<&'a Pgcluster>,
            Option<JobState>,
            &'a [&'a str],
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "starts",
                with_phase(""),
                Some(&src),
                None,
                &["EnsureVolume", "StartJob", "WriteStatus"],
                RUNNING,
            ),
            ("no source", with_phase(""), None, None, &["WriteStatus"], FAILED),
            (
                "a job already there",
                with_phase(""),
                Some(&src),
                Some(JobState::Running),
                &["WriteStatus"],
                RUNNING,
            ),
            (
                "runs",
                with_phase(RUNNING),
                Some(&src),
                Some(JobState::Running),
                &[],
                "",
            ),
            (
                "succeeds",
                with_phase(RUNNING),
                Some(&src),
                ok.clone(),
                &["WriteStatus", "RemoveJob"],
                SUCCEEDED,
            ),
            (
                "fails, and its volume goes",
                with_phase(RUNNING),
                Some(&src),
                bad,
                &["WriteStatus", "RemoveJob", "RemoveVolume"],
                FAILED,
            ),
            (
                "its job vanished",
                with_phase(RUNNING),
                Some(&src),
                None,
                &["WriteStatus", "RemoveVolume"],
                FAILED,
            ),
            (
                "finished: a leftover job goes",
                with_phase(SUCCEEDED),
                Some(&src),
                ok,
                &["RemoveJob"],
                "",
            ),
        ];
        for (what, t, c, job, want, phase) in cases {
            let p = plan(
                &Observed {
                    task: &t,
                    source: c,
                    job,
                },
                at(0),
            );
            assert_eq!(
                kinds(&p),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{what}"
            );
            let written = p.actions.iter().find_map(|a| match a {
                Action::WriteStatus(s) => Some(s.phase.as_str()),
                _ => None,
            });
            assert_eq!(written.unwrap_or(""), phase, "{what}");
        }
    }

    #[test]
    fn the_job_restores_the_sources_repository_into_the_volume_of_the_cluster_to_be() {
        let p = plan(
            &Observed {
                task: &with_phase(""),
                source: Some(&source()),
                job: None,
            },
            at(0),
        );
        let Some(Action::EnsureVolume(v)) = p.actions.first() else {
            panic!("{p:?}")
        };
        assert_eq!((v.name.as_str(), v.cluster.as_str()), ("restored", "restored"));
        let Some(Action::StartJob(job)) = p.actions.get(1) else {
            panic!("{p:?}")
        };
        assert_eq!(job.name, "restored-restore-to-pvc");
        let JobWork::Restore {
            instance,
            volume,
            target,
            options,
        } = &job.work
        else {
            panic!("{job:?}")
        };
        assert_eq!((instance.as_str(), volume.as_str()), ("db", "restored"));
        assert_eq!(
            target.as_ref().map(|t| t.value.as_str()),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(options, &["--set=L"]);
    }
}
