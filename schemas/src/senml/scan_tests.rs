//! The scanner's path for packs ([`super::fast_path`]) against the
//! `serde_json` path it stands in for: the same readings or the same fault
//! for every input, and the common shape of real packs read by the scanner.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::{decode, decode_serde, scans};
use crate::application::Applications;
use crate::context::{Context, Target};
use crate::domain::Domain;
use crate::reading::{Reading, Timestamp};
use crate::rejection::{Fault, Reason};
use crate::time::TimeLimits;

const FIXTURE: &str = include_str!("../../tests/fixtures/senml-streetlight.json");
const BAD_INPUTS: &str = include_str!("../../tests/fixtures/bad-inputs.txt");

/// A pack as the pipeline benchmark sends it (lighting, four records).
const BENCH: &str = r#"[{"bn":"urn:dev:ow:lamp-1:","bt":1795900000,"bu":"W","n":"powerConsumption","v":54.2},{"n":"illuminanceLevel","u":"/","v":0.70},{"n":"powerState","vs":"on"},{"n":"energyConsumed","u":"kWh","v":1234.5}]"#;

/// A traffic pack with a lane, relative times and a sum.
const TRAFFIC: &str = r#"[
  {"bn": "lamp-1/", "bt": -60, "n": "laneId", "v": 2},
  {"n": "intensity", "u": "count", "s": 14},
  {"n": "averageVehicleSpeed", "u": "m/s", "v": 12.5, "t": 0},
  {"n": "congested", "vb": false},
  {"n": "occupancy", "u": "%", "v": 35, "t": 30, "ut": 60}
]"#;

/// The time of receipt: shortly after the fixture's times.
fn now() -> Timestamp {
    let dt = Utc
        .with_ymd_and_hms(2026, 11, 28, 21, 10, 0)
        .single()
        .expect("a valid date");
    Timestamp::from_datetime(dt).expect("within the representable years")
}

/// The targets every pack is decoded for: each domain, and the devices the
/// generated names are about.
const TARGETS: [(Domain, &str); 5] = [
    (Domain::Lighting, "lamp-1"),
    (Domain::Lighting, "lamp-casa-maarif-0042"),
    (Domain::Traffic, "lamp-1"),
    (Domain::Waste, "lamp-1"),
    (Domain::Waste, "lamp-2"),
];

type Decoder = fn(&[u8], Target<'_>, &Context<'_>, &mut Vec<Reading>) -> Result<u32, Fault>;

/// Calls `f` with the target `domain`/rabat/`device` and a context at
/// [`now`].
fn with_target<R>(
    domain: Domain,
    device: &str,
    f: impl FnOnce(Target<'_>, &Context<'_>) -> R,
) -> R {
    let limits = TimeLimits::default();
    let applications = Applications::default();
    let ctx = Context {
        now: now(),
        limits: &limits,
        applications: &applications,
    };
    let target = Target {
        domain,
        commune: "rabat",
        device,
    };
    f(target, &ctx)
}

/// Decodes into a vector that already holds a reading; gives what came
/// out, spelled with `Debug` so that even `-0.0` and `0.0` differ.
fn run(decoder: Decoder, payload: &[u8], domain: Domain, device: &str) -> String {
    with_target(domain, device, |target, ctx| {
        let mut out = vec![Reading::new(Domain::Waste, "sale", "bin-0", now())];
        let result = decoder(payload, target, ctx, &mut out);
        format!("{result:?} {out:?}")
    })
}

/// Whether the scanner reads the pack (for a lighting lamp).
fn scanned(payload: &[u8]) -> bool {
    with_target(Domain::Lighting, "lamp-1", |target, ctx| {
        scans(payload, target, ctx)
    })
}

/// The decoder gives what the `serde_json` path gives, for every target.
/// Returns whether the scanner read the pack, and whether some target
/// accepted it.
fn same_as_serde(payload: &[u8]) -> Result<(bool, bool), TestCaseError> {
    let shown = String::from_utf8_lossy(payload);
    let mut accepted = false;
    for (domain, device) in TARGETS {
        let fast = run(decode, payload, domain, device);
        let serde = run(decode_serde, payload, domain, device);
        accepted |= serde.starts_with("Ok");
        prop_assert_eq!(fast, serde, "{} for {}/{}", shown, domain, device);
    }
    Ok((scanned(payload), accepted))
}

