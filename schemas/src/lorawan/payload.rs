//! The decoded payload of an uplink (`decoded_payload` in The Things Stack,
//! `object` in ChirpStack): a flat object whose keys are attribute names or
//! source keys of the application's field map, plus `laneId` and the
//! `dateObserved` family, read with the same meaning as in native messages.
//!
//! A payload of the common shape is read by the scanner of [`crate::scan`];
//! anything else is walked by `serde_json`, the reference for every result
//! and message. Both hand each key and value to the same [`State::take`], in
//! the same order.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::application::{AppRef, Mapping};
use crate::domain::Domain;
use crate::json::wrong_type;
use crate::json::{FaultSlot, Key, Scalar};
use crate::observed::{date_observed, instant, lane, resolve, Observed};
use crate::reading::{Timestamp, Values};
use crate::rejection::{Fault, Reason};
use crate::scan::{FlatObject, Next};

/// A decoded payload, validated.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decoded {
    pub(super) values: Values,
    pub(super) lane: Option<u32>,
    pub(super) observed: Option<Observed>,
    /// Keys that map to no attribute.
    pub(super) unknown: u32,
}

/// Reads the decoded payload (its JSON text) found at `key` with the
/// application's field map.
pub(super) fn walk(raw: &str, key: &str, app: &AppRef<'_>) -> Result<Decoded, Fault> {
    walk_with(Parser::Fast, raw, key, app)
}

/// Which reader to start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    /// The scanner, handing over to `serde_json` when it must.
    Fast,
    /// `serde_json` only.
    #[cfg_attr(not(test), allow(dead_code))]
    Serde,
}

fn walk_with(parser: Parser, raw: &str, key: &str, app: &AppRef<'_>) -> Result<Decoded, Fault> {
    let mut state = State::new(app, key);
    let scanned = match parser {
        Parser::Fast => scan(raw, &mut state),
        Parser::Serde => None,
    };
    if let Some(result) = scanned {
        result?;
    } else {
        state.reset();
        let mut de = serde_json::Deserializer::from_str(raw);
        if let Err(err) = (&mut de).deserialize_any(Walker(&mut state)) {
            return Err(state.slot.into_fault(&err));
        }
    }
    Ok(Decoded {
        observed: resolve(state.date, state.from, state.to)?,
        values: state.values,
        lane: state.lane,
        unknown: state.unknown,
    })
}

/// Reads a payload of the common shape (see [`crate::scan`]) into `state`:
/// the result of its keys, or `None` when it is not of that shape; `state`
/// must then be reset and the payload walked by `serde_json`. Whatever the
/// scanner reads, `serde_json` reads the same way up to the same fault, so
/// the first fault found is the one `serde_json` would report.
fn scan(raw: &str, state: &mut State<'_>) -> Option<Result<(), Fault>> {
    let mut object = FlatObject::open_str(raw)?;
    while let Next::Key(key) = object.next_key()? {
        object.colon()?;
        let role = state.role(key);
        if matches!(role, Role::Unknown) {
            object.skip_value(1)?;
            state.unknown += 1;
            continue;
        }
        let value = object.scalar()?;
        if let Err(fault) = state.take(role, key, &value) {
            return Some(Err(fault));
        }
    }
    object.close()?;
    Some(Ok(()))
}

struct State<'s> {
    app: &'s AppRef<'s>,
    /// Where the payload is in the uplink, for messages.
    key: &'s str,
    values: Values,
    lane: Option<u32>,
    date: Option<Observed>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    unknown: u32,
    slot: FaultSlot,
}

impl<'s> State<'s> {
    /// Nothing read yet of the payload at `key`.
    fn new(app: &'s AppRef<'s>, key: &'s str) -> Self {
        Self {
            app,
            key,
            values: Values::default(),
            lane: None,
            date: None,
            from: None,
            to: None,
            unknown: 0,
            slot: FaultSlot::default(),
        }
    }
}

fn twice(key: &str) -> Fault {
    Fault::new(
        Reason::DuplicateKey,
        format!("key `{key}` appears twice in the decoded payload"),
    )
}

/// What a key of the decoded payload is.
#[derive(Debug, Clone, Copy)]
enum Role {
    Date,
    From,
    To,
    Lane,
    Attribute(Mapping),
    Unknown,
}

