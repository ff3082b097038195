use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use rstest::rstest;

use super::decode;
use crate::application::Applications;
use crate::attribute::{Attribute, Value};
use crate::context::{Context, Target};
use crate::domain::Domain;
use crate::reading::{Reading, TimeSource, Timestamp};
use crate::rejection::{Fault, Reason};
use crate::time::TimeLimits;

const FIXTURE: &str = include_str!("../../tests/fixtures/senml-streetlight.json");
const BAD_INPUTS: &str = include_str!("../../tests/fixtures/bad-inputs.txt");

/// The time of receipt: shortly after the fixture's two times (21:06:40 and
/// 21:07:40 UTC), so that both lie within the default limits.
fn now() -> Timestamp {
    let dt = Utc
        .with_ymd_and_hms(2026, 11, 28, 21, 10, 0)
        .single()
        .expect("a valid date");
    Timestamp::from_datetime(dt).expect("within the representable years")
}

fn secs(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// Decodes a pack about `domain`/rabat/`device` into a vector that already
/// holds one reading, and checks that this one is never touched.
fn run_on(domain: Domain, device: &str, payload: &str) -> (Result<u32, Fault>, Vec<Reading>) {
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
    let earlier = Reading::new(Domain::Waste, "sale", "bin-0", secs(1));
    let mut out = vec![earlier.clone()];
    let result = decode(payload.as_bytes(), target, &ctx, &mut out);
    assert_eq!(
        out.first(),
        Some(&earlier),
        "an earlier reading was touched"
    );
    if result.is_err() {
        assert_eq!(out.len(), 1, "readings left behind by a rejected pack");
    }
    out.remove(0);
    (result, out)
}

fn run(payload: &str) -> (Result<u32, Fault>, Vec<Reading>) {
    run_on(Domain::Lighting, "lamp-1", payload)
}

fn readings(payload: &str) -> Vec<Reading> {
    let (result, out) = run(payload);
    result.unwrap_or_else(|f| panic!("{payload} was rejected: {f:?}"));
    out
}

fn number(r: &Reading, a: Attribute) -> f64 {
    r.values
        .number(a)
        .unwrap_or_else(|| panic!("{a:?} missing from {r:?}"))
}

#[test]
fn the_streetlight_fixture_gives_two_readings() {
    let (result, out) = run_on(Domain::Lighting, "lamp-casa-maarif-0042", FIXTURE);
    assert_eq!(result, Ok(0));
    assert_eq!(out.len(), 2, "{out:#?}");
    let (first, second) = (&out[0], &out[1]);
    assert_eq!(first.time, secs(1_795_900_000));
    assert_eq!(first.time_source, TimeSource::Observed);
    assert_eq!(first.device, "lamp-casa-maarif-0042");
    assert_eq!(first.commune, "rabat");
    assert_eq!(first.domain, Domain::Lighting);
    assert_eq!(number(first, Attribute::PowerConsumption), 54.2);
    assert_eq!(number(first, Attribute::IlluminanceLevel), 0.7);
    assert_eq!(first.values.symbol(Attribute::PowerState), Some("on"));
    assert_eq!(number(first, Attribute::EnergyConsumed), 1234.5);
    assert_eq!(first.values.len(), 4);
    assert_eq!(second.time, secs(1_795_900_060));
    assert_eq!(number(second, Attribute::PowerConsumption), 55.0);
    assert_eq!(second.values.len(), 1);
}

#[test]
fn base_fields_carry_over_until_replaced() {
    let out = readings(
        r#"[
            {"bn": "urn:dev:ow:lamp-1:", "bt": 1795900000, "bu": "kW", "bv": 1, "n": "powerConsumption", "v": 0.5},
            {"n": "powerConsumption", "t": 10, "v": 0.25},
            {"n": "voltage", "u": "V", "t": 10, "v": 229},
            {"bv": 0, "bu": "W", "n": "powerConsumption", "t": 20, "v": 40},
            {"bn": "lamp-1/", "n": "current", "u": "A", "t": 20, "v": 0.2}
        ]"#,
    );
    let got: Vec<_> = out
        .iter()
        .map(|r| (r.time, r.values.number(Attribute::PowerConsumption)))
        .collect();
    assert_eq!(
        got,
        [
            (secs(1_795_900_000), Some(1500.0)),
            (secs(1_795_900_010), Some(1250.0)),
            (secs(1_795_900_020), Some(40.0)),
        ]
    );
    assert_eq!(out[1].values.number(Attribute::Voltage), Some(230.0));
    assert_eq!(out[2].values.number(Attribute::Current), Some(0.2));
}

