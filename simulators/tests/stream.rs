//! The message stream: deterministic, ordered, identified by series and
//! event time, and true to the sun.

mod common;

use std::collections::HashSet;

use schemas::{Attribute, Domain};
use simulators::spec::{CommuneSpec, FaultRates};
use simulators::sun::sun_times;
use simulators::{Fleet, FleetSpec, MessageFault};

const FROM: &str = "2026-03-04T06:00:00Z";
const TO: &str = "2026-03-04T10:00:00Z";

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let spec = common::small(1, FaultRates::default());
    let a = common::run(&spec, FROM, TO);
    let b = common::run(&spec, FROM, TO);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    let other = common::run(&common::small(2, FaultRates::default()), FROM, TO);
    let payloads =
        |v: &[simulators::Message]| v.iter().map(|m| m.payload.clone()).collect::<HashSet<_>>();
    let (pa, po) = (payloads(&a), payloads(&other));
    assert!(pa.intersection(&po).count() < pa.len() / 100);
}

#[test]
fn a_device_does_not_depend_on_the_others() {
    let spec = common::small(5, FaultRates::default());
    let mut bigger = spec.clone();
    let mut extra: CommuneSpec = bigger.communes[0].clone();
    extra.id = "sale".into();
    bigger.communes.push(extra);
    let a = common::run(&spec, FROM, TO);
    let b: Vec<_> = common::run(&bigger, FROM, TO)
        .into_iter()
        .filter(|m| !m.device.contains("-sale-"))
        .collect();
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x.topic, &x.payload, x.publish_at),
            (&y.topic, &y.payload, y.publish_at)
        );
    }
}

#[test]
fn messages_come_in_publication_order_with_unique_identities() {
    let faults = FaultRates {
        late: 0.05,
        duplicate: 0.05,
        clock_skew_s: 20.0,
        ..FaultRates::default()
    };
    let messages = common::run(&common::small(9, faults), FROM, TO);
    let mut identities = HashSet::new();
    let mut publishers = HashSet::new();
    for (n, pair) in messages.windows(2).enumerate() {
        assert!(pair[0].publish_at <= pair[1].publish_at, "{n}");
        assert_eq!(pair[0].seq + 1, pair[1].seq);
    }
    for m in &messages {
        let id = m.identity();
        let fresh = identities.insert((id.0, id.1.to_owned(), id.2.to_owned(), id.3, id.4));
        assert_eq!(
            fresh,
            m.fault != Some(MessageFault::Duplicate),
            "{}",
            m.topic
        );
        publishers.insert(m.publish_at.timestamp() % 60);
    }
    assert!(
        publishers.len() > 30,
        "devices publish at many different seconds"
    );
}

#[test]
fn consecutive_ranges_continue_each_other() {
    let faults = FaultRates {
        late: 0.0,
        duplicate: 0.0,
        ..FaultRates::default()
    };
    let spec = common::small(3, faults);
    let whole = common::run(&spec, FROM, TO);
    let mut fleet = Fleet::new(&spec).expect("valid");
    let mut parts: Vec<_> = fleet
        .messages(common::at(FROM), common::at("2026-03-04T08:00:00Z"))
        .collect();
    parts.extend(fleet.messages(common::at("2026-03-04T08:00:00Z"), common::at(TO)));
    assert_eq!(whole, parts);
}

#[test]
fn rabat_lamps_switch_on_at_sunset() {
    let mut spec = FleetSpec {
        seed: 11,
        faults: FaultRates::NONE,
        ..FleetSpec::default()
    };
    spec.intervals.lighting_s = 60;
    spec.communes.truncate(1);
    let rabat = &mut spec.communes[0];
    (rabat.lighting, rabat.waste, rabat.traffic) = (25, 0, 0);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 21).expect("date");
    let sunset = sun_times(34.0209, -6.8416, date).expect("not polar").sunset;
    // About 20:42 local time (UTC+1); see the tests of `sun` for the sources.
    assert!(
        (sunset - common::at("2026-06-21T19:43:00Z"))
            .num_seconds()
            .abs()
            <= 120
    );
    let mut fleet = Fleet::new(&spec).expect("valid");
    let mut switched = std::collections::HashMap::new();
    for m in fleet.messages(
        common::at("2026-06-21T18:30:00Z"),
        common::at("2026-06-21T21:00:00Z"),
    ) {
        assert_eq!(m.observation.domain, Domain::Lighting);
        if m.observation.values.symbol(Attribute::PowerState) == Some("on") {
            switched.entry(m.device.clone()).or_insert(m.event_time);
        }
    }
    assert_eq!(switched.len(), 25);
    for (device, on) in switched {
        let off = (on - sunset).num_seconds().abs();
        assert!(
            off <= 600,
            "{device} switched on at {on}, {off} s from sunset {sunset}"
        );
    }
}

#[test]
fn the_deployed_fleet_builds() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/simulate/fleet.toml"
    ))
    .expect("fleet.toml is readable");
    let spec = FleetSpec::from_toml(&text).expect("valid");
    let mut fleet = Fleet::new(&spec).expect("builds");
    assert_eq!(
        fleet.len(),
        400 + 150 + 40 + 800 + 300 + 80 + 120 + 40 + 6 + 150 + 50 + 10 + 180 + 60 + 12
    );
    let minute = fleet
        .messages(common::at(FROM), common::at("2026-03-04T06:01:00Z"))
        .count();
    assert!(minute > 1500, "{minute}");
}
