//! Test support for both decoders, and the properties they share: no input
//! panics, and a rejected uplink leaves the output untouched.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{decode_chirpstack, decode_tts};
use crate::application::{ApplicationConfig, Applications, FieldMapping};
use crate::context::Context;
use crate::domain::Domain;
use crate::reading::{Reading, Timestamp};
use crate::rejection::Fault;
use crate::time::{parse_rfc3339, TimeLimits};

pub(super) const TTS_WASTE: &str = include_str!("../../tests/fixtures/ttn-v3-uplink-waste.json");
pub(super) const TTS_LIGHTING: &str =
    include_str!("../../tests/fixtures/ttn-v3-uplink-streetlight.json");
pub(super) const CHIRPSTACK_TRAFFIC: &str =
    include_str!("../../tests/fixtures/chirpstack-v4-uplink-traffic.json");

/// The ChirpStack application id of the traffic fixture.
pub(super) const TRAFFIC_APP_ID: &str = "6f1e8e3c-0b7a-4c44-9e55-0e4f1b2d9a10";

/// An instant written as RFC 3339.
pub(super) fn at(s: &str) -> Timestamp {
    parse_rfc3339("test", s).expect("a valid test timestamp")
}

fn mapping(source: &str, attribute: &str, scale: f64) -> FieldMapping {
    FieldMapping {
        source: source.into(),
        attribute: attribute.into(),
        scale,
        offset: 0.0,
    }
}

/// `rabat-waste` with its percentage fill level; `configured_traffic_id`,
/// when given, is a traffic application of Salé with a vehicle count key.
pub(super) fn applications(configured_traffic_id: Option<&str>) -> Applications {
    let mut config = HashMap::from([(
        "rabat-waste".to_owned(),
        ApplicationConfig {
            commune: "rabat".into(),
            domain: Domain::Waste,
            fields: vec![mapping("fill_pct", "fillingLevel", 0.01)],
        },
    )]);
    if let Some(id) = configured_traffic_id {
        config.insert(
            id.to_owned(),
            ApplicationConfig {
                commune: "sale".into(),
                domain: Domain::Traffic,
                fields: vec![mapping("vehicles", "intensity", 1.0)],
            },
        );
    }
    Applications::new(&config).expect("valid test applications")
}

/// A decoder under test.
pub(super) type Decoder =
    fn(&[u8], &str, &str, &Context<'_>, &mut Vec<Reading>) -> Result<u32, Fault>;

/// Runs a decoder at 2026-11-28T21:15:00Z with the given applications.
pub(super) fn run(
    decode: Decoder,
    apps: &Applications,
    payload: &[u8],
    topic_a: &str,
    topic_b: &str,
) -> (Result<u32, Fault>, Vec<Reading>) {
    let limits = TimeLimits::default();
    let ctx = Context {
        now: at("2026-11-28T21:15:00Z"),
        limits: &limits,
        applications: apps,
    };
    let mut out = Vec::new();
    let result = decode(payload, topic_a, topic_b, &ctx, &mut out);
    (result, out)
}

/// A fixture with the value at a JSON pointer replaced by `value` (JSON text),
/// or removed when `value` is `None`.
pub(super) fn edit(fixture: &str, pointer: &str, value: Option<&str>) -> Vec<u8> {
    let mut doc: Value = serde_json::from_str(fixture).expect("fixture is JSON");
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = doc.pointer_mut(parent).expect("the parent exists");
    match (parent, value) {
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Object(map), Some(v)) => {
            map.insert(
                key.to_owned(),
                serde_json::from_str(v).expect("value is JSON"),
            );
        }
        (Value::Array(items), v) => {
            let i: usize = key.parse().expect("an array index");
            match v {
                None => {
                    items.remove(i);
                }
                Some(v) => items[i] = serde_json::from_str(v).expect("value is JSON"),
            }
        }
        _ => panic!("{pointer} is not inside an object or array"),
    }
    serde_json::to_vec(&doc).expect("serialisable")
}

/// Every JSON pointer of a document, for mutating it.
fn pointers(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, &p, out);
            }
        }
        _ => {}
    }
}