#[test]
fn sums_take_the_base_sum_and_the_unit() {
    let out = readings(
        r#"[
            {"bn": "lamp-1:", "bs": 1000, "bu": "kWh", "n": "energyConsumed", "s": 234.5},
            {"bs": 0, "n": "energyConsumed", "u": "Wh", "s": 1500, "t": -60}
        ]"#,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(number(&out[0], Attribute::EnergyConsumed), 1.5);
    assert_eq!(number(&out[1], Attribute::EnergyConsumed), 1234.5);
}

#[test]
fn a_value_wins_over_a_sum_in_the_same_record() {
    let out = readings(r#"[{"n": "energyConsumed", "v": 12, "s": 99}]"#);
    assert_eq!(number(&out[0], Attribute::EnergyConsumed), 12.0);
}

#[test]
fn small_times_are_relative_to_receipt() {
    let out = readings(
        r#"[
            {"bt": -120, "n": "powerConsumption", "v": 1},
            {"n": "powerConsumption", "t": 60, "v": 2},
            {"bt": 0, "n": "powerConsumption", "t": -0.5, "v": 3}
        ]"#,
    );
    let times: Vec<_> = out.iter().map(|r| r.time).collect();
    assert_eq!(
        times,
        [
            now().add_nanos(-120_000_000_000),
            now().add_nanos(-60_000_000_000),
            now().add_nanos(-500_000_000),
        ]
    );
    assert!(out.iter().all(|r| r.time_source == TimeSource::Observed));
}

#[test]
fn no_stated_time_means_the_time_of_receipt() {
    let out = readings(r#"[{"n": "powerConsumption", "v": 40}, {"n": "powerState", "vs": "on"}]"#);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].time, now());
    assert_eq!(out[0].time_source, TimeSource::Received);
}

#[test]
fn readings_come_out_sorted_by_time_and_fractions_are_kept() {
    let out = readings(
        r#"[
            {"bt": 1795900030.25, "n": "powerConsumption", "v": 3},
            {"bt": 1795900000, "n": "powerConsumption", "t": 0.1, "v": 1},
            {"n": "voltage", "t": 0.1, "v": 230}
        ]"#,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].time, secs(1_795_900_000).add_nanos(100_000_000));
    assert_eq!(out[0].values.len(), 2);
    assert_eq!(out[1].time, secs(1_795_900_030).add_nanos(250_000_000));
}

#[rstest]
#[case(
    Domain::Lighting,
    "powerConsumption",
    "kW",
    0.0542,
    Attribute::PowerConsumption,
    54.2
)]
#[case(
    Domain::Lighting,
    "powerConsumption",
    "W",
    54.2,
    Attribute::PowerConsumption,
    54.2
)]
#[case(
    Domain::Lighting,
    "illuminanceLevel",
    "%",
    70.0,
    Attribute::IlluminanceLevel,
    0.7
)]
#[case(
    Domain::Lighting,
    "illuminanceLevel",
    "/",
    0.7,
    Attribute::IlluminanceLevel,
    0.7
)]
#[case(
    Domain::Lighting,
    "energyConsumed",
    "Wh",
    1_234_500.0,
    Attribute::EnergyConsumed,
    1234.5
)]
#[case(
    Domain::Lighting,
    "batteryLevel",
    "%EL",
    83.0,
    Attribute::BatteryLevel,
    0.83
)]
#[case(
    Domain::Waste,
    "temperature",
    "Cel",
    21.5,
    Attribute::Temperature,
    21.5
)]
#[case(
    Domain::Waste,
    "temperature",
    "K",
    300.0,
    Attribute::Temperature,
    26.85
)]
#[case(Domain::Waste, "cargoWeight", "g", 1500.0, Attribute::CargoWeight, 1.5)]
#[case(
    Domain::Waste,
    "methaneConcentration",
    "ug/m3",
    12.0,
    Attribute::MethaneConcentration,
    12.0
)]
#[case(
    Domain::Traffic,
    "averageVehicleSpeed",
    "m/s",
    12.5,
    Attribute::AverageVehicleSpeed,
    45.0
)]
#[case(
    Domain::Traffic,
    "averageVehicleSpeed",
    "km/h",
    45.0,
    Attribute::AverageVehicleSpeed,
    45.0
)]
#[case(
    Domain::Traffic,
    "averageVehicleLength",
    "m",
    4.5,
    Attribute::AverageVehicleLength,
    4.5
)]
#[case(
    Domain::Traffic,
    "intensity",
    "count",
    14.0,
    Attribute::Intensity,
    14.0
)]
fn units_convert_to_the_canonical_unit(
    #[case] domain: Domain,
    #[case] name: &str,
    #[case] unit: &str,
    #[case] v: f64,
    #[case] attribute: Attribute,
    #[case] expected: f64,
) {
    let payload = format!(r#"[{{"n": "{name}", "u": "{unit}", "v": {v}}}]"#);
    let (result, out) = run_on(domain, "dev-1", &payload);
    assert_eq!(result, Ok(0), "{payload}");
    let got = number(&out[0], attribute);
    assert!(
        (got - expected).abs() < 1e-9,
        "{payload}: {got} != {expected}"
    );
}

#[test]
fn traffic_lanes_become_the_lane_tag() {
    let (result, out) = run_on(
        Domain::Traffic,
        "tc-7",
        r#"[
            {"bn": "urn:dev:ow:tc-7:", "n": "laneId", "v": 2},
            {"n": "intensity", "v": 14},
            {"n": "averageVehicleSpeed", "u": "m/s", "v": 12.5},
            {"n": "congested", "vb": true}
        ]"#,
    );
    assert_eq!(result, Ok(0));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].lane, Some(2));
    assert_eq!(number(&out[0], Attribute::Intensity), 14.0);
    assert_eq!(number(&out[0], Attribute::AverageVehicleSpeed), 45.0);
    assert_eq!(out[0].values.boolean(Attribute::Congested), Some(true));
}

