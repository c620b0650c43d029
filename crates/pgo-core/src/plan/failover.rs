//! A failover, one step per pass, from its Pgtask. Each step's actions end
//! with recording the next step, so an operator stopped anywhere in a step
//! runs that step again, and every action in it may run twice.
//!
//! 1. **switch**: the status names the target as primary. From here on the
//!    old primary is not in the desired state, so nothing restarts it.
//! 2. **fence**: the old primary is stopped (a fast shutdown when it was
//!    healthy, so connected replicas have all of its WAL; killed when it
//!    may be hung). Its volume is kept.
//! 3. **promote**: the target is configured as primary and promoted, once it
//!    has replayed everything it received.
//! 4. **finish**: slots for the other replicas on the new primary; the
//!    promoted replica's Pgreplica is forgotten (not torn down); the count
//!    is kept (a replacement is made) or lowered; the history is written and
//!    the task removed. The next pass repoints services and replicas.

use super::action::{Action, Next, OnFailure, Plan};
use super::conditions::{self, Activity};
use super::{PlanError, Stored};
use crate::event::Reason;
use crate::failover::{Order, Step, order};
use crate::{desired, names};
use pgo_api::Pgtask;
use pgo_api::cluster::{FailoverRecord, PgclusterStatus};

/// The outcome of a failover that succeeded, as its record says.
pub const SUCCEEDED: &str = "succeeded";

/// How many failovers a cluster's status remembers.
pub const HISTORY: usize = 10;

/// A failover task, read.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub order: Order,
    pub step: Step,
    /// When its first step was recorded, or when the task was made.
    pub started: Option<jiff::Timestamp>,
}

impl Task {
    pub fn of(task: &Pgtask) -> Result<Task, PlanError> {
        let invalid = |why: String| PlanError {
            what: format!("failover task {}", names::failover_task(&task.spec.cluster_name)),
            why,
        };
        let status = task.status.as_ref();
        let step = Step::of_task(status.and_then(|s| s.step.as_deref())).map_err(invalid)?;
        let started = status
            .and_then(|s| s.started.as_deref())
            .and_then(|s| s.parse().ok())
            .or_else(|| task.metadata.creation_timestamp.as_ref().map(|t| t.0));
        Ok(Task {
            order: order(task).map_err(invalid)?,
            step,
            started,
        })
    }
}

pub fn plan(stored: &Stored<'_>, task: &Task, now: jiff::Timestamp) -> Plan {
    let Order { from, target, .. } = &task.order;
    let status = stored.status();
    let actions = match task.step {
        Step::Switch => {
            let mut actions = Vec::new();
            if status.primary.as_ref() != Some(target) {
                if !stored.live().any(|r| r.metadata.name.as_ref() == Some(target)) {
                    return abandon(stored, task, now, format!("{target} is no longer a replica"));
                }
                let mut next = PgclusterStatus {
                    primary: Some(target.clone()),
                    ..status
                };
                let spec = &stored.cluster.spec;
                conditions::set(&mut next, spec, Activity::Failover, stored.generation(), now);
                actions.push(stored.event(
                    Reason::FailoverStarted,
                    format!("from {from} to {target}: {}", task.order.reason),
                ));
                actions.push(Action::WriteStatus(Box::new(next)));
            }
            actions.push(Action::SetFailoverStep(Step::Fence));
            actions
        }
        Step::Fence => {
            // An automatic failover means the primary was not ready, whatever
            // an older status says; asking it again could cost a timeout.
            let healthy = task.order.planned() && status.members.iter().any(|m| &m.name == from && m.ready);
            vec![
                if healthy {
                    Action::RemoveInstance(from.clone())
                } else {
                    Action::FenceInstance(from.clone())
                },
                Action::SetFailoverStep(Step::Promote),
            ]
        }
        Step::Promote => {
            let others: Vec<_> = stored
                .replicas
                .iter()
                .filter(|r| r.metadata.name.as_ref() != Some(target))
                .map(desired::ReplicaInput::of)
                .collect();
            let want =
                desired::cluster(stored.name(), &stored.cluster.spec, target, &others).owned_by(stored.uid());
            let mut actions: Vec<Action> = want
                .instances
                .into_iter()
                .filter(|i| &i.name == target)
                .map(|i| Action::EnsureInstance(Box::new(i)))
                .collect();
            actions.push(Action::PromoteInstance(target.clone()));
            actions.push(Action::SetFailoverStep(Step::Finish));
            return Plan::new(actions, Next::NOW).on_failure(OnFailure::TaskMessage(Step::Promote));
        }
        Step::Finish => {
            let mut actions: Vec<Action> = stored
                .replicas
                .iter()
                .filter_map(|r| r.metadata.name.as_ref())
                .filter(|n| *n != target)
                .map(|other| Action::CreateSlot {
                    primary: target.clone(),
                    slot: names::replication_slot(other),
                })
                .collect();
            if stored.replica(target).is_some() {
                actions.push(Action::ForgetReplica(target.clone()));
            }
            // Shut down cleanly after its replicas had all of its WAL, the
            // old primary's timeline is a prefix of the new one: it can
            // follow as it is, and its replica takes the replacement's place.
            if task.order.rejoin {
                actions.push(Action::CreateSlot {
                    primary: target.clone(),
                    slot: names::replication_slot(from),
                });
                actions.push(Action::RejoinReplica(from.clone()));
            }
            if !task.order.replace {
                let from = task.order.replicas.unwrap_or(stored.cluster.spec.replicas);
                if from > 0 {
                    actions.push(Action::LowerReplicaCount { from, to: from - 1 });
                }
            }
            actions.push(record(&status, task, now, Ok(())));
            let old = if task.order.rejoin {
                "rejoins as a replica on its volume"
            } else {
                "is fenced and its volume kept"
            };
            actions.push(stored.event(
                Reason::FailoverSucceeded,
                format!("{target} is the primary; {from} {old}"),
            ));
            actions.push(Action::DeleteFailoverTask);
            actions
        }
    };
    Plan::new(actions, Next::NOW)
}

