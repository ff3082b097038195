//! Prepared keys write what the general path writes: byte for byte, and with
//! the same errors, for raw readings, window layouts and arbitrary names.

use processors::encode::{
    encode_point, encode_reading, EncodeError, KeySet, LineWriter, TAG_COMMUNE, TAG_DEVICE,
    TAG_DISTRICT, TAG_LANE,
};
use processors::normalize;
use processors::window::{WindowConfig, Windows};
use processors::Point;
use proptest::collection::vec;
use proptest::prelude::*;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};

/// Any Unicode, text dense in what line protocol cares about, and plain names.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        r##"[a-c\\,= "#\n\r\t\x00\x7fé]{0,6}"##,
        r"[a-z_]{1,10}",
    ]
    .boxed()
}

const SYMBOLS: &[&str] = &["ok", "on", "a b", "q\"\\", "x\ny", ""];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::num::f64::ANY.prop_map(Value::Number),
        (-1e6..1e6f64).prop_map(|v| Value::Number((v * 10.0).round() / 10.0)),
        prop::sample::select(SYMBOLS).prop_map(Value::Symbol),
        any::<bool>().prop_map(Value::Bool),
    ]
}

/// A reading with any attributes and values, valid or not.
fn reading(names: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Reading> {
    (
        prop::sample::select(Domain::ALL.to_vec()),
        names.clone(),
        names.clone(),
        prop::option::of(names),
        prop::option::of(any::<u32>()),
        prop::option::of(prop_oneof![Just(0_u32), Just(60), any::<u32>()]),
        vec((0..Attribute::COUNT, value()), 0..8),
        0..600_i64,
    )
        .prop_map(
            |(domain, commune, device, district, lane, period, values, s)| {
                let mut r = Reading::new(domain, &commune, &device, Timestamp::from_secs(s));
                r.district = district;
                r.lane = lane;
                r.period_s = period;
                for (i, v) in values {
                    r.values.set(Attribute::ALL[i], v);
                }
                r
            },
        )
}

/// The reading as a point, written through the general path.
fn general(reading: &Reading, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut point = Point::new(reading.domain.as_str(), reading.time)
        .tag(TAG_COMMUNE, reading.commune.clone())
        .tag(TAG_DEVICE, reading.device.clone());
    if let Some(district) = &reading.district {
        point = point.tag(TAG_DISTRICT, district.clone());
    }
    if let Some(lane) = reading.lane {
        point = point.tag(TAG_LANE, lane.to_string());
    }
    for field in normalize::fields(reading) {
        point = point.field(field.name(), field.value());
    }
    encode_point(&point, buf)
}

/// A key of a line: from one of two sets, or plain text.
#[derive(Debug, Clone)]
enum Key {
    Set(bool, usize),
    Text(String),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_reading_is_written_as_the_general_path_writes_it(r in reading(text())) {
        let (mut want, mut got) = (b"x f=1i 1\n".to_vec(), b"x f=1i 1\n".to_vec());
        let expected = general(&r, &mut want);
        prop_assert_eq!(encode_reading(&r, &mut got), expected);
        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    }

    /// Windows of any layout (domains, attributes, tags, lanes) write the
    /// lines their points encode to.
    #[test]
    fn window_lines_are_their_points_encoded(
        readings in vec(reading(prop_oneof![text(), r"[a-c]{1,2}"].boxed()), 1..40),
    ) {
        let config = WindowConfig { allowed_lateness_s: 0, ..WindowConfig::default() };
        let (mut by_point, mut by_line) = (Windows::new(config.clone()), Windows::new(config));
        let (mut points, mut got, mut want) = (Vec::new(), Vec::new(), Vec::new());
        for r in &readings {
            by_point.record(r);
            by_line.record(r);
        }
        by_point.flush_all(&mut points);
        let errors = by_line.flush_all_encoded(&mut got);
        let refused: Vec<_> = points.iter().filter_map(|p| encode_point(p, &mut want).err()).collect();
        prop_assert_eq!(refused, errors);
        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    }

    /// Any names, repeated or not, in two sets and as text, mixed in one line.
    #[test]
    fn prepared_keys_write_and_fail_as_text_keys(
        names in (vec(text(), 1..6), vec(text(), 1..6)),
        tags in vec((0..8_usize, 0..6_usize, text()), 0..4),
        fields in vec((0..8_usize, 0..6_usize, value()), 0..6),
        plain in vec(text(), 1..3),
    ) {
        let sets = (KeySet::new(names.0.iter().map(String::as_str)), KeySet::new(names.1.iter().map(String::as_str)));
        let key = |which: usize, i: usize| match which {
            0..=2 => Key::Set(false, i % names.0.len()),
            3..=5 => Key::Set(true, i % names.1.len()),
            _ => Key::Text(plain[i % plain.len()].clone()),
        };
        let prepared = |k: &Key| match k {
            Key::Set(second, i) => Some(if *second { &sets.1.keys()[*i] } else { &sets.0.keys()[*i] }),
            Key::Text(_) => None,
        };
        let name = |k: &Key| match k {
            Key::Set(second, i) => if *second { names.1[*i].clone() } else { names.0[*i].clone() },
            Key::Text(t) => t.clone(),
        };
        let tags: Vec<_> = tags.into_iter().map(|(w, i, v)| (key(w, i), v)).collect();
        let fields: Vec<_> = fields.into_iter().map(|(w, i, v)| (key(w, i), v)).collect();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        let time = Timestamp::from_secs(1);
        let expected = (|| {
            let mut line = LineWriter::new(&mut want);
            let mut line = line.line("m")?;
            for (k, v) in &tags {
                line = line.tag(&name(k), v)?;
            }
            let mut fields = fields.iter();
            let Some((k, v)) = fields.next() else { return Err(EncodeError::NoFields) };
            let mut line = match v {
                Value::Number(x) => line.float(&name(k), *x),
                Value::Symbol(s) => line.string(&name(k), s),
                Value::Bool(b) => line.boolean(&name(k), *b),
            }?;
            for (k, v) in fields {
                line = match v {
                    Value::Number(x) => line.float(&name(k), *x),
                    Value::Symbol(s) => line.string(&name(k), s),
                    Value::Bool(b) => line.integer(&name(k), i64::from(*b)),
                }?;
            }
            line.finish(time);
            Ok(())
        })();
        let result = (|| {
            let mut line = LineWriter::new(&mut got);
            let mut line = line.line("m")?;
            for (k, v) in &tags {
                line = match prepared(k) {
                    Some(p) => line.prepared_tag(p, v),
                    None => line.tag(&name(k), v),
                }?;
            }
            let mut fields = fields.iter();
            let Some((k, v)) = fields.next() else { return Err(EncodeError::NoFields) };
            let mut line = match (prepared(k), v) {
                (Some(p), Value::Number(x)) => line.prepared_float(p, *x),
                (Some(p), Value::Symbol(s)) => line.prepared_string(p, s),
                (Some(p), Value::Bool(b)) => line.prepared_boolean(p, *b),
                (None, Value::Number(x)) => line.float(&name(k), *x),
                (None, Value::Symbol(s)) => line.string(&name(k), s),
                (None, Value::Bool(b)) => line.boolean(&name(k), *b),
            }?;
            for (k, v) in fields {
                line = match (prepared(k), v) {
                    (Some(p), Value::Number(x)) => line.prepared_float(p, *x),
                    (Some(p), Value::Symbol(s)) => line.prepared_string(p, s),
                    (Some(p), Value::Bool(b)) => line.prepared_integer(p, i64::from(*b)),
                    (None, Value::Number(x)) => line.float(&name(k), *x),
                    (None, Value::Symbol(s)) => line.string(&name(k), s),
                    (None, Value::Bool(b)) => line.integer(&name(k), i64::from(*b)),
                }?;
            }
            line.finish(time);
            Ok(())
        })();
        prop_assert_eq!(result, expected);
        prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
    }
}
