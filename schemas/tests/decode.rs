//! The public decoder over the shared fixtures, every bad input with the
//! reason it must produce, and arbitrary input that must never panic.

use std::collections::HashMap;

use proptest::prelude::*;
use rstest::rstest;
use schemas::decode::{Decoder, Format};
use schemas::{
    ApplicationConfig, Applications, Attribute, Domain, FieldMapping, Reading, Reason, TimeLimits,
    TimeSource, Timestamp, Value,
};

/// 2026-11-28T21:15:00Z: after every fixture's time, within the limits.
const NOW: Timestamp = Timestamp::from_secs(1_795_900_500);

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn decoder() -> Decoder {
    let apps = HashMap::from([(
        "rabat-waste".to_owned(),
        ApplicationConfig {
            commune: "rabat".into(),
            domain: Domain::Waste,
            fields: vec![FieldMapping {
                source: "fill_pct".into(),
                attribute: "fillingLevel".into(),
                scale: 0.01,
                offset: 0.0,
            }],
        },
    )]);
    Decoder::new(
        TimeLimits::default(),
        Applications::new(&apps).expect("valid applications"),
    )
}

fn decode_ok(topic: &str, payload: &[u8]) -> (Format, u32, Vec<Reading>) {
    let mut out = Vec::new();
    let d = decoder()
        .decode(topic, payload, NOW, &mut out)
        .unwrap_or_else(|r| panic!("{topic}: {r}"));
    assert_eq!(d.readings, out.len());
    (d.format, d.unknown_keys, out)
}

fn ts(s: &str) -> Timestamp {
    Timestamp::from_datetime(s.parse().expect("RFC 3339")).expect("in range")
}

#[test]
fn native_lighting_fixture() {
    let (format, unknown, r) = decode_ok(
        "city/chefchaouen/lighting/lamp-chefchaouen-0007/telemetry",
        &fixture("native-lighting.json"),
    );
    assert_eq!((format, unknown, r.len()), (Format::Native, 0, 1));
    let r = &r[0];
    assert_eq!(
        (r.domain, r.commune.as_str(), r.device.as_str()),
        (Domain::Lighting, "chefchaouen", "lamp-chefchaouen-0007")
    );
    assert_eq!(r.time, ts("2026-11-28T19:30:00Z"));
    assert_eq!(r.time_source, TimeSource::Observed);
    let v = &r.values;
    assert_eq!(v.symbol(Attribute::PowerState), Some("on"));
    assert_eq!(v.number(Attribute::IlluminanceLevel), Some(0.6));
    assert_eq!(v.number(Attribute::PowerConsumption), Some(41.8));
    assert_eq!(v.number(Attribute::Voltage), Some(229.4));
    assert_eq!(v.number(Attribute::Current), Some(0.19));
    assert_eq!(v.symbol(Attribute::LampStatus), Some("ok"));
    assert_eq!(v.len(), 6);
}

#[test]
fn native_waste_fixture_with_epoch_seconds() {
    let (_, _, r) = decode_ok(
        "city/berkane/waste/bin-berkane-centre-112/telemetry",
        &fixture("native-waste.json"),
    );
    let r = &r[0];
    assert_eq!(r.time, Timestamp::from_secs(1_795_900_123));
    assert_eq!(r.values.number(Attribute::FillingLevel), Some(0.91));
    assert_eq!(r.values.number(Attribute::Temperature), Some(31.2));
    assert_eq!(r.values.symbol(Attribute::WasteStatus), Some("ok"));
    assert_eq!(r.values.number(Attribute::BatteryLevel), Some(0.77));
}

#[test]
fn native_traffic_fixture_with_interval() {
    let (_, _, r) = decode_ok(
        "city/rabat/traffic/counter-rabat-avenue-fal-ould-oumeir-1/telemetry",
        &fixture("native-traffic.json"),
    );
    let r = &r[0];
    assert_eq!(r.time, ts("2026-11-28T08:00:00Z"));
    assert_eq!((r.period_s, r.lane), (Some(300), Some(2)));
    assert_eq!(r.values.number(Attribute::Intensity), Some(118.0));
    assert_eq!(r.values.number(Attribute::Occupancy), Some(0.42));
    assert_eq!(r.values.number(Attribute::AverageVehicleSpeed), Some(23.5));
    assert_eq!(r.values.number(Attribute::AverageVehicleLength), Some(4.6));
    assert_eq!(r.values.boolean(Attribute::Congested), Some(true));
}

#[test]
fn senml_fixture_gives_one_reading_per_time() {
    let (format, _, r) = decode_ok(
        "city/casablanca/lighting/lamp-casa-maarif-0042/telemetry",
        &fixture("senml-streetlight.json"),
    );
    assert_eq!(format, Format::Senml);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].time, Timestamp::from_secs(1_795_900_000));
    assert_eq!(r[0].values.number(Attribute::PowerConsumption), Some(54.2));
    assert_eq!(r[0].values.number(Attribute::IlluminanceLevel), Some(0.7));
    assert_eq!(r[0].values.symbol(Attribute::PowerState), Some("on"));
    assert_eq!(r[0].values.number(Attribute::EnergyConsumed), Some(1234.5));
    assert_eq!(r[1].time, Timestamp::from_secs(1_795_900_060));
    assert_eq!(r[1].values.number(Attribute::PowerConsumption), Some(55.0));
    assert_eq!(r[1].values.len(), 1);
}

