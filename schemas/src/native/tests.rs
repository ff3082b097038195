//! The fast path must agree with the general path on every input: the same
//! reading, or the same reason and message.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::entry::State;
use super::{decode_with, fast_path, Parser};
use crate::application::Applications;
use crate::context::{Context, Target};
use crate::domain::Domain;
use crate::reading::{Reading, Timestamp, Values};
use crate::time::TimeLimits;

/// 2026-11-28T21:15:00Z.
const NOW: Timestamp = Timestamp::from_secs(1_795_900_500);

const KEYS: &[&str] = &[
    "batteryLevel",
    "rssi",
    "snr",
    "powerState",
    "illuminanceLevel",
    "powerConsumption",
    "energyConsumed",
    "voltage",
    "current",
    "status",
    "fillingLevel",
    "temperature",
    "methaneConcentration",
    "cargoWeight",
    "intensity",
    "occupancy",
    "averageVehicleSpeed",
    "averageVehicleLength",
    "congested",
    "id",
    "dateObserved",
    "dateObservedFrom",
    "dateObservedTo",
    "laneId",
    "type",
    "@context",
    "end_device_ids",
    "uplink_message",
    "deviceInfo",
    "name",
    "",
    "é",
];

/// Escaped spellings of known keys, and keys the scanner must not read.
const ODD_KEYS: &[&str] = &[
    r"powerSt\u0061te",
    r"uplink\u005fmessage",
    r"id\n",
    r#"sta\"tus"#,
    "tab\there",
];

const STRINGS: &[&str] = &[
    "on",
    "off",
    "low",
    "bootingUp",
    "ok",
    "lidOpen",
    "burning",
    "defectiveLamp",
    "ON",
    "",
    "lamp-1",
    "counter-7",
    "bin-3",
    "2026-11-28T21:14:05Z",
    "2026-11-28T21:14:05.812+01:00",
    "2026-11-28T21:10:00Z/2026-11-28T21:14:00Z",
    "2026-11-28T21:14:00Z/2026-11-28T21:10:00Z",
    "2026-11-28T20:00:00Z/2026-11-28T21:14:00Z",
    "2026-11-29T21:14:05Z",
    "2025-01-01T00:00:00Z",
    "yesterday",
    "a/b",
    "é",
    "\u{1F600}",
    r"\u006fn",
    r"lamp\u002d1",
    r"o\n",
    r#"\""#,
    r"\\",
    r"\u00",
    "\t",
    "\u{7f}",
];

const ODD: &[&str] = &[
    "true",
    "false",
    "null",
    "tru",
    "nul",
    "True",
    "truex",
    "[]",
    "[1, 2]",
    "{}",
    r#"{"a": {"b": [1]}}"#,
    "[",
    "{",
    r#"[{"n": 1}]"#,
    "01",
    "-",
    "+1",
    ".5",
    "1.",
    "1e",
    "1e+",
    "-0",
    "-0.0",
    "0e999999999999",
    "1e309",
    "-1e309",
    "1e-400",
    "1e22",
    "1e23",
    "1.0e+22",
    "0.1e-22",
    "9007199254740992",
    "9007199254740993",
    "9007199254740993.0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234",
    "0.12345678901234567890123",
    "NaN",
    "Infinity",
    "1x",
    "1 2",
    "\"unterminated",
    "",
];

fn whitespace() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        40 => Just(""),
        8 => prop::sample::select(&[" ", "\n", "\t", "\r\n", "  "][..]),
        1 => Just("\u{c}"),
    ]
}