#[test]
fn unknown_names_are_counted_and_skipped() {
    let (result, out) = run(r#"[
            {"n": "powerConsumption", "v": 1},
            {"n": "fillingLevel", "v": 0.5},
            {"n": "lamp-1:colour", "vs": "amber"},
            {"n": "laneId", "v": 1},
            {"n": "powerState", "vs": "on", "foo": {"bar": [1, 2]}}
        ]"#);
    assert_eq!(result, Ok(3));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].values.len(), 2);
}

#[test]
fn escaped_names_and_the_base_name_alone_resolve() {
    let out = readings(
        r#"[{"n": "power\u0043onsumption", "v": 1}, {"bn": "lamp-1:voltage", "v": 230, "t": -1}]"#,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(number(&out[0], Attribute::Voltage), 230.0);
    assert_eq!(number(&out[1], Attribute::PowerConsumption), 1.0);
}

#[test]
fn the_base_unit_does_not_apply_to_symbols_and_booleans() {
    let out =
        readings(r#"[{"bu": "W", "n": "powerState", "vs": "off"}, {"n": "status", "vs": "ok"}]"#);
    assert_eq!(out[0].values.symbol(Attribute::LampStatus), Some("ok"));
}

#[rstest]
// The pack and its records.
#[case("", Reason::EmptyPayload, "empty")]
#[case("[]", Reason::EmptyPack, "no records")]
#[case(
    r#"{"n": "powerConsumption", "v": 1}"#,
    Reason::InvalidSenml,
    "array of records, not an object"
)]
#[case("42", Reason::InvalidSenml, "not 42 (a number)")]
#[case("[1]", Reason::InvalidSenml, "record 0 is 1 (a number)")]
#[case(
    r#"[{"n": "voltage", "v": 1}, []]"#,
    Reason::InvalidSenml,
    "record 1 is an array"
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, "x"]"#,
    Reason::InvalidSenml,
    "record 1 is \"x\" (a string)"
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, null]"#,
    Reason::InvalidSenml,
    "record 1 is null"
)]
#[case(
    r#"[{"n": "voltage", "v": 1} {"n": "current", "v": 1}]"#,
    Reason::InvalidJson,
    "record 1"
)]
#[case(r#"[{"n": "voltage", "v": 1}] x"#, Reason::InvalidJson, "trailing")]
#[case(r#"[{"n": "voltage" "v": 1}]"#, Reason::InvalidJson, "record 0")]
#[case(r#"[{"n": "voltage", "v": 1e309}]"#, Reason::NotFinite, "record 0 v")]
// Labels.
#[case(
    r#"[{"n": "voltage", "v": 1, "x_": 2}]"#,
    Reason::UnknownMandatoryLabel,
    "record 0: label \"x_\""
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, {"n": "current", "custom_": true, "v": 1}]"#,
    Reason::UnknownMandatoryLabel,
    "record 1: label \"custom_\""
)]
#[case(
    r#"[{"n": "lamp-2:voltage", "v": 1}, {"n": "x", "v": 1, "a_": 0}]"#,
    Reason::UnknownMandatoryLabel,
    "\"a_\""
)]
#[case(
    r#"[{"n": "voltage", "v": "fifty"}]"#,
    Reason::InvalidSenml,
    "record 0: label `v` holds \"fifty\" (a string); expected a number"
)]
#[case(
    r#"[{"n": 7, "v": 1}]"#,
    Reason::InvalidSenml,
    "label `n` holds 7 (a number); expected a string"
)]
#[case(
    r#"[{"n": "congested", "vb": "yes"}]"#,
    Reason::InvalidSenml,
    "label `vb`"
)]
#[case(
    r#"[{"n": "voltage", "v": 1, "t": null}]"#,
    Reason::InvalidSenml,
    "label `t` holds null"
)]
#[case(
    r#"[{"n": "voltage", "v": 1, "v": 2}]"#,
    Reason::DuplicateKey,
    "record 0: label `v` appears twice"
)]
#[case(
    r#"[{"bver": 11, "n": "voltage", "v": 1}]"#,
    Reason::InvalidSenml,
    "record 0: `bver` 11"
)]
#[case(r#"[{"n": "voltage"}]"#, Reason::InvalidSenml, "record 0 has no value")]
#[case(
    r#"[{"n": "voltage", "v": 1, "vs": "x"}]"#,
    Reason::InvalidSenml,
    "record 0 has 2 values (`v`, `vs`)"
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, {"v": 1}]"#,
    Reason::InvalidSenml,
    "record 1 has no name"
)]
#[case(
    r#"[{"n": "power Consumption", "v": 1}]"#,
    Reason::InvalidSenml,
    "record 0: name \"power Consumption\""
)]
#[case(
    r#"[{"n": "-voltage", "v": 1}]"#,
    Reason::InvalidSenml,
    "\"-voltage\" must start"
)]
#[case(
    r#"[{"bn": "lampé:", "n": "voltage", "v": 1}]"#,
    Reason::InvalidSenml,
    "\"lampé:voltage\""
)]
// The device.
#[case(r#"[{"n": "lamp-2:voltage", "v": 1}]"#, Reason::IdMismatch, "record 0: name \"lamp-2:voltage\" is about device \"lamp-2\", but the topic's device is \"lamp-1\"")]
#[case(
    r#"[{"bn": "urn:dev:ow:lamp-9/", "n": "voltage", "v": 1}]"#,
    Reason::IdMismatch,
    "device \"lamp-9\""
)]
// Time.
#[case(
    r#"[{"bt": 1e10, "n": "voltage", "v": 1}]"#,
    Reason::TimestampInFuture,
    "key `record 0 time`"
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, {"n": "current", "t": -5000000, "v": 1}]"#,
    Reason::TimestampTooOld,
    "key `record 1 time`"
)]
#[case(
    r#"[{"bt": 1e308, "t": 1e308, "n": "voltage", "v": 1}]"#,
    Reason::InvalidTimestamp,
    "record 0 time"
)]
#[case(
    r#"[{"bt": -1e300, "n": "voltage", "v": 1}]"#,
    Reason::TimestampTooOld,
    "record 0 time"
)]
// Units.
#[case(
    r#"[{"n": "voltage", "u": "furlong", "v": 1}]"#,
    Reason::UnknownUnit,
    "record 0 `voltage`: unit \"furlong\" (label `u`)"
)]
#[case(
    r#"[{"bu": "furlong", "n": "voltage", "v": 1}]"#,
    Reason::UnknownUnit,
    "unit \"furlong\" (label `bu`)"
)]
#[case(
    r#"[{"n": "voltage", "u": "Cel", "v": 1}]"#,
    Reason::UnitMismatch,
    "record 0 `voltage`: unit \"Cel\" (label `u`) does not fit; expected V"
)]
#[case(
    r#"[{"bu": "W", "n": "powerConsumption", "v": 1}, {"n": "voltage", "v": 1}]"#,
    Reason::UnitMismatch,
    "record 1 `voltage`: unit \"W\" (label `bu`)"
)]
#[case(
    r#"[{"n": "illuminanceLevel", "u": "lx", "v": 1}]"#,
    Reason::UnitMismatch,
    "expected /"
)]
#[case(
    r#"[{"n": "powerState", "u": "W", "vs": "on"}]"#,
    Reason::UnitMismatch,
    "record 0 `powerState`: unit \"W\" (label `u`) does not fit; expected no unit"
)]
#[case(
    r#"[{"n": "powerState", "u": "parsec", "vs": "on"}]"#,
    Reason::UnknownUnit,
    "\"parsec\""
)]
// Values.
#[case(
    r#"[{"n": "powerConsumption", "v": 1}, {"n": "illuminanceLevel", "v": 1.7}]"#,
    Reason::OutOfRange,
    "record 1 `illuminanceLevel`: 1.7 (a number) is out of range; expected a number in 0..=1"
)]
#[case(
    r#"[{"n": "illuminanceLevel", "u": "%", "v": 170}]"#,
    Reason::OutOfRange,
    "record 0 `illuminanceLevel`: 170 % (a number, 1.7 /) is out of range"
)]
#[case(
    r#"[{"n": "powerConsumption", "v": -5}]"#,
    Reason::OutOfRange,
    "-5 (a number)"
)]
#[case(
    r#"[{"bv": 1e308, "n": "powerConsumption", "v": 1e308}]"#,
    Reason::NotFinite,
    "record 0 `powerConsumption`: inf (a number) is not a finite number"
)]
#[case(r#"[{"n": "powerState", "v": 1}]"#, Reason::WrongType, "record 0 `powerState`: 1 (a number) has the wrong type; expected one of on, off, low, bootingUp in `vs`, not `v`")]
#[case(
    r#"[{"n": "powerConsumption", "vs": "fifty"}]"#,
    Reason::WrongType,
    "record 0 `powerConsumption`: \"fifty\" (a string) has the wrong type"
)]
#[case(
    r#"[{"n": "powerState", "vb": true}]"#,
    Reason::WrongType,
    "in `vs`, not `vb`"
)]
#[case(
    r#"[{"n": "powerConsumption", "vd": "AQID"}]"#,
    Reason::WrongType,
    "in `v`, not `vd`"
)]
#[case(
    r#"[{"n": "powerState", "vs": "ON"}]"#,
    Reason::InvalidValue,
    "record 0 `powerState`: \"ON\" (a string) is not an allowed value"
)]
#[case(
    r#"[{"n": "powerConsumption", "s": 5}]"#,
    Reason::InvalidSenml,
    "record 0 `powerConsumption`: a sum `s`"
)]
#[case(
    r#"[{"n": "voltage", "v": 1}, {"n": "voltage", "v": 2}]"#,
    Reason::DuplicateKey,
    "record 1 `voltage`: a second value at 2026-11-28T21:10:00Z; record 0 already gave one"
)]
#[case(r#"[{"n": "foo", "v": 1}, {"n": "fillingLevel", "v": 1}]"#, Reason::NoMeasurements, "none of the pack's 2 records names an attribute of the lighting domain (record 0 names \"foo\")")]
// The first fault found while resolving is the one reported.
#[case(
    r#"[{"n": "lamp-2:voltage", "v": 1}, {"n": "voltage", "u": "Cel", "v": 1}]"#,
    Reason::IdMismatch,
    "record 0"
)]
fn rejections_name_the_record_and_key(
    #[case] payload: &str,
    #[case] reason: Reason,
    #[case] needle: &str,
) {
    let (result, out) = run(payload);
    let fault = result.expect_err(payload);
    assert_eq!(fault.reason, reason, "{payload}: {}", fault.message);
    assert!(
        fault.message.contains(needle),
        "{payload}: {}",
        fault.message
    );
    assert!(out.is_empty());
}