#[test]
fn the_things_stack_fixture_with_field_map() {
    let (format, unknown, r) = decode_ok(
        "v3/rabat-waste@ttn/devices/bin-rabat-agdal-017/up",
        &fixture("ttn-v3-uplink-waste.json"),
    );
    assert_eq!((format, unknown), (Format::TheThingsStack, 2));
    let r = &r[0];
    assert_eq!(
        (r.commune.as_str(), r.device.as_str()),
        ("rabat", "bin-rabat-agdal-017")
    );
    assert_eq!(r.time, ts("2026-11-28T21:14:05.640Z"));
    assert_eq!(r.values.number(Attribute::FillingLevel), Some(0.83));
    assert_eq!(r.values.number(Attribute::Temperature), Some(24.5));
    assert_eq!(r.values.number(Attribute::Rssi), Some(-97.0));
    assert_eq!(r.values.number(Attribute::Snr), Some(7.25));
}

#[test]
fn chirpstack_fixture() {
    let payload = fixture("chirpstack-v4-uplink-traffic.json");
    let json: serde_json::Value = serde_json::from_slice(&payload).expect("fixture is JSON");
    let app = json["deviceInfo"]["applicationId"]
        .as_str()
        .expect("applicationId");
    let eui = json["deviceInfo"]["devEui"].as_str().expect("devEui");
    let (format, _, r) = decode_ok(
        &format!("application/{app}/device/{eui}/event/up"),
        &payload,
    );
    assert_eq!(format, Format::ChirpStack);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].domain, Domain::Traffic);
    assert!(r[0].values.number(Attribute::Rssi).is_some());
}

/// Every line of the bad-inputs fixture, with the reason it must produce
/// (`bad-inputs.reasons`, shared with the end-to-end tests).
fn bad_inputs() -> HashMap<String, Reason> {
    let text = String::from_utf8(fixture("bad-inputs.reasons")).expect("UTF-8");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (reason, payload) = l.split_once('\t').expect("reason<TAB>payload");
            let reason = Reason::parse(reason).unwrap_or_else(|| panic!("unknown reason {reason}"));
            (payload.to_owned(), reason)
        })
        .collect()
}

#[test]
fn every_bad_input_is_rejected_with_its_reason() {
    let text = String::from_utf8(fixture("bad-inputs.txt")).expect("UTF-8");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let table = bad_inputs();
    assert_eq!(
        lines.len(),
        table.len(),
        "every line has a reason in the table"
    );
    let topic = "city/rabat/lighting/lamp-1/telemetry";
    for line in lines {
        let expected = table
            .get(line)
            .unwrap_or_else(|| panic!("no expected reason for bad input {line}"));
        let mut out = Vec::new();
        let r = decoder()
            .decode(topic, line.as_bytes(), NOW, &mut out)
            .expect_err(line);
        assert_eq!(r.reason, *expected, "{line}: {r}");
        assert_eq!(r.topic, topic);
        assert!(out.is_empty(), "{line}");
        assert!(!r.message.is_empty());
    }
}

#[rstest]
#[case::scalar("city/rabat/lighting/lamp-1/telemetry", "42", Reason::UnknownFormat)]
#[case::blank("city/rabat/lighting/lamp-1/telemetry", "  \n", Reason::EmptyPayload)]
#[case::bad_topic("city/rabat/parking/p-1/telemetry", "{}", Reason::InvalidTopic)]
#[case::uplink_on_native_topic(
    "city/rabat/waste/bin-1/telemetry",
    r#"{"end_device_ids": {"device_id": "bin-1"}, "uplink_message": {}}"#,
    Reason::FormatTopicMismatch
)]
#[case::native_on_tts_topic(
    "v3/rabat-waste/devices/bin-1/up",
    r#"{"fillingLevel": 0.5}"#,
    Reason::FormatTopicMismatch
)]
#[case::senml_on_chirpstack_topic(
    "application/rabat-waste/device/0011223344556677/event/up",
    r#"[{"n": "fillingLevel", "v": 0.5}]"#,
    Reason::FormatTopicMismatch
)]
#[case::duplicate_key(
    "city/rabat/lighting/lamp-1/telemetry",
    r#"{"powerConsumption": 40, "powerConsumption": 41}"#,
    Reason::DuplicateKey
)]
#[case::status_of_another_domain(
    "city/rabat/lighting/lamp-1/telemetry",
    r#"{"status": "burning"}"#,
    Reason::InvalidValue
)]
#[case::reversed_interval(
    "city/rabat/traffic/c-1/telemetry",
    r#"{"dateObserved": "2026-11-28T08:05:00Z/2026-11-28T08:00:00Z", "intensity": 3}"#,
    Reason::InvalidInterval
)]
#[case::half_interval(
    "city/rabat/traffic/c-1/telemetry",
    r#"{"dateObservedFrom": "2026-11-28T08:00:00Z", "intensity": 3}"#,
    Reason::MissingKey
)]
#[case::lane_zero(
    "city/rabat/traffic/c-1/telemetry",
    r#"{"laneId": 0, "intensity": 3}"#,
    Reason::OutOfRange
)]
#[case::too_old(
    "city/rabat/waste/bin-1/telemetry",
    r#"{"dateObserved": "2026-10-01T00:00:00Z", "fillingLevel": 0.5}"#,
    Reason::TimestampTooOld
)]
#[case::truncated(
    "city/rabat/waste/bin-1/telemetry",
    r#"{"fillingLevel": 0.5"#,
    Reason::InvalidJson
)]
fn rejections_name_their_reason(
    #[case] topic: &str,
    #[case] payload: &str,
    #[case] reason: Reason,
) {
    let mut out = Vec::new();
    let r = decoder()
        .decode(topic, payload.as_bytes(), NOW, &mut out)
        .expect_err(payload);
    assert_eq!(r.reason, reason, "{r}");
    assert!(out.is_empty());
}

