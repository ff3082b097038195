//! The entry point: a message (topic, payload, time of receipt) in, readings
//! or a rejection out. The format is told by the payload's structure; the
//! topic says which formats it may carry and who the device is.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::application::Applications;
use crate::context::{Context, Target};
use crate::json::Key;
use crate::native::{self, Outcome};
use crate::reading::{Reading, Timestamp};
use crate::rejection::{Fault, Reason, Rejection};
use crate::scan::{FlatObject, Next};
use crate::time::TimeLimits;
use crate::topic::Topic;

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A native JSON object with Smart Data Models names.
    Native,
    /// A SenML pack (RFC 8428), a JSON array.
    Senml,
    /// The Things Stack v3 uplink.
    TheThingsStack,
    /// ChirpStack v4 uplink event.
    ChirpStack,
}

impl Format {
    /// A metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Senml => "senml",
            Format::TheThingsStack => "the_things_stack",
            Format::ChirpStack => "chirpstack",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Native => "a native object",
            Format::Senml => "a SenML pack",
            Format::TheThingsStack => "a The Things Stack uplink",
            Format::ChirpStack => "a ChirpStack uplink",
        }
    }
}

/// What a message decoded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The format it was in.
    pub format: Format,
    /// How many readings were appended.
    pub readings: usize,
    /// How many keys or SenML names were not understood (ignored, counted).
    pub unknown_keys: u32,
}

/// Decodes and validates messages. Cheap to share: it holds only configuration.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: TimeLimits,
    applications: Applications,
}

impl Decoder {
    /// A decoder with time limits and LoRaWAN applications.
    pub fn new(limits: TimeLimits, applications: Applications) -> Self {
        Self {
            limits,
            applications,
        }
    }

    /// Decodes one message and appends its readings to `out`. On rejection
    /// `out` is left as it was.
    pub fn decode(
        &self,
        topic: &str,
        payload: &[u8],
        received_at: Timestamp,
        out: &mut Vec<Reading>,
    ) -> Result<Decoded, Rejection> {
        let ctx = Context {
            now: received_at,
            limits: &self.limits,
            applications: &self.applications,
        };
        let before = out.len();
        let result = decode(topic, payload, &ctx, out);
        if result.is_err() {
            out.truncate(before);
        }
        result
            .map(|(format, unknown_keys)| Decoded {
                format,
                readings: out.len() - before,
                unknown_keys,
            })
            .map_err(|f| f.on(topic))
    }
}

fn decode(
    topic: &str,
    payload: &[u8],
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<(Format, u32), Fault> {
    let topic = Topic::parse(topic)?;
    // An uplink's text, checked once to be UTF-8 by the sniffer and handed
    // on to the decoder.
    let mut text = None;
    let format = match payload.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(Fault::new(Reason::EmptyPayload, "payload is empty")),
        Some(b'[') => Format::Senml,
        Some(b'{') => match topic {
            Topic::Native {
                commune,
                domain,
                device,
            } => {
                let target = Target {
                    domain,
                    commune,
                    device,
                };
                match native::decode(payload, target, ctx, out)? {
                    Outcome::Reading(unknown) => return Ok((Format::Native, unknown)),
                    Outcome::Uplink(format) => format,
                }
            }
            Topic::TheThingsStack { .. } => {
                text = std::str::from_utf8(payload).ok();
                sniff_object(payload, text, Format::TheThingsStack)
            }
            Topic::ChirpStack { .. } => {
                text = std::str::from_utf8(payload).ok();
                sniff_object(payload, text, Format::ChirpStack)
            }
        },
        Some(_) if native::is_json(payload) => {
            return Err(Fault::new(
                Reason::UnknownFormat,
                "payload is a JSON scalar; expected an object or a SenML array",
            ))
        }
        Some(_) => {
            let err = serde_json::from_slice::<IgnoredAny>(payload)
                .err()
                .map(|e| crate::json::parse_fault(&e, None));
            return Err(err.unwrap_or_else(|| Fault::new(Reason::InvalidJson, "not valid JSON")));
        }
    };
    let unknown = match (format, topic) {
        (
            Format::Senml,
            Topic::Native {
                commune,
                domain,
                device,
            },
        ) => {
            let target = Target {
                domain,
                commune,
                device,
            };
            crate::senml::decode(payload, target, ctx, out)?
        }
        (
            Format::TheThingsStack,
            Topic::TheThingsStack {
                application,
                device,
                ..
            },
        ) => crate::lorawan::decode_tts_text(payload, text, application, device, ctx, out)?,
        (
            Format::ChirpStack,
            Topic::ChirpStack {
                application,
                dev_eui,
            },
        ) => crate::lorawan::decode_chirpstack_text(payload, text, application, dev_eui, ctx, out)?,
        (format, topic) => {
            let expected = match topic {
                Topic::Native { .. } => "a native object or a SenML pack",
                Topic::TheThingsStack { .. } => Format::TheThingsStack.name(),
                Topic::ChirpStack { .. } => Format::ChirpStack.name(),
            };
            return Err(Fault::new(
                Reason::FormatTopicMismatch,
                format!(
                    "payload is {}, but this topic carries {expected}",
                    format.name()
                ),
            ));
        }
    };
    Ok((format, unknown))
}