/// The target cannot be promoted and nothing has changed yet.
fn abandon(stored: &Stored<'_>, task: &Task, now: jiff::Timestamp, why: String) -> Plan {
    let actions = vec![
        record(&stored.status(), task, now, Err(why.clone())),
        stored.event(
            Reason::FailoverFailed,
            format!("abandoned before anything changed: {why}"),
        ),
        Action::DeleteFailoverTask,
    ];
    Plan::new(actions, Next::NOW)
}

/// The failover in the cluster's history, once: a second run of the same
/// finish finds it there.
fn record(
    status: &PgclusterStatus,
    task: &Task,
    now: jiff::Timestamp,
    outcome: Result<(), String>,
) -> Action {
    let at = task.started.unwrap_or(now);
    let record = FailoverRecord {
        at: at.to_string(),
        from: task.order.from.clone(),
        to: task.order.target.clone(),
        reason: task.order.reason.clone(),
        duration_ms: u64::try_from(now.duration_since(at).as_millis()).unwrap_or(0),
        outcome: match outcome {
            Ok(()) => SUCCEEDED.into(),
            Err(why) => format!("failed: {why}"),
        },
    };
    let mut next = status.clone();
    next.not_ready_since = None;
    if !next
        .failovers
        .iter()
        .any(|r| r.at == record.at && r.from == record.from && r.to == record.to)
    {
        next.failovers.push(record);
    }
    let excess = next.failovers.len().saturating_sub(HISTORY);
    next.failovers.drain(..excess);
    Action::WriteStatus(Box::new(next))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;
    use pgo_api::Pgreplica;

    fn run(step: Option<&str>, reason: &str, replace: Option<bool>, replicas: &[Pgreplica]) -> Plan {
        let mut c = cluster("db");
        c.spec.replicas = 2;
        let status = c.status.get_or_insert_with(Default::default);
        status.primary = Some("db".into());
        status.members = vec![member("db", true), member("db-a", true)];
        let mut t = failover_task("db", "db", "db-a", reason, replace);
        t.status = Some(pgo_api::PgtaskStatus {
            step: step.map(str::to_string),
            started: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        });
        let stored = Stored {
            cluster: &c,
            replicas,
            failover: Some(&t),
            restore: None,
        };
        plan(&stored, &Task::of(&t).unwrap(), at(1500))
    }

    #[test]
    fn each_step_does_its_part_and_records_the_next() {
        let two = [replica("db", "db-a"), replica("db", "db-b")];
        // (step recorded, reason, replace, the actions)
        type Case<'a> = (Option<&'a str>, &'a str, Option<bool>, &'a [&'a str]);
        let cases: &[Case] = &[
            (
                None,
                "manual",
                None,
                &["Record", "WriteStatus", "SetFailoverStep"],
            ),
            (
                Some("fence"),
                "manual",
                None,
                &["RemoveInstance", "SetFailoverStep"],
            ),
            (
                Some("fence"),
                "auto: not ready",
                None,
                &["FenceInstance", "SetFailoverStep"],
            ),
            (
                Some("fence"),
                "rolling update: older template",
                None,
                &["RemoveInstance", "SetFailoverStep"],
            ),
            (
                Some("finish"),
                "rolling update: older template",
                Some(true),
                &[
                    "CreateSlot",
                    "ForgetReplica",
                    "CreateSlot",
                    "RejoinReplica",
                    "WriteStatus",
                    "Record",
                    "DeleteFailoverTask",
                ],
            ),
            (
                Some("promote"),
                "manual",
                None,
                &["EnsureInstance", "PromoteInstance", "SetFailoverStep"],
            ),
            (
                Some("finish"),
                "manual",
                Some(true),
                &[
                    "CreateSlot",
                    "ForgetReplica",
                    "WriteStatus",
                    "Record",
                    "DeleteFailoverTask",
                ],
            ),
            (
                Some("finish"),
                "manual",
                Some(false),
                &[
                    "CreateSlot",
                    "ForgetReplica",
                    "LowerReplicaCount",
                    "WriteStatus",
                    "Record",
                    "DeleteFailoverTask",
                ],
            ),
        ];
        for (step, reason, replace, want) in cases {
            let p = run(*step, reason, *replace, &two);
            assert_eq!(kinds(&p.actions), *want, "{step:?} {reason}");
            assert_eq!(p.next, Next::NOW);
        }
    }

    #[test]
    fn switch_names_the_target_and_a_gone_target_abandons_with_a_record() {
        let p = run(None, "manual", None, &[replica("db", "db-a")]);
        let Action::Record(e) = &p.actions[0] else {
            panic!("{p:?}")
        };
        assert_eq!(
            (e.reason, e.message.as_str()),
            (Reason::FailoverStarted, "from db to db-a: manual")
        );
        let Action::WriteStatus(s) = &p.actions[1] else {
            panic!("{p:?}")
        };
        assert_eq!(s.primary.as_deref(), Some("db-a"));
        assert_eq!(p.actions[2], Action::SetFailoverStep(Step::Fence));

        let p = run(None, "manual", None, &[]);
        let Action::WriteStatus(s) = &p.actions[0] else {
            panic!("{p:?}")
        };
        assert_eq!(s.primary.as_deref(), Some("db"), "nothing changed");
        assert_eq!(s.failovers[0].outcome, "failed: db-a is no longer a replica");
        assert!(matches!(&p.actions[1], Action::Record(e) if e.reason == Reason::FailoverFailed));
        assert_eq!(p.actions[2], Action::DeleteFailoverTask);
    }

    #[test]
    fn finish_writes_the_history_once_and_lowers_the_count_from_what_it_was() {
        let p = run(Some("finish"), "manual", Some(false), &[replica("db", "db-a")]);
        assert!(
            p.actions.contains(&Action::LowerReplicaCount { from: 2, to: 1 }),
            "{p:?}"
        );
        let Some(Action::WriteStatus(s)) = p.actions.iter().find(|a| matches!(a, Action::WriteStatus(_)))
        else {
            panic!("{p:?}")
        };
        assert_eq!(s.failovers.len(), 1);
        assert_eq!(s.failovers[0].duration_ms, 1500);
        assert_eq!(s.failovers[0].outcome, "succeeded");

        // Run again over the status it wrote: still one record.
        let mut c = cluster("db");
        c.status = Some((**s).clone());
        let t = {
            let mut t = failover_task("db", "db", "db-a", "manual", Some(false));
            t.status = Some(pgo_api::PgtaskStatus {
                step: Some("finish".into()),
                started: Some("2026-01-01T00:00:00Z".into()),
                ..Default::default()
            });
            t
        };
        let stored = Stored {
            cluster: &c,
            replicas: &[],
            failover: Some(&t),
            restore: None,
        };
        let again = plan(&stored, &Task::of(&t).unwrap(), at(3000));
        let Some(Action::WriteStatus(s)) = again.actions.iter().find(|a| matches!(a, Action::WriteStatus(_)))
        else {
            panic!("{again:?}")
        };
        assert_eq!(s.failovers.len(), 1, "{:?}", s.failovers);
    }

    #[test]
    fn a_task_missing_its_target_or_with_a_bad_flag_is_refused() {
        let mut t = failover_task("db", "db", "db-a", "manual", None);
        t.spec.parameters.remove(crate::failover::TARGET);
        assert!(Task::of(&t).unwrap_err().why.contains("\"target\" is missing"));
        let mut t = failover_task("db", "db", "db-a", "manual", None);
        t.spec
            .parameters
            .insert(crate::failover::REPLACE.into(), "yes".into());
        assert!(Task::of(&t).unwrap_err().why.contains("not true or false"));
    }
}
