//! Whether each running controller's loop still turns: its driver beats
//! at every wake and at least every [`BEAT`], and says when it ends. A
//! liveness probe asks [`Heartbeats::stale`]: a loop that stopped turning
//! (a deadlock, a starved runtime) restarts the operator's pod, where a
//! controller that merely has nothing to do never does.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The longest a running driver goes without beating.
pub const BEAT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Heartbeats(Mutex<BTreeMap<&'static str, Instant>>);

impl Heartbeats {
    pub fn beat(&self, controller: &'static str, now: Instant) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(controller, now);
        }
    }

    /// The controller stopped (leadership lost, shutdown): not stale.
    pub fn ended(&self, controller: &'static str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(controller);
        }
    }

    /// The controller whose loop has not turned for longer than `after`,
    /// with how long, if one has not.
    pub fn stale(&self, after: Duration, now: Instant) -> Option<(&'static str, Duration)> {
        let m = self.0.lock().ok()?;
        m.iter()
            .map(|(c, at)| (*c, now.saturating_duration_since(*at)))
            .filter(|(_, age)| *age > after)
            .max_by_key(|(_, age)| *age)
    }
}

/// Ends a controller's heartbeat however its driver returns.
pub struct Beating<'a> {
    pub beats: &'a Heartbeats,
    pub controller: &'static str,
}

impl Drop for Beating<'_> {
    fn drop(&mut self) {
        self.beats.ended(self.controller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_loop_that_stopped_turning_is_stale() {
        let h = Heartbeats::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(60);
        assert_eq!(h.stale(after, t0), None, "nothing running");
        h.beat("cluster", t0);
        h.beat("task", t0 + Duration::from_secs(50));
        assert_eq!(h.stale(after, t0 + Duration::from_secs(59)), None);
        assert_eq!(
            h.stale(after, t0 + Duration::from_secs(70)),
            Some(("cluster", Duration::from_secs(70)))
        );
        h.ended("cluster");
        assert_eq!(
            h.stale(after, t0 + Duration::from_secs(70)),
            None,
            "ended, not stale"
        );
        {
            let _guard = Beating {
                beats: &h,
                controller: "task",
            };
        }
        assert_eq!(
            h.stale(after, t0 + Duration::from_secs(500)),
            None,
            "the guard ended it"
        );
    }
}
