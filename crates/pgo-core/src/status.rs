//! The phase of a cluster, from what was observed of its primary.

use pgo_api::cluster::{ClusterPhase, MemberStatus};

/// What the operator last saw of the primary instance.
pub enum PrimaryObservation<'a> {
    /// The platform has no such instance running.
    Missing,
    /// The instance answered; `member.ready` says whether PostgreSQL does.
    Seen(&'a MemberStatus),
    /// The instance cannot start without a change from the user.
    Fatal(&'a str),
}

/// The phase follows the primary. A cluster that was never ready is
/// `Creating`; one that was and is not is `NotReady`, which is what the
/// failover loop watches for.
pub fn phase(previous: ClusterPhase, primary: PrimaryObservation<'_>) -> (ClusterPhase, Option<String>) {
    let not_ready = |message: Option<String>| {
        let phase = match previous {
            ClusterPhase::Ready | ClusterPhase::NotReady => ClusterPhase::NotReady,
            _ => ClusterPhase::Creating,
        };
        (phase, message)
    };
    match primary {
        PrimaryObservation::Fatal(reason) => (ClusterPhase::Failed, Some(reason.to_string())),
        PrimaryObservation::Missing => not_ready(Some("the primary instance is not running".into())),
        PrimaryObservation::Seen(m) if m.ready => (ClusterPhase::Ready, None),
        PrimaryObservation::Seen(m) => not_ready(m.message.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(ready: bool) -> MemberStatus {
        MemberStatus {
            ready,
            message: (!ready).then(|| "starting".to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn creating_until_the_primary_is_ready_then_ready() {
        let m = member(false);
        assert_eq!(
            phase(ClusterPhase::Creating, PrimaryObservation::Seen(&m)).0,
            ClusterPhase::Creating
        );
        let m = member(true);
        assert_eq!(
            phase(ClusterPhase::Creating, PrimaryObservation::Seen(&m)),
            (ClusterPhase::Ready, None)
        );
    }

    #[test]
    fn a_ready_cluster_whose_primary_goes_is_not_ready() {
        let m = member(false);
        let (p, msg) = phase(ClusterPhase::Ready, PrimaryObservation::Seen(&m));
        assert_eq!(p, ClusterPhase::NotReady);
        assert_eq!(msg.as_deref(), Some("starting"));
        assert_eq!(
            phase(ClusterPhase::NotReady, PrimaryObservation::Missing).0,
            ClusterPhase::NotReady
        );
    }

    #[test]
    fn fatal_is_failed_with_the_reason() {
        let (p, msg) = phase(
            ClusterPhase::Creating,
            PrimaryObservation::Fatal("initdb: disk full"),
        );
        assert_eq!(p, ClusterPhase::Failed);
        assert_eq!(msg.as_deref(), Some("initdb: disk full"));
    }
}
