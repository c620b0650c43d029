//! Failed logins, counted per source address: after a few, that address
//! waits before its next password is even hashed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before an address has to wait.
const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with each further failure, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A quiet address is forgotten after this long.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct Throttle {
    by_address: Mutex<HashMap<IpAddr, Failures>>,
}

struct Failures {
    count: u32,
    last: Instant,
}

fn wait_for(count: u32) -> Duration {
    let over = count.saturating_sub(FREE_FAILURES);
    if over == 0 {
        return Duration::ZERO;
    }
    FIRST_WAIT
        .saturating_mul(1u32 << (over - 1).min(16))
        .min(MAX_WAIT)
}

impl Throttle {
    /// How long `addr` must still wait, if it must.
    pub fn blocked(&self, addr: IpAddr) -> Option<Duration> {
        let map = self.by_address.lock().ok()?;
        let f = map.get(&addr)?;
        let wait = wait_for(f.count);
        let since = f.last.elapsed();
        (since < wait).then(|| wait - since)
    }

    /// Records a failure; the failures from `addr` so far.
    pub fn failed(&self, addr: IpAddr) -> u32 {
        let Ok(mut map) = self.by_address.lock() else {
            return 0;
        };
        map.retain(|_, f| f.last.elapsed() < FORGET_AFTER);
        let f = map.entry(addr).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        f.count += 1;
        f.last = Instant::now();
        f.count
    }

    pub fn succeeded(&self, addr: IpAddr) {
        if let Ok(mut map) = self.by_address.lock() {
            map.remove(&addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_a_few_failures_and_longer_after_more() {
        let t = Throttle::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..FREE_FAILURES {
            assert!(t.blocked(a).is_none());
            t.failed(a);
        }
        assert!(t.blocked(a).is_none(), "the fifth failure is still free");
        t.failed(a);
        assert!(t.blocked(a).is_some_and(|w| w <= FIRST_WAIT));
        assert!(t.blocked(b).is_none(), "per address");
        assert_eq!(wait_for(FREE_FAILURES + 3), FIRST_WAIT * 4);
        assert_eq!(wait_for(FREE_FAILURES + 40), MAX_WAIT);
        t.succeeded(a);
        assert!(t.blocked(a).is_none());
    }
}