/// Runs both decoders on one payload with a reading already in `out`, and
/// checks that exactly one reading is appended on success and none on error.
fn check_both(payload: &[u8]) {
    let apps = applications(Some(TRAFFIC_APP_ID));
    let limits = TimeLimits::default();
    let ctx = Context {
        now: at("2026-11-28T21:15:00Z"),
        limits: &limits,
        applications: &apps,
    };
    let before = Reading::new(Domain::Waste, "rabat", "sentinel", ctx.now);
    let cases: [(Decoder, &str, &str); 3] = [
        (decode_tts, "rabat-waste", "bin-rabat-agdal-017"),
        (decode_tts, "casablanca-lighting", "lamp-casa-maarif-0412"),
        (decode_chirpstack, TRAFFIC_APP_ID, "70b3d57ed0051a2f"),
    ];
    for (decode, a, b) in cases {
        let mut out = vec![before.clone()];
        match decode(payload, a, b, &ctx, &mut out) {
            Ok(_) => {
                assert_eq!(out.len(), 2);
                assert_eq!(out[0], before);
            }
            Err(fault) => {
                assert_eq!(out.as_slice(), std::slice::from_ref(&before));
                assert!(!fault.message.is_empty());
            }
        }
    }
}

const KEYS: &[&str] = &[
    "end_device_ids",
    "device_id",
    "application_ids",
    "application_id",
    "received_at",
    "uplink_message",
    "decoded_payload",
    "rx_metadata",
    "rssi",
    "channel_rssi",
    "snr",
    "deviceInfo",
    "applicationId",
    "applicationName",
    "deviceName",
    "devEui",
    "time",
    "object",
    "rxInfo",
    "laneId",
    "dateObserved",
    "dateObservedFrom",
    "dateObservedTo",
    "fill_pct",
    "temperature",
    "intensity",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-300i32..300).prop_map(Value::from),
        prop::sample::select(vec![
            "rabat-waste",
            "bin-rabat-agdal-017",
            "70b3d57ed0051a2f",
            TRAFFIC_APP_ID,
            "2026-11-28T21:14:05Z",
            "2026-11-28T21:05:00Z/2026-11-28T21:10:00Z",
            "",
            "é\u{0}\"",
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// One of `fixtures` with a few bytes put in or taken out somewhere: JSON
/// punctuation, escapes, control and non-ASCII characters, or one of the
/// format's own `keys` snippets.
pub(super) fn edited_fixture(
    fixtures: Vec<&'static str>,
    keys: &[&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    let mut texts = vec![
        "", "\\", "\"", "\\n", ",", "{", "}", "[", "]", ":", " ", "null", "1", "-", "e5", "\u{1}",
        "é",
    ];
    texts.extend_from_slice(keys);
    (
        prop::sample::select(fixtures),
        any::<prop::sample::Index>(),
        0..3usize,
        prop::sample::select(texts),
    )
        .prop_map(|(fixture, at, cut, text)| {
            let fixture = fixture.as_bytes();
            let at = at.index(fixture.len());
            let mut bytes = fixture[..at].to_vec();
            bytes.extend_from_slice(text.as_bytes());
            bytes.extend_from_slice(&fixture[(at + cut).min(fixture.len())..]);
            bytes
        })
}

/// The fixtures with one value replaced anywhere in them.
pub(super) fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let fixtures: Vec<(String, Vec<String>)> = [TTS_WASTE, TTS_LIGHTING, CHIRPSTACK_TRAFFIC]
        .iter()
        .map(|f| {
            let doc: Value = serde_json::from_str(f).expect("fixture is JSON");
            let mut ps = Vec::new();
            pointers(&doc, "", &mut ps);
            ((*f).to_owned(), ps)
        })
        .collect();
    (
        prop::sample::select(fixtures),
        any::<prop::sample::Index>(),
        json_value(),
    )
        .prop_map(|((fixture, ps), i, v)| {
            let mut doc: Value = serde_json::from_str(&fixture).expect("fixture is JSON");
            if let Some(slot) = doc.pointer_mut(i.get(&ps).as_str()) {
                *slot = v;
            }
            serde_json::to_vec(&doc).expect("serialisable")
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_both(&bytes);
    }

    #[test]
    fn arbitrary_objects_never_panic(v in json_value()) {
        check_both(&serde_json::to_vec(&v).expect("serialisable"));
        check_both(&serde_json::to_vec(&json!({ "uplink_message": { "decoded_payload": v } }))
            .expect("serialisable"));
    }

    #[test]
    fn mutated_fixtures_never_panic(payload in mutated_fixture()) {
        check_both(&payload);
    }

    #[test]
    fn truncated_fixtures_never_panic(cut in 0usize..2500) {
        for f in [TTS_WASTE, TTS_LIGHTING, CHIRPSTACK_TRAFFIC] {
            check_both(&f.as_bytes()[..cut.min(f.len())]);
        }
    }
}

#[test]
fn the_fixtures_decode() {
    check_both(TTS_WASTE.as_bytes());
    let apps = applications(None);
    let (r, out) = run(
        decode_tts,
        &apps,
        TTS_WASTE.as_bytes(),
        "rabat-waste",
        "bin-rabat-agdal-017",
    );
    assert_eq!(r, Ok(2));
    assert_eq!(out.len(), 1);
}
