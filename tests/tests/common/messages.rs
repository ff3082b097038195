//! The shared fixtures as messages for the service, their timestamps moved
//! close to now, and the points the data contract says each one becomes.

use std::collections::BTreeMap;

use harness::FieldValue;
use serde_json::json;

use super::{fixture, fixture_json, ns, rfc3339, rfc3339_ms};

/// A point the service must write.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// The measurement.
    pub measurement: &'static str,
    /// Every tag.
    pub tags: BTreeMap<String, String>,
    /// Every field, with its exact type.
    pub fields: BTreeMap<String, FieldValue>,
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn f(v: f64) -> FieldValue {
    FieldValue::Float(v)
}

fn s(v: &str) -> FieldValue {
    FieldValue::String(v.to_owned())
}

fn fields(pairs: Vec<(&str, FieldValue)>) -> BTreeMap<String, FieldValue> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A message to publish: (topic, payload).
pub type Message = (String, String);

/// The ChirpStack application id of the traffic fixture (its
/// `applicationName`, `rabat-traffic`, names the commune and domain).
pub const CHIRPSTACK_APP: &str = "6f1e8e3c-0b7a-4c44-9e55-0e4f1b2d9a10";
/// The ChirpStack device EUI of the traffic fixture.
pub const CHIRPSTACK_EUI: &str = "70b3d57ed0051a2f";

