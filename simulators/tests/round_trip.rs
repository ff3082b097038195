//! Every generated message decodes, through the service's own decoder, into
//! readings equal to what the device observed.

mod common;

use chrono::TimeDelta;
use schemas::{Attribute, Decoder, Domain, Format, Reading, Reason, Timestamp};
use simulators::spec::FaultRates;
use simulators::{Message, MessageFault};

fn decode(decoder: &Decoder, m: &Message) -> Result<Vec<Reading>, schemas::Rejection> {
    let received =
        Timestamp::from_datetime(m.event_time + TimeDelta::seconds(1)).expect("in range");
    let mut out = Vec::new();
    decoder
        .decode(&m.topic, &m.payload, received, &mut out)
        .map(|_| out)
}

/// The strongest gateway of an uplink (highest RSSI, then SNR).
fn best_rssi(m: &Message) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
    let list = match m.format {
        Format::TheThingsStack => v.pointer("/uplink_message/rx_metadata")?,
        Format::ChirpStack => v.get("rxInfo")?,
        _ => return None,
    };
    list.as_array()?
        .iter()
        .filter_map(|g| g.get("rssi")?.as_f64())
        .reduce(f64::max)
}

fn check(m: &Message, readings: &[Reading]) {
    let obs = &m.observation;
    assert_eq!(readings.len(), 1, "{}", m.topic);
    let r = &readings[0];
    assert_eq!(
        (r.domain, r.commune.as_str(), r.device.as_str()),
        (obs.domain, obs.commune.as_str(), obs.device.as_str())
    );
    assert_eq!(r.device, m.device);
    assert_eq!(r.lane, obs.lane);
    assert_eq!(r.time.to_datetime(), m.event_time);
    let period = match (obs.domain, m.format) {
        (Domain::Traffic, Format::Senml) | (Domain::Lighting | Domain::Waste, _) => None,
        (Domain::Traffic, _) => Some(300),
    };
    assert_eq!(r.period_s, period, "{}", m.topic);
    let mut values = r.values;
    if matches!(m.format, Format::TheThingsStack | Format::ChirpStack) {
        assert_eq!(values.number(Attribute::Rssi), best_rssi(m), "{}", m.topic);
        assert!(values.remove(Attribute::Snr).is_some());
        values.remove(Attribute::Rssi);
    }
    assert_eq!(
        values,
        obs.values,
        "{} {}",
        m.topic,
        String::from_utf8_lossy(&m.payload)
    );
}

#[test]
fn a_day_of_every_format_and_domain_round_trips() {
    let faults = FaultRates {
        late: 0.0,
        duplicate: 0.0,
        malformed: 0.0,
        silent: 0.0,
        ..FaultRates::default()
    };
    let spec = common::small(42, faults);
    let messages = common::run(&spec, "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z");
    let decoder = Decoder::default();
    let mut seen = std::collections::HashSet::new();
    for m in &messages {
        assert_eq!(m.fault, None);
        match decode(&decoder, m) {
            Ok(readings) => check(m, &readings),
            Err(e) => panic!("{e}\n{}", String::from_utf8_lossy(&m.payload)),
        }
        seen.insert((m.observation.domain, m.format));
    }
    assert_eq!(seen.len(), 12, "every domain in every format: {seen:?}");
    assert!(messages.len() > 10_000, "{}", messages.len());
}

#[test]
fn faulty_messages_are_rejected_for_the_right_reason_and_the_rest_round_trip() {
    let faults = FaultRates {
        malformed: 0.03,
        out_of_range: 0.03,
        late: 0.05,
        duplicate: 0.05,
        clock_skew_s: 30.0,
        ..FaultRates::default()
    };
    let spec = common::small(7, faults);
    let messages = common::run(&spec, "2026-03-04T06:00:00Z", "2026-03-04T12:00:00Z");
    let decoder = Decoder::default();
    let mut counts = std::collections::HashMap::new();
    for m in &messages {
        *counts.entry(m.fault).or_insert(0) += 1;
        match (m.fault, decode(&decoder, m)) {
            (Some(MessageFault::Malformed), Err(e)) => {
                assert_eq!(e.reason, Reason::InvalidJson, "{e}");
            }
            (Some(MessageFault::OutOfRange), Err(e)) => {
                assert_eq!(e.reason, Reason::OutOfRange, "{e}");
            }
            (_, Ok(readings)) if m.valid() => check(m, &readings),
            (fault, result) => panic!(
                "{fault:?}: {result:?}\n{}",
                String::from_utf8_lossy(&m.payload)
            ),
        }
        if m.fault == Some(MessageFault::Late) {
            // At least a minute late, less the clock skew of up to 30 s.
            assert!(m.publish_at - m.event_time >= TimeDelta::seconds(30));
        }
    }
    for fault in [
        MessageFault::Malformed,
        MessageFault::OutOfRange,
        MessageFault::Late,
        MessageFault::Duplicate,
    ] {
        assert!(
            counts.get(&Some(fault)).copied().unwrap_or(0) > 10,
            "{fault:?}: {counts:?}"
        );
    }
}
