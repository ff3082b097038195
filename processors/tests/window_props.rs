//! Property tests of event-time windows: whatever the arrival order, the last
//! point written for a window equals a recomputation from scratch over the
//! readings merged into it; a reading too late never reaches a point; the cap
//! holds.

use std::collections::{BTreeMap, HashMap};

mod window_model;

use processors::encode::encode_point;
use processors::window::{Recorded, WindowConfig, Windows};
use processors::{FieldValue, Point};
use proptest::prelude::*;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};
use window_model::{expect_device, expect_rollup, same, Merged};

const DEVICE_S: i64 = 60;
const ROLLUP_S: i64 = 300;
const LATENESS_S: i64 = 120;
const BASE_S: i64 = 1_800_000_000;

fn config(cap: usize) -> WindowConfig {
    WindowConfig {
        device_window_s: 60,
        rollup_window_s: 300,
        allowed_lateness_s: 120,
        max_open_windows: cap,
        ..WindowConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
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
fn ops(behind: i64, ahead: i64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (reading(), -behind..=ahead).prop_map(|(r, d)| Op::Record(Box::new(r), d)),
        2 => Just(Op::Drain),
        1 => Just(Op::Flush),
        1 => (0..200_i64).prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..120)
}

type PointKey = (String, Vec<(String, String)>, i64);

fn point_key(p: &Point) -> PointKey {
    let tags = p.tags.iter().map(|(k, v)| (k.to_string(), v.clone()));
    (p.measurement.to_string(), tags.collect(), p.time.as_nanos())
}

struct Run {
    points: Vec<Point>,
    merged: Vec<Merged>,
}

/// Plays the operations, checking the cap and too-late readings on the way.
fn run(ops: &[Op], cap: usize, all_accepted: bool) -> Result<Run, TestCaseError> {
    let mut w = Windows::new(config(cap));
    let mut points = Vec::new();
    let mut merged = Vec::new();
    let mut closed: Vec<(PointKey, usize)> = Vec::new();
    let mut max_s = BASE_S;
    for (arrival, op) in ops.iter().enumerate() {
        match op {
            Op::Record(r, delta) => {
                let mut r = Reading::clone(r);
                let t = max_s + delta;
                r.time = Timestamp::from_secs(t);
                let watermark = w.watermark().map_or(i64::MIN, Timestamp::as_nanos);
                let outcome = w.record(&r);
                max_s = max_s.max(t);
                if all_accepted {
                    prop_assert_eq!(outcome, Recorded::Accepted);
                }
                match outcome {
                    Recorded::Accepted => merged.push(Merged {
                        reading: r,
                        arrival,
                    }),
                    Recorded::TooLate => {
                        // Once drained, a closed window is never written again,
                        // so the reading cannot reach any later point.
                        w.drain(&mut points);
                        let (device, rollup) = window_keys(&r);
                        let mut any = false;
                        for (key, width) in [(device, DEVICE_S), (rollup, ROLLUP_S)] {
                            if (key.2 + width * 1_000_000_000) <= watermark {
                                closed.push((key, points.len()));
                                any = true;
                            }
                        }
                        prop_assert!(any, "too late although both windows are open");
                    }
                    Recorded::CapacityExceeded => {}
                }
            }
            Op::Drain => w.drain(&mut points),
            Op::Flush => w.flush_all(&mut points),
            Op::Advance(d) => {
                max_s += d;
                w.advance(Timestamp::from_secs(max_s));
            }
        }
        prop_assert!(w.stats().open_windows <= cap);
    }
    w.advance(Timestamp::from_secs(max_s + 10 * ROLLUP_S));
    w.drain(&mut points);
    prop_assert_eq!(w.stats().open_windows, 0);
    for (key, from) in closed {
        prop_assert!(
            points[from..].iter().all(|p| point_key(p) != key),
            "closed window {:?} written again",
            key
        );
    }
    Ok(Run { points, merged })
}

fn window_keys(r: &Reading) -> (PointKey, PointKey) {
    let t = r.time.as_nanos() / 1_000_000_000;
    let mut tags = vec![
        ("commune".to_owned(), r.commune.clone()),
        ("device".to_owned(), r.device.clone()),
    ];
    if let Some(d) = &r.district {
        tags.push(("district".to_owned(), d.clone()));
    }
    if let Some(lane) = r.lane {
        tags.push(("lane".to_owned(), lane.to_string()));
    }
    let device = (
        format!("{}_1m", r.domain),
        tags,
        (t - t.rem_euclid(DEVICE_S)) * 1_000_000_000,
    );
    let rollup = (
        format!("{}_commune_5m", r.domain),
        vec![("commune".to_owned(), r.commune.clone())],
        (t - t.rem_euclid(ROLLUP_S)) * 1_000_000_000,
    );
    (device, rollup)
}

/// Checks the last point written per window against the recomputation.
fn check(run: &Run) -> Result<(), TestCaseError> {
    let mut last: HashMap<PointKey, &Point> = HashMap::new();
    let mut types: HashMap<(String, String), std::mem::Discriminant<FieldValue>> = HashMap::new();
    for p in &run.points {
        for (k, v) in &p.fields {
            let kind = std::mem::discriminant(v);
            let known = *types
                .entry((p.measurement.to_string(), k.to_string()))
                .or_insert(kind);
            prop_assert_eq!(known, kind, "type of {} changed", k);
        }
        last.insert(point_key(p), p);
    }
    let mut groups: BTreeMap<PointKey, (Domain, bool, Vec<&Merged>)> = BTreeMap::new();
    for m in &run.merged {
        let (device, rollup) = window_keys(&m.reading);
        groups
            .entry(device)
            .or_insert((m.reading.domain, false, Vec::new()))
            .2
            .push(m);
        groups
            .entry(rollup)
            .or_insert((m.reading.domain, true, Vec::new()))
            .2
            .push(m);
    }
    prop_assert_eq!(last.len(), groups.len(), "one point per window");
    for (key, (domain, is_rollup, group)) in &groups {
        let Some(point) = last.get(key) else {
            return Err(TestCaseError::fail(format!("no point for {key:?}")));
        };
        let want = if *is_rollup {
            expect_rollup(*domain, group)
        } else {
            expect_device(group)
        };
        let got: BTreeMap<&str, &FieldValue> =
            point.fields.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        prop_assert_eq!(
            got.len(),
            point.fields.len(),
            "duplicate field in {:?}",
            key
        );
        let got_names: Vec<_> = got.keys().copied().collect();
        let want_names: Vec<_> = want.keys().map(String::as_str).collect();
        prop_assert_eq!(got_names, want_names, "fields of {:?}", key);
        for (name, w) in &want {
            prop_assert!(
                same(got[name.as_str()], w),
                "{:?} {}: got {:?}, want {:?}",
                key,
                name,
                got[name.as_str()],
                w
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Readings never more than the allowed lateness behind: all merged, and the
    /// last point of every window is the recomputation over all its readings.
    #[test]
    fn within_lateness_last_point_is_the_recomputation(ops in ops(LATENESS_S, 40)) {
        let run = run(&ops, usize::MAX, true)?;
        check(&run)?;
    }

    /// Any arrival order and a small cap: too-late readings never reach a point,
    /// the cap holds, and the last points equal the recomputation over the
    /// readings that were merged.
    #[test]
    fn any_order_and_cap_last_point_is_the_recomputation(
        ops in ops(3 * LATENESS_S, 60),
        cap in 0..24_usize,
    ) {
        let run = run(&ops, cap, false)?;
        check(&run)?;
    }

    /// Lines written straight from the windows are the points encoded, byte
    /// for byte, through drains, flushes and corrections.
    #[test]
    fn encoded_drain_writes_the_points_as_lines(
        ops in ops(3 * LATENESS_S, 60),
        cap in 0..24_usize,
    ) {
        let mut by_point = Windows::new(config(cap));
        let mut by_line = Windows::new(config(cap));
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let mut max_s = BASE_S;
        for op in &ops {
            let mut points = Vec::new();
            let errors = match op {
                Op::Record(r, delta) => {
                    let mut r = Reading::clone(r);
                    r.time = Timestamp::from_secs(max_s + delta);
                    max_s = max_s.max(max_s + delta);
                    prop_assert_eq!(by_point.record(&r), by_line.record(&r));
                    continue;
                }
                Op::Advance(d) => {
                    max_s += d;
                    by_point.advance(Timestamp::from_secs(max_s));
                    by_line.advance(Timestamp::from_secs(max_s));
                    continue;
                }
                Op::Drain => {
                    by_point.drain(&mut points);
                    by_line.drain_encoded(&mut got)
                }
                Op::Flush => {
                    by_point.flush_all(&mut points);
                    by_line.flush_all_encoded(&mut got)
                }
            };
            let refused: Vec<_> = points
                .iter()
                .filter_map(|p| encode_point(p, &mut want).err())
                .collect();
            prop_assert_eq!(refused, errors);
            prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
            prop_assert_eq!(by_point.stats(), by_line.stats());
        }
    }
}