#[rstest]
#[case(
    r#"[{"n": "laneId", "v": 0}, {"n": "intensity", "v": 1}]"#,
    Reason::OutOfRange,
    "record 0 `laneId`: 0 (a number) is out of range; expected an integer ≥ 1"
)]
#[case(
    r#"[{"n": "laneId", "v": 1.5}, {"n": "intensity", "v": 1}]"#,
    Reason::OutOfRange,
    "1.5 (a number)"
)]
#[case(
    r#"[{"n": "laneId", "v": 5e9}, {"n": "intensity", "v": 1}]"#,
    Reason::OutOfRange,
    "`laneId`"
)]
#[case(r#"[{"n": "laneId", "vs": "1"}, {"n": "intensity", "v": 1}]"#, Reason::WrongType, "record 0 `laneId`: \"1\" (a string) has the wrong type; expected an integer ≥ 1 in `v`, not `vs`")]
#[case(
    r#"[{"n": "laneId", "s": 1}, {"n": "intensity", "v": 1}]"#,
    Reason::InvalidSenml,
    "record 0 `laneId`: a sum"
)]
#[case(
    r#"[{"n": "laneId", "u": "m", "v": 1}, {"n": "intensity", "v": 1}]"#,
    Reason::UnitMismatch,
    "record 0 `laneId`"
)]
#[case(
    r#"[{"n": "laneId", "v": 1}, {"n": "intensity", "v": 1, "t": -60}]"#,
    Reason::NoMeasurements,
    "record 0 `laneId`: no attribute at the same time"
)]
#[case(
    r#"[{"n": "laneId", "v": 1}, {"n": "laneId", "v": 2}, {"n": "intensity", "v": 1}]"#,
    Reason::DuplicateKey,
    "record 1 `laneId`"
)]
#[case(
    r#"[{"n": "status", "vs": "ok"}]"#,
    Reason::NoMeasurements,
    "traffic domain"
)]
#[case(
    r#"[{"n": "intensity", "s": 3}, {"n": "occupancy", "v": 1.2}]"#,
    Reason::OutOfRange,
    "record 1 `occupancy`"
)]
fn traffic_rejections(#[case] payload: &str, #[case] reason: Reason, #[case] needle: &str) {
    let (result, _) = run_on(Domain::Traffic, "tc-1", payload);
    let fault = result.expect_err(payload);
    assert_eq!(fault.reason, reason, "{payload}: {}", fault.message);
    assert!(
        fault.message.contains(needle),
        "{payload}: {}",
        fault.message
    );
}

