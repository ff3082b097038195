//! What a device observed, in canonical values, before any wire format.

use chrono::{DateTime, Utc};
use schemas::{Attribute, Domain, Value, Values};

/// When an observation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedAt {
    /// At an instant (street lights, waste containers).
    Instant(DateTime<Utc>),
    /// Over a period, `start` included and `end` excluded (traffic counters).
    Interval {
        /// Start of the period; the time of the reading it becomes.
        start: DateTime<Utc>,
        /// End of the period.
        end: DateTime<Utc>,
    },
}

impl ObservedAt {
    /// The event time of the reading: the instant, or the period's start.
    pub const fn event_time(self) -> DateTime<Utc> {
        match self {
            ObservedAt::Instant(t) | ObservedAt::Interval { start: t, .. } => t,
        }
    }

    /// The same time moved by a number of seconds (a device clock's error).
    #[must_use]
    pub fn shifted(self, seconds: i64) -> Self {
        let d = chrono::TimeDelta::seconds(seconds);
        match self {
            ObservedAt::Instant(t) => ObservedAt::Instant(t + d),
            ObservedAt::Interval { start, end } => ObservedAt::Interval {
                start: start + d,
                end: end + d,
            },
        }
    }
}

/// One observation of one device (one lane, for a traffic counter).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The service.
    pub domain: Domain,
    /// Commune id.
    pub commune: String,
    /// Device id.
    pub device: String,
    /// Lane of a traffic counter.
    pub lane: Option<u32>,
    /// When, by the device's clock.
    pub time: ObservedAt,
    /// Attribute values, by Smart Data Models name ([`Attribute::key`]).
    pub values: Values,
}

impl Observation {
    /// An observation with no values yet.
    pub fn new(domain: Domain, commune: &str, device: &str, time: ObservedAt) -> Self {
        Self {
            domain,
            commune: commune.to_owned(),
            device: device.to_owned(),
            lane: None,
            time,
            values: Values::default(),
        }
    }

    /// Sets a number.
    pub fn number(&mut self, attribute: Attribute, v: f64) {
        self.values.set(attribute, Value::Number(v + 0.0));
    }

    /// Sets a symbol; it must be one of the attribute's values.
    pub fn symbol(&mut self, attribute: Attribute, s: &'static str) {
        self.values.set(attribute, Value::Symbol(s));
    }

    /// Sets a boolean.
    pub fn boolean(&mut self, attribute: Attribute, b: bool) {
        self.values.set(attribute, Value::Bool(b));
    }
}
