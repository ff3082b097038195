//! The simulated clock of a replay: it starts at `from` when the replay
//! starts and runs `speed` times faster than the wall clock. Pure: the
//! elapsed wall-clock time is an argument.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Maps simulated instants to wall-clock offsets from the start, and back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    from: DateTime<Utc>,
    speed: f64,
}

impl Pace {
    /// A clock that shows `from` at the start and advances `speed` simulated
    /// seconds per wall-clock second (`speed` > 0).
    pub fn new(from: DateTime<Utc>, speed: f64) -> Self {
        Self { from, speed }
    }

    /// How long after the start the simulated clock shows `at`; zero for an
    /// instant before `from`.
    pub fn due(&self, at: DateTime<Utc>) -> Duration {
        let ahead = (at - self.from).to_std().unwrap_or(Duration::ZERO);
        Duration::try_from_secs_f64(ahead.as_secs_f64() / self.speed).unwrap_or(Duration::MAX)
    }

    /// What the simulated clock shows `elapsed` after the start.
    pub fn simulated(&self, elapsed: Duration) -> DateTime<Utc> {
        let seconds = elapsed.as_secs_f64() * self.speed;
        let delta =
            TimeDelta::try_milliseconds((seconds * 1000.0) as i64).unwrap_or(TimeDelta::MAX);
        self.from
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    #[test]
    fn real_time_is_one_to_one() {
        let pace = Pace::new(at("2026-03-04T06:00:00Z"), 1.0);
        assert_eq!(
            pace.due(at("2026-03-04T06:00:30Z")),
            Duration::from_secs(30)
        );
        assert_eq!(
            pace.simulated(Duration::from_secs(90)),
            at("2026-03-04T06:01:30Z")
        );
    }

    #[test]
    fn a_day_per_minute() {
        let pace = Pace::new(at("2026-03-04T00:00:00Z"), 1440.0);
        assert_eq!(
            pace.due(at("2026-03-05T00:00:00Z")),
            Duration::from_secs(60)
        );
        assert_eq!(
            pace.due(at("2026-03-04T06:00:00Z")),
            Duration::from_secs(15)
        );
        assert_eq!(
            pace.simulated(Duration::from_secs(30)),
            at("2026-03-04T12:00:00Z")
        );
    }

    #[test]
    fn the_past_is_due_at_once() {
        let pace = Pace::new(at("2026-03-04T06:00:00Z"), 60.0);
        assert_eq!(pace.due(at("2026-03-04T05:00:00Z")), Duration::ZERO);
    }
}
