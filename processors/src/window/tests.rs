//! The watermark cycle of [`Windows`]: on-time emission, corrections, readings
//! too late, the cap, flush at shutdown and idle time.

use rstest::rstest;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};

use super::*;
use crate::point::FieldValue;

fn lamp(device: &str, secs: i64, power: f64) -> Reading {
    let mut r = Reading::new(
        Domain::Lighting,
        "rabat",
        device,
        Timestamp::from_secs(secs),
    );
    r.values.set(Attribute::PowerState, Value::Symbol("on"));
    r.values
        .set(Attribute::PowerConsumption, Value::Number(power));
    r
}

fn drained(w: &mut Windows) -> Vec<Point> {
    let mut out = Vec::new();
    w.drain(&mut out);
    out
}

fn find<'a>(points: &'a [Point], measurement: &str) -> Option<&'a Point> {
    points.iter().find(|p| p.measurement == measurement)
}

#[rstest]
#[case(60, "1m")]
#[case(900, "15m")]
#[case(3600, "1h")]
#[case(30, "30s")]
#[case(86_400, "1d")]
#[case(90, "90s")]
#[case(7_200, "2h")]
#[case(0, "0s")]
fn labels_use_the_largest_whole_unit(#[case] width: u32, #[case] expected: &str) {
    assert_eq!(label(width), expected);
}

#[test]
fn config_validation_names_the_key() {
    assert_eq!(WindowConfig::default().validate(), Ok(()));
    let zero = WindowConfig {
        rollup_window_s: 0,
        ..WindowConfig::default()
    };
    assert!(matches!(
        zero.validate(),
        Err(WindowConfigError::ZeroWidth {
            key: "rollup_window_s"
        })
    ));
    let nan = WindowConfig {
        full_threshold: f64::NAN,
        ..WindowConfig::default()
    };
    let message = nan.validate().map_err(|e| e.to_string());
    assert!(matches!(message, Err(m) if m.contains("full_threshold")));
    // A zero width is taken as one second, never a division by zero.
    let mut w = Windows::new(WindowConfig {
        device_window_s: 0,
        ..WindowConfig::default()
    });
    assert_eq!(w.record(&lamp("l-1", 0, 1.0)), Recorded::Accepted);
    w.advance(Timestamp::from_secs(1));
    assert_eq!(drained(&mut w)[0].measurement, "lighting_1s");
}

#[test]
fn window_emits_when_event_time_reaches_its_end() {
    let mut w = Windows::new(WindowConfig::default());
    assert_eq!(w.record(&lamp("l-1", 10, 40.0)), Recorded::Accepted);
    assert_eq!(w.record(&lamp("l-1", 59, 20.0)), Recorded::Accepted);
    assert!(drained(&mut w).is_empty());
    assert_eq!(w.record(&lamp("l-1", 60, 30.0)), Recorded::Accepted);
    let out = drained(&mut w);
    assert_eq!(out.len(), 1);
    let p = &out[0];
    assert_eq!(p.measurement, "lighting_1m");
    assert_eq!(p.time, Timestamp::from_secs(0));
    assert_eq!(p.tag_value("device"), Some("l-1"));
    assert_eq!(p.get("count"), Some(&FieldValue::Integer(2)));
    assert_eq!(p.get("power_w_mean"), Some(&FieldValue::Float(30.0)));
    assert!(drained(&mut w).is_empty(), "emitted once");
    // The rollup waits for the end of its 15 minutes.
    w.advance(Timestamp::from_secs(900));
    let out = drained(&mut w);
    let rollup = find(&out, "lighting_commune_15m").expect("rollup due at 900 s");
    assert_eq!(rollup.time, Timestamp::from_secs(0));
    assert_eq!(rollup.get("lamps_reporting"), Some(&FieldValue::Integer(1)));
    assert_eq!(w.stats().points_emitted, 3);
}

#[test]
fn late_reading_within_lateness_overwrites_the_same_point() {
    let mut w = Windows::new(WindowConfig::default());
    w.record(&lamp("l-1", 10, 40.0));
    w.record(&lamp("l-1", 70, 1.0));
    let first = drained(&mut w);
    assert_eq!(first.len(), 1);
    // 350 s seen, watermark 50 s: the window [0, 60) is still open.
    w.record(&lamp("l-1", 350, 1.0));
    assert_eq!(w.record(&lamp("l-1", 30, 20.0)), Recorded::Accepted);
    let out = drained(&mut w);
    let corrected = out
        .iter()
        .find(|p| p.time == Timestamp::from_secs(0))
        .expect("window re-emitted");
    assert_eq!(corrected.measurement, first[0].measurement);
    assert_eq!(corrected.tags, first[0].tags);
    assert_eq!(corrected.get("count"), Some(&FieldValue::Integer(2)));
    assert_eq!(
        corrected.get("power_w_mean"),
        Some(&FieldValue::Float(30.0))
    );
    assert_eq!(
        corrected.get("power_w_last"),
        Some(&FieldValue::Float(20.0))
    );
    assert_eq!(w.stats().corrections, 1);
}