/// White space between tokens, mostly none.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 2 => Just(" "), 1 => Just("\n  "), 1 => Just("\t")]
}

/// A string's text, as JSON: mostly plain, sometimes with an escape
/// (some of which spell a meaningful value).
fn string_text(plain: Vec<&'static str>) -> BoxedStrategy<String> {
    prop_oneof![
        12 => prop::sample::select(plain).prop_map(|s| format!("\"{s}\"")),
        1 => prop::sample::select(vec![
            r#""power\u0043onsumption""#,
            r#""urn:dev:ow:lamp-1\u003a""#,
            r#""lamp-1\/""#,
            r#""\u006fn""#,
            r#""k\u0057h""#,
            r#""a\"b""#,
            r#""line\n""#,
            r#""\ud83d\ude00""#,
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A number's text: common ones, and some the scanner does not convert.
fn number_text() -> BoxedStrategy<String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "0", "-0", "1", "2", "-1", "0.5", "0.70", "54.2", "55.0", "1234.5", "229",
            "-60", "60", "30.5", "1795900000", "1795900060.25", "268435456", "1e2",
            "1E+2", "2.5e-3", "-0.0", "1e22", "10", "11", "1e300",
        ])
        .prop_map(str::to_owned),
        3 => (-100i32..2000).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "1e400", "-1e400", "1e23", "0.1234567890123456789", "123456789012345678901",
            "18446744073709551615", "-9223372036854775809", "9007199254740993.5", "01",
            "1.", ".5", "+1", "-", "1e",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A value of any JSON type, nested ones included, as text.
fn junk_text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
        2 => number_text(),
        2 => string_text(vec!["on", "W", "", "é", "x"]),
        2 => prop::sample::select(vec![
            "[]",
            "{}",
            "[1, {\"a\": []}]",
            "{\"v\": 1, \"n\": \"x\"}",
            "{\"a\": [\"\\u0041\"]}",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// A key's text: the label, or now and then the same label escaped.
fn key_text(label: &'static str) -> BoxedStrategy<String> {
    let escaped = match label {
        "n" => r#""\u006e""#,
        "v" => r#""\u0076""#,
        "bn" => r#""b\u006e""#,
        "vs" => r#""v\u0073""#,
        _ => r#""\u0078_""#,
    };
    prop_oneof![20 => Just(format!("\"{label}\"")), 1 => Just(escaped.to_owned())].boxed()
}

/// An entry (key text, value text) for `label`, its value mostly of the
/// label's JSON type.
fn entry(label: &'static str) -> BoxedStrategy<(String, String)> {
    let names = vec![
        "powerConsumption",
        "illuminanceLevel",
        "powerState",
        "energyConsumed",
        "voltage",
        "current",
        "status",
        "fillingLevel",
        "temperature",
        "intensity",
        "averageVehicleSpeed",
        "occupancy",
        "congested",
        "laneId",
        "lamp-1:voltage",
        "lamp-2/powerConsumption",
        "unknownThing",
        "-bad",
        "a b",
        "",
    ];
    let value = match label {
        "n" => string_text(names),
        "bn" => string_text(vec![
            "urn:dev:ow:lamp-1:",
            "urn:dev:ow:lamp-casa-maarif-0042:",
            "lamp-1/",
            "lamp-2:",
            "urn:dev:ow:lamp-1:power",
            "",
        ]),
        "u" | "bu" => string_text(vec![
            "W", "kW", "Wh", "kWh", "J", "/", "%", "%EL", "Cel", "K", "V", "A", "g", "m/s", "km/h",
            "count", "lx", "dBm", "furlong", "",
        ]),
        "vs" | "vd" => string_text(vec!["on", "off", "ok", "full", "fault", "ON", "", "é"]),
        "vb" => prop::sample::select(vec!["true", "false"])
            .prop_map(str::to_owned)
            .boxed(),
        _ => number_text(),
    };
    // Now and then a value of any type instead.
    let value = prop_oneof![12 => value, 1 => junk_text()];
    (key_text(label), value).boxed()
}

/// A record's entries: a name, a value, maybe a time, a unit and base
/// fields, unknown labels, then perhaps one entry dropped, repeated or
/// replaced, and the order shuffled now and then.
fn record_entries() -> BoxedStrategy<Vec<(String, String)>> {
    let value_label = prop::sample::select(vec!["v", "v", "v", "vs", "vb", "vd", "s"]);
    let optional = |label: &'static str, weight: u32| prop_oneof![weight => Just(None), 1 => entry(label).prop_map(Some)];
    let base = (
        optional("bn", 2),
        optional("bt", 2),
        optional("bu", 3),
        optional("bv", 6),
        optional("bs", 8),
        optional("bver", 10),
    );
    let extra = prop_oneof![
        10 => Just(None),
        1 => (prop::sample::select(vec!["\"foo\"", "\"\"", "\"ut\"", "\"x_\"", "\"bver\""]), junk_text())
            .prop_map(|(k, v)| Some((k.to_owned(), v))),
    ];
    (
        base,
        entry("n"),
        value_label.prop_flat_map(entry),
        optional("t", 1),
        optional("u", 1),
        extra,
        any::<prop::sample::Index>(),
        0..12_u8,
        any::<bool>(),
    )
        .prop_map(
            |((bn, bt, bu, bv, bs, bver), n, value, t, u, extra, at, edit, shuffle)| {
                let mut entries: Vec<(String, String)> = [bn, bt, bu, bv, bs, bver]
                    .into_iter()
                    .flatten()
                    .chain([Some(n), Some(value), t, u, extra].into_iter().flatten())
                    .collect();
                let i = at.index(entries.len());
                match edit {
                    0 => {
                        entries.remove(i);
                    }
                    1 => {
                        let copy = entries[i].clone();
                        entries.push(copy);
                    }
                    2 => entries[i].1 = "\"x\"".to_owned(),
                    _ => {}
                }
                if shuffle && edit < 6 {
                    entries.rotate_left(i);
                }
                entries
            },
        )
        .boxed()
}

/// A record as devices send it: an attribute with a value of its type and
/// a unit that fits it (for some domain), maybe base fields, a relative or
/// absolute time, an unknown label; its labels in any order.
fn coherent_record() -> BoxedStrategy<Vec<(String, String)>> {
    let reading = prop::sample::select(vec![
        ("powerConsumption", "v", "54.2", Some("W")),
        ("powerConsumption", "v", "0.5", Some("kW")),
        ("powerConsumption", "v", "40", None),
        ("illuminanceLevel", "v", "0.70", Some("/")),
        ("illuminanceLevel", "v", "70", Some("%")),
        ("powerState", "vs", "\"on\"", None),
        ("powerState", "vs", "\"off\"", None),
        ("energyConsumed", "v", "1234.5", Some("kWh")),
        ("energyConsumed", "s", "12", Some("Wh")),
        ("voltage", "v", "229.5", Some("V")),
        ("current", "v", "0.2", Some("A")),
        ("lamp-1:current", "v", "0.25", None),
        ("status", "vs", "\"ok\"", None),
        ("intensity", "s", "14", Some("count")),
        ("congested", "vb", "false", None),
        ("laneId", "v", "2", None),
        ("averageVehicleSpeed", "v", "12.5", Some("m/s")),
        ("fillingLevel", "v", "0.5", None),
        ("temperature", "v", "21.5", Some("Cel")),
    ]);
    let base = prop::sample::select(vec![
        vec![],
        vec![],
        vec![],
        vec![
            ("bn", "\"urn:dev:ow:lamp-1:\""),
            ("bt", "1795900000"),
            ("bu", "\"W\""),
        ],
        vec![("bn", "\"lamp-1/\""), ("bt", "-60")],
        vec![
            ("bn", "\"urn:dev:ow:lamp-casa-maarif-0042:\""),
            ("bt", "1795900000.5"),
        ],
        vec![("bt", "1795900060")],
        vec![("bu", "\"W\""), ("bv", "10")],
        vec![("bver", "10")],
    ]);
    let time = prop::sample::select(vec![
        None,
        None,
        Some("0"),
        Some("60"),
        Some("-30"),
        Some("2.5"),
        Some("1795900030"),
    ]);
    let extra = prop::sample::select(vec![
        None,
        None,
        None,
        Some(("ut", "60")),
        Some(("foo", "[1, {\"a\": null}]")),
        Some(("", "\"x\"")),
    ]);
    (
        base,
        reading,
        any::<bool>(),
        time,
        extra,
        any::<bool>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(base, (n, label, value, unit), with_unit, time, extra, shuffle, at)| {
                let quoted = |k: &str, v: &str| (format!("\"{k}\""), v.to_owned());
                let mut entries: Vec<(String, String)> =
                    base.iter().map(|(k, v)| quoted(k, v)).collect();
                entries.push(quoted("n", &format!("\"{n}\"")));
                entries.push(quoted(label, value));
                if let (Some(u), true) = (unit, with_unit) {
                    entries.push(quoted("u", &format!("\"{u}\"")));
                }
                if let Some(t) = time {
                    entries.push(quoted("t", t));
                }
                if let Some((k, v)) = extra {
                    entries.push(quoted(k, v));
                }
                if shuffle {
                    let i = at.index(entries.len());
                    entries.rotate_left(i);
                }
                entries
            },
        )
        .boxed()
}

/// A record's text from its entries, repeated labels kept.
fn record_text(entries: &[(String, String)], ws: &str) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}"))
        .collect();
    format!("{{{}{ws}}}", body.join(","))
}

/// A pack of generated records: mostly coherent ones (now and then one
/// perturbed), or records of anything (some elements not records at all);
/// laid out with white space, now and then broken at the top level.
fn generated_pack() -> impl Strategy<Value = Vec<u8>> {
    let coherent = prop_oneof![
        12 => (coherent_record(), ws()).prop_map(|(e, ws)| record_text(&e, ws)),
        1 => (record_entries(), ws()).prop_map(|(e, ws)| record_text(&e, ws)),
    ];
    let mixed = prop_oneof![
        12 => (record_entries(), ws()).prop_map(|(e, ws)| record_text(&e, ws)),
        1 => junk_text(),
    ];
    let elements = prop_oneof![
        3 => prop::collection::vec(coherent, 1..6),
        2 => prop::collection::vec(mixed, 0..6),
    ];
    let wrap = prop_oneof![
        24 => Just(("[", "]")),
        2 => Just((" \n[", "]\n ")),
        1 => prop::sample::select(vec![("[", ",]"), ("[", "] x"), ("{\"a\":[", "]}"), ("[", "")]),
    ];
    (elements, ws(), wrap).prop_map(|(elements, ws, (open, close))| {
        let body: Vec<String> = elements.iter().map(|e| format!("{ws}{e}")).collect();
        format!("{open}{}{ws}{close}", body.join(",")).into_bytes()
    })
}

/// The packs the tests know, one a line for those of the bad inputs.
fn fixtures() -> Vec<&'static str> {
    let mut fixtures = vec![FIXTURE, BENCH, TRAFFIC];
    fixtures.extend(
        BAD_INPUTS
            .lines()
            .filter(|l| l.trim_start().starts_with('[')),
    );
    fixtures
}

/// A fixture with a few bytes cut and some text put in at one place, as
/// `crate::lorawan::tests::edited_fixture` does for uplinks.
fn edited_fixture() -> impl Strategy<Value = Vec<u8>> {
    let texts = vec![
        "",
        "\\",
        "\"",
        "\\n",
        ",",
        "{",
        "}",
        "[",
        "]",
        ":",
        " ",
        "null",
        "1",
        "-",
        "e5",
        "\u{1}",
        "é",
        "\"n\"",
        "\"v\":",
        "\"bn\":",
        "\"x_\":1,",
        "\"vs\":\"on\",",
        "\"t\":-60,",
        "0.5",
        "{\"n\":\"voltage\",\"v\":230},",
        "\"bver\":11,",
        "\"foo\":[1,{}],",
    ];
    (
        prop::sample::select(fixtures()),
        any::<prop::sample::Index>(),
        0..3usize,
        prop::sample::select(texts),
    )
        .prop_map(|(fixture, at, cut, text)| {
            let fixture = fixture.as_bytes();
            let at = at.index(fixture.len() + 1);
            let mut bytes = fixture[..at].to_vec();
            bytes.extend_from_slice(text.as_bytes());
            bytes.extend_from_slice(&fixture[(at + cut).min(fixture.len())..]);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn generated_packs_decode_as_through_serde(payload in generated_pack()) {
        same_as_serde(&payload)?;
    }

    #[test]
    fn edited_fixtures_decode_as_through_serde(payload in edited_fixture()) {
        same_as_serde(&payload)?;
    }

    #[test]
    fn arbitrary_bytes_decode_as_through_serde(
        payload in prop::collection::vec(
            prop::sample::select(b"[]{}\",:0123456789.-eE tfnulrasvbx_\\".to_vec()),
            0..80,
        ),
    ) {
        same_as_serde(&payload)?;
    }
}

/// The property above proves little unless many packs take the scanner,
/// accepted ones among them.
#[test]
fn many_generated_packs_take_the_scanner() {
    // Edits break most fixtures (into JSON errors, escapes, repeated labels).
    for (what, strategy, scanned_in, accepted_from) in [
        ("generated", generated_pack().boxed(), 350..950, 100),
        ("edited", edited_fixture().boxed(), 100..900, 30),
    ] {
        let mut runner = prop::test_runner::TestRunner::deterministic();
        let (mut scanned, mut scanned_and_accepted) = (0, 0);
        for _ in 0..1000 {
            let payload = strategy.new_tree(&mut runner).expect("a case").current();
            let (scan, accept) = same_as_serde(&payload).expect("the same as serde");
            scanned += usize::from(scan);
            scanned_and_accepted += usize::from(scan && accept);
        }
        assert!(
            scanned_in.contains(&scanned),
            "{what}: {scanned} of 1000 scanned"
        );
        assert!(
            scanned_and_accepted >= accepted_from,
            "{what}: {scanned_and_accepted} of 1000 scanned and accepted"
        );
    }
}

#[test]
fn real_packs_take_the_scanner() {
    for pack in [
        FIXTURE,
        BENCH,
        TRAFFIC,
        "[]",
        " [ ] ",
        r#"[{"n": "lamp-1:voltage", "v": 229.5, "t": 1795900000.5}, {"n": "voltage", "bn": "lamp-1/", "v": 230, "t": -30}]"#,
        r#"[{"bn": "lamp-1:", "n": "voltage", "v": 1, "foo": [1, {"a": null}], "": {}}]"#,
        r#"[{"bver": 10, "n": "powerState", "vs": "off", "ut": 5}]"#,
        r#"[{"n": "powerState", "vs": "é"}]"#,
    ] {
        assert!(scanned(pack.as_bytes()), "{pack}");
        same_as_serde(pack.as_bytes()).expect("the same as serde");
    }
}

/// Faults found while resolving are the resolver's, whichever path read
/// the records: these packs are read by the scanner and rejected.
#[test]
fn resolving_faults_come_through_the_scanner() {
    for (pack, reason) in [
        (
            r#"[{"n": "voltage", "u": "furlong", "v": 1}]"#,
            Reason::UnknownUnit,
        ),
        (
            r#"[{"n": "powerState", "vs": "on", "u": "W"}]"#,
            Reason::UnitMismatch,
        ),
        (
            r#"[{"n": "voltage", "v": 1, "vs": "x"}]"#,
            Reason::InvalidSenml,
        ),
        (r#"[{"n": "lamp-2:voltage", "v": 1}]"#, Reason::IdMismatch),
        (
            r#"[{"n": "voltage", "v": 1}, {"n": "voltage", "v": 2}]"#,
            Reason::DuplicateKey,
        ),
        (r#"[{"n": "unknownThing", "v": 1}]"#, Reason::NoMeasurements),
        (
            r#"[{"n": "voltage", "v": 1, "bt": 1900000000}]"#,
            Reason::TimestampInFuture,
        ),
        ("[]", Reason::EmptyPack),
    ] {
        assert!(scanned(pack.as_bytes()), "{pack}");
        same_as_serde(pack.as_bytes()).expect("the same as serde");
        let got = run(decode, pack.as_bytes(), Domain::Lighting, "lamp-1");
        let reason = format!("{reason:?}");
        assert!(
            got.starts_with(&format!("Err(Fault {{ reason: {reason}")),
            "{pack}: {got}"
        );
    }
}

/// What the scanner leaves to `serde_json`: the unusual, and every fault of
/// the JSON or of the labels. Each is still decoded as through `serde_json`.
#[test]
fn the_scanner_declines_the_unusual() {
    let mut declined: Vec<Vec<u8>> = [
        // Escapes, in keys and in strings.
        r#"[{"\u006e": "voltage", "v": 1}]"#,
        r#"[{"n": "volt\u0061ge", "v": 1}]"#,
        r#"[{"n": "voltage", "v": 1, "foo": "a\nb"}]"#,
        // A label given twice; labels that must be understood.
        r#"[{"n": "voltage", "v": 1, "v": 2}]"#,
        r#"[{"n": "voltage", "v": 1, "x_": 1}]"#,
        r#"[{"n": "voltage", "v": 1, "_": 1}]"#,
        // A later version; values of the wrong type, nested or null.
        r#"[{"bver": 11, "n": "voltage", "v": 1}]"#,
        r#"[{"n": "voltage", "v": "1"}]"#,
        r#"[{"n": "voltage", "v": null}]"#,
        r#"[{"n": "voltage", "v": [1]}]"#,
        r#"[{"n": "voltage", "v": 1, "bver": "10"}]"#,
        // Numbers the scanner does not convert.
        r#"[{"n": "voltage", "v": 1e400}]"#,
        r#"[{"n": "voltage", "v": 1e23}]"#,
        r#"[{"n": "voltage", "v": 0.1234567890123456789}]"#,
        r#"[{"n": "voltage", "v": 01}]"#,
        // Not a pack of records.
        r#"{"n": "voltage", "v": 1}"#,
        r#"[{"n": "voltage", "v": 1}, 1]"#,
        r#"[[{"n": "voltage", "v": 1}]]"#,
        "1",
        "",
        // Broken JSON.
        r#"[{"n": "voltage", "v": 1},]"#,
        r#"[{"n": "voltage", "v": 1}"#,
        r#"[{"n": "voltage", "v": 1}] x"#,
        r#"[{"n": "voltage" "v": 1}]"#,
        r#"[{"n": "voltage", "v": 1,}]"#,
        "[{\"n\": \"voltage\", \"v\": 1, \"foo\": \"\t\"}]",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Deep nesting in an unknown label, and bytes that are not UTF-8.
    declined.push(
        format!(
            r#"[{{"n": "voltage", "v": 1, "foo": {}1{}}}]"#,
            "[".repeat(70),
            "]".repeat(70)
        )
        .into_bytes(),
    );
    declined.push(b"[{\"n\": \"voltage\", \"v\": 1, \"foo\": \"\xff\"}]".to_vec());
    for pack in &declined {
        let shown = String::from_utf8_lossy(pack);
        assert!(!scanned(pack), "{shown}");
        same_as_serde(pack).expect("the same as serde");
    }
}

/// A pack declined after some records were resolved (here one that is
/// rejected, so that a fault would be left behind) is read again whole.
#[test]
fn a_pack_declined_late_is_read_again_from_the_start() {
    for pack in [
        r#"[{"n": "voltage", "v": 1}, {"n": "lamp-2:voltage", "v": 1}, {"n": "voltage", "v": 1, "x_": 1}]"#,
        r#"[{"n": "voltage", "v": 1}, {"n": "current", "v": 2}, {"n": "volt\u0061ge", "v": 3}]"#,
        r#"[{"n": "voltage", "v": 1, "t": -1}, {"n": "current", "v": 2}, 3]"#,
    ] {
        assert!(!scanned(pack.as_bytes()), "{pack}");
        same_as_serde(pack.as_bytes()).expect("the same as serde");
    }
    let got = run(
        decode,
        br#"[{"n": "voltage", "v": 1}, {"n": "current", "v": 2}, {"n": "volt\u0061ge", "v": 3}]"#,
        Domain::Lighting,
        "lamp-1",
    );
    assert!(
        got.contains("duplicate_key") || got.contains("DuplicateKey"),
        "{got}"
    );
}

proptest! {
    /// The resolver's byte-wise helpers against their definitions by
    /// character.
    #[test]
    fn names_split_and_check_as_by_character(name in "[a-z0-9:/._é\\- x\\u{0}]{0,12}") {
        let by_char = name.rfind([':', '/']).map_or(("", name.as_str()), |at| (&name[..at], &name[at + 1..]));
        prop_assert_eq!(super::split(&name), by_char);
        let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '/' | '_'));
        let starts_well = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        prop_assert_eq!(super::check_name(0, &name).is_ok(), !name.is_empty() && valid && starts_well);
    }
}
