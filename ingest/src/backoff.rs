//! Delays between attempts, for MQTT reconnections and database writes
//! alike: exponential between a floor and a ceiling, with jitter so that
//! clients that failed together do not try again together.

use std::time::Duration;

/// Full jitter with a floor: the delay before attempt `n` (1-based) is drawn
/// uniformly from `[initial, min(max, initial · 2ⁿ⁻¹)]`. The caller counts
/// the attempts since the last success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    /// From a first and a longest delay in milliseconds (`mqtt.reconnect_*_ms`,
    /// `sink.retry.*_ms`); the first is at least 1 ms, the longest at least
    /// the first.
    pub(crate) fn new(initial_ms: u64, max_ms: u64) -> Self {
        let initial = Duration::from_millis(initial_ms.max(1));
        Self {
            initial,
            max: Duration::from_millis(max_ms).max(initial),
        }
    }

    /// The longest delay.
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// The upper bound of the delay before attempt `attempt`.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << shift).min(self.max)
    }

    /// The delay before attempt `attempt`, `unit` in `[0, 1]` choosing where
    /// it falls between the first delay and the ceiling.
    pub(crate) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let above = self.ceiling(attempt).saturating_sub(self.initial);
        self.initial + above.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The delay before attempt `attempt`, with random jitter.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_from_the_floor_to_the_longest_delay() {
        let b = Backoff::new(250, 30_000);
        let ceilings: Vec<u64> = (1..=10).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(b.max(), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_between_the_floor_and_the_ceiling() {
        let b = Backoff::new(100, 5000);
        assert_eq!(b.delay_with(4, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay_with(4, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay_with(4, 0.5), Duration::from_millis(450));
        assert_eq!(b.delay_with(1, 0.7), Duration::from_millis(100));
        for attempt in 1..=12 {
            for _ in 0..20 {
                let d = b.delay(attempt);
                assert!(
                    (Duration::from_millis(100)..=b.ceiling(attempt)).contains(&d),
                    "attempt {attempt}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn delays_are_jittered() {
        let b = Backoff::new(100, 100_000);
        let draws: std::collections::HashSet<_> = (0..50).map(|_| b.delay(11)).collect();
        assert!(draws.len() > 25, "too few distinct delays: {draws:?}");
    }

    #[test]
    fn odd_settings_are_mended_and_large_attempts_do_not_overflow() {
        let b = Backoff::new(0, 0);
        assert_eq!(b.ceiling(1), Duration::from_millis(1));
        assert_eq!(b.max(), Duration::from_millis(1));
        let b = Backoff::new(1, u64::MAX / 2);
        assert!(b.ceiling(200) >= Duration::from_millis(1 << 31));
        assert!(b.delay(u32::MAX) >= Duration::from_millis(1));
    }
}
