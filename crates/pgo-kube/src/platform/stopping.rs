//! When a deleted pod of a fenced instance counts as stopped. A kubelet
//! confirms a pod's end by removing it; a kubelet on a lost node never
//! does. Forcing the pod's removal does not stop its processes either: it
//! only lets the API server forget them. What does stop a primary that
//! cannot be reached is its own manager, which fences PostgreSQL once the
//! store names another primary or cannot be asked for
//! [`ISOLATION_BOUND_SECONDS`](crate::render::ISOLATION_BOUND_SECONDS).
//! So past that bound (and a check period and an immediate stop) the pod is
//! counted as stopped, and left in the API server: it is force-deleted only
//! once its node is tainted `node.kubernetes.io/out-of-service`, when an
//! administrator has said the node is really down.

use std::time::Duration;

/// The taint an administrator puts on a node known to be down.
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// How long after its deletion a pod that is still there counts as
/// stopped: the isolation bound, a check period, and an immediate stop.
pub const FENCED_AFTER: Duration = Duration::from_secs(crate::render::ISOLATION_BOUND_SECONDS + 2 + 5);

/// What to do with one pod of an instance being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodStop {
    /// Not deleted yet (its ReplicaSet is going): delete it.
    Delete,
    /// Its kubelet is stopping it: wait.
    Wait,
    /// Its node is out of service: remove it from the API server.
    Force,
    /// Past the bound: stopped, by its kubelet or by its own manager,
    /// though the API server still lists it.
    CountedStopped,
}

/// `deleted_for`: how long ago it was marked for deletion, if it was.
pub fn decide(deleted_for: Option<Duration>, node_out_of_service: bool) -> PodStop {
    match deleted_for {
        None => PodStop::Delete,
        Some(_) if node_out_of_service => PodStop::Force,
        Some(age) if age >= FENCED_AFTER => PodStop::CountedStopped,
        Some(_) => PodStop::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_is_forced_only_on_a_node_out_of_service() {
        let s = Duration::from_secs;
        // (deleted for, out of service, decision)
        let cases = [
            (None, false, PodStop::Delete),
            (None, true, PodStop::Delete),
            (Some(s(1)), false, PodStop::Wait),
            (Some(s(36)), false, PodStop::Wait),
            (Some(s(37)), false, PodStop::CountedStopped),
            (Some(s(3600)), false, PodStop::CountedStopped),
            (Some(s(1)), true, PodStop::Force),
            (Some(s(3600)), true, PodStop::Force),
        ];
        for (age, oos, want) in cases {
            assert_eq!(decide(age, oos), want, "{age:?} {oos}");
        }
    }
}