#[rstest]
#[case(Reason::EmptyPack)]
#[case(Reason::UnitMismatch)]
#[case(Reason::UnknownMandatoryLabel)]
fn the_senml_lines_of_the_bad_inputs_are_rejected(#[case] reason: Reason) {
    let packs: Vec<&str> = BAD_INPUTS.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(packs.len(), 3, "the fixture's SenML lines");
    let expected = [
        Reason::EmptyPack,
        Reason::UnitMismatch,
        Reason::UnknownMandatoryLabel,
    ];
    let at = expected
        .iter()
        .position(|r| *r == reason)
        .expect("a reason of the table");
    let (result, _) = run(packs[at]);
    let fault = result.expect_err(packs[at]);
    assert_eq!(fault.reason, reason, "{}: {}", packs[at], fault.message);
}

#[test]
fn the_sum_of_intensity_and_energy_is_accepted() {
    let (result, out) = run_on(Domain::Traffic, "tc-1", r#"[{"n": "intensity", "s": 3}]"#);
    assert_eq!(result, Ok(0));
    assert_eq!(
        out[0].values.get(Attribute::Intensity),
        Some(Value::Number(3.0))
    );
}

/// A label of the pack grammar, or one this service does not know.
fn label() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut",
        "x_", "foo", "",
    ])
}

