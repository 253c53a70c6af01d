//! Per-user rate limits (GCRA token bucket from `governor`). In-process: with
//! several walletd processes each enforces the limit on its own.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct PerUserLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl PerUserLimit {
    /// `n` requests per minute, all of which may come at once.
    pub fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one token for `user`, or says after how many seconds to retry.
    pub fn check(&self, user: &str) -> Result<(), u64> {
        // Forget users whose buckets are full again, now and then, so the map
        // does not grow with every user ever seen.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&user.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
            .map_err(|secs| secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleventh_in_a_minute_is_refused() {
        let l = PerUserLimit::per_minute(10);
        for _ in 0..10 {
            assert!(l.check("alice").is_ok());
        }
        let retry = l.check("alice").unwrap_err();
        assert!((1..=6).contains(&retry), "retry after {retry}s");
        assert!(l.check("bob").is_ok(), "limits are per user");
    }
}
