//! Streams of operations on windows for the property tests: readings of the
//! three domains from a few devices in two communes, their event times given
//! relative to the highest seen, with drains, flushes and idle time between.

use proptest::prelude::*;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};

#[derive(Debug, Clone)]
pub enum Op {
    /// A reading, its event time given relative to the highest time seen.
    Record(Box<Reading>, i64),
    Drain,
    Flush,
    Advance(i64),
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &[T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items.to_vec())
}

fn reading() -> impl Strategy<Value = Reading> {
    let who = (0..3_usize, 0..2_usize, 0..3_usize, 1..3_u32);
    let lamp = (
        proptest::option::of(pick(&["on", "off", "low", "bootingUp"])),
        proptest::option::of(pick(&["ok", "ok", "defectiveLamp"])),
        proptest::option::of(pick(&[0.0, 12.5, 40.0, 99.75])),
    );
    let bin = (
        proptest::option::of(0.0..=1.0_f64),
        proptest::option::of(pick(&[-5.0, 20.0, 69.5, 70.0, 95.0])),
        proptest::option::of(pick(&["ok", "ok", "burning", "lidOpen", "unknown"])),
    );
    let road = (
        proptest::option::of(pick(&[0.0, 1.0, 7.0, 30.0])),
        proptest::option::of(0.0..=130.0_f64),
        proptest::option::of(any::<bool>()),
        proptest::option::of(pick(&[0_u32, 30, 60, 300])),
    );
    (who, lamp, bin, road).prop_map(|((d, c, dev, lane), lamp, bin, road)| {
        let domain = Domain::ALL[d];
        let commune = ["rabat", "sale"][c];
        let device = format!("{}-{dev}", domain.as_str());
        let mut r = Reading::new(domain, commune, &device, Timestamp::from_secs(0));
        // The registry gives a device one district, or none.
        r.district = ["north", "", "south"][dev].to_owned().into();
        r.district = r.district.filter(|d| !d.is_empty());
        let v = &mut r.values;
        match domain {
            Domain::Lighting => {
                put(v, Attribute::PowerState, lamp.0.map(Value::Symbol));
                put(v, Attribute::LampStatus, lamp.1.map(Value::Symbol));
                put(v, Attribute::PowerConsumption, lamp.2.map(Value::Number));
            }
            Domain::Waste => {
                put(v, Attribute::FillingLevel, bin.0.map(Value::Number));
                put(v, Attribute::Temperature, bin.1.map(Value::Number));
                put(v, Attribute::WasteStatus, bin.2.map(Value::Symbol));
            }
            Domain::Traffic => {
                put(v, Attribute::Intensity, road.0.map(Value::Number));
                put(v, Attribute::AverageVehicleSpeed, road.1.map(Value::Number));
                put(v, Attribute::Congested, road.2.map(Value::Bool));
                r.period_s = road.3;
                r.lane = Some(lane);
            }
        }
        r
    })
}

fn put(values: &mut schemas::Values, attribute: Attribute, value: Option<Value>) {
    if let Some(value) = value {
        values.set(attribute, value);
    }
}

/// Operations whose readings lie between `behind` seconds behind and `ahead`
/// seconds ahead of the highest event time seen before them.
pub fn ops(behind: i64, ahead: i64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (reading(), -behind..=ahead).prop_map(|(r, d)| Op::Record(Box::new(r), d)),
        2 => Just(Op::Drain),
        1 => Just(Op::Flush),
        1 => (0..200_i64).prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..120)
}
