//! Timestamps on the wire: RFC 3339 strings, or epoch seconds or milliseconds
//! told apart by size, and the window of acceptable event times.

use chrono::{DateTime, TimeDelta};

use crate::reading::Timestamp;
use crate::rejection::{Fault, Reason};

/// Epoch numbers below this are seconds (up to the year 5138), above it milliseconds.
const SECONDS_BELOW: f64 = 1e11;
/// Epoch milliseconds above this (the year 5138) are not a plausible time.
const MILLIS_BELOW: f64 = 1e14;

/// How far event times may stray from the time of receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLimits {
    /// The most an event time may lie ahead of receipt (clock skew).
    pub max_future: TimeDelta,
    /// The most an event time may lie behind receipt.
    pub max_age: TimeDelta,
}

impl Default for TimeLimits {
    fn default() -> Self {
        Self {
            max_future: TimeDelta::minutes(5),
            max_age: TimeDelta::days(30),
        }
    }
}

impl TimeLimits {
    /// Rejects an event time outside the limits around `now`.
    pub fn check(&self, key: &str, t: Timestamp, now: Timestamp) -> Result<Timestamp, Fault> {
        let ahead = t.as_nanos().saturating_sub(now.as_nanos());
        let max_future = self.max_future.num_nanoseconds().unwrap_or(i64::MAX);
        let max_age = self.max_age.num_nanoseconds().unwrap_or(i64::MAX);
        if ahead > max_future {
            return Err(Fault::new(
                Reason::TimestampInFuture,
                format!(
                    "key `{key}`: {t} is {} ahead of the time of receipt {now} (limit {})",
                    human(ahead),
                    human(max_future)
                ),
            ));
        }
        if ahead.saturating_neg() > max_age {
            return Err(Fault::new(
                Reason::TimestampTooOld,
                format!(
                    "key `{key}`: {t} is {} older than the time of receipt {now} (limit {})",
                    human(ahead.saturating_neg()),
                    human(max_age)
                ),
            ));
        }
        Ok(t)
    }
}

fn human(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    if s >= 86_400 * 2 {
        format!("{} days", s / 86_400)
    } else if s >= 7200 {
        format!("{} h", s / 3600)
    } else if s >= 120 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(key: &str, s: &str) -> Result<Timestamp, Fault> {
    fast_rfc3339(s.as_bytes())
        .or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .and_then(|dt| Timestamp::from_datetime(dt.to_utc()))
        })
        .ok_or_else(|| {
            Fault::new(
                Reason::InvalidTimestamp,
                format!("key `{key}`: {s:?} is not an RFC 3339 timestamp"),
            )
        })
}

/// The common shape `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, parsed
/// without the general parser (timestamps are on the hot path). Anything
/// else, leap seconds included, returns `None` and goes the general way.
fn fast_rfc3339(s: &[u8]) -> Option<Timestamp> {
    fn num(s: &[u8]) -> Option<i64> {
        s.iter().try_fold(0_i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    }
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (hour, minute, second) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0_i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(&frac[..digits])? * 10_i64.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(nanos))
        .map(Timestamp::from_nanos)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The longest traffic observation interval accepted.
pub const MAX_INTERVAL_S: i64 = 3600;

/// A traffic observation interval, validated: `end > start`, at most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start of the interval: the point's time.
    pub start: Timestamp,
    /// Length in whole seconds.
    pub period_s: u32,
}

/// Builds an interval from its two ends, naming `key` when it is invalid.
pub fn interval(key: &str, start: Timestamp, end: Timestamp) -> Result<Interval, Fault> {
    let ns = end.as_nanos().saturating_sub(start.as_nanos());
    if ns <= 0 || ns > MAX_INTERVAL_S * 1_000_000_000 {
        return Err(Fault::new(
            Reason::InvalidInterval,
            format!(
                "key `{key}`: interval {start}/{end} must have its end after its start and last at most {MAX_INTERVAL_S} s"
            ),
        ));
    }
    Ok(Interval {
        start,
        period_s: ((ns + 500_000_000) / 1_000_000_000).max(1) as u32,
    })
}

/// Parses an ISO 8601 interval of two RFC 3339 instants, `start/end`.
pub fn parse_interval(key: &str, s: &str) -> Result<Interval, Fault> {
    let (a, b) = s.split_once('/').ok_or_else(|| {
        Fault::new(
            Reason::InvalidTimestamp,
            format!("key `{key}`: {s:?} is not an interval start/end"),
        )
    })?;
    interval(key, parse_rfc3339(key, a)?, parse_rfc3339(key, b)?)
}

