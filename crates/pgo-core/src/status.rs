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

/// An LSN (`16/B374D848`) as a byte position.
pub fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// How many bytes of WAL `replica` has yet to replay of what `primary` wrote.
pub fn lag(primary: Option<&str>, replica: Option<&str>) -> Option<u64> {
    Some(lsn(primary?)?.saturating_sub(lsn(replica?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_and_lag() {
        assert_eq!(lsn("0/3000060"), Some(0x3000060));
        assert_eq!(lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(lsn("nonsense"), None);
        assert_eq!(lag(Some("0/3000100"), Some("0/3000060")), Some(0xa0));
        assert_eq!(
            lag(Some("0/3000060"), Some("0/3000100")),
            Some(0),
            "a replica ahead of a stale reading is not behind"
        );
        assert_eq!(lag(None, Some("0/1")), None);
    }

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