/// Every fixture of the four formats and three domains as messages whose
/// event times start at `t` (whole seconds, in the recent past), and the
/// points they must become: eight points from seven messages.
pub fn every_format(t: i64) -> (Vec<Message>, Vec<Expected>) {
    let mut messages = Vec::new();
    let mut expected = Vec::new();

    // Native lighting, RFC 3339 time.
    let mut lamp = fixture_json("native-lighting.json");
    lamp["dateObserved"] = json!(rfc3339(t));
    messages.push((
        "city/chefchaouen/lighting/lamp-chefchaouen-0007/telemetry".to_owned(),
        lamp.to_string(),
    ));
    expected.push(Expected {
        measurement: "lighting",
        tags: tags(&[
            ("commune", "chefchaouen"),
            ("device", "lamp-chefchaouen-0007"),
        ]),
        fields: fields(vec![
            ("power_state", s("on")),
            ("illuminance_level", f(0.6)),
            ("power_w", f(41.8)),
            ("voltage_v", f(229.4)),
            ("current_a", f(0.19)),
            ("status", s("ok")),
        ]),
        time_ns: ns(t),
    });

    // Native waste, epoch seconds.
    let mut bin = fixture_json("native-waste.json");
    bin["dateObserved"] = json!(t + 1);
    messages.push((
        "city/berkane/waste/bin-berkane-centre-112/telemetry".to_owned(),
        bin.to_string(),
    ));
    expected.push(Expected {
        measurement: "waste",
        tags: tags(&[("commune", "berkane"), ("device", "bin-berkane-centre-112")]),
        fields: fields(vec![
            ("fill_ratio", f(0.91)),
            ("temperature_c", f(31.2)),
            ("status", s("ok")),
            ("battery_ratio", f(0.77)),
        ]),
        time_ns: ns(t + 1),
    });

    // Native traffic, an interval of 5 minutes: the point is at its start.
    let mut counter = fixture_json("native-traffic.json");
    counter["dateObserved"] = json!(format!("{}/{}", rfc3339(t + 2), rfc3339(t + 302)));
    messages.push((
        "city/rabat/traffic/counter-rabat-avenue-fal-ould-oumeir-1/telemetry".to_owned(),
        counter.to_string(),
    ));
    let counter_tags = tags(&[
        ("commune", "rabat"),
        ("device", "counter-rabat-avenue-fal-ould-oumeir-1"),
        ("lane", "2"),
    ]);
    let traffic_fields = |congested: bool| {
        vec![
            ("vehicle_count", f(118.0)),
            ("occupancy_ratio", f(0.42)),
            ("speed_kmh", f(23.5)),
            ("vehicle_length_m", f(4.6)),
            ("congested", FieldValue::Boolean(congested)),
            ("period_s", f(300.0)),
            ("flow_vph", f(1416.0)),
        ]
    };
    expected.push(Expected {
        measurement: "traffic",
        tags: counter_tags.clone(),
        fields: fields(traffic_fields(true)),
        time_ns: ns(t + 2),
    });

    // SenML: base time, base unit; one reading per distinct time.
    let senml = fixture("senml-streetlight.json").replace("1795900000", &(t + 3).to_string());
    messages.push((
        "city/casablanca/lighting/lamp-casa-maarif-0042/telemetry".to_owned(),
        senml,
    ));
    let senml_tags = tags(&[
        ("commune", "casablanca"),
        ("device", "lamp-casa-maarif-0042"),
    ]);
    expected.push(Expected {
        measurement: "lighting",
        tags: senml_tags.clone(),
        fields: fields(vec![
            ("power_w", f(54.2)),
            ("illuminance_level", f(0.7)),
            ("power_state", s("on")),
            ("energy_kwh", f(1234.5)),
        ]),
        time_ns: ns(t + 3),
    });
    expected.push(Expected {
        measurement: "lighting",
        tags: senml_tags,
        fields: fields(vec![("power_w", f(55.0))]),
        time_ns: ns(t + 63),
    });

    // The Things Stack, lighting: the time is `uplink_message.received_at`,
    // not the envelope's; the best gateway gives RSSI and SNR.
    let mut tts_lamp = fixture_json("ttn-v3-uplink-streetlight.json");
    let uplink_ms = (t + 4) * 1000 + 29;
    tts_lamp["uplink_message"]["received_at"] = json!(rfc3339_ms(uplink_ms));
    tts_lamp["received_at"] = json!(rfc3339_ms(uplink_ms + 500));
    messages.push((
        "v3/casablanca-lighting@casablanca/devices/lamp-casa-maarif-0412/up".to_owned(),
        tts_lamp.to_string(),
    ));
    expected.push(Expected {
        measurement: "lighting",
        tags: tags(&[
            ("commune", "casablanca"),
            ("device", "lamp-casa-maarif-0412"),
        ]),
        fields: fields(vec![
            ("power_state", s("on")),
            ("illuminance_level", f(0.7)),
            ("power_w", f(84.5)),
            ("voltage_v", f(229.8)),
            ("current_a", f(0.37)),
            ("energy_kwh", f(1532.25)),
            ("status", s("ok")),
            ("rssi_dbm", f(-101.0)),
            ("snr_db", f(6.5)),
        ]),
        time_ns: uplink_ms * 1_000_000,
    });

    // The Things Stack, waste: the application's field map turns `fill_pct`
    // into `fillingLevel` × 0.01.
    let mut tts_bin = fixture_json("ttn-v3-uplink-waste.json");
    let bin_ms = (t + 6) * 1000 + 640;
    tts_bin["uplink_message"]["received_at"] = json!(rfc3339_ms(bin_ms));
    tts_bin["received_at"] = json!(rfc3339_ms(bin_ms + 172));
    messages.push((
        "v3/rabat-waste@ttn/devices/bin-rabat-agdal-017/up".to_owned(),
        tts_bin.to_string(),
    ));
    expected.push(Expected {
        measurement: "waste",
        tags: tags(&[("commune", "rabat"), ("device", "bin-rabat-agdal-017")]),
        fields: fields(vec![
            ("fill_ratio", f(0.83)),
            ("temperature_c", f(24.5)),
            ("rssi_dbm", f(-97.0)),
            ("snr_db", f(7.25)),
        ]),
        time_ns: bin_ms * 1_000_000,
    });

    // ChirpStack, traffic: the decoded `object` holds the interval.
    let mut chirp = fixture_json("chirpstack-v4-uplink-traffic.json");
    chirp["object"]["dateObserved"] = json!(format!("{}/{}", rfc3339(t + 7), rfc3339(t + 307)));
    chirp["time"] = json!(rfc3339_ms((t + 308) * 1000 + 482));
    messages.push((
        format!("application/{CHIRPSTACK_APP}/device/{CHIRPSTACK_EUI}/event/up"),
        chirp.to_string(),
    ));
    let mut chirp_fields = traffic_fields(false);
    chirp_fields.extend([("rssi_dbm", f(-89.0)), ("snr_db", f(9.5))]);
    expected.push(Expected {
        measurement: "traffic",
        tags: counter_tags,
        fields: fields(chirp_fields),
        time_ns: ns(t + 7),
    });

    (messages, expected)
}
