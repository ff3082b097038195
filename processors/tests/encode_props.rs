//! Property tests of the line-protocol encoder, read back with the real parser
//! (the `influxdb-line-protocol` crate): arbitrary names, tag values and string
//! values either fail with an `EncodeError` or come back exactly, after the
//! documented mapping of control characters.

use influxdb_line_protocol::{parse_lines, FieldValue as Parsed, ParsedLine};
use processors::encode::{encode_point, EncodeError};
use processors::{FieldValue, Point};
use proptest::collection::vec;
use proptest::prelude::*;
use schemas::Timestamp;

/// Any Unicode, and strings dense in the characters line protocol cares about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r##"[a-c\\,= "#\n\r\t\x00\x7fé😀]{0,8}"##,
        r"[a-z_]{1,10}",
    ]
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        prop::num::f64::ANY.prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        any::<bool>().prop_map(FieldValue::Boolean),
        text().prop_map(|s| FieldValue::String(s.into())),
    ]
}

fn point() -> impl Strategy<Value = Point> {
    (
        text(),
        vec((text(), text()), 0..4),
        vec((text(), field_value()), 0..5),
        any::<i64>(),
    )
        .prop_map(|(measurement, tags, fields, time)| Point {
            measurement: measurement.into(),
            tags: tags.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            time: Timestamp::from_nanos(time),
        })
}

/// A name as it reads back: ASCII control characters become spaces.
fn name(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect()
}

/// A string field value as it reads back: newline and carriage return become
/// spaces.
fn string_value(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// What the parser should read back, or `None` when the encoder must refuse.
struct Expected {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue)>,
}

fn expected(point: &Point) -> Option<Expected> {
    let unwritable = |s: &str| s.is_empty() || s.ends_with('\\');
    let m = &point.measurement;
    if unwritable(m) || m.starts_with('#') {
        return None;
    }
    let mut keys = Vec::new();
    let mut tags = Vec::new();
    for (k, v) in &point.tags {
        if unwritable(k) {
            return None;
        }
        if v.is_empty() {
            continue;
        }
        if v.ends_with('\\') {
            return None;
        }
        keys.push(name(k));
        tags.push((name(k), name(v)));
    }
    if point.fields.is_empty() {
        return None;
    }
    let mut fields = Vec::new();
    for (k, v) in &point.fields {
        if unwritable(k) {
            return None;
        }
        if let FieldValue::Float(f) = v {
            if !f.is_finite() {
                return None;
            }
        }
        let v = match v {
            FieldValue::String(s) => FieldValue::String(string_value(s).into()),
            other => other.clone(),
        };
        keys.push(name(k));
        fields.push((name(k), v));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    (sorted.len() == keys.len()).then(|| Expected {
        measurement: name(m),
        tags,
        fields,
    })
}

fn same_value(parsed: &Parsed<'_>, expected: &FieldValue) -> bool {
    match (parsed, expected) {
        (Parsed::F64(a), FieldValue::Float(b)) => a.to_bits() == b.to_bits(),
        (Parsed::I64(a), FieldValue::Integer(b)) => a == b,
        (Parsed::Boolean(a), FieldValue::Boolean(b)) => a == b,
        (Parsed::String(a), FieldValue::String(b)) => a.as_str() == b,
        _ => false,
    }
}

fn check_line(
    line: &ParsedLine<'_>,
    want: &Expected,
    time: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(line.series.measurement.as_str(), want.measurement.as_str());
    let tags: Vec<(String, String)> = line
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    prop_assert_eq!(&tags, &want.tags);
    prop_assert_eq!(line.field_set.len(), want.fields.len());
    for ((key, value), (want_key, want_value)) in line.field_set.iter().zip(&want.fields) {
        prop_assert_eq!(key.as_str(), want_key.as_str());
        prop_assert!(
            same_value(value, want_value),
            "field {key}: read {value:?}, wrote {want_value:?}"
        );
    }
    prop_assert_eq!(line.timestamp, Some(time.as_nanos()));
    Ok(())
}

const PREVIOUS: &[u8] = b"previous,k=v f=1i 1\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_point_reads_back_exactly_or_is_refused(point in point()) {
        let mut buf = PREVIOUS.to_vec();
        let result = encode_point(&point, &mut buf);
        let want = expected(&point);
        prop_assert_eq!(result.is_ok(), want.is_some(), "{:?} for {:?}", result, point);
        let Some(want) = want else {
            prop_assert_eq!(&buf[..], PREVIOUS, "a refused line leaves nothing behind");
            return Ok(());
        };
        let written = std::str::from_utf8(&buf[PREVIOUS.len()..]).expect("UTF-8");
        prop_assert_eq!(written.matches('\n').count(), 1, "{:?}", written);
        prop_assert!(written.ends_with('\n'));
        let lines: Vec<_> = parse_lines(written).collect();
        prop_assert_eq!(lines.len(), 1, "{:?}", written);
        let line = lines.into_iter().next().expect("one line");
        let line = line.map_err(|e| TestCaseError::fail(format!("{e} in {written:?}")))?;
        check_line(&line, &want, point.time)?;
    }

    #[test]
    fn floats_read_back_exactly(value in prop::num::f64::ANY) {
        let point = Point::new("m", Timestamp::from_nanos(0)).field("v", FieldValue::Float(value));
        let mut buf = Vec::new();
        let result = encode_point(&point, &mut buf);
        if !value.is_finite() {
            prop_assert_eq!(result, Err(EncodeError::NonFiniteFloat("v".to_owned())));
            prop_assert!(buf.is_empty());
            return Ok(());
        }
        prop_assert!(result.is_ok());
        let written = std::str::from_utf8(&buf).expect("UTF-8");
        let number = &written["m v=".len()..written.len() - " 0\n".len()];
        prop_assert!(!number.contains(['e', 'E', '+']), "{}", number);
        prop_assert!(number.contains('.'), "{}", number);
        let line = parse_lines(written).next().expect("one line").expect("parses");
        prop_assert!(same_value(&line.field_set[0].1, &FieldValue::Float(value)), "{}", number);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn concatenated_points_read_back_as_that_many_lines(points in vec(point(), 0..24)) {
        let mut buf = Vec::new();
        let mut written = Vec::new();
        for point in &points {
            if encode_point(point, &mut buf).is_ok() {
                written.push(point);
            }
        }
        let text = std::str::from_utf8(&buf).expect("UTF-8");
        prop_assert_eq!(text.matches('\n').count(), written.len());
        let lines: Vec<_> = parse_lines(text).collect();
        prop_assert_eq!(lines.len(), written.len(), "{:?}", text);
        for (line, point) in lines.into_iter().zip(written) {
            let line = line.map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
            let want = expected(point).expect("an encoded point is valid");
            check_line(&line, &want, point.time)?;
        }
    }
}
