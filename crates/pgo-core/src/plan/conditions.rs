//! A cluster's conditions, from its status: `Ready`, `Progressing` and
//! `Degraded`, as `kubectl wait --for=condition=Ready` and dashboards read
//! them. The phase stays what pgo's own tools show; the conditions say the
//! same in Kubernetes' terms, each with when it last changed.

use pgo_api::PgclusterSpec;
use pgo_api::cluster::{
    ClusterPhase, Condition, ConditionStatus, ConditionType, MemberRole, PgclusterStatus,
};

/// What the cluster is going through, besides what its status shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Steady,
    Failover,
    ScalingDown,
    Deleting,
    Restoring,
}

struct Verdict {
    status: ConditionStatus,
    reason: &'static str,
    message: String,
}

fn verdict(status: ConditionStatus, reason: &'static str, message: impl Into<String>) -> Verdict {
    Verdict {
        status,
        reason,
        message: message.into(),
    }
}

/// Sets `status.conditions` from the rest of `status`. A condition whose
/// status is unchanged keeps its transition time.
pub fn set(
    status: &mut PgclusterStatus,
    spec: &PgclusterSpec,
    activity: Activity,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    use ConditionStatus::{False, True, Unknown};
    let message = status.message.clone().unwrap_or_default();
    let ready = match status.phase {
        ClusterPhase::Ready => verdict(True, "PrimaryReady", "the primary accepts connections"),
        ClusterPhase::Creating => verdict(False, "Creating", message.clone()),
        ClusterPhase::NotReady => verdict(False, "PrimaryNotReady", message.clone()),
        ClusterPhase::Failed => verdict(False, "Failed", message.clone()),
        ClusterPhase::Deleting => verdict(False, "Deleting", message.clone()),
    };
    let members = status.members.len();
    let wanted = spec.replicas as usize + 1;
    let progressing = match (activity, status.phase) {
        (Activity::Deleting, _) | (_, ClusterPhase::Deleting) => verdict(True, "Deleting", message.clone()),
        (Activity::Failover, _) => verdict(True, "Failover", "a failover is under way"),
        (Activity::ScalingDown, _) => verdict(True, "ScalingDown", "a replica is being removed"),
        (Activity::Restoring, _) => verdict(True, "Restoring", "a restore is under way"),
        (_, ClusterPhase::Creating) => verdict(True, "Creating", "the primary is starting"),
        (_, ClusterPhase::Failed) => verdict(False, "Failed", message.clone()),
        _ if members < wanted => verdict(
            True,
            "ReplicasStarting",
            format!("{} of {} replicas made", members.saturating_sub(1), spec.replicas),
        ),
        _ => verdict(False, "AsDesired", ""),
    };
    let not_ready: Vec<&str> = status
        .members
        .iter()
        .filter(|m| m.role == MemberRole::Replica && !m.ready)
        .map(|m| m.name.as_str())
        .collect();
    let degraded = match status.phase {
        ClusterPhase::Creating => verdict(Unknown, "Creating", ""),
        ClusterPhase::Deleting => verdict(Unknown, "Deleting", ""),
        ClusterPhase::Failed => verdict(True, "Failed", message.clone()),
        ClusterPhase::NotReady => verdict(True, "PrimaryNotReady", message.clone()),
        ClusterPhase::Ready if !not_ready.is_empty() => verdict(
            True,
            "ReplicaNotReady",
            format!("not ready: {}", not_ready.join(", ")),
        ),
        ClusterPhase::Ready if spec.sync_replication && members < 2 => {
            verdict(True, "NoSyncReplica", message.clone())
        }
        ClusterPhase::Ready if status.message.is_some() => verdict(True, "Warning", message.clone()),
        ClusterPhase::Ready => verdict(False, "AsDesired", ""),
    };
    let previous = std::mem::take(&mut status.conditions);
    status.conditions = [
        (ConditionType::Ready, ready),
        (ConditionType::Progressing, progressing),
        (ConditionType::Degraded, degraded),
    ]
    .into_iter()
    .map(|(type_, v)| {
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == v.status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.to_string());
        Condition {
            type_,
            status: v.status,
            reason: v.reason.to_string(),
            message: v.message,
            last_transition_time: since,
            observed_generation: generation,
        }
    })
    .collect();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::fixtures::*;
    use super::*;
    use pgo_api::cluster::MemberStatus;

    fn of(status: &PgclusterStatus, t: ConditionType) -> (ConditionStatus, String) {
        let c = status.conditions.iter().find(|c| c.type_ == t).unwrap();
        (c.status, c.reason.clone())
    }

    fn replica(name: &str, ready: bool) -> MemberStatus {
        MemberStatus {
            role: MemberRole::Replica,
            ..member(name, ready)
        }
    }

    #[test]
    fn conditions_follow_phase_members_and_activity() {
        use ConditionStatus::{False, True, Unknown};
        let mut spec = cluster("db").spec;
        spec.replicas = 1;
        let all = vec![member("db", true), replica("db-a", true)];
        let one_down = vec![member("db", true), replica("db-a", false)];
        // (case, phase, members, activity, Ready, Progressing, Degraded)
        type Case<'a> = (
            &'a str,
            ClusterPhase,
            Vec<MemberStatus>,
            Activity,
            (ConditionStatus, &'a str),
            (ConditionStatus, &'a str),
            (ConditionStatus, &'a str),
        );
        let cases: Vec<Case> = vec![
            (
                "creating",
                ClusterPhase::Creating,
                vec![],
                Activity::Steady,
                (False, "Creating"),
                (True, "Creating"),
                (Unknown, "Creating"),
            ),
            (
                "ready, a replica still to come",
                ClusterPhase::Ready,
                vec![member("db", true)],
                Activity::Steady,
                (True, "PrimaryReady"),
                (True, "ReplicasStarting"),
                (False, "AsDesired"),
            ),
            (
                "all as asked",
                ClusterPhase::Ready,
                all.clone(),
                Activity::Steady,
                (True, "PrimaryReady"),
                (False, "AsDesired"),
                (False, "AsDesired"),
            ),
            (
                "a replica down",
                ClusterPhase::Ready,
                one_down,
                Activity::Steady,
                (True, "PrimaryReady"),
                (False, "AsDesired"),
                (True, "ReplicaNotReady"),
            ),
            (
                "the primary down",
                ClusterPhase::NotReady,
                all.clone(),
                Activity::Steady,
                (False, "PrimaryNotReady"),
                (False, "AsDesired"),
                (True, "PrimaryNotReady"),
            ),
            (
                "failing over",
                ClusterPhase::NotReady,
                all.clone(),
                Activity::Failover,
                (False, "PrimaryNotReady"),
                (True, "Failover"),
                (True, "PrimaryNotReady"),
            ),
            (
                "scaling down",
                ClusterPhase::Ready,
                all.clone(),
                Activity::ScalingDown,
                (True, "PrimaryReady"),
                (True, "ScalingDown"),
                (False, "AsDesired"),
            ),
            (
                "failed",
                ClusterPhase::Failed,
                vec![],
                Activity::Steady,
                (False, "Failed"),
                (False, "Failed"),
                (True, "Failed"),
            ),
            (
                "deleting",
                ClusterPhase::Deleting,
                all,
                Activity::Deleting,
                (False, "Deleting"),
                (True, "Deleting"),
                (Unknown, "Deleting"),
            ),
        ];
        for (case, phase, members, activity, ready, progressing, degraded) in cases {
            let mut s = PgclusterStatus {
                phase,
                members,
                ..Default::default()
            };
            set(&mut s, &spec, activity, Some(3), at(0));
            let want = |(st, r): (ConditionStatus, &str)| (st, r.to_string());
            assert_eq!(of(&s, ConditionType::Ready), want(ready), "{case}");
            assert_eq!(of(&s, ConditionType::Progressing), want(progressing), "{case}");
            assert_eq!(of(&s, ConditionType::Degraded), want(degraded), "{case}");
            assert!(
                s.conditions.iter().all(|c| c.observed_generation == Some(3)),
                "{case}"
            );
        }
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let spec = cluster("db").spec;
        let mut s = PgclusterStatus {
            phase: ClusterPhase::Ready,
            members: vec![member("db", true)],
            ..Default::default()
        };
        set(&mut s, &spec, Activity::Steady, None, at(0));
        set(&mut s, &spec, Activity::Steady, None, at(5000));
        let ready = |s: &PgclusterStatus| s.conditions[0].last_transition_time.clone();
        assert_eq!(ready(&s), at(0).to_string());
        s.phase = ClusterPhase::NotReady;
        set(&mut s, &spec, Activity::Steady, None, at(9000));
        assert_eq!(ready(&s), at(9000).to_string());
    }
}