/// A JSON value as text, biased towards ones the decoder gives meaning to.
fn value() -> impl Strategy<Value = String> {
    let strings = prop::sample::select(vec![
        "lamp-1:",
        "urn:dev:ow:lamp-1:",
        "lamp-2/",
        "powerConsumption",
        "illuminanceLevel",
        "powerState",
        "energyConsumed",
        "laneId",
        "W",
        "kW",
        "%",
        "Wh",
        "Cel",
        "furlong",
        "on",
        "ON",
        "",
        "a b",
        "é",
    ]);
    let numbers = prop::sample::select(vec![
        0.0,
        1.0,
        -1.0,
        0.5,
        40.0,
        -60.0,
        11.0,
        268_435_456.0,
        1_795_900_000.0,
        1e300,
        -1e300,
        f64::MAX,
    ]);
    prop_oneof![
        strings.prop_map(|s| format!("{s:?}")),
        numbers.prop_map(|n| format!("{n:e}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("null".to_owned()),
        Just("[1, {\"a\": []}]".to_owned()),
        Just("{\"v\": 1}".to_owned()),
    ]
}

/// A pack of small records, some of them not objects, as JSON text.
fn pack() -> impl Strategy<Value = String> {
    let record = prop_oneof![
        4 => prop::collection::vec((label(), value()), 0..6).prop_map(|labels| {
            let body: Vec<String> = labels.iter().map(|(l, v)| format!("{l:?}: {v}")).collect();
            format!("{{{}}}", body.join(", "))
        }),
        1 => value(),
    ];
    prop::collection::vec(record, 0..6).prop_map(|records| format!("[{}]", records.join(", ")))
}

/// A pack of mostly well-formed records about the topic's device, so that
/// acceptance, grouping and duplicates are exercised as well as rejection.
fn plausible_pack() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "powerConsumption",
        "illuminanceLevel",
        "powerState",
        "energyConsumed",
        "fillingLevel",
        "intensity",
        "laneId",
        "congested",
        "lamp-1:voltage",
        "unknownThing",
    ]);
    let field = prop_oneof![
        prop::sample::select(vec![0.0, 0.5, 1.0, 2.0, 40.0, 230.0, -1.0])
            .prop_map(|v| format!("\"v\": {v}")),
        prop::sample::select(vec!["on", "ok", "off", "x"]).prop_map(|v| format!("\"vs\": {v:?}")),
        any::<bool>().prop_map(|b| format!("\"vb\": {b}")),
        Just("\"s\": 3".to_owned()),
    ];
    let extra = prop::sample::select(vec![
        "",
        ", \"t\": -60",
        ", \"t\": 1",
        ", \"bt\": 1795900000",
        ", \"u\": \"%\"",
        ", \"bu\": \"W\"",
        ", \"bn\": \"urn:dev:ow:lamp-1:\"",
        ", \"bv\": 1",
    ]);
    let record = (name, field, extra)
        .prop_map(|(n, field, extra)| format!("{{\"n\": {n:?}, {field}{extra}}}"));
    prop::collection::vec(record, 1..6).prop_map(|records| format!("[{}]", records.join(", ")))
}