/// The text of a value: numbers of every shape, strings, literals, nesting.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(STRINGS).prop_map(|s| format!("\"{s}\"")),
        3 => prop::sample::select(ODD).prop_map(str::to_owned),
        6 => (0_u32..12_000, 0_usize..4, any::<bool>()).prop_map(|(n, decimals, negative)| {
            let x = f64::from(n) / 10_f64.powi(2);
            let sign = if negative { "-" } else { "" };
            format!("{sign}{x:.decimals$}")
        }),
        1 => any::<f64>().prop_map(|x| format!("{x}")),
        1 => any::<f64>().prop_map(|x| format!("{x:e}")),
        1 => any::<i64>().prop_map(|x| x.to_string()),
        1 => any::<u64>().prop_map(|x| x.to_string()),
        2 => (-86_400_i64..86_400, any::<bool>()).prop_map(|(d, ms)| {
            let s = NOW.as_nanos() / 1_000_000_000 + d;
            if ms {
                (s * 1000).to_string()
            } else {
                s.to_string()
            }
        }),
        2 => "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{0,24})?([eE][+-]?[0-9]{0,4})?",
        1 => "\"[a-zA-Z0-9 /:.é\\\\\"\\t-]{0,12}\"",
    ]
}

/// Between entries: a comma, or something that breaks the object.
fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        40 => Just(","),
        1 => prop::sample::select(&["", ",,", ";", ":"][..]),
    ]
}

fn key() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => prop::sample::select(KEYS),
        1 => prop::sample::select(ODD_KEYS),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    key: &'static str,
    value: String,
    ws: [&'static str; 4],
    separator: &'static str,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        key(),
        value(),
        [whitespace(), whitespace(), whitespace(), whitespace()],
        separator(),
    )
        .prop_map(|(key, value, ws, separator)| Entry {
            key,
            value,
            ws,
            separator,
        })
}

/// A flat object over the known keys, sometimes broken.
fn object() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(entry(), 0..9),
        [whitespace(), whitespace(), whitespace()],
        prop_oneof![
            20 => Just(""),
            1 => prop::sample::select(&[",", "x", "}", "{", "\u{0}"][..]),
        ],
    )
        .prop_map(|(entries, [before, inside, after], tail)| {
            let mut text = format!("{before}{{{inside}");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    text.push_str(e.separator);
                }
                let [a, b, c, d] = e.ws;
                text.push_str(&[a, "\"", e.key, "\"", b, ":", c, &e.value, d].concat());
            }
            text.push_str(&[tail, "}", after].concat());
            text.into_bytes()
        })
}

/// An object with one byte changed, inserted or cut off.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (object(), any::<prop::sample::Index>(), any::<u8>(), 0_u8..3).prop_map(
        |(mut bytes, at, byte, how)| {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        },
    )
}

/// A number as devices write it: fixed decimals, an exponent, or an integer.
fn plausible_number() -> impl Strategy<Value = String> {
    (0_u32..100_000, 0_u32..5, 0_u8..3).prop_map(|(n, decimals, style)| match style {
        0 => format!("{:.*}", decimals as usize, f64::from(n % 1000) / 1000.0),
        1 => format!("{}e-{}", n % 1000, decimals + 3),
        _ => (n % 300).to_string(),
    })
}

/// A value that fits its key most of the time.
fn plausible_value(key: &'static str) -> BoxedStrategy<String> {
    let quoted = |set: &'static [&'static str]| {
        prop::sample::select(set)
            .prop_map(|s| format!("\"{s}\""))
            .boxed()
    };
    match key {
        "powerState" => quoted(&["on", "off", "low", "bootingUp"]),
        "status" => quoted(&["ok", "lidOpen", "burning", "defectiveLamp"]),
        "id" => quoted(&["lamp-1", "counter-7"]),
        "dateObserved" => prop_oneof![
            quoted(&[
                "2026-11-28T21:14:05Z",
                "2026-11-28T22:14:05.5+01:00",
                "2026-11-28T21:05:00Z/2026-11-28T21:10:00Z",
            ]),
            (-3600_i64..60).prop_map(|d| (NOW.as_nanos() / 1_000_000_000 + d).to_string()),
        ]
        .boxed(),
        "congested" => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        "laneId" => (1_u32..4).prop_map(|n| n.to_string()).boxed(),
        _ => plausible_number().boxed(),
    }
}

/// A well-formed object whose keys appear once, each with a fitting value.
fn plausible() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::subsequence(&KEYS[..26], 1..9)
        .prop_flat_map(|keys| {
            keys.into_iter()
                .map(|k| (Just(k), plausible_value(k), whitespace()))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
        .prop_map(|entries| {
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v, ws)| format!("{ws}\"{k}\":{ws}{v}"))
                .collect();
            format!("{{{}}}", body.join(",")).into_bytes()
        })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => plausible(),
        4 => object(),
        2 => mutated(),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => "[{}\\[\\]\":a-zA-Z0-9,.e+ -]{0,40}".prop_map(String::into_bytes),
    ]
}

