//! The work queue: which object is reconciled when. Pure bookkeeping, no
//! I/O and no clock of its own (every call is told `now`), so its rules are
//! tested with tables:
//!
//! - at most one reconcile per key is in flight, and at most `workers` in all;
//! - a trigger while a key is in flight runs it again as soon as it is done;
//! - each key has one due time, the earliest asked for;
//! - failures back off exponentially per key, with a cap and jitter, and a
//!   success forgets them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::time::Duration;
use tokio::time::Instant;

/// How a reconcile ended, and so when its key is due again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done for now; look again after this long (the probe period, say).
    Requeue(Duration),
    /// Waiting on something under way (a pod terminating, a write that
    /// raced another): not a failure, so no backoff.
    Wait(Duration),
    /// Failed: due again after the key's backoff.
    Failed,
    /// The object is gone: forget the key.
    Gone,
}

/// The first retry after a failure, doubled for each failure in a row.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest wait between retries of a failing key. Short, for an HA
/// operator: a cluster whose reconcile fails (an API server that errs, say)
/// may be one whose primary is failing, and its failover timer
/// (`Pgo.AutofailSleepSeconds`) must not wait on a long backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(10);

/// The wait after the `failures`-th failure in a row, before jitter.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1u32 << doublings).min(BACKOFF_CAP)
}

/// A wait of `d` moved by up to ±20%, by `jitter` in [0, 1): keys that
/// failed together do not all retry in the same instant.
pub fn jittered(d: Duration, jitter: f64) -> Duration {
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    d.mul_f64(factor)
}

