//! Property tests of window snapshots: windows restored from an image taken
//! anywhere in a stream go on exactly as the windows it was taken of (same
//! points, same counters, same image); an image is the same bytes for the same
//! state; no bytes make restoring panic; another configuration is named.

mod window_stream;

use processors::window::{SnapshotError, WindowConfig, WindowStats, Windows, SNAPSHOT_VERSION};
use processors::Point;
use proptest::prelude::*;
use proptest::sample::Index;
use rstest::rstest;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};
use window_stream::{ops, Op};

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

/// A small cap (readings refused for capacity) or none.
fn cap() -> impl Strategy<Value = usize> {
    prop_oneof![0..24_usize, Just(usize::MAX)]
}

fn image(w: &Windows) -> Vec<u8> {
    let mut out = Vec::new();
    w.snapshot(&mut out);
    out
}

/// Plays operations on windows as the shell does: readings, drains (after
/// every reading too, when `drain_each`), flushes, idle time. Event times are
/// relative to `max_s`, the highest seen.
fn play(w: &mut Windows, ops: &[Op], max_s: &mut i64, drain_each: bool, out: &mut Vec<Point>) {
    for op in ops {
        match op {
            Op::Record(r, delta) => {
                let mut r = Reading::clone(r);
                let t = *max_s + delta;
                r.time = Timestamp::from_secs(t);
                *max_s = (*max_s).max(t);
                w.record(&r);
                if drain_each {
                    w.drain(out);
                }
            }
            Op::Drain => w.drain(out),
            Op::Flush => w.flush_all(out),
            Op::Advance(d) => {
                *max_s += d;
                w.advance(Timestamp::from_secs(*max_s));
            }
        }
    }
}

/// What a run left: every point emitted, the counters and the image at the
/// end of the stream, and the points of the flush at shutdown.
#[derive(Debug, PartialEq)]
struct Outcome {
    points: Vec<Point>,
    stats: WindowStats,
    image: Vec<u8>,
    flushed: Vec<Point>,
}

