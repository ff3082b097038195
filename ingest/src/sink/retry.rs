//! Exponential backoff with full jitter, and the outage log: one line when
//! writes start failing, one when they succeed again.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::time::Instant;

use crate::config::RetryConfig;

/// Delays between retries: the n-th delay is drawn uniformly between
/// `initial` and `min(max, initial · 2ⁿ)` (full jitter with a floor), so
/// writers that failed together do not retry together.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: SmallRng,
}

impl Backoff {
    /// A backoff seeded from the operating system.
    pub fn new(cfg: &RetryConfig) -> Self {
        Self::with_rng(cfg, SmallRng::from_rng(&mut rand::rng()))
    }

    /// A backoff with a given generator (for tests).
    pub fn with_rng(cfg: &RetryConfig, rng: SmallRng) -> Self {
        let initial = Duration::from_millis(cfg.initial_ms.max(1));
        Self {
            initial,
            max: Duration::from_millis(cfg.max_ms).max(initial),
            attempt: 0,
            rng,
        }
    }

    /// The longest delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The upper bound of the next delay.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The next delay; each call widens the range until it reaches the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        if ceiling <= self.initial {
            return self.initial;
        }
        let ms = self
            .rng
            .random_range(self.initial.as_millis()..=ceiling.as_millis());
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Starts again from the first delay (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Tracks an outage so that it is logged once when it starts and once when
/// it ends, not on every retry.
#[derive(Debug, Default)]
pub struct Outage {
    current: Option<Current>,
}

#[derive(Debug)]
struct Current {
    since: Instant,
    cause: &'static str,
    retries: u64,
}

/// What [`Outage::recovered`] reports about an outage that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// How long writes failed.
    pub lasted: Duration,
    /// Retries during the outage.
    pub retries: u64,
}

impl Outage {
    /// Records a failed attempt that will be retried. Returns true when it
    /// starts an outage or changes its cause: the caller logs then only.
    pub fn failed(&mut self, cause: &'static str) -> bool {
        if let Some(c) = &mut self.current {
            c.retries += 1;
            let changed = c.cause != cause;
            c.cause = cause;
            changed
        } else {
            self.current = Some(Current {
                since: Instant::now(),
                cause,
                retries: 1,
            });
            true
        }
    }

    /// Records a success; returns the outage it ended, if any.
    pub fn recovered(&mut self) -> Option<Ended> {
        self.current.take().map(|c| Ended {
            lasted: c.since.elapsed(),
            retries: c.retries,
        })
    }

    /// Whether writes are failing now.
    pub fn is_ongoing(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(initial_ms: u64, max_ms: u64) -> RetryConfig {
        RetryConfig { initial_ms, max_ms }
    }

    #[test]
    fn delays_stay_between_initial_and_a_doubling_ceiling() {
        let mut b = Backoff::with_rng(&cfg(100, 5000), SmallRng::seed_from_u64(7));
        let ceilings = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for ceiling in ceilings {
            assert_eq!(b.ceiling(), Duration::from_millis(ceiling));
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(100),
                "{d:?} below the initial delay"
            );
            assert!(
                d <= Duration::from_millis(ceiling),
                "{d:?} above {ceiling} ms"
            );
        }
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(5));
        }
    }

    #[test]
    fn delays_are_jittered() {
        let mut b = Backoff::with_rng(&cfg(100, 100_000), SmallRng::seed_from_u64(1));
        for _ in 0..10 {
            b.next_delay();
        }
        let draws: std::collections::HashSet<_> = (0..50).map(|_| b.next_delay()).collect();
        assert!(draws.len() > 25, "too few distinct delays: {draws:?}");
    }

    #[test]
    fn reset_starts_from_the_initial_delay() {
        let mut b = Backoff::with_rng(&cfg(50, 1000), SmallRng::seed_from_u64(3));
        for _ in 0..20 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(50));
    }

    #[test]
    fn many_attempts_do_not_overflow() {
        let mut b = Backoff::with_rng(&cfg(1, u64::MAX / 2), SmallRng::seed_from_u64(3));
        for _ in 0..200 {
            b.next_delay();
        }
        assert!(b.ceiling() >= Duration::from_millis(1 << 31));
    }

    #[test]
    fn an_outage_is_reported_once_at_each_end() {
        let mut o = Outage::default();
        assert!(o.recovered().is_none());
        assert!(o.failed("connection"));
        assert!(!o.failed("connection"));
        assert!(!o.failed("connection"));
        assert!(o.failed("status_5xx"), "a new cause is worth a line");
        assert!(o.is_ongoing());
        let ended = o.recovered().expect("an outage ended");
        assert_eq!(ended.retries, 4);
        assert!(!o.is_ongoing());
        assert!(o.recovered().is_none());
    }
}