fn never_panics_nor_leaves_readings_behind(payload: &[u8]) {
    let limits = TimeLimits::default();
    let applications = Applications::default();
    let ctx = Context {
        now: now(),
        limits: &limits,
        applications: &applications,
    };
    for domain in Domain::ALL {
        let target = Target {
            domain,
            commune: "rabat",
            device: "lamp-1",
        };
        let earlier = Reading::new(domain, "rabat", "lamp-0", secs(1));
        let mut out = vec![earlier.clone()];
        match decode(payload, target, &ctx, &mut out) {
            Ok(_) => {
                assert_eq!(out[0], earlier);
                assert!(out.len() > 1, "an accepted pack gives a reading");
                assert!(out[1..].windows(2).all(|w| w[0].time < w[1].time));
                assert!(out[1..].iter().all(|r| !r.values.is_empty()));
            }
            Err(fault) => {
                assert_eq!(out, [earlier]);
                assert!(!fault.message.is_empty());
            }
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(payload in prop::collection::vec(any::<u8>(), 0..200)) {
        never_panics_nor_leaves_readings_behind(&payload);
    }

    #[test]
    fn arbitrary_packs_never_panic(payload in pack()) {
        never_panics_nor_leaves_readings_behind(payload.as_bytes());
    }

    #[test]
    fn plausible_packs_never_panic(payload in plausible_pack()) {
        never_panics_nor_leaves_readings_behind(payload.as_bytes());
    }
}
