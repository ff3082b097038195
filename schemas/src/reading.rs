//! The one internal form every wire format decodes into.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::attribute::{Attribute, Value};
use crate::domain::Domain;

/// An instant, as nanoseconds since the Unix epoch (the line protocol's precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Self {
        Self(ns)
    }

    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(1_000_000_000))
    }

    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }

    /// From a chrono instant; `None` outside the years 1677..2262.
    pub fn from_datetime(dt: DateTime<Utc>) -> Option<Self> {
        dt.timestamp_nanos_opt().map(Self)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// The chrono instant.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }

    /// This instant moved by a number of nanoseconds (saturating).
    #[must_use]
    pub const fn add_nanos(self, ns: i64) -> Self {
        Self(self.0.saturating_add(ns))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    }
}

/// The attribute values of one reading, at most one per attribute.
#[derive(Clone, Copy, PartialEq, Default)]
pub struct Values([Option<Value>; Attribute::COUNT]);

impl Values {
    /// The value of an attribute, if the reading has it.
    pub fn get(&self, attribute: Attribute) -> Option<Value> {
        self.0[attribute.index()]
    }

    /// A numeric value, if the reading has it.
    pub fn number(&self, attribute: Attribute) -> Option<f64> {
        match self.get(attribute) {
            Some(Value::Number(v)) => Some(v),
            _ => None,
        }
    }

    /// A symbol value, if the reading has it.
    pub fn symbol(&self, attribute: Attribute) -> Option<&'static str> {
        match self.get(attribute) {
            Some(Value::Symbol(s)) => Some(s),
            _ => None,
        }
    }

    /// A boolean value, if the reading has it.
    pub fn boolean(&self, attribute: Attribute) -> Option<bool> {
        match self.get(attribute) {
            Some(Value::Bool(b)) => Some(b),
            _ => None,
        }
    }

    /// Sets a value and returns the one it replaced.
    #[inline]
    pub fn set(&mut self, attribute: Attribute, value: Value) -> Option<Value> {
        self.0[attribute.index()].replace(value)
    }

    /// Removes a value.
    pub fn remove(&mut self, attribute: Attribute) -> Option<Value> {
        self.0[attribute.index()].take()
    }

    /// The values present, in [`Attribute::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Attribute, Value)> + '_ {
        Attribute::ALL
            .iter()
            .zip(self.0.iter())
            .filter_map(|(a, v)| v.map(|v| (*a, v)))
    }

    /// How many values are present.
    pub fn len(&self) -> usize {
        self.0.iter().filter(|v| v.is_some()).count()
    }

    /// Whether no value is present.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(a, v)| (a.key(), v)))
            .finish()
    }
}

/// Where a reading's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The device or network server stated it.
    Observed,
    /// Nothing stated it: the time the message was received.
    Received,
}

/// One validated observation of one device, in canonical units.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The service the device belongs to.
    pub domain: Domain,
    /// The commune (topic level or application mapping).
    pub commune: String,
    /// The device identifier.
    pub device: String,
    /// The district, when the device registry knows it.
    pub district: Option<String>,
    /// The lane of a traffic counter.
    pub lane: Option<u32>,
    /// Event time: when the observation was made (start of a traffic interval).
    pub time: Timestamp,
    /// Where `time` came from.
    pub time_source: TimeSource,
    /// Length of a traffic observation interval, in seconds.
    pub period_s: Option<u32>,
    /// The attribute values.
    pub values: Values,
}

impl Reading {
    /// An empty reading for a device, at a time.
    pub fn new(domain: Domain, commune: &str, device: &str, time: Timestamp) -> Self {
        Self {
            domain,
            commune: commune.to_owned(),
            device: device.to_owned(),
            district: None,
            lane: None,
            time,
            time_source: TimeSource::Observed,
            period_s: None,
            values: Values::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_one_per_attribute_in_table_order() {
        let mut v = Values::default();
        assert!(v.is_empty());
        v.set(Attribute::Voltage, Value::Number(230.0));
        v.set(Attribute::PowerState, Value::Symbol("on"));
        assert_eq!(
            v.set(Attribute::Voltage, Value::Number(231.0)),
            Some(Value::Number(230.0))
        );
        let got: Vec<_> = v.iter().collect();
        assert_eq!(
            got,
            vec![
                (Attribute::PowerState, Value::Symbol("on")),
                (Attribute::Voltage, Value::Number(231.0)),
            ]
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v.number(Attribute::Voltage), Some(231.0));
        assert_eq!(v.symbol(Attribute::PowerState), Some("on"));
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        let t = Timestamp::from_millis(1_795_900_123_456);
        assert_eq!(t.to_string(), "2026-11-28T21:08:43.456Z");
        assert_eq!(Timestamp::from_datetime(t.to_datetime()), Some(t));
    }
}