/// Interprets an epoch number: seconds below 10^11, milliseconds above.
pub fn from_epoch(key: &str, n: f64) -> Result<Timestamp, Fault> {
    if !(0.0..MILLIS_BELOW).contains(&n) {
        return Err(Fault::new(
            Reason::InvalidTimestamp,
            format!("key `{key}`: {n} is not epoch seconds or milliseconds"),
        ));
    }
    let ns = if n < SECONDS_BELOW { n * 1e9 } else { n * 1e6 };
    Ok(Timestamp::from_nanos(ns.round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_and_millis_are_told_apart_by_size() {
        let s = from_epoch("t", 1_795_900_123.0).expect("seconds");
        let ms = from_epoch("t", 1_795_900_123_000.0).expect("millis");
        assert_eq!(s, ms);
        assert_eq!(s, Timestamp::from_secs(1_795_900_123));
        assert!(from_epoch("t", -1.0).is_err());
        assert!(from_epoch("t", 1e15).is_err());
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let a = parse_rfc3339("t", "2026-11-28T21:14:05.812345678Z").expect("valid");
        let b = parse_rfc3339("t", "2026-11-28T22:14:05.812345678+01:00").expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.as_nanos() % 1_000_000_000, 812_345_678);
        let e = parse_rfc3339("dateObserved", "yesterday").expect_err("invalid");
        assert_eq!(e.reason, Reason::InvalidTimestamp);
        assert!(e.message.contains("dateObserved"), "{}", e.message);
        assert!(e.message.contains("yesterday"), "{}", e.message);
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_the_general_parser(
            y in 0_i64..10_000, mo in 0_i64..14, d in 0_i64..33, h in 0_i64..25, mi in 0_i64..61,
            s in 0_i64..61, frac in proptest::option::of("[0-9]{1,10}"),
            tz in proptest::sample::select(vec!["Z", "+01:00", "-05:30", "+23:59", "+24:00", "z", ""]),
        ) {
            let text = format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}{tz}",
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            let general = DateTime::parse_from_rfc3339(&text)
                .ok()
                .and_then(|dt| Timestamp::from_datetime(dt.to_utc()));
            if let Some(fast) = fast_rfc3339(text.as_bytes()) {
                proptest::prop_assert_eq!(Some(fast), general, "{}", text);
            }
            proptest::prop_assert_eq!(parse_rfc3339("t", &text).ok(), general, "{}", text);
        }
    }

    #[test]
    fn fast_path_takes_the_common_shapes() {
        for text in [
            "2026-11-28T21:14:05.812345678Z",
            "2026-11-28T21:14:05Z",
            "2024-02-29T00:00:00.5+01:00",
            "1970-01-01T00:00:00Z",
        ] {
            assert!(fast_rfc3339(text.as_bytes()).is_some(), "{text}");
        }
        assert_eq!(
            fast_rfc3339(b"1970-01-01T01:00:00+01:00"),
            Some(Timestamp::from_nanos(0))
        );
        assert_eq!(fast_rfc3339(b"2023-02-29T00:00:00Z"), None);
    }

    #[test]
    fn intervals_are_bounded_and_ordered() {
        let i = parse_interval("d", "2026-11-28T08:00:00Z/2026-11-28T08:05:00Z").expect("valid");
        assert_eq!(i.period_s, 300);
        assert_eq!(
            i.start,
            parse_rfc3339("d", "2026-11-28T08:00:00Z").expect("valid")
        );
        for bad in [
            "2026-11-28T08:05:00Z/2026-11-28T08:00:00Z",
            "2026-11-28T08:00:00Z/2026-11-28T08:00:00Z",
            "2026-11-28T08:00:00Z/2026-11-28T09:00:01Z",
        ] {
            let e = parse_interval("dateObserved", bad).expect_err(bad);
            assert_eq!(e.reason, Reason::InvalidInterval, "{bad}");
        }
        let e = parse_interval("dateObserved", "2026-11-28T08:00:00Z").expect_err("no slash");
        assert_eq!(e.reason, Reason::InvalidTimestamp);
    }

    #[test]
    fn limits_reject_future_and_old() {
        let l = TimeLimits::default();
        let now = Timestamp::from_secs(1_795_900_000);
        assert!(l.check("t", now.add_nanos(299_000_000_000), now).is_ok());
        let e = l
            .check("t", now.add_nanos(301_000_000_000), now)
            .expect_err("future");
        assert_eq!(e.reason, Reason::TimestampInFuture);
        let month = 31 * 86_400 * 1_000_000_000_i64;
        let e = l.check("t", now.add_nanos(-month), now).expect_err("old");
        assert_eq!(e.reason, Reason::TimestampTooOld);
        assert!(e.message.contains("31 days"), "{}", e.message);
    }
}
