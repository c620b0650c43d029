//! A restore in place, one idempotent step per pass: stop (replicas
//! released with their data, the primary stopped), restore (the primary
//! made again with the restore in its config; its manager restores over
//! the volume and promotes at the target), finish (recorded; the task
//! goes, and the steady plan makes the replicas again).

use super::action::{Action, Next, Plan};
use super::conditions::{self, Activity};
use super::{Stored, steady};
use crate::desired::InstanceRestoreSpec;
use crate::event::Reason;
use crate::names;
use crate::observed::InstanceObservation;
use crate::restore::{Step, Task};
use pgo_api::cluster::{ClusterPhase, MemberRole, PgclusterStatus, RestoreRecord};
use std::time::Duration;

/// How often a restoring primary is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Restores kept in the cluster's history.
const HISTORY: usize = 10;

fn status(stored: &Stored<'_>, message: String, now: jiff::Timestamp) -> PgclusterStatus {
    let mut s = PgclusterStatus {
        phase: ClusterPhase::NotReady,
        message: Some(message),
        ..stored.status()
    };
    conditions::set(
        &mut s,
        &stored.cluster.spec,
        Activity::Restoring,
        stored.generation(),
        now,
    );
    s
}

/// `seen`: the primary instance, observed only in the restore step.
pub fn plan(
    stored: &Stored<'_>,
    task: &Task,
    seen: Option<&InstanceObservation>,
    now: jiff::Timestamp,
) -> Plan {
    let primary = stored.primary();
    let target = task.describe();
    let previous = stored.status();
    let write = |s: PgclusterStatus| (previous != s).then(|| Action::WriteStatus(Box::new(s)));
    match task.step {
        Step::Stop => {
            let mut actions = Vec::new();
            if task.started.is_none() {
                actions.push(stored.event(
                    Reason::RestoreStarted,
                    format!("restoring {primary} to {target}; the cluster stops"),
                ));
            }
            actions.extend(write(status(
                stored,
                format!("restoring to {target}: stopping the cluster"),
                now,
            )));
            // The replicas' data is of the timeline the restore leaves:
            // they go, with their volumes, and new ones are copied after.
            for r in stored.replicas {
                let Some(name) = r.metadata.name.clone() else {
                    continue;
                };
                actions.push(Action::RemoveInstance(name.clone()));
                actions.push(Action::ReleaseReplica(name.clone()));
                actions.push(Action::RequestRmdata {
                    volume: names::volume_of(stored.name(), stored.cluster.spec.pvc_name.as_deref(), &name),
                    owner_uid: r.metadata.uid.clone().unwrap_or(name),
                });
            }
            actions.push(Action::RemoveInstance(primary));
            actions.push(Action::SetRestoreStep(Step::Restore));
            Plan::new(actions, Next::NOW)
        }
        Step::Restore => {
            let mut want = steady::desired(&Stored {
                replicas: &[],
                ..*stored
            });
            let mut actions: Vec<Action> = want.secrets.drain(..).map(Action::EnsureSecret).collect();
            actions.extend(want.volumes.drain(..).map(Action::EnsureVolume));
            let Some(mut instance) = want.instances.into_iter().find(|i| i.role == MemberRole::Primary)
            else {
                return Plan::new(actions, Next::After(POLL));
            };
            let Some(b) = &instance.backrest else {
                let why = "the cluster has no pgBackRest repository to restore from".to_string();
                actions.extend(write(PgclusterStatus {
                    phase: ClusterPhase::Failed,
                    ..status(stored, why, now)
                }));
                return Plan::new(actions, Next::After(Duration::from_secs(30)));
            };
            instance.restore = Some(InstanceRestoreSpec {
                id: Some(task.id.clone()),
                cluster: instance.cluster.clone(),
                repo_volume: b.repo_volume.clone(),
                stanza: b.stanza.clone(),
                target: task.order.target.clone(),
                options: task.order.options.clone(),
            });
            actions.push(Action::EnsureInstance(Box::new(instance)));
            match seen {
                Some(s) if s.ready && s.role == Some(MemberRole::Primary) => {
                    actions.push(Action::SetRestoreStep(Step::Finish));
                    Plan::new(actions, Next::NOW)
                }
                Some(s) if s.fatal.is_some() => {
                    let why = format!(
                        "the restore to {target} failed: {}",
                        s.fatal.clone().unwrap_or_default()
                    );
                    actions.extend(write(PgclusterStatus {
                        phase: ClusterPhase::Failed,
                        ..status(stored, why, now)
                    }));
                    Plan::new(actions, Next::After(POLL))
                }
                other => {
                    let doing = other
                        .and_then(|s| s.message.clone())
                        .unwrap_or_else(|| "starting".into());
                    actions.extend(write(status(
                        stored,
                        format!("restoring to {target}: {doing}"),
                        now,
                    )));
                    Plan::new(actions, Next::After(POLL))
                }
            }
        }
        Step::Finish => {
            let mut s = PgclusterStatus {
                message: None,
                ..status(stored, String::new(), now)
            };
            s.restores.push(RestoreRecord {
                started: task.started.clone().unwrap_or_default(),
                finished: now.to_string(),
                target: target.clone(),
            });
            let excess = s.restores.len().saturating_sub(HISTORY);
            s.restores.drain(..excess);
            // Recorded once: a pass that ran this far and was cut finds
            // its record (same start) and does not add another.
            if previous
                .restores
                .iter()
                .any(|r| Some(&r.started) == task.started.as_ref())
            {
                s.restores = previous.restores.clone();
            }
            let mut actions = vec![stored.event(Reason::Restored, format!("restored to {target}"))];
            actions.extend(write(s));
            actions.push(Action::DeleteRestoreTask);
            Plan::new(actions, Next::NOW)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;
    use crate::restore::{Order, task as restore_task};
    use pgo_api::cluster::BackrestSpec;

    fn task_at(step: Option<&str>) -> pgo_api::Pgtask {
        let mut t = restore_task(
            "db",
            &Order {
                target: None,
                options: vec![],
            },
        );
        t.metadata.uid = Some("uid-r".into());
        t.status = step.map(|s| pgo_api::PgtaskStatus {
            step: Some(s.into()),
            started: Some(at(0).to_string()),
            ..Default::default()
        });
        t
    }

    fn backrest_cluster() -> pgo_api::Pgcluster {
        let mut c = cluster("db");
        c.spec.backrest = Some(BackrestSpec {
            archive_timeout_seconds: 60,
            retention_full: 2,
            retention_diff: None,
        });
        c
    }

    fn ready_primary() -> InstanceObservation {
        InstanceObservation {
            name: "db".into(),
            running: true,
            ready: true,
            role: Some(MemberRole::Primary),
            ..Default::default()
        }
    }

    #[test]
    fn each_step_does_its_part_and_moves_on() {
        let c = backrest_cluster();
        let replicas = [replica("db", "db-a")];
        let cases: Vec<(Option<&str>, Option<InstanceObservation>, Vec<&str>)> = vec![
            (
                None,
                None,
                vec![
                    "Record",
                    "WriteStatus",
                    "RemoveInstance",
                    "ReleaseReplica",
                    "RequestRmdata",
                    "RemoveInstance",
                    "SetRestoreStep",
                ],
            ),
            (
                Some("restore"),
                None,
                vec![
                    "EnsureSecret",
                    "EnsureSecret",
                    "EnsureSecret",
                    "EnsureVolume",
                    "EnsureVolume",
                    "EnsureInstance",
                    "WriteStatus",
                ],
            ),
            (
                Some("restore"),
                Some(ready_primary()),
                vec![
                    "EnsureSecret",
                    "EnsureSecret",
                    "EnsureSecret",
                    "EnsureVolume",
                    "EnsureVolume",
                    "EnsureInstance",
                    "SetRestoreStep",
                ],
            ),
            (
                Some("finish"),
                None,
                vec!["Record", "WriteStatus", "DeleteRestoreTask"],
            ),
        ];
        for (step, seen, want) in cases {
            let t = task_at(step);
            let stored = Stored {
                cluster: &c,
                replicas: &replicas,
                failover: None,
                restore: Some(&t),
            };
            let task = Task::of(&t).unwrap();
            let p = plan(&stored, &task, seen.as_ref(), at(1000));
            assert_eq!(kinds(&p.actions), want, "{step:?}");
        }
    }

    #[test]
    fn the_primary_is_made_again_with_a_restore_named_by_the_task() {
        let c = backrest_cluster();
        let t = task_at(Some("restore"));
        let stored = Stored {
            cluster: &c,
            replicas: &[],
            failover: None,
            restore: Some(&t),
        };
        let p = plan(&stored, &Task::of(&t).unwrap(), None, at(0));
        let instance = p
            .actions
            .iter()
            .find_map(|a| match a {
                Action::EnsureInstance(i) => Some(i),
                _ => None,
            })
            .unwrap();
        let r = instance.restore.clone().unwrap();
        assert_eq!(
            (r.id.as_deref(), r.repo_volume.as_str()),
            (Some("uid-r"), "db-backrestrepo")
        );
    }

    #[test]
    fn an_unknown_step_is_an_error() {
        let t = task_at(Some("rewind"));
        let err = Task::of(&t).unwrap_err();
        assert!(err.why.contains("unknown restore step \"rewind\""), "{err}");
    }

    #[test]
    fn the_history_gets_one_record_however_often_finish_runs() {
        let mut c = backrest_cluster();
        let t = task_at(Some("finish"));
        let task = Task::of(&t).unwrap();
        let stored = Stored {
            cluster: &c,
            replicas: &[],
            failover: None,
            restore: Some(&t),
        };
        let p = plan(&stored, &task, None, at(5000));
        let Some(Action::WriteStatus(s)) = p.actions.get(1) else {
            panic!("{p:?}")
        };
        assert_eq!(s.restores.len(), 1);
        let written = (**s).clone();
        c.status = Some(written);
        let stored = Stored {
            cluster: &c,
            replicas: &[],
            failover: None,
            restore: Some(&t),
        };
        let again = plan(&stored, &task, None, at(6000));
        let written = again.actions.iter().find_map(|a| match a {
            Action::WriteStatus(s) => Some(s.restores.len()),
            _ => None,
        });
        assert!(written.is_none_or(|n| n == 1), "{again:?}");
    }
}
