//! Which replica a failover promotes, and whether a requested one may be.

use crate::names;
use crate::status::lsn;
use pgo_api::cluster::{MemberRole, MemberStatus};
use pgo_api::task::FAILOVER;
use pgo_api::{Pgtask, PgtaskSpec, labels};
use std::collections::BTreeMap;

/// The parameters a failover task carries.
pub const TARGET: &str = "target";
pub const FROM: &str = "from";
pub const REASON: &str = "reason";
pub const REPLACE: &str = "replaceReplica";
/// The replica count when the failover began.
pub const REPLICAS: &str = "replicas";
/// The old primary comes back as a replica on its own volume.
pub const REJOIN: &str = "rejoinOldPrimary";
/// The reason of a failover a user asked for (`pgo failover --target`).
pub const MANUAL: &str = "manual";
/// How the reason of a rolling update's switchover begins.
pub const ROLLING_UPDATE: &str = "rolling update";

/// Where a failover is, as its task's `status.step` records it. A step
/// this operator does not know (written by a newer one, or by hand) is an
/// error that stops the failover where it is, never a jump to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The store is made to name the target as primary.
    Switch,
    /// The old primary is stopped, for good.
    Fence,
    /// The target is promoted.
    Promote,
    /// Slots, the promoted replica's record, the history.
    Finish,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Switch => "switch",
            Step::Fence => "fence",
            Step::Promote => "promote",
            Step::Finish => "finish",
        }
    }

    /// The step recorded in a task; none yet is the first.
    pub fn of_task(recorded: Option<&str>) -> Result<Step, String> {
        match recorded {
            None => Ok(Step::Switch),
            Some("switch") => Ok(Step::Switch),
            Some("fence") => Ok(Step::Fence),
            Some("promote") => Ok(Step::Promote),
            Some("finish") => Ok(Step::Finish),
            Some(other) => Err(format!(
                "unknown failover step {other:?} (known: switch, fence, promote, finish)"
            )),
        }
    }
}

/// A failover as it is asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub from: String,
    pub target: String,
    /// [`MANUAL`], or `auto: ...` and why.
    pub reason: String,
    /// A replacement replica is made for the promoted one; otherwise the
    /// count is lowered by one.
    pub replace: bool,
    /// The replica count when it began, so that lowering it is done once.
    /// Absent in the tasks of an operator before this field.
    pub replicas: Option<u32>,
    /// The old primary, shut down cleanly, comes back as a replica on its
    /// volume (a rolling update's switchover) instead of being kept aside.
    pub rejoin: bool,
}

impl Order {
    /// Asked for while the primary was healthy: it is shut down cleanly,
    /// so the replicas get all of its WAL first.
    pub fn planned(&self) -> bool {
        self.reason == MANUAL || self.reason.starts_with(ROLLING_UPDATE)
    }
}

/// The task that records a failover of `cluster`.
pub fn task(cluster: &str, order: &Order) -> Pgtask {
    let mut parameters = BTreeMap::from([
        (TARGET.to_string(), order.target.clone()),
        (FROM.to_string(), order.from.clone()),
        (REASON.to_string(), order.reason.clone()),
        (REPLACE.to_string(), order.replace.to_string()),
    ]);
    if order.rejoin {
        parameters.insert(REJOIN.to_string(), "true".to_string());
    }
    if let Some(n) = order.replicas {
        parameters.insert(REPLICAS.to_string(), n.to_string());
    }
    let mut task = Pgtask::new(
        &names::failover_task(cluster),
        PgtaskSpec {
            cluster_name: cluster.to_string(),
            task_type: FAILOVER.to_string(),
            parameters,
        },
    );
    task.metadata.labels = Some(BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
    ]));
    task
}

/// The order a task records. Anything missing or not understood is an
/// error: a failover is never driven on a guess.
pub fn order(task: &Pgtask) -> Result<Order, String> {
    let p = &task.spec.parameters;
    let required = |key: &str| {
        p.get(key)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("parameter {key:?} is missing"))
    };
    let flag = |key: &str, absent: bool| match p.get(key).map(String::as_str) {
        None => Ok(absent),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("parameter {key:?} is {other:?}, not true or false")),
    };
    let replace = flag(REPLACE, true)?;
    let rejoin = flag(REJOIN, false)?;
    let replicas = match p.get(REPLICAS) {
        None => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| format!("parameter {REPLICAS:?} is {n:?}, not a count"))?,
        ),
    };
    Ok(Order {
        from: required(FROM)?,
        target: required(TARGET)?,
        reason: p.get(REASON).cloned().unwrap_or_default(),
        replace,
        replicas,
        rejoin,
    })
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FailoverError {
    #[error("{0} is the primary of cluster {1}; name a replica")]
    IsPrimary(String, String),
    #[error("{0} is not a replica of cluster {1} (its replicas: {2})")]
    NotAMember(String, String, String),
    #[error("replica {0} is not ready{1}; only a ready replica can be promoted")]
    NotReady(String, String),
    #[error("cluster {0} has no replicas to fail over to")]
    NoReplicas(String),
}