/// A number in [0, 1) that differs between processes, keys and attempts:
/// std's per-process random hash keys are randomness enough for jitter.
fn jitter_of<K: Hash>(key: &K, failures: u32) -> f64 {
    let h = std::collections::hash_map::RandomState::new().hash_one((key, failures));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

pub struct Queue<K> {
    due: HashMap<K, Instant>,
    /// `due` in order of time: the queue is asked for what is due at every
    /// wake, and a scan of every key each time costs O(keys) per wake.
    order: BTreeSet<(Instant, K)>,
    running: HashSet<K>,
    failures: HashMap<K, u32>,
    workers: usize,
    /// Where the grid of [`coalesced`](Self::coalesced) starts.
    origin: Instant,
}

/// The coarsest grid requeues are coalesced on.
pub const COALESCE: Duration = Duration::from_millis(100);

impl<K: Clone + Eq + Hash + Ord> Queue<K> {
    pub fn new(workers: usize) -> Self {
        Queue {
            due: HashMap::new(),
            order: BTreeSet::new(),
            running: HashSet::new(),
            failures: HashMap::new(),
            workers: workers.max(1),
            origin: Instant::now(),
        }
    }

    /// Due at `at`, or earlier if it already is.
    pub fn schedule(&mut self, key: K, at: Instant) {
        match self.due.get_mut(&key) {
            Some(t) if *t <= at => {}
            Some(t) => {
                self.order.remove(&(*t, key.clone()));
                *t = at;
                self.order.insert((at, key));
            }
            None => {
                self.due.insert(key.clone(), at);
                self.order.insert((at, key));
            }
        }
    }

    /// `at`, moved later onto a grid of a twentieth of `after` (at most
    /// [`COALESCE`]), so that keys requeued at nearby moments fall due
    /// together: one wake of the operator for several of them, not one each.
    fn coalesced(&self, at: Instant, after: Duration) -> Instant {
        let grid = (after / 20).min(COALESCE).as_nanos();
        if grid == 0 {
            return at;
        }
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let rounded = since.div_ceil(grid) * grid;
        let late = u64::try_from(rounded - since).unwrap_or(0);
        at + Duration::from_nanos(late)
    }

    fn unschedule(&mut self, key: &K) {
        if let Some(t) = self.due.remove(key) {
            self.order.remove(&(t, key.clone()));
        }
    }

    /// Something changed: due now.
    pub fn trigger(&mut self, key: K, now: Instant) {
        self.schedule(key, now);
    }

    /// The object is gone: nothing more is due for it (one in flight ends
    /// on its own).
    pub fn forget(&mut self, key: &K) {
        self.unschedule(key);
        self.failures.remove(key);
    }

    /// Keys due by `now` and not in flight, as many as free workers allow,
    /// earliest first; they are in flight from now on.
    pub fn take_ready(&mut self, now: Instant) -> Vec<K> {
        let free = self.workers.saturating_sub(self.running.len());
        let ready: Vec<K> = self
            .order
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter(|(_, k)| !self.running.contains(k))
            .take(free)
            .map(|(_, k)| k.clone())
            .collect();
        for k in &ready {
            self.unschedule(k);
            self.running.insert(k.clone());
        }
        ready
    }

    /// When the next key not in flight is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.order
            .iter()
            .find(|(_, k)| !self.running.contains(k))
            .map(|(t, _)| *t)
    }

    /// A reconcile of `key` ended with `outcome` at `now`.
    pub fn done(&mut self, key: K, outcome: Outcome, now: Instant) {
        self.running.remove(&key);
        match outcome {
            Outcome::Requeue(after) => {
                self.failures.remove(&key);
                let at = self.coalesced(now + after, after);
                self.schedule(key, at);
            }
            Outcome::Wait(after) => self.schedule(key, now + after),
            Outcome::Failed => {
                let n = self.failures.entry(key.clone()).or_insert(0);
                *n = n.saturating_add(1);
                let wait = jittered(backoff(*n), jitter_of(&key, *n));
                self.schedule(key, now + wait);
            }
            Outcome::Gone => {
                // Made again while it was being reconciled: that trigger stands.
                self.failures.remove(&key);
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    /// Keys due or in flight: the queue's depth.
    pub fn depth(&self) -> usize {
        self.due.len() + self.running.iter().filter(|k| !self.due.contains_key(*k)).count()
    }

    /// Failures in a row of `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_from_the_base_to_the_cap() {
        let table = [
            (1, ms(500)),
            (2, ms(1000)),
            (3, ms(2000)),
            (5, ms(8_000)),
            (6, BACKOFF_CAP),
            (40, BACKOFF_CAP),
        ];
        for (failures, want) in table {
            assert_eq!(backoff(failures), want, "after {failures} failures");
        }
        assert_eq!(jittered(ms(1000), 0.0), ms(800));
        assert_eq!(jittered(ms(1000), 0.5), ms(1000));
        assert!(jittered(ms(1000), 0.999) < ms(1200));
        let j = jitter_of(&"a", 1);
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn requeues_at_nearby_moments_fall_due_together_and_never_early() {
        let mut q: Queue<u32> = Queue::new(100);
        let t0 = q.origin;
        // (ended at, after): due no earlier than asked, no later than a
        // twentieth of it (at most COALESCE) beyond.
        let cases = [(1, 2000), (7, 2000), (33, 2000), (99, 2000), (5, 50), (1, 60_000)];
        let mut due = Vec::new();
        for (key, (ended, after)) in cases.into_iter().enumerate() {
            let key = key as u32;
            q.running.insert(key);
            q.done(key, Outcome::Requeue(ms(after)), t0 + ms(ended));
            let at = q.due[&key];
            let asked = t0 + ms(ended) + ms(after);
            assert!(at >= asked, "case {key}: early");
            assert!(
                at - asked <= (ms(after) / 20).min(COALESCE),
                "case {key}: too late"
            );
            due.push(at);
        }
        assert!(
            due[..4].iter().all(|t| *t == due[0]),
            "the four 2 s requeues share one wake"
        );
    }

    #[test]
    fn one_reconcile_per_key_and_at_most_workers_in_all() {
        let t0 = Instant::now();
        let mut q = Queue::new(2);
        for k in ["a", "b", "c"] {
            q.trigger(k, t0);
        }
        let first = q.take_ready(t0);
        assert_eq!(first.len(), 2, "two workers");
        // Triggered again while in flight: not handed out twice.
        q.trigger(first[0], t0);
        assert!(q.take_ready(t0).is_empty(), "no worker free");
        q.done(first[1], Outcome::Requeue(ms(1000)), t0);
        let next = q.take_ready(t0);
        assert_eq!(next.len(), 1);
        assert_ne!(
            next[0], first[0],
            "the key in flight waits for its reconcile to end"
        );
        // Its reconcile ends: the trigger that came meanwhile runs it again now.
        q.done(first[0], Outcome::Requeue(ms(1000)), t0);
        assert_eq!(q.take_ready(t0), vec![first[0]]);
    }

    #[test]
    fn the_earliest_due_time_wins_and_gone_keys_are_forgotten() {
        let t0 = Instant::now();
        let mut q = Queue::new(4);
        q.schedule("a", t0 + ms(100));
        q.schedule("a", t0 + ms(50));
        q.schedule("a", t0 + ms(900));
        assert_eq!(q.next_due(), Some(t0 + ms(50)));
        assert!(q.take_ready(t0 + ms(49)).is_empty());
        assert_eq!(q.take_ready(t0 + ms(50)), vec!["a"]);
        q.done("a", Outcome::Gone, t0 + ms(60));
        assert_eq!(q.next_due(), None);
        assert_eq!(q.depth(), 0);
        // A trigger during the reconcile that found it gone: made again, due.
        q.trigger("b", t0);
        assert_eq!(q.take_ready(t0), vec!["b"]);
        q.trigger("b", t0 + ms(1));
        q.done("b", Outcome::Gone, t0 + ms(2));
        assert_eq!(q.take_ready(t0 + ms(2)), vec!["b"]);
    }

    #[test]
    fn failures_back_off_per_key_and_a_success_forgets_them() {
        let t0 = Instant::now();
        let mut q = Queue::new(4);
        q.trigger("bad", t0);
        q.trigger("good", t0);
        let mut now = t0;
        for n in 1..=4u32 {
            let keys = q.take_ready(now);
            assert!(keys.contains(&"bad"), "attempt {n}");
            q.done("bad", Outcome::Failed, now);
            if keys.contains(&"good") {
                q.done("good", Outcome::Requeue(ms(100)), now);
            }
            let due = q.due[&"bad"];
            let wait = due - now;
            let want = backoff(n);
            assert!(
                wait >= want.mul_f64(0.8) && wait <= want.mul_f64(1.2),
                "failure {n}: waited {wait:?}, backoff {want:?}"
            );
            assert_eq!(q.failures(&"bad"), n);
            // The good key keeps its own pace meanwhile.
            assert_eq!(q.failures(&"good"), 0);
            now = due;
        }
        // Waiting on something under way is not a failure.
        assert!(q.take_ready(now).contains(&"bad"));
        q.done("bad", Outcome::Wait(ms(200)), now);
        assert_eq!(q.failures(&"bad"), 4);
        assert_eq!(q.due[&"bad"], now + ms(200));
        assert!(q.take_ready(now + ms(200)).contains(&"bad"));
        q.done("bad", Outcome::Requeue(ms(100)), now + ms(200));
        assert_eq!(q.failures(&"bad"), 0);
    }
}