impl State<'_> {
    /// Forgets everything read, to walk the payload again from its start.
    fn reset(&mut self) {
        self.values = Values::default();
        self.lane = None;
        self.date = None;
        self.from = None;
        self.to = None;
        self.unknown = 0;
        self.slot = FaultSlot::default();
    }

    #[inline]
    fn role(&self, key: &str) -> Role {
        match key {
            "dateObserved" => Role::Date,
            "dateObservedFrom" if self.app.domain == Domain::Traffic => Role::From,
            "dateObservedTo" if self.app.domain == Domain::Traffic => Role::To,
            "laneId" if self.app.domain == Domain::Traffic => Role::Lane,
            _ => self.app.mapping(key).map_or(Role::Unknown, Role::Attribute),
        }
    }

    /// Takes in the value of a key that has a role.
    fn take(&mut self, role: Role, key: &str, v: &Scalar<'_>) -> Result<(), Fault> {
        match role {
            Role::Date => {
                if self.date.is_some() {
                    return Err(twice(key));
                }
                self.date = Some(date_observed(key, v, self.app.domain)?);
            }
            Role::From | Role::To => {
                let slot = if matches!(role, Role::From) {
                    &mut self.from
                } else {
                    &mut self.to
                };
                if slot.is_some() {
                    return Err(twice(key));
                }
                *slot = Some(instant(key, v)?);
            }
            Role::Lane => {
                if self.lane.is_some() {
                    return Err(twice(key));
                }
                self.lane = Some(lane(key, v)?);
            }
            Role::Attribute(m) => {
                let value = v.to_value(key, m.attribute, m.scale, m.offset)?;
                if self.values.set(m.attribute, value).is_some() {
                    return Err(Fault::new(
                        Reason::DuplicateKey,
                        format!(
                            "key `{key}`: {} is given twice in the decoded payload",
                            m.attribute.key()
                        ),
                    ));
                }
            }
            // Skipped and counted without reading the value (see `visit_map`).
            Role::Unknown => {}
        }
        Ok(())
    }
}

/// Visits the payload object, reading only the keys the application knows.
struct Walker<'w, 's>(&'w mut State<'s>);

impl Walker<'_, '_> {
    fn not_an_object<E: serde::de::Error>(self, shown: &str) -> E {
        let fault = wrong_type(self.0.key, shown, "an object");
        self.0.slot.fail(fault)
    }
}

