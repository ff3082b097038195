//! Reconnection delays: exponential between a floor and a ceiling, with
//! jitter so that many instances do not reconnect in step.

use std::time::Duration;

/// Exponential backoff with "equal jitter": the delay of attempt `n` lies in
/// `[d/2, d]` where `d = min(max, min * 2^(n-1))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    min_ms: u64,
    max_ms: u64,
}

impl Backoff {
    /// From `mqtt.reconnect_min_ms` and `mqtt.reconnect_max_ms`.
    pub(crate) fn new(min_ms: u64, max_ms: u64) -> Self {
        let min_ms = min_ms.max(1);
        Self {
            min_ms,
            max_ms: max_ms.max(min_ms),
        }
    }

    /// The ceiling of the delay before attempt `attempt` (1-based).
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(32);
        let ms = self.min_ms.saturating_mul(1 << shift).min(self.max_ms);
        Duration::from_millis(ms)
    }

    /// The delay before attempt `attempt`, `unit` in `[0, 1)` choosing where
    /// it falls between half the ceiling and the ceiling.
    pub(crate) fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(unit.clamp(0.0, 1.0))
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
    fn grows_from_the_floor_to_the_ceiling() {
        let b = Backoff::new(250, 30_000);
        let ceilings: Vec<u64> = (1..=10).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        let b = Backoff::new(1000, 1000);
        assert_eq!(b.delay_with(1, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay_with(1, 1.0), Duration::from_secs(1));
        for _ in 0..100 {
            let d = b.delay(3);
            assert!(
                (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&d),
                "{d:?}"
            );
        }
    }
}