#[test]
fn reading_past_the_watermark_is_counted_not_merged() {
    let mut w = Windows::new(WindowConfig::default());
    w.record(&lamp("l-1", 10, 40.0));
    w.record(&lamp("l-1", 360, 1.0));
    let out = drained(&mut w);
    assert_eq!(out.len(), 1);
    assert_eq!(w.watermark(), Some(Timestamp::from_secs(60)));
    // The window [0, 60) ends at the watermark: closed and forgotten.
    assert_eq!(w.record(&lamp("l-1", 59, 99.0)), Recorded::TooLate);
    assert!(drained(&mut w).is_empty());
    let mut all = Vec::new();
    w.flush_all(&mut all);
    assert!(all
        .iter()
        .all(|p| p.get("power_w_max") != Some(&FieldValue::Float(99.0))));
    assert_eq!(w.stats().too_late, 1);
    // A reading far in the past does not move the watermark back.
    assert_eq!(w.watermark(), Some(Timestamp::from_secs(60)));
}

#[test]
fn cap_refuses_new_windows_but_feeds_open_ones() {
    let mut w = Windows::new(WindowConfig {
        max_open_windows: 3,
        ..WindowConfig::default()
    });
    assert_eq!(w.record(&lamp("l-1", 0, 1.0)), Recorded::Accepted);
    assert_eq!(w.record(&lamp("l-2", 0, 1.0)), Recorded::Accepted);
    assert_eq!(w.stats().open_windows, 3);
    assert_eq!(w.record(&lamp("l-3", 0, 1.0)), Recorded::CapacityExceeded);
    assert_eq!(w.record(&lamp("l-1", 30, 2.0)), Recorded::Accepted);
    // Another minute needs a new device window: refused, and so not in the rollup.
    assert_eq!(w.record(&lamp("l-1", 60, 1.0)), Recorded::CapacityExceeded);
    let stats = w.stats();
    assert_eq!((stats.open_windows, stats.capacity_exceeded), (3, 2));
    w.advance(Timestamp::from_secs(1_200));
    let out = drained(&mut w);
    let rollup = find(&out, "lighting_commune_15m").expect("rollup");
    assert_eq!(rollup.get("lamps_reporting"), Some(&FieldValue::Integer(2)));
    assert_eq!(w.stats().open_windows, 0);
    assert_eq!(w.record(&lamp("l-3", 1_200, 1.0)), Recorded::Accepted);
}

#[test]
fn flush_all_emits_pending_windows_and_keeps_them() {
    let mut w = Windows::new(WindowConfig::default());
    w.record(&lamp("l-1", 10, 10.0));
    let mut out = Vec::new();
    w.flush_all(&mut out);
    let names: Vec<_> = out.iter().map(|p| p.measurement.as_ref()).collect();
    assert_eq!(names, ["lighting_1m", "lighting_commune_15m"]);
    out.clear();
    w.flush_all(&mut out);
    assert!(out.is_empty(), "nothing changed since");
    w.record(&lamp("l-1", 20, 30.0));
    w.advance(Timestamp::from_secs(60));
    let out = drained(&mut w);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].get("count"), Some(&FieldValue::Integer(2)));
    assert_eq!(out[0].get("power_w_mean"), Some(&FieldValue::Float(20.0)));
    assert_eq!(w.stats().corrections, 1);
    assert_eq!(w.stats().open_windows, 2);
}

#[test]
fn advance_closes_windows_of_an_idle_stream() {
    let mut w = Windows::new(WindowConfig::default());
    assert_eq!(w.max_event_time(), None);
    w.drain(&mut Vec::new());
    w.record(&lamp("l-1", 10, 10.0));
    w.advance(Timestamp::from_secs(5));
    assert_eq!(w.max_event_time(), Some(Timestamp::from_secs(10)));
    assert!(drained(&mut w).is_empty());
    w.advance(Timestamp::from_secs(60));
    assert_eq!(drained(&mut w).len(), 1);
    assert_eq!(w.stats().open_windows, 2);
    w.advance(Timestamp::from_secs(900 + 300));
    let out = drained(&mut w);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].measurement, "lighting_commune_15m");
    assert_eq!(w.stats().open_windows, 0);
}

#[test]
fn rollup_not_closed_while_device_window_is() {
    // Widths that do not divide: a reading may find its rollup closed while its
    // device window is open; it is too late for both.
    let mut w = Windows::new(WindowConfig {
        device_window_s: 60,
        rollup_window_s: 90,
        allowed_lateness_s: 0,
        ..WindowConfig::default()
    });
    w.record(&lamp("l-1", 100, 1.0));
    assert_eq!(w.record(&lamp("l-1", 80, 1.0)), Recorded::TooLate);
}

