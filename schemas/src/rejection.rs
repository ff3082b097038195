//! Why a message was rejected: a reason usable as a metric label plus a
//! message a person can act on, naming the topic, key and value at fault.

use std::fmt;

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $label:literal, )+) => {
        /// The class of a rejection; its label is a bounded metric label.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )+
        }

        impl Reason {
            /// Every reason, for pre-registering metric series.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),+];

            /// The metric label.
            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $label,)+ }
            }

            /// The reason of a metric label.
            pub fn parse(label: &str) -> Option<Reason> {
                match label { $($label => Some(Reason::$variant),)+ _ => None }
            }
        }
    };
}

reasons! {
    /// The payload is not JSON.
    InvalidJson => "invalid_json",
    /// The payload is empty.
    EmptyPayload => "empty_payload",
    /// The topic does not match a known pattern or a level is invalid.
    InvalidTopic => "invalid_topic",
    /// The JSON is neither an object nor an array of SenML records.
    UnknownFormat => "unknown_format",
    /// The payload's format is not one the topic carries.
    FormatTopicMismatch => "format_topic_mismatch",
    /// A LoRaWAN application that the configuration does not map to a commune and domain.
    UnknownApplication => "unknown_application",
    /// A required key is missing.
    MissingKey => "missing_key",
    /// The same key appears twice in one object.
    DuplicateKey => "duplicate_key",
    /// A known key holds a value of the wrong JSON type.
    WrongType => "wrong_type",
    /// A number is NaN, infinite or too large to represent.
    NotFinite => "not_finite",
    /// A number is outside the attribute's range.
    OutOfRange => "out_of_range",
    /// A string is not one of the attribute's values, or an identifier has invalid characters.
    InvalidValue => "invalid_value",
    /// The payload's device identifier differs from the topic's.
    IdMismatch => "id_mismatch",
    /// A timestamp cannot be parsed.
    InvalidTimestamp => "invalid_timestamp",
    /// A timestamp is further in the future than allowed.
    TimestampInFuture => "timestamp_in_future",
    /// A timestamp is older than allowed.
    TimestampTooOld => "timestamp_too_old",
    /// A traffic observation interval is empty, reversed or longer than an hour.
    InvalidInterval => "invalid_interval",
    /// The message holds no attribute to write.
    NoMeasurements => "no_measurements",
    /// A SenML unit that is not understood.
    UnknownUnit => "unknown_unit",
    /// A SenML unit that does not fit the attribute.
    UnitMismatch => "unit_mismatch",
    /// A SenML pack with no records.
    EmptyPack => "empty_pack",
    /// A SenML record that breaks RFC 8428 (no name, no value, two values, bad version).
    InvalidSenml => "invalid_senml",
    /// A SenML label ending in `_` that is not understood (RFC 8428 §4.4).
    UnknownMandatoryLabel => "unknown_mandatory_label",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} on topic {topic}: {message}")]
pub struct Rejection {
    /// The class, for counters.
    pub reason: Reason,
    /// The topic the message came on.
    pub topic: String,
    /// What is wrong, naming key and value.
    pub message: String,
}

impl Rejection {
    /// A rejection of a message on a topic.
    pub fn new(reason: Reason, topic: &str, message: impl Into<String>) -> Self {
        Self {
            reason,
            topic: topic.to_owned(),
            message: message.into(),
        }
    }
}

/// A rejection before the topic is attached: what the inner decoders return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The class.
    pub reason: Reason,
    /// What is wrong, naming key and value.
    pub message: String,
}

impl Fault {
    /// A fault with a message.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// Attaches the topic.
    pub fn on(self, topic: &str) -> Rejection {
        Rejection::new(self.reason, topic, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let l = r.as_str();
            assert!(seen.insert(l), "duplicate label {l}");
            assert_eq!(Reason::parse(l), Some(*r));
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
        }
    }

    #[test]
    fn display_names_reason_topic_and_message() {
        let r = Fault::new(Reason::OutOfRange, "key `powerConsumption`: -5 is below 0")
            .on("city/rabat/lighting/lamp-1/telemetry");
        assert_eq!(
            r.to_string(),
            "out_of_range on topic city/rabat/lighting/lamp-1/telemetry: key `powerConsumption`: -5 is below 0"
        );
    }
}
