//! A point to write: what windows and alert rules produce. Raw readings are
//! encoded straight from the [`schemas::Reading`] and never become a `Point`.

use std::borrow::Cow;

use schemas::Timestamp;

/// A typed field value. A field keeps one type for its whole life, so the
/// database never rejects a batch for a type conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A float (`1.5`).
    Float(f64),
    /// A signed integer (`3i`).
    Integer(i64),
    /// A boolean (`true`).
    Boolean(bool),
    /// A string (`"ok"`).
    String(Cow<'static, str>),
}

/// One line of line protocol, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Measurement name, e.g. `traffic_1m`.
    pub measurement: Cow<'static, str>,
    /// Tags in the order they are written; keys are unique.
    pub tags: Vec<(Cow<'static, str>, String)>,
    /// Fields in the order they are written; at least one; keys are unique.
    pub fields: Vec<(Cow<'static, str>, FieldValue)>,
    /// The point's time (a window's start for aggregates).
    pub time: Timestamp,
}

impl Point {
    /// A point with no tags or fields yet.
    pub fn new(measurement: impl Into<Cow<'static, str>>, time: Timestamp) -> Self {
        Self {
            measurement: measurement.into(),
            tags: Vec::new(),
            fields: Vec::new(),
            time,
        }
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Adds a field.
    #[must_use]
    pub fn field(mut self, key: impl Into<Cow<'static, str>>, value: FieldValue) -> Self {
        self.fields.push((key.into(), value));
        self
    }

    /// The value of a field, if present.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of a tag, if present.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}