/// Plays `ops`, restarting from a snapshot after the first `split` of them.
fn run(
    ops: &[Op],
    cap: usize,
    drain_each: bool,
    split: Option<usize>,
) -> Result<Outcome, TestCaseError> {
    let mut w = Windows::new(config(cap));
    let mut points = Vec::new();
    let mut max_s = BASE_S;
    let (before, after) = ops.split_at(split.unwrap_or(0));
    play(&mut w, before, &mut max_s, drain_each, &mut points);
    if split.is_some() {
        let taken = image(&w);
        let restored = Windows::restore(config(cap), &taken);
        let restored = restored.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(restored.stats(), w.stats());
        prop_assert_eq!(restored.max_event_time(), w.max_event_time());
        prop_assert_eq!(restored.watermark(), w.watermark());
        prop_assert!(
            image(&restored) == taken,
            "restored windows write another image"
        );
        w = restored;
    }
    play(&mut w, after, &mut max_s, drain_each, &mut points);
    let stats = w.stats();
    let image = image(&w);
    let mut flushed = Vec::new();
    w.flush_all(&mut flushed);
    w.advance(Timestamp::from_secs(max_s + 3_600));
    w.drain(&mut flushed);
    prop_assert_eq!(w.stats().open_windows, 0);
    Ok(Outcome {
        points,
        stats,
        image,
        flushed,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Restarting from a snapshot anywhere in a stream (late readings that
    /// correct emitted windows, readings too late, readings over the cap)
    /// changes nothing: the same points in the same order, the same counters,
    /// the same image at the end and the same points at shutdown.
    #[test]
    fn restored_windows_emit_what_uninterrupted_ones_do(
        ops in ops(3 * LATENESS_S, 60),
        cap in cap(),
        split in any::<Index>(),
        drain_each in any::<bool>(),
    ) {
        let k = split.index(ops.len() + 1);
        let whole = run(&ops, cap, drain_each, None)?;
        let restarted = run(&ops, cap, drain_each, Some(k))?;
        prop_assert_eq!(&whole.points, &restarted.points);
        prop_assert_eq!(whole.stats, restarted.stats);
        prop_assert!(whole.image == restarted.image, "images differ at the end");
        prop_assert_eq!(&whole.flushed, &restarted.flushed);
    }

    /// snapshot → restore → snapshot gives the same bytes; and so do two
    /// windows fed the same stream (whose maps are seeded differently, so no
    /// hash order leaks into the image).
    #[test]
    fn the_same_state_gives_the_same_bytes(
        ops in ops(3 * LATENESS_S, 60),
        cap in cap(),
    ) {
        let (mut a, mut b) = (Windows::new(config(cap)), Windows::new(config(cap)));
        let (mut max_a, mut max_b) = (BASE_S, BASE_S);
        play(&mut a, &ops, &mut max_a, false, &mut Vec::new());
        play(&mut b, &ops, &mut max_b, false, &mut Vec::new());
        let first = image(&a);
        prop_assert!(first == image(&b), "two windows fed alike write different images");
        let restored = Windows::restore(config(cap), &first);
        let restored = restored.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(image(&restored) == first);
        // Appending writes the same image after what is there.
        let mut appended = b"prefix".to_vec();
        restored.snapshot(&mut appended);
        prop_assert!(appended[6..] == first[..]);
    }

    /// Bytes that are no image are refused.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(Windows::restore(config(usize::MAX), &bytes).is_err());
    }

    /// An image cut short, with a byte changed, or with bytes after it, is
    /// refused, never half restored.
    #[test]
    fn cut_altered_or_extended_images_are_refused(
        ops in ops(3 * LATENESS_S, 60),
        cut in any::<Index>(),
        at in any::<Index>(),
        xor in 1..=255_u8,
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut w = Windows::new(config(usize::MAX));
        play(&mut w, &ops, &mut BASE_S.clone(), false, &mut Vec::new());
        let good = image(&w);
        let restore = |bytes: &[u8]| Windows::restore(config(usize::MAX), bytes);
        let cut = &good[..cut.index(good.len())];
        prop_assert!(
            matches!(
                restore(cut),
                Err(SnapshotError::Truncated { .. } | SnapshotError::BadMagic)
            ),
            "{:?}",
            restore(cut).err()
        );
        let mut altered = good.clone();
        altered[at.index(good.len())] ^= xor;
        prop_assert!(restore(&altered).is_err());
        let mut extended = good.clone();
        extended.extend_from_slice(&extra);
        prop_assert!(
            matches!(restore(&extended), Err(SnapshotError::TrailingBytes { .. })),
            "{:?}",
            restore(&extended).err()
        );
    }
}

fn lamp(secs: i64) -> Reading {
    let mut r = Reading::new(Domain::Lighting, "rabat", "l-1", Timestamp::from_secs(secs));
    r.values.set(Attribute::PowerState, Value::Symbol("on"));
    r.values
        .set(Attribute::PowerConsumption, Value::Number(40.0));
    r
}

#[rstest]
#[case::device_width("device_window_s", WindowConfig { device_window_s: 30, ..config(10) })]
#[case::rollup_width("rollup_window_s", WindowConfig { rollup_window_s: 900, ..config(10) })]
#[case::lateness("allowed_lateness_s", WindowConfig { allowed_lateness_s: 300, ..config(10) })]
#[case::full("full_threshold", WindowConfig { full_threshold: 0.9, ..config(10) })]
#[case::fire("fire_temperature_c", WindowConfig { fire_temperature_c: 60.0, ..config(10) })]
fn another_configuration_is_named(#[case] key: &str, #[case] other: WindowConfig) {
    let mut w = Windows::new(config(10));
    w.record(&lamp(BASE_S));
    let got = Windows::restore(other, &image(&w)).map(|_| ());
    let Err(SnapshotError::ConfigMismatch {
        key: named,
        ref image,
        ref configured,
    }) = got
    else {
        panic!("{key}: {got:?}");
    };
    assert_eq!(named, key);
    assert_ne!(image, configured);
    let message = got.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(message.contains(key), "{message}");
}

#[test]
fn the_cap_may_change_across_a_restart() {
    let mut w = Windows::new(config(10));
    w.record(&lamp(BASE_S));
    let restored = Windows::restore(config(1), &image(&w)).expect("another cap is accepted");
    // Over the new cap: the windows held stay, no new one opens.
    assert_eq!(restored.stats().open_windows, 2);
    assert_eq!(restored.config().max_open_windows, 1);
}

#[test]
fn empty_windows_round_trip_and_the_header_is_checked() {
    let empty = image(&Windows::new(WindowConfig::default()));
    let restored = Windows::restore(WindowConfig::default(), &empty).expect("empty image");
    assert_eq!(restored.stats(), WindowStats::default());
    assert_eq!(restored.max_event_time(), None);
    assert_eq!(
        Windows::restore(WindowConfig::default(), b"").err(),
        Some(SnapshotError::Truncated {
            expected: 28,
            actual: 0
        })
    );
    let mut newer = empty.clone();
    newer[8] = 2;
    assert_eq!(
        Windows::restore(WindowConfig::default(), &newer).err(),
        Some(SnapshotError::UnsupportedVersion {
            found: 2,
            supported: SNAPSHOT_VERSION
        })
    );
    assert_eq!(
        Windows::restore(WindowConfig::default(), b"GIF89a and more").err(),
        Some(SnapshotError::BadMagic)
    );
}