#[test]
fn extreme_times_do_not_panic() {
    let mut w = Windows::new(WindowConfig::default());
    for t in [i64::MIN, -1, 0, i64::MAX] {
        let mut r = lamp("l-1", 0, 1.0);
        r.time = Timestamp::from_nanos(t);
        w.record(&r);
        w.drain(&mut Vec::new());
    }
    w.advance(Timestamp::from_nanos(i64::MAX));
    w.drain(&mut Vec::new());
    w.flush_all(&mut Vec::new());
}

#[test]
fn keys_are_forgotten_with_the_windows_that_hold_them() {
    let mut w = Windows::new(WindowConfig::default());
    for device in ["l-1", "l-2", "l-3"] {
        w.record(&lamp(device, 0, 1.0));
        w.record(&lamp(device, 70, 2.0));
    }
    assert_eq!((w.devices.held_keys(), w.rollups.held_keys()), (3, 1));
    // The device windows of the first minute go; the rollup still holds its
    // members' keys, and so do the second minute's windows.
    w.advance(Timestamp::from_secs(400));
    drained(&mut w);
    assert_eq!((w.devices.held_keys(), w.rollups.held_keys()), (3, 1));
    w.advance(Timestamp::from_secs(1_200));
    drained(&mut w);
    assert_eq!(w.stats().open_windows, 0);
    assert_eq!((w.devices.held_keys(), w.rollups.held_keys()), (0, 0));
    // Ids freed are given again, to other devices, without mixing them up.
    w.record(&lamp("l-9", 1_200, 5.0));
    w.record(&lamp("l-8", 1_210, 7.0));
    w.record(&lamp("l-9", 1_220, 0.0));
    w.advance(Timestamp::from_secs(2_100));
    let out = drained(&mut w);
    let rollup = find(&out, "lighting_commune_15m").expect("rollup");
    assert_eq!(rollup.get("lamps_reporting"), Some(&FieldValue::Integer(2)));
    assert_eq!(rollup.get("load_w"), Some(&FieldValue::Float(9.5)));
    let l9 = out
        .iter()
        .find(|p| p.tag_value("device") == Some("l-9"))
        .expect("l-9");
    assert_eq!(l9.get("count"), Some(&FieldValue::Integer(2)));
    assert_eq!(l9.get("power_w_last"), Some(&FieldValue::Float(0.0)));
}

#[test]
fn windows_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    send(&Windows::new(WindowConfig::default()));
}

#[test]
fn encoded_drain_refuses_what_encoding_the_point_refuses() {
    use crate::encode::encode_point;
    let mut readings = vec![lamp("l-1", 0, 1.0), lamp("bad\\", 1, 2.0)];
    for secs in [2, 3] {
        let mut huge = lamp("l-2", secs, 3.0);
        huge.values
            .set(Attribute::EnergyConsumed, Value::Number(f64::MAX));
        readings.push(huge);
    }
    let (mut by_point, mut by_line) = (
        Windows::new(WindowConfig::default()),
        Windows::new(WindowConfig::default()),
    );
    for r in &readings {
        by_point.record(r);
        by_line.record(r);
    }
    by_point.advance(Timestamp::from_secs(2_000));
    by_line.advance(Timestamp::from_secs(2_000));
    let (mut want, mut got) = (Vec::new(), Vec::new());
    let refused: Vec<_> = drained(&mut by_point)
        .iter()
        .filter_map(|p| encode_point(p, &mut want).err())
        .collect();
    let errors = by_line.drain_encoded(&mut got);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(errors, refused);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(by_point.stats(), by_line.stats());
}

#[test]
fn encoded_lines_escape_the_keys_that_need_it() {
    use crate::encode::encode_point;
    use crate::window::key::WindowKey;
    let devices = [
        "plain-1",
        "a b",
        "x,y",
        "k=v",
        "tab\t",
        "é-2",
        "back\\slash",
    ];
    for device in devices {
        let plain = !device.contains([' ', ',', '=', '\t', '\\']);
        assert_eq!(
            WindowKey::new(Domain::Lighting, "rabat", device, None).plain,
            plain,
            "{device:?}"
        );
        assert!(!WindowKey::new(Domain::Lighting, "sidi slimane", device, None).plain);
    }
    let (mut by_point, mut by_line) = (
        Windows::new(WindowConfig::default()),
        Windows::new(WindowConfig::default()),
    );
    for (i, device) in devices.iter().enumerate() {
        for commune in ["rabat", "sidi slimane"] {
            let mut r = lamp(device, i as i64, 1.5);
            r.commune = commune.into();
            by_point.record(&r);
            by_line.record(&r);
        }
    }
    by_point.advance(Timestamp::from_secs(2_000));
    by_line.advance(Timestamp::from_secs(2_000));
    let (mut want, mut got) = (Vec::new(), Vec::new());
    for p in drained(&mut by_point) {
        let _ = encode_point(&p, &mut want);
    }
    let errors = by_line.drain_encoded(&mut got);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}