#[test]
fn messages_name_key_and_value() {
    let mut out = Vec::new();
    let r = decoder()
        .decode(
            "city/rabat/lighting/lamp-1/telemetry",
            br#"{"powerConsumption": -5}"#,
            NOW,
            &mut out,
        )
        .expect_err("out of range");
    let text = r.to_string();
    for needle in [
        "out_of_range",
        "city/rabat/lighting/lamp-1/telemetry",
        "powerConsumption",
        "-5",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
}

#[test]
fn unknown_keys_are_counted_not_fatal() {
    let (_, unknown, r) = decode_ok(
        "city/rabat/waste/bin-1/telemetry",
        br#"{"type": "WasteContainer", "fillingLevel": 0.5, "colour": "green", "serial": 7}"#,
    );
    assert_eq!((unknown, r.len()), (2, 1));
    assert_eq!(r[0].values.number(Attribute::FillingLevel), Some(0.5));
    assert_eq!(r[0].time, NOW);
    assert_eq!(r[0].time_source, TimeSource::Received);
}

#[test]
fn epoch_milliseconds_and_seconds_agree() {
    let topic = "city/rabat/waste/bin-1/telemetry";
    let (_, _, s) = decode_ok(
        topic,
        br#"{"dateObserved": 1795900123, "fillingLevel": 0.5}"#,
    );
    let (_, _, ms) = decode_ok(
        topic,
        br#"{"dateObserved": 1795900123000, "fillingLevel": 0.5}"#,
    );
    assert_eq!(s[0].time, ms[0].time);
    assert_eq!(
        s[0].values.get(Attribute::FillingLevel),
        Some(Value::Number(0.5))
    );
}

fn topics() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "city/rabat/lighting/lamp-1/telemetry",
        "city/rabat/waste/bin-1/telemetry",
        "city/rabat/traffic/c-1/telemetry",
        "v3/rabat-waste@ttn/devices/bin-1/up",
        "application/rabat-waste/device/0011223344556677/event/up",
    ])
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let keys = prop::sample::select(vec![
        "id",
        "dateObserved",
        "powerConsumption",
        "powerState",
        "fillingLevel",
        "status",
        "laneId",
        "intensity",
        "congested",
        "bn",
        "bt",
        "n",
        "v",
        "vs",
        "u",
        "t",
        "end_device_ids",
        "uplink_message",
        "decoded_payload",
        "device_id",
        "deviceInfo",
        "object",
        "rx_metadata",
        "rssi",
        "x_",
    ]);
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(J::Null, J::Number)),
        any::<i64>().prop_map(|i| J::Number(i.into())),
        "[a-z0-9:/ -]{0,12}".prop_map(J::String),
        Just(J::String("2026-11-28T20:00:00Z".into())),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(J::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|kv| J::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(topic in topics(), payload in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut out = Vec::new();
        if decoder().decode(topic, &payload, NOW, &mut out).is_err() {
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn arbitrary_json_never_panics(topic in topics(), value in json()) {
        let payload = serde_json::to_vec(&value).expect("serializable");
        let mut out = Vec::new();
        match decoder().decode(topic, &payload, NOW, &mut out) {
            Ok(d) => prop_assert_eq!(d.readings, out.len()),
            Err(r) => {
                prop_assert!(out.is_empty());
                prop_assert!(!r.message.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_topics_never_panic(topic in "[a-z0-9/@+#_. -]{0,40}", payload in "[{}\\[\\]\":a-z0-9,]{0,40}") {
        let mut out = Vec::new();
        let _ = decoder().decode(&topic, payload.as_bytes(), NOW, &mut out);
    }
}
