//! Property tests of event-time windows: whatever the arrival order, the last
//! point written for a window equals a recomputation from scratch over the
//! readings merged into it; a reading too late never reaches a point; the cap
//! holds.

use std::collections::{BTreeMap, HashMap};

mod window_model;
mod window_stream;

use processors::encode::encode_point;
use processors::window::{Recorded, WindowConfig, Windows};
use processors::{FieldValue, Point};
use proptest::prelude::*;
use schemas::{Domain, Reading, Timestamp};
use window_model::{expect_device, expect_rollup, same, Merged};
use window_stream::{ops, Op};

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