impl<'de> Visitor<'de> for Walker<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(self.not_an_object("null"))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Bool(v).describe()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v as f64).describe()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v as f64).describe()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v).describe()))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Str(v.into()).describe()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object(&Scalar::Array.describe()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let role = self.0.role(&key);
            if matches!(role, Role::Unknown) {
                map.next_value::<IgnoredAny>()?;
                self.0.unknown += 1;
                continue;
            }
            let value = match map.next_value::<Scalar<'de>>() {
                Ok(v) => v,
                Err(e) => {
                    self.0.slot.key = Some(key.into_owned());
                    return Err(e);
                }
            };
            if let Err(fault) = self.0.take(role, &key, &value) {
                return Err(self.0.slot.fail(fault));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::{scan, walk_with, Parser, State};
    use crate::lorawan::tests::{applications, json_value, TRAFFIC_APP_ID};

    /// A waste application with a mapped key, a traffic one (lanes and
    /// intervals) and a lighting one named by convention.
    const APPLICATIONS: [&str; 3] = ["rabat-waste", TRAFFIC_APP_ID, "casablanca-lighting"];

    /// The decoded payload walked by `parser`, as text: `Debug` tells every
    /// field apart, -0.0 from 0.0 included.
    fn walked(parser: Parser, raw: &str, application: &str) -> String {
        let apps = applications(Some(TRAFFIC_APP_ID));
        let app = apps.find(application).expect("a test application");
        format!("{:?}", walk_with(parser, raw, "object", &app))
    }

    /// Whether the scanner reads the payload itself.
    fn takes_scanner(raw: &str, application: &str) -> bool {
        let apps = applications(Some(TRAFFIC_APP_ID));
        let app = apps.find(application).expect("a test application");
        let mut state = State::new(&app, "object");
        scan(raw, &mut state).is_some()
    }

    /// Keys the applications above read, and some they do not.
    const KEYS: &[&str] = &[
        "fill_pct",
        "fillingLevel",
        "temperature",
        "batteryLevel",
        "status",
        "intensity",
        "vehicles",
        "occupancy",
        "averageVehicleSpeed",
        "congested",
        "powerState",
        "illuminanceLevel",
        "laneId",
        "dateObserved",
        "dateObservedFrom",
        "dateObservedTo",
        "tilt",
        "battery_mv",
    ];

    /// A value of any shape, fitting its key or not.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (0_u32..12_000, 0_usize..4, any::<bool>()).prop_map(|(n, decimals, negative)| {
                let x = f64::from(n) / 100.0;
                let sign = if negative { "-" } else { "" };
                format!("{sign}{x:.decimals$}")
            }),
            3 => prop::sample::select(&[
                "\"ok\"",
                "\"on\"",
                "\"lidOpen\"",
                "\"warm\"",
                "\"2026-11-28T21:14:05Z\"",
                "\"2026-11-28T21:05:00Z/2026-11-28T21:10:00Z\"",
                "\"a\\\"b\"",
                "\"é\"",
                "1795900000",
                "1795900000000",
                "true",
                "false",
                "null",
                "[]",
                "[1, {\"a\": 2}]",
                "{\"c\": 3}",
                "1e400",
                "-0",
                "0.1234567890123456789",
                "123456789012345678901",
                "01",
                "1.",
                "tru",
                "",
            ][..])
            .prop_map(str::to_owned),
            1 => any::<f64>().prop_map(|x| format!("{x}")),
            1 => any::<i64>().prop_map(|x| x.to_string()),
            1 => "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{0,20})?([eE][+-]?[0-9]{0,3})?",
        ]
    }

    /// A flat object over those keys, with white space here and there and
    /// sometimes a broken separator or end.
    fn flat_object() -> impl Strategy<Value = String> {
        let whitespace = prop_oneof![8 => Just(""), 2 => Just(" "), 1 => Just("\n\t")];
        let entry = (prop::sample::select(KEYS), value(), whitespace.clone());
        let separator = prop_oneof![40 => Just(","), 1 => Just(""), 1 => Just(",,")];
        (
            prop::collection::vec((entry, separator), 0..7),
            prop_oneof![20 => Just("}"), 1 => Just(""), 1 => Just("} x"), 1 => Just(",}")],
        )
            .prop_map(|(entries, end)| {
                let mut text = String::from("{");
                for (i, ((key, value, ws), separator)) in entries.iter().enumerate() {
                    if i > 0 {
                        text.push_str(separator);
                    }
                    text.push_str(&[ws, "\"", key, "\"", ws, ":", ws, value, ws].concat());
                }
                text.push_str(end);
                text
            })
    }

    /// Any payload: flat objects, nested JSON of any shape, with a byte now
    /// and then put in or cut off.
    fn payload() -> impl Strategy<Value = String> {
        let base = prop_oneof![
            4 => flat_object(),
            1 => json_value().prop_map(|v| v.to_string()),
        ];
        (
            base,
            any::<prop::sample::Index>(),
            prop_oneof![6 => Just(None), 1 => prop::sample::select(&["\"", "\\", "{", "}", ",", ":", " ", "é", "\u{1}"][..]).prop_map(Some)],
            0_usize..2,
        )
            .prop_map(|(mut text, at, insert, cut)| {
                if let Some(insert) = insert {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    text.insert_str(at, insert);
                    let mut end = (at + insert.len() + cut).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at + insert.len()..end, "");
                }
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn the_scanner_walks_as_serde_does(
            raw in payload(),
            application in prop::sample::select(&APPLICATIONS[..]),
        ) {
            prop_assert_eq!(
                walked(Parser::Fast, &raw, application),
                walked(Parser::Serde, &raw, application),
                "payload {:?}",
                raw
            );
        }
    }

    /// The property above proves little unless the scanner reads many cases,
    /// accepted and rejected alike.
    #[test]
    fn generated_payloads_take_both_paths() {
        let mut runner = TestRunner::deterministic();
        let strategy = (payload(), prop::sample::select(&APPLICATIONS[..]));
        let (mut scanned, mut accepted, mut total) = (0, 0, 0);
        for _ in 0..2000 {
            let (raw, application) = strategy.new_tree(&mut runner).expect("a case").current();
            total += 1;
            if takes_scanner(&raw, application) {
                scanned += 1;
                if walked(Parser::Fast, &raw, application).starts_with("Ok(") {
                    accepted += 1;
                }
            }
        }
        assert!(scanned * 5 > total * 2, "{scanned} of {total} scanned");
        assert!(scanned * 10 < total * 9, "{scanned} of {total} scanned");
        assert!(
            accepted * 10 > total,
            "{accepted} of {total} scanned and accepted"
        );
        assert!(
            accepted < scanned,
            "{accepted} of {scanned} scanned and accepted"
        );
    }

    #[test]
    fn common_payloads_take_the_scanner() {
        for (application, raw) in [
            (
                "rabat-waste",
                r#"{"fillingLevel":0.43,"temperature":22.1,"batteryLevel":0.8,"status":"ok"}"#,
            ),
            (
                "rabat-waste",
                r#"{ "fill_pct": 83, "temperature": 24.5, "tilt": false, "battery_mv": 3610 }"#,
            ),
            (
                TRAFFIC_APP_ID,
                r#"{"laneId":1,"intensity":57,"occupancy":0.31,"averageVehicleSpeed":47.5}"#,
            ),
            (
                TRAFFIC_APP_ID,
                r#"{"vehicles": 4, "dateObservedFrom": "2026-11-28T21:00:00Z", "dateObservedTo": 1795900100}"#,
            ),
        ] {
            assert!(takes_scanner(raw, application), "{raw}");
            let got = walked(Parser::Fast, raw, application);
            assert!(got.starts_with("Ok("), "{got}");
            assert_eq!(got, walked(Parser::Serde, raw, application));
        }
    }
}
