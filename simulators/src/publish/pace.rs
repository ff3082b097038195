//! The simulated clock of a replay: it starts at `from` when the replay
//! starts and runs `speed` times faster than the wall clock. A clock
//! [catching up](Pace::catching_up) from the past runs fast only until it
//! reaches the wall clock, then keeps to it (speed 1), so that readings
//! never come from the future. Pure: the elapsed wall-clock time is an
//! argument.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Maps simulated instants to wall-clock offsets from the start, and back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    from: DateTime<Utc>,
    speed: f64,
    /// The wall clock at the start, for a clock that must not run ahead of it.
    wall_start: Option<DateTime<Utc>>,
}

impl Pace {
    /// A clock that shows `from` at the start and advances `speed` simulated
    /// seconds per wall-clock second (`speed` > 0).
    pub fn new(from: DateTime<Utc>, speed: f64) -> Self {
        Self {
            from,
            speed,
            wall_start: None,
        }
    }

    /// A clock that shows `from` at the start, when the wall clock shows
    /// `wall_start`, and advances `speed` simulated seconds per wall-clock
    /// second until it has caught up with the wall clock; from then on it
    /// shows the wall clock. It never shows a time ahead of the wall clock.
    pub fn catching_up(from: DateTime<Utc>, speed: f64, wall_start: DateTime<Utc>) -> Self {
        Self {
            from,
            speed,
            wall_start: Some(wall_start),
        }
    }

    /// How long after the start the simulated clock shows `at`; zero for an
    /// instant before `from`.
    pub fn due(&self, at: DateTime<Utc>) -> Duration {
        let ahead = (at - self.from).to_std().unwrap_or(Duration::ZERO);
        let fast =
            Duration::try_from_secs_f64(ahead.as_secs_f64() / self.speed).unwrap_or(Duration::MAX);
        match self.wall_start {
            // When both the fast clock and the wall clock have reached `at`.
            Some(wall) => fast.max((at - wall).to_std().unwrap_or(Duration::ZERO)),
            None => fast,
        }
    }

    /// What the simulated clock shows `elapsed` after the start.
    pub fn simulated(&self, elapsed: Duration) -> DateTime<Utc> {
        let seconds = elapsed.as_secs_f64() * self.speed;
        let fast = after(self.from, seconds);
        match self.wall_start {
            Some(wall) => fast.min(after(wall, elapsed.as_secs_f64())),
            None => fast,
        }
    }

    /// How long after the start a clock [catching up](Self::catching_up)
    /// reaches the wall clock and slows to its pace: zero if it starts there
    /// or ahead, `None` if it never does (a clock that does not catch up, or
    /// one no faster than the wall clock).
    pub fn catches_up_after(&self) -> Option<Duration> {
        let wall = self.wall_start?;
        let Ok(behind) = (wall - self.from).to_std() else {
            return Some(Duration::ZERO);
        };
        if behind.is_zero() {
            return Some(Duration::ZERO);
        }
        (self.speed > 1.0)
            .then(|| Duration::try_from_secs_f64(behind.as_secs_f64() / (self.speed - 1.0)).ok())
            .flatten()
    }

    /// Simulated seconds per wall-clock second, `elapsed` after the start.
    pub fn speed_at(&self, elapsed: Duration) -> f64 {
        match self.catches_up_after() {
            Some(at) if elapsed >= at => 1.0,
            _ => self.speed,
        }
    }
}

/// `seconds` after `start`, to the millisecond, saturating.
fn after(start: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    let delta = TimeDelta::try_milliseconds((seconds * 1000.0) as i64).unwrap_or(TimeDelta::MAX);
    start
        .checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
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

    #[test]
    fn a_clock_catching_up_slows_to_the_wall_clock() {
        // A week behind at 60×: it catches up after 7 d / 59 ≈ 2 h 50 min.
        let wall = at("2026-03-11T12:00:00Z");
        let pace = Pace::catching_up(at("2026-03-04T12:00:00Z"), 60.0, wall);
        let switch = pace.catches_up_after().expect("it catches up");
        assert_eq!(switch.as_secs(), 604_800 / 59);
        assert_eq!(pace.speed_at(Duration::ZERO), 60.0);
        assert_eq!(
            pace.speed_at(switch.saturating_sub(Duration::from_secs(1))),
            60.0
        );
        assert_eq!(pace.speed_at(switch), 1.0);
        assert_eq!(pace.speed_at(switch * 3), 1.0);

        // Before the switch it is the accelerated clock, after it the wall clock.
        assert_eq!(
            pace.simulated(Duration::from_secs(60)),
            at("2026-03-04T13:00:00Z")
        );
        let hour = Duration::from_secs(3600);
        assert_eq!(
            pace.simulated(switch + hour),
            after(wall, (switch + hour).as_secs_f64())
        );
        let late = Duration::from_secs(86_400);
        assert_eq!(
            pace.simulated(late),
            at("2026-03-12T12:00:00Z"),
            "a day later: the wall clock"
        );
        // Never ahead of the wall clock.
        for minutes in (0..600).step_by(7) {
            let elapsed = Duration::from_secs(minutes * 60);
            assert!(pace.simulated(elapsed) <= after(wall, elapsed.as_secs_f64()));
        }

        // Due times: fast before the switch, the wall clock's after it.
        assert_eq!(
            pace.due(at("2026-03-04T13:00:00Z")),
            Duration::from_secs(60)
        );
        // 13:00 on the 11th still comes at 60× (the switch is at 14:50:50).
        assert_eq!(
            pace.due(at("2026-03-11T13:00:00Z")),
            Duration::from_secs(10_140)
        );
        assert_eq!(pace.due(at("2026-03-11T16:00:00Z")), hour * 4);
        assert_eq!(pace.due(at("2026-03-04T11:00:00Z")), Duration::ZERO);
        // `due` inverts `simulated` on both sides of the switch.
        for t in [Duration::from_secs(600), switch + hour] {
            let shown = pace.simulated(t);
            assert!(
                pace.due(shown).abs_diff(t) < Duration::from_millis(2),
                "{t:?}"
            );
        }
    }

    #[test]
    fn a_clock_that_starts_at_the_wall_clock_is_real_time() {
        let wall = at("2026-03-11T12:00:00Z");
        let pace = Pace::catching_up(wall, 60.0, wall);
        assert_eq!(pace.catches_up_after(), Some(Duration::ZERO));
        assert_eq!(pace.speed_at(Duration::ZERO), 1.0);
        assert_eq!(
            pace.simulated(Duration::from_secs(30)),
            at("2026-03-11T12:00:30Z")
        );
        // A clock no faster than the wall clock never catches up; a plain
        // one does not try.
        let slow = Pace::catching_up(at("2026-03-11T11:00:00Z"), 1.0, wall);
        assert_eq!(slow.catches_up_after(), None);
        assert_eq!(slow.speed_at(Duration::from_secs(86_400)), 1.0);
        let plain = Pace::new(at("2026-03-04T12:00:00Z"), 60.0);
        assert_eq!(plain.catches_up_after(), None);
        assert_eq!(plain.speed_at(Duration::from_secs(86_400)), 60.0);
        assert_eq!(
            plain.simulated(Duration::from_secs(86_400)),
            at("2026-05-03T12:00:00Z"),
            "sixty days on"
        );
    }
}
