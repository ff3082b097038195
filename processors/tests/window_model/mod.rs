//! The naive model of the window property tests: every figure recomputed from
//! scratch over the readings of a window, without the code under test.

use std::collections::BTreeMap;

use processors::FieldValue;
use schemas::{Attribute, Domain, Reading};

/// A reading as merged, with its arrival rank.
pub struct Merged {
    pub reading: Reading,
    pub arrival: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Float(f64),
    Int(i64),
    Text(String),
    Flag(bool),
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

pub fn same(got: &FieldValue, want: &Want) -> bool {
    match (got, want) {
        (FieldValue::Float(a), Want::Float(b)) => close(*a, *b),
        (FieldValue::Integer(a), Want::Int(b)) => a == b,
        (FieldValue::String(a), Want::Text(b)) => a == b,
        (FieldValue::Boolean(a), Want::Flag(b)) => a == b,
        _ => false,
    }
}

/// The value of `get` in the latest reading (by event time, then arrival) that has one.
fn latest<T>(group: &[&Merged], get: impl Fn(&Reading) -> Option<T>) -> Option<T> {
    group
        .iter()
        .filter_map(|m| get(&m.reading).map(|v| ((m.reading.time, m.arrival), v)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| v)
}

/// Reads one numeric field of a reading.
type Getter = fn(&Reading) -> Option<f64>;

pub fn expect_device(group: &[&Merged]) -> BTreeMap<String, Want> {
    let mut want = BTreeMap::new();
    let numbers: Vec<(&str, Getter)> = vec![
        ("power_w", |r| r.values.number(Attribute::PowerConsumption)),
        ("fill_ratio", |r| r.values.number(Attribute::FillingLevel)),
        ("temperature_c", |r| r.values.number(Attribute::Temperature)),
        ("vehicle_count", |r| r.values.number(Attribute::Intensity)),
        ("speed_kmh", |r| {
            r.values.number(Attribute::AverageVehicleSpeed)
        }),
        ("period_s", |r| r.period_s.map(f64::from)),
        ("flow_vph", |r| {
            let period = r.period_s.filter(|p| *p > 0)?;
            Some(r.values.number(Attribute::Intensity)? * 3600.0 / f64::from(period))
        }),
    ];
    for (name, get) in numbers {
        let all: Vec<f64> = group.iter().filter_map(|m| get(&m.reading)).collect();
        if all.is_empty() {
            continue;
        }
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        let min = all.iter().copied().fold(f64::INFINITY, f64::min);
        let max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let last = latest(group, get).expect("a value exists");
        for (suffix, v) in [("mean", mean), ("min", min), ("max", max), ("last", last)] {
            want.insert(format!("{name}_{suffix}"), Want::Float(v));
        }
    }
    let symbols = [
        ("power_state_last", Attribute::PowerState),
        ("status_last", Attribute::LampStatus),
        ("status_last", Attribute::WasteStatus),
    ];
    for (name, a) in symbols {
        if let Some(s) = latest(group, |r| r.values.symbol(a)) {
            want.insert(name.to_owned(), Want::Text(s.to_owned()));
        }
    }
    if let Some(b) = latest(group, |r| r.values.boolean(Attribute::Congested)) {
        want.insert("congested_last".to_owned(), Want::Flag(b));
    }
    want.insert("count".to_owned(), Want::Int(group.len() as i64));
    want
}

pub fn expect_rollup(domain: Domain, group: &[&Merged]) -> BTreeMap<String, Want> {
    let mut members: BTreeMap<(String, Option<u32>), Vec<&Merged>> = BTreeMap::new();
    for m in group {
        let key = (m.reading.device.clone(), m.reading.lane);
        members.entry(key).or_default().push(m);
    }
    let n = |f: &dyn Fn(&[&Merged]) -> bool| {
        Want::Int(members.values().filter(|g| f(g)).count() as i64)
    };
    let num = |g: &[&Merged], a| latest(g, |r| r.values.number(a));
    let sym = |g: &[&Merged], a| latest(g, |r| r.values.symbol(a));
    let reporting = Want::Int(members.len() as i64);
    let mut want = BTreeMap::new();
    let mut put = |k: &str, v: Want| want.insert(k.to_owned(), v);
    match domain {
        Domain::Lighting => {
            put("lamps_reporting", reporting);
            let state = |g: &[&Merged]| sym(g, Attribute::PowerState);
            put(
                "lamps_on",
                n(&|g| matches!(state(g), Some("on" | "low" | "bootingUp"))),
            );
            put("lamps_off", n(&|g| state(g) == Some("off")));
            put(
                "lamps_failed",
                n(&|g| {
                    matches!(sym(g, Attribute::LampStatus), Some(s) if s != "ok")
                        || (state(g) == Some("on")
                            && num(g, Attribute::PowerConsumption) == Some(0.0))
                }),
            );
            let load = members.values().filter_map(|g| {
                let p: Vec<f64> = g
                    .iter()
                    .filter_map(|m| m.reading.values.number(Attribute::PowerConsumption))
                    .collect();
                (!p.is_empty()).then(|| p.iter().sum::<f64>() / p.len() as f64)
            });
            put("load_w", Want::Float(load.sum()));
        }
        Domain::Waste => {
            put("bins_reporting", reporting);
            put(
                "bins_full",
                n(&|g| num(g, Attribute::FillingLevel).is_some_and(|f| f >= 0.8)),
            );
            put(
                "bins_alarm",
                n(&|g| {
                    matches!(
                        sym(g, Attribute::WasteStatus),
                        Some("burning" | "lidOpen" | "dropped" | "moved" | "vandalized")
                    ) || num(g, Attribute::Temperature).is_some_and(|t| t >= 70.0)
                }),
            );
            let fills: Vec<f64> = members
                .values()
                .filter_map(|g| num(g, Attribute::FillingLevel))
                .collect();
            if !fills.is_empty() {
                put(
                    "fill_mean",
                    Want::Float(fills.iter().sum::<f64>() / fills.len() as f64),
                );
            }
        }
        Domain::Traffic => {
            put("lanes_reporting", reporting);
            put(
                "lanes_congested",
                n(&|g| {
                    g.iter()
                        .any(|m| m.reading.values.boolean(Attribute::Congested) == Some(true))
                }),
            );
            let count = |m: &&Merged| m.reading.values.number(Attribute::Intensity);
            put(
                "vehicles",
                Want::Float(group.iter().filter_map(count).sum()),
            );
            let pairs: Vec<(f64, f64)> = group
                .iter()
                .filter_map(|m| {
                    Some((
                        count(m)?,
                        m.reading.values.number(Attribute::AverageVehicleSpeed)?,
                    ))
                })
                .collect();
            let weight: f64 = pairs.iter().map(|(c, _)| c).sum();
            if weight > 0.0 {
                let speed = pairs.iter().map(|(c, s)| c * s).sum::<f64>() / weight;
                put("speed_mean_kmh", Want::Float(speed));
            }
        }
    }
    want
}