fn domain() -> impl Strategy<Value = Domain> {
    prop::sample::select(&Domain::ALL[..])
}

fn device() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["lamp-1", "counter-7"][..])
}

fn decode(parser: Parser, payload: &[u8], domain: Domain, device: &str) -> String {
    let target = Target {
        domain,
        commune: "rabat",
        device,
    };
    let limits = TimeLimits::default();
    let applications = Applications::default();
    let ctx = Context {
        now: NOW,
        limits: &limits,
        applications: &applications,
    };
    // A reading already in the buffer, which must stay as it is.
    let mut out = vec![Reading::new(domain, "casablanca", "other", NOW)];
    let result = decode_with(parser, payload, target, &ctx, &mut out);
    // Debug output tells every field apart, -0.0 from 0.0 included.
    format!("{result:?}\n{out:#?}")
}

/// Whether the scanner reads the payload itself.
fn takes_fast_path(payload: &[u8], domain: Domain, device: &str) -> bool {
    let target = Target {
        domain,
        commune: "rabat",
        device,
    };
    let mut values = Values::default();
    let mut state = State::new(target, &mut values);
    fast_path::read(payload, &mut state).is_some()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn fast_path_agrees_with_serde(payload in payload(), domain in domain(), device in device()) {
        let fast = decode(Parser::Fast, &payload, domain, device);
        let serde = decode(Parser::Serde, &payload, domain, device);
        prop_assert_eq!(fast, serde, "payload {:?}", String::from_utf8_lossy(&payload));
    }
}

/// The generator must exercise both paths, or the property above proves little.
#[test]
fn generated_payloads_take_both_paths() {
    let mut runner = TestRunner::deterministic();
    let strategy = (payload(), domain(), device());
    let (mut fast, mut readings, mut total) = (0, 0, 0);
    for _ in 0..2000 {
        let tree = strategy.new_tree(&mut runner).expect("a case");
        let (payload, domain, device) = tree.current();
        total += 1;
        if takes_fast_path(&payload, domain, device) {
            fast += 1;
            if decode(Parser::Fast, &payload, domain, device).starts_with("Ok(Reading") {
                readings += 1;
            }
        }
    }
    assert!(fast * 5 > total * 2, "{fast} of {total} on the fast path");
    assert!(fast * 5 < total * 4, "{fast} of {total} on the fast path");
    assert!(readings * 10 > total, "{readings} of {total} fast readings");
}

#[test]
fn common_messages_take_the_fast_path() {
    for (domain, device, payload) in [
        (
            Domain::Lighting,
            "lamp-1",
            r#"{"id":"lamp-1","dateObserved":"2026-11-28T21:14:05Z","powerState":"on","illuminanceLevel":0.62,"powerConsumption":41.8,"voltage":229.4,"current":0.19,"status":"ok"}"#,
        ),
        (
            Domain::Waste,
            "lamp-1",
            "{\n  \"dateObserved\": 1795900400,\n  \"fillingLevel\": 0.83,\n  \"temperature\": -3.5,\n  \"status\": \"ok\",\n  \"batteryLevel\": 0.77\n}\n",
        ),
        (
            Domain::Traffic,
            "counter-7",
            r#"{"id":"counter-7","dateObserved":"2026-11-28T21:05:00Z/2026-11-28T21:10:00Z","laneId":2,"intensity":118,"occupancy":0.31,"averageVehicleSpeed":47.5,"averageVehicleLength":4.6,"congested":false}"#,
        ),
    ] {
        assert!(
            takes_fast_path(payload.as_bytes(), domain, device),
            "{payload}"
        );
        let got = decode(Parser::Fast, payload.as_bytes(), domain, device);
        assert!(got.starts_with("Ok(Reading(0))"), "{got}");
        assert_eq!(got, decode(Parser::Serde, payload.as_bytes(), domain, device));
    }
}