/// How far a replica has WAL on its own disk: received (flushed) if known,
/// else replayed. A commit acknowledged under synchronous replication is
/// on some replica's disk, so the most advanced one has it.
fn position(m: &MemberStatus) -> u64 {
    let received = m.received_lsn.as_deref().and_then(lsn);
    let replayed = m.wal_lsn.as_deref().and_then(lsn);
    received.max(replayed).unwrap_or(0)
}

/// The replica an automatic failover promotes: only ready ones; the most
/// advanced WAL first; ties by name, so every pass chooses the same.
pub fn choose_target<'a>(primary: &str, members: &'a [MemberStatus]) -> Option<&'a MemberStatus> {
    members
        .iter()
        .filter(|m| m.name != primary && m.role == MemberRole::Replica && m.ready)
        .max_by(|a, b| position(a).cmp(&position(b)).then_with(|| b.name.cmp(&a.name)))
}

/// A manual `--target` must be a ready replica of the cluster.
pub fn check_target(
    cluster: &str,
    primary: &str,
    members: &[MemberStatus],
    target: &str,
) -> Result<(), FailoverError> {
    if target == primary {
        return Err(FailoverError::IsPrimary(target.into(), cluster.into()));
    }
    let replicas: Vec<&MemberStatus> = members.iter().filter(|m| m.name != primary).collect();
    if replicas.is_empty() {
        return Err(FailoverError::NoReplicas(cluster.into()));
    }
    let Some(m) = replicas.iter().find(|m| m.name == target) else {
        let names: Vec<&str> = replicas.iter().map(|m| m.name.as_str()).collect();
        return Err(FailoverError::NotAMember(
            target.into(),
            cluster.into(),
            names.join(", "),
        ));
    };
    if !m.ready {
        let why = m
            .message
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Err(FailoverError::NotReady(target.into(), why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, role: MemberRole, ready: bool, received: &str) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            role,
            ready,
            received_lsn: Some(received.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_most_advanced_ready_replica_wins_ties_by_name() {
        let members = [
            m("db", MemberRole::Primary, false, "0/9000000"),
            m("db-a", MemberRole::Replica, true, "0/3000000"),
            m("db-b", MemberRole::Replica, true, "0/5000000"),
            m("db-c", MemberRole::Replica, false, "0/8000000"),
        ];
        assert_eq!(
            choose_target("db", &members).unwrap().name,
            "db-b",
            "never the not-ready db-c"
        );
        let tied = [
            m("db", MemberRole::Primary, false, "0/1"),
            m("db-b", MemberRole::Replica, true, "0/5000000"),
            m("db-a", MemberRole::Replica, true, "0/5000000"),
        ];
        assert_eq!(choose_target("db", &tied).unwrap().name, "db-a");
    }

    #[test]
    fn no_ready_replica_no_target() {
        let members = [
            m("db", MemberRole::Primary, false, "0/1"),
            m("db-a", MemberRole::Replica, false, "0/1"),
        ];
        assert!(choose_target("db", &members).is_none());
    }

    #[test]
    fn a_manual_target_must_be_a_ready_replica() {
        let members = [
            m("db", MemberRole::Primary, true, "0/1"),
            m("db-a", MemberRole::Replica, true, "0/1"),
            m("db-b", MemberRole::Replica, false, "0/1"),
        ];
        assert_eq!(check_target("db", "db", &members, "db-a"), Ok(()));
        assert!(matches!(
            check_target("db", "db", &members, "db"),
            Err(FailoverError::IsPrimary(..))
        ));
        let err = check_target("db", "db", &members, "db-x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("db-a, db-b"), "{err}");
        assert!(matches!(
            check_target("db", "db", &members, "db-b"),
            Err(FailoverError::NotReady(..))
        ));
        assert!(matches!(
            check_target("db", "db", &members[..1], "db-a"),
            Err(FailoverError::NoReplicas(..))
        ));
    }
}

#[cfg(test)]
mod step_tests {
    #![allow(clippy::unwrap_used)]
    use super::Step;

    #[test]
    fn steps_read_back_as_written_and_an_unknown_one_is_an_error() {
        for step in [Step::Switch, Step::Fence, Step::Promote, Step::Finish] {
            assert_eq!(Step::of_task(Some(step.as_str())), Ok(step));
            assert_eq!(serde_json::to_value(step).unwrap(), step.as_str());
        }
        assert_eq!(Step::of_task(None), Ok(Step::Switch));
        for bad in ["repoint", "", "FINISH"] {
            let err = Step::of_task(Some(bad)).unwrap_err();
            assert!(err.contains("unknown failover step"), "{bad}: {err}");
        }
    }
}
