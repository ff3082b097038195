//! When an observation was made and of which lane: the `dateObserved`
//! family and `laneId`, read with one meaning in native objects and in the
//! decoded payloads of LoRaWAN uplinks.

use crate::domain::Domain;
use crate::json::{wrong_type, Scalar};
use crate::reading::Timestamp;
use crate::rejection::{Fault, Reason};
use crate::time::{from_epoch, interval, parse_interval, parse_rfc3339};

/// When a message says the observation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The key it came from, for messages.
    pub(crate) key: &'static str,
    /// The instant, or the start of the interval.
    pub(crate) start: Timestamp,
    /// Length of the interval in seconds.
    pub(crate) period_s: Option<u32>,
}

/// A `dateObserved` value: an RFC 3339 instant or an epoch number, or for
/// traffic a `start/end` interval.
pub(crate) fn date_observed(key: &str, v: &Scalar<'_>, domain: Domain) -> Result<Observed, Fault> {
    let (start, period_s) = match v {
        Scalar::Str(s) if domain == Domain::Traffic && s.as_bytes().contains(&b'/') => {
            let i = parse_interval(key, s)?;
            (i.start, Some(i.period_s))
        }
        _ => (instant(key, v)?, None),
    };
    Ok(Observed {
        key: "dateObserved",
        start,
        period_s,
    })
}

/// An instant: RFC 3339, or epoch seconds or milliseconds.
pub(crate) fn instant(key: &str, v: &Scalar<'_>) -> Result<Timestamp, Fault> {
    match v {
        Scalar::Str(s) => parse_rfc3339(key, s),
        Scalar::Number(n) => from_epoch(key, *n),
        other => Err(Fault::new(
            Reason::InvalidTimestamp,
            format!(
                "key `{key}`: {} is not an RFC 3339 string or epoch number",
                other.describe()
            ),
        )),
    }
}

/// A lane number: an integer ≥ 1.
pub(crate) fn lane(key: &str, v: &Scalar<'_>) -> Result<u32, Fault> {
    match v {
        Scalar::Number(n) if n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(u32::MAX) => {
            Ok(*n as u32)
        }
        Scalar::Number(_) => Err(Fault::new(
            Reason::OutOfRange,
            format!(
                "key `{key}`: {} is out of range; expected an integer ≥ 1",
                v.describe()
            ),
        )),
        other => Err(wrong_type(key, &other.describe(), "an integer ≥ 1")),
    }
}

/// The event time a payload states: `dateObserved`, or the interval of
/// `dateObservedFrom` and `dateObservedTo` (traffic), never both.
pub(crate) fn resolve(
    date: Option<Observed>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<Option<Observed>, Fault> {
    match (date, from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(Fault::new(
            Reason::InvalidInterval,
            "keys `dateObserved` and `dateObservedFrom`/`dateObservedTo` are both given",
        )),
        (date, None, None) => Ok(date),
        (None, Some(start), Some(end)) => {
            let i = interval("dateObservedFrom", start, end)?;
            Ok(Some(Observed {
                key: "dateObservedFrom",
                start: i.start,
                period_s: Some(i.period_s),
            }))
        }
        (None, Some(_), None) | (None, None, Some(_)) => Err(Fault::new(
            Reason::MissingKey,
            "keys `dateObservedFrom` and `dateObservedTo` must be given together",
        )),
    }
}