/// Tells a network server's uplink from a native object by its top-level
/// keys, stopping at the first key that decides. A broken object is handed to
/// the decoder the topic expects, whose error then names the fault. `text` is
/// the payload when it is UTF-8.
fn sniff_object(payload: &[u8], text: Option<&str>, expected: Format) -> Format {
    text.and_then(scan_sniff)
        .unwrap_or_else(|| serde_sniff(payload, expected))
}

/// [`sniff_object`] through the scanner of [`crate::scan`], for objects of
/// the shape it reads (until the deciding key); `None` for anything else.
fn scan_sniff(text: &str) -> Option<Format> {
    let mut object = FlatObject::open_str(text)?;
    while let Next::Key(key) = object.next_key()? {
        if let Some(format) = native::uplink_key(key) {
            return Some(format);
        }
        object.colon()?;
        object.skip_value(1)?;
    }
    object.close()?;
    Some(Format::Native)
}

fn serde_sniff(payload: &[u8], expected: Format) -> Format {
    struct Sniff<'a>(&'a mut Option<Format>);
    impl<'de> Visitor<'de> for Sniff<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                if let Some(format) = native::uplink_key(&key) {
                    *self.0 = Some(format);
                    return Err(serde::de::Error::custom("decided"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            *self.0 = Some(Format::Native);
            Ok(())
        }
    }
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(payload);
    let parsed = de
        .deserialize_map(Sniff(&mut found))
        .and_then(|()| de.end());
    match (found, parsed) {
        (Some(Format::Native), Err(_)) | (None, _) => expected,
        (Some(format), _) => format,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{scan_sniff, serde_sniff, Format};

    /// Objects, well formed or not, whose keys decide sooner or later.
    fn object() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "\"a\"",
            "\"end_device_ids\"",
            "\"uplink_message\"",
            "\"deviceInfo\"",
            "\"end\\u005fdevice_ids\"",
            "a",
        ]);
        let value = prop::sample::select(vec![
            "1",
            "\"s\"",
            "{\"b\": [1, {}]}",
            "null",
            "[",
            "1e400",
            "true",
            "-",
        ]);
        let separator = prop::sample::select(vec![",", ", ", ",,", ""]);
        (
            prop::collection::vec((key, value, separator), 0..4),
            prop::sample::select(vec!["}", "} ", "}x", ""]),
        )
            .prop_map(|(entries, end)| {
                let mut text = String::from("{");
                for (i, (key, value, separator)) in entries.iter().enumerate() {
                    if i > 0 {
                        text.push_str(separator);
                    }
                    text.push_str(key);
                    text.push_str(": ");
                    text.push_str(value);
                }
                text.push_str(end);
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn the_scanner_sniffs_as_serde_does(text in object()) {
            if let Some(format) = scan_sniff(&text) {
                for expected in [Format::TheThingsStack, Format::ChirpStack] {
                    prop_assert_eq!(format, serde_sniff(text.as_bytes(), expected), "{}", text);
                }
            }
        }
    }

    #[test]
    fn common_uplinks_are_sniffed_by_the_scanner() {
        let text = r#"{"end_device_ids": {"device_id": "d"}, "uplink_message": {}}"#;
        assert_eq!(scan_sniff(text), Some(Format::TheThingsStack));
        let text = r#"{"deduplicationId": "x", "time": 1, "deviceInfo": {}}"#;
        assert_eq!(scan_sniff(text), Some(Format::ChirpStack));
        assert_eq!(scan_sniff("{\"a\": 1}"), Some(Format::Native));
    }
}
