//! Unit tests of the encoder: escaping per position, the three domains, points,
//! errors and the no-partial-line guarantee. Written lines are also read back
//! with the `influxdb-line-protocol` parser.

use influxdb_line_protocol::{parse_lines, FieldValue as Parsed};
use rstest::rstest;
use schemas::{Attribute, Domain, Reading, Timestamp, Value};

use super::escape::name_read_back;
use super::*;

/// Where the text under test goes.
#[derive(Debug, Clone, Copy)]
enum Pos {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
    StringValue,
}

const T0: Timestamp = Timestamp::from_nanos(0);

fn encode_at(pos: Pos, text: &str) -> Result<String, EncodeError> {
    let mut buf = Vec::new();
    {
        let mut writer = LineWriter::new(&mut buf);
        match pos {
            Pos::Measurement => writer.line(text)?.float("v", 1.0)?.finish(T0),
            Pos::TagKey => writer
                .line("m")?
                .tag(text, "x")?
                .float("v", 1.0)?
                .finish(T0),
            Pos::TagValue => writer
                .line("m")?
                .tag("k", text)?
                .float("v", 1.0)?
                .finish(T0),
            Pos::FieldKey => writer.line("m")?.float(text, 1.0)?.finish(T0),
            Pos::StringValue => writer.line("m")?.string("s", text)?.finish(T0),
        }
    }
    Ok(String::from_utf8(buf).expect("the encoder writes UTF-8"))
}

fn line_around(pos: Pos, written: &str) -> String {
    match pos {
        Pos::Measurement => format!("{written} v=1.0 0\n"),
        Pos::TagKey => format!("m,{written}=x v=1.0 0\n"),
        Pos::TagValue => format!("m,k={written} v=1.0 0\n"),
        Pos::FieldKey => format!("m {written}=1.0 0\n"),
        Pos::StringValue => format!("m s=\"{written}\" 0\n"),
    }
}

/// Reads the text under test back out of a line with the real parser.
fn read_back(pos: Pos, line: &str) -> String {
    let mut lines = parse_lines(line);
    let parsed = lines.next().expect("one line").expect("the line parses");
    assert!(lines.next().is_none(), "exactly one line: {line:?}");
    match pos {
        Pos::Measurement => parsed.series.measurement.to_string(),
        Pos::TagKey => {
            let tags = parsed.series.tag_set.expect("a tag");
            assert_eq!(tags[0].1, "x");
            tags[0].0.to_string()
        }
        Pos::TagValue => parsed.series.tag_set.expect("a tag")[0].1.to_string(),
        Pos::FieldKey => parsed.field_set[0].0.to_string(),
        Pos::StringValue => match &parsed.field_set[0].1 {
            Parsed::String(s) => s.to_string(),
            other => panic!("not a string: {other:?}"),
        },
    }
}

#[rstest]
// Measurement: comma and space are escaped; `=` and `"` are not.
#[case::m_comma(Pos::Measurement, "a,b", r"a\,b")]
#[case::m_space(Pos::Measurement, "a b", r"a\ b")]
#[case::m_leading_space(Pos::Measurement, " a", r"\ a")]
#[case::m_equals(Pos::Measurement, "a=b", "a=b")]
#[case::m_quote(Pos::Measurement, r#"a"b"#, r#"a"b"#)]
#[case::m_hash_inside(Pos::Measurement, "a#b", "a#b")]
#[case::m_backslash(Pos::Measurement, r"a\b", r"a\b")]
#[case::m_leading_backslash(Pos::Measurement, r"\#a", r"\#a")]
#[case::m_two_backslashes(Pos::Measurement, r"a\\b", r"a\\\b")]
#[case::m_backslash_comma(Pos::Measurement, r"a\,b", r"a\\\,b")]
#[case::m_backslash_space(Pos::Measurement, r"a\ b", r"a\\\ b")]
#[case::m_backslash_equals(Pos::Measurement, r"a\=b", r"a\=b")]
#[case::m_newline(Pos::Measurement, "a\nb", r"a\ b")]
#[case::m_carriage_return(Pos::Measurement, "a\rb", r"a\ b")]
#[case::m_tab(Pos::Measurement, "a\tb", r"a\ b")]
#[case::m_nul(Pos::Measurement, "a\0b", r"a\ b")]
#[case::m_backslash_newline(Pos::Measurement, "a\\\nb", r"a\\\ b")]
#[case::m_unicode(Pos::Measurement, "é,😀", r"é\,😀")]
// Tag keys: comma, equals sign and space are escaped.
#[case::tk_comma(Pos::TagKey, "a,b", r"a\,b")]
#[case::tk_equals(Pos::TagKey, "a=b", r"a\=b")]
#[case::tk_space(Pos::TagKey, "a b", r"a\ b")]
#[case::tk_quote(Pos::TagKey, r#"a"b"#, r#"a"b"#)]
#[case::tk_hash(Pos::TagKey, "#a", "#a")]
#[case::tk_backslash(Pos::TagKey, r"\a", r"\a")]
#[case::tk_two_backslashes(Pos::TagKey, r"a\\b", r"a\\\b")]
#[case::tk_backslash_equals(Pos::TagKey, r"a\=b", r"a\\\=b")]
#[case::tk_newline(Pos::TagKey, "a\nb", r"a\ b")]
#[case::tk_del(Pos::TagKey, "a\u{7f}b", r"a\ b")]
// Tag values: as tag keys.
#[case::tv_comma(Pos::TagValue, "a,b", r"a\,b")]
#[case::tv_equals(Pos::TagValue, "a=b", r"a\=b")]
#[case::tv_space(Pos::TagValue, "a b", r"a\ b")]
#[case::tv_trailing_space(Pos::TagValue, "a ", r"a\ ")]
#[case::tv_quote(Pos::TagValue, r#""a""#, r#""a""#)]
#[case::tv_backslash(Pos::TagValue, r"C:\dir", r"C:\dir")]
#[case::tv_backslash_comma(Pos::TagValue, r"a\,b", r"a\\\,b")]
#[case::tv_backslash_space(Pos::TagValue, r"a\ b", r"a\\\ b")]
#[case::tv_three_backslashes(Pos::TagValue, r"a\\\b", r"a\\\\\b")]
#[case::tv_newline(Pos::TagValue, "a\nb", r"a\ b")]
#[case::tv_only_newline(Pos::TagValue, "\n", r"\ ")]
#[case::tv_crlf(Pos::TagValue, "a\r\nb", r"a\ \ b")]
#[case::tv_tab(Pos::TagValue, "a\tb", r"a\ b")]
// Field keys: as tag keys.
#[case::fk_comma(Pos::FieldKey, "a,b", r"a\,b")]
#[case::fk_equals(Pos::FieldKey, "a=b", r"a\=b")]
#[case::fk_space(Pos::FieldKey, "a b", r"a\ b")]
#[case::fk_quote(Pos::FieldKey, r#"a"b"#, r#"a"b"#)]
#[case::fk_backslash(Pos::FieldKey, r"a\b", r"a\b")]
#[case::fk_backslash_backslash(Pos::FieldKey, r"\\a", r"\\\a")]
#[case::fk_newline(Pos::FieldKey, "a\nb", r"a\ b")]
// String field values: double quote and backslash are escaped.
#[case::s_quote(Pos::StringValue, r#"say "hi""#, r#"say \"hi\""#)]
#[case::s_backslash(Pos::StringValue, r"a\b", r"a\\b")]
#[case::s_trailing_backslash(Pos::StringValue, r"a\", r"a\\")]
#[case::s_backslash_quote(Pos::StringValue, r#"\""#, r#"\\\""#)]
#[case::s_separators(Pos::StringValue, "a,b= c", "a,b= c")]
#[case::s_newline(Pos::StringValue, "a\nb", "a b")]
#[case::s_carriage_return(Pos::StringValue, "a\r\nb", "a  b")]
#[case::s_tab(Pos::StringValue, "a\tb", "a\tb")]
#[case::s_hash(Pos::StringValue, "#", "#")]
#[case::s_empty(Pos::StringValue, "", "")]
#[case::s_unicode(Pos::StringValue, "température 71,5 °C", "température 71,5 °C")]
fn escapes_every_special_character_in_every_position(
    #[case] pos: Pos,
    #[case] text: &str,
    #[case] written: &str,
) {
    let line = encode_at(pos, text).expect("encodes");
    assert_eq!(line, line_around(pos, written));
    assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    let expected = match pos {
        Pos::StringValue => text.replace(['\n', '\r'], " "),
        _ => name_read_back(text),
    };
    assert_eq!(read_back(pos, &line), expected, "{line:?}");
}

fn lighting() -> Reading {
    let mut r = Reading::new(
        Domain::Lighting,
        "chefchaouen",
        "lamp-chefchaouen-0007",
        Timestamp::from_secs(1_795_894_200),
    );
    r.values.set(Attribute::PowerState, Value::Symbol("on"));
    r.values
        .set(Attribute::IlluminanceLevel, Value::Number(0.8));
    r.values
        .set(Attribute::PowerConsumption, Value::Number(41.8));
    r.values.set(Attribute::LampStatus, Value::Symbol("ok"));
    r
}

fn waste() -> Reading {
    let mut r = Reading::new(
        Domain::Waste,
        "rabat",
        "bin-rabat-0042",
        Timestamp::from_millis(1_795_894_200_123),
    );
    r.district = Some("agdal".to_owned());
    r.values
        .set(Attribute::WasteStatus, Value::Symbol("lidOpen"));
    r.values.set(Attribute::FillingLevel, Value::Number(0.73));
    r.values.set(Attribute::Temperature, Value::Number(-4.5));
    r.values.set(Attribute::BatteryLevel, Value::Number(0.92));
    r
}

fn traffic() -> Reading {
    let mut r = Reading::new(
        Domain::Traffic,
        "casablanca",
        "counter-casa-0003",
        Timestamp::from_secs(1_795_894_200),
    );
    r.district = Some("maarif".to_owned());
    r.lane = Some(2);
    r.period_s = Some(300);
    r.values.set(Attribute::Intensity, Value::Number(118.0));
    r.values.set(Attribute::Occupancy, Value::Number(0.35));
    r.values
        .set(Attribute::AverageVehicleSpeed, Value::Number(42.5));
    r.values.set(Attribute::Congested, Value::Bool(false));
    r
}

#[rstest]
#[case::lighting(
    lighting(),
    "lighting,commune=chefchaouen,device=lamp-chefchaouen-0007 power_state=\"on\",\
     illuminance_level=0.8,power_w=41.8,status=\"ok\" 1795894200000000000\n"
)]
#[case::waste(
    waste(),
    "waste,commune=rabat,device=bin-rabat-0042,district=agdal battery_ratio=0.92,\
     fill_ratio=0.73,temperature_c=-4.5,status=\"lidOpen\" 1795894200123000000\n"
)]
#[case::traffic(
    traffic(),
    "traffic,commune=casablanca,device=counter-casa-0003,district=maarif,lane=2 \
     vehicle_count=118.0,occupancy_ratio=0.35,speed_kmh=42.5,congested=false,\
     period_s=300.0,flow_vph=1416.0 1795894200000000000\n"
)]
fn writes_the_three_domains(#[case] reading: Reading, #[case] expected: &str) {
    let mut buf = b"previous line\n".to_vec();
    encode_reading(&reading, &mut buf).expect("encodes");
    assert_eq!(
        std::str::from_utf8(&buf).expect("UTF-8"),
        format!("previous line\n{expected}")
    );
}

#[test]
fn an_empty_district_is_omitted() {
    let mut reading = lighting();
    reading.district = Some(String::new());
    let mut buf = Vec::new();
    encode_reading(&reading, &mut buf).expect("encodes");
    assert!(buf.starts_with(b"lighting,commune=chefchaouen,device=lamp-chefchaouen-0007 "));
}

#[test]
fn a_reading_without_fields_is_not_written() {
    let reading = Reading::new(Domain::Waste, "rabat", "b-1", T0);
    let mut buf = b"kept\n".to_vec();
    assert_eq!(
        encode_reading(&reading, &mut buf),
        Err(EncodeError::NoFields)
    );
    assert_eq!(buf, b"kept\n");
}

#[test]
fn a_reading_with_two_status_fields_is_refused() {
    let mut reading = lighting();
    reading
        .values
        .set(Attribute::WasteStatus, Value::Symbol("ok"));
    let mut buf = Vec::new();
    assert_eq!(
        encode_reading(&reading, &mut buf),
        Err(EncodeError::DuplicateKey("status".to_owned()))
    );
    assert!(buf.is_empty());
}

#[rstest]
#[case::event(
    Point::new("events", Timestamp::from_secs(1_795_894_260))
        .tag("commune", "rabat")
        .tag("domain", "waste")
        .tag("device", "bin-rabat-0042")
        .tag("kind", "bin_fire")
        .field("state", FieldValue::String("raised".into()))
        .field("value", FieldValue::Float(71.5))
        .field("message", FieldValue::String("temperature 71.5 °C, \"burning\"".into())),
    "events,commune=rabat,domain=waste,device=bin-rabat-0042,kind=bin_fire \
     state=\"raised\",value=71.5,message=\"temperature 71.5 °C, \\\"burning\\\"\" \
     1795894260000000000\n"
)]
#[case::window(
    Point::new("traffic_1m", Timestamp::from_secs(1_795_894_200))
        .tag("commune", "casablanca")
        .tag("device", "counter-casa-0003")
        .field("count", FieldValue::Integer(12))
        .field("speed_kmh_mean", FieldValue::Float(41.5))
        .field("congested_last", FieldValue::Boolean(true)),
    "traffic_1m,commune=casablanca,device=counter-casa-0003 count=12i,speed_kmh_mean=41.5,\
     congested_last=true 1795894200000000000\n"
)]
#[case::integers(
    Point::new("m", Timestamp::from_nanos(-1))
        .field("min", FieldValue::Integer(i64::MIN))
        .field("max", FieldValue::Integer(i64::MAX))
        .field("zero", FieldValue::Integer(0))
        .field("no", FieldValue::Boolean(false)),
    "m min=-9223372036854775808i,max=9223372036854775807i,zero=0i,no=false -1\n"
)]
#[case::no_tags_and_an_empty_tag(
    Point::new("lighting_commune_15m", T0)
        .tag("district", "")
        .field("lamps_on", FieldValue::Integer(412)),
    "lighting_commune_15m lamps_on=412i 0\n"
)]
fn writes_points(#[case] point: Point, #[case] expected: &str) {
    let mut buf = Vec::new();
    encode_point(&point, &mut buf).expect("encodes");
    let line = std::str::from_utf8(&buf).expect("UTF-8");
    assert_eq!(line, expected);
    let parsed: Vec<_> = parse_lines(line).collect();
    assert_eq!(parsed.len(), 1);
    let parsed = parsed.into_iter().next().expect("one").expect("parses");
    assert_eq!(parsed.field_set.len(), point.fields.len());
    assert_eq!(parsed.timestamp, Some(point.time.as_nanos()));
}

fn trailing(part: Part, text: &str) -> EncodeError {
    EncodeError::EndsWithBackslash {
        part,
        text: text.to_owned(),
    }
}

fn one_field(measurement: &'static str) -> Point {
    Point::new(measurement, T0).field("v", FieldValue::Float(1.0))
}

#[rstest]
#[case::empty_measurement(one_field(""), EncodeError::EmptyMeasurement)]
#[case::comment_measurement(one_field("#m"), EncodeError::CommentMeasurement("#m".into()))]
#[case::measurement_backslash(one_field(r"m\"), trailing(Part::Measurement, r"m\"))]
#[case::empty_tag_key(one_field("m").tag("", "v"), EncodeError::EmptyTagKey)]
#[case::empty_tag_key_empty_value(one_field("m").tag("", ""), EncodeError::EmptyTagKey)]
#[case::tag_key_backslash(one_field("m").tag(r"k\", "v"), trailing(Part::TagKey, r"k\"))]
#[case::tag_value_backslash(one_field("m").tag("k", r"v\\"), trailing(Part::TagValue, r"v\\"))]
#[case::empty_field_key(Point::new("m", T0).field("", FieldValue::Integer(1)), EncodeError::EmptyFieldKey)]
#[case::field_key_backslash(
    Point::new("m", T0).field(r"f\", FieldValue::Integer(1)),
    trailing(Part::FieldKey, r"f\")
)]
#[case::no_fields(Point::new("m", T0).tag("k", "v"), EncodeError::NoFields)]
#[case::nan(
    one_field("m").field("x", FieldValue::Float(f64::NAN)),
    EncodeError::NonFiniteFloat("x".into())
)]
#[case::infinity(
    Point::new("m", T0).field("x", FieldValue::Float(f64::INFINITY)),
    EncodeError::NonFiniteFloat("x".into())
)]
#[case::minus_infinity(
    one_field("m").field("x", FieldValue::Float(f64::NEG_INFINITY)),
    EncodeError::NonFiniteFloat("x".into())
)]
#[case::duplicate_tag(
    one_field("m").tag("k", "a").tag("k", "b"),
    EncodeError::DuplicateKey("k".into())
)]
#[case::duplicate_field(one_field("m").field("v", FieldValue::Integer(2)), EncodeError::DuplicateKey("v".into()))]
#[case::tag_and_field(one_field("m").tag("v", "a"), EncodeError::DuplicateKey("v".into()))]
#[case::same_after_mapping(
    one_field("m").tag("a\n", "x").tag("a\t", "y"),
    EncodeError::DuplicateKey("a\t".into())
)]
fn refuses_and_leaves_the_buffer_as_it_was(#[case] point: Point, #[case] expected: EncodeError) {
    let mut buf = b"m v=1.0 0\n".to_vec();
    assert_eq!(encode_point(&point, &mut buf), Err(expected));
    assert_eq!(buf, b"m v=1.0 0\n");
}

#[test]
fn an_empty_tag_value_is_not_a_duplicate() {
    let point = one_field("m").tag("k", "").tag("k", "b");
    let mut buf = Vec::new();
    encode_point(&point, &mut buf).expect("encodes");
    assert_eq!(buf, b"m,k=b v=1.0 0\n");
}

#[test]
fn a_dropped_builder_leaves_no_partial_line() {
    let mut buf = b"kept\n".to_vec();
    {
        let mut writer = LineWriter::new(&mut buf);
        let line = writer.line("m").expect("starts");
        let line = line.tag("k", "v").expect("tag");
        let _unfinished = line.integer("n", 1).expect("field");
    }
    assert_eq!(buf, b"kept\n");
    drop(LineWriter::new(&mut buf).line("m").expect("starts"));
    assert_eq!(buf, b"kept\n");
}

#[test]
fn a_writer_drops_unfinished_lines_between_finished_ones() {
    let mut buf = b"kept\n".to_vec();
    {
        let mut writer = LineWriter::new(&mut buf);
        let _abandoned = writer.line("abandoned").expect("starts");
        writer
            .line("m")
            .and_then(|l| l.integer("v", 1))
            .expect("a line")
            .finish(T0);
        let failed = writer.line("x").and_then(|l| l.float("v", f64::NAN));
        assert_eq!(failed.err(), Some(EncodeError::NonFiniteFloat("v".into())));
        assert_eq!(
            writer.reading(&Reading::new(Domain::Waste, "r", "b", T0)),
            Err(EncodeError::NoFields)
        );
        writer.reading(&waste()).expect("a reading");
        assert!(writer.point(&one_field("m").tag("v", "dup")).is_err());
        writer.point(&one_field("n")).expect("a point");
        let _last = writer.line("unfinished").expect("starts").tag("k", "v");
    }
    let text = String::from_utf8(buf).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "kept");
    assert_eq!(lines[1], "m v=1i 0");
    assert!(lines[2].starts_with("waste,commune=rabat,"), "{text}");
    assert_eq!(lines[3], "n v=1.0 0");
}

#[test]
fn many_keys_are_checked_past_the_inline_ones() {
    let mut point = Point::new("lighting_1m", T0).tag("commune", "rabat");
    for i in 0..40 {
        point = point.field(format!("f{i}"), FieldValue::Float(f64::from(i)));
    }
    let mut buf = Vec::new();
    encode_point(&point, &mut buf).expect("encodes");
    let text = std::str::from_utf8(&buf).expect("UTF-8");
    let parsed = parse_lines(text).next().expect("one").expect("parses");
    assert_eq!(parsed.field_set.len(), 40);

    for dup in ["commune", "f0", "f20", "f39"] {
        let point = point.clone().field(dup, FieldValue::Integer(1));
        let mut buf = Vec::new();
        assert_eq!(
            encode_point(&point, &mut buf),
            Err(EncodeError::DuplicateKey(dup.to_owned()))
        );
        assert!(buf.is_empty());
    }
}

#[rstest]
#[case(41.8, "41.8")]
#[case(1.0, "1.0")]
#[case(0.0, "0.0")]
#[case(-0.0, "-0.0")]
#[case(300.0, "300.0")]
#[case(0.1 + 0.2, "0.30000000000000004")]
#[case(1e-4, "0.0001")]
#[case(1e-5, "0.00001")]
#[case(-1.5e-7, "-0.00000015")]
#[case(1e15, "1000000000000000.0")]
#[case(1e16, "10000000000000000.0")]
#[case(1.2345e20, "123450000000000000000.0")]
#[case(-9_007_199_254_740_993.0, "-9007199254740992.0")]
fn floats_are_plain_decimals_that_read_back_exactly(#[case] value: f64, #[case] text: &str) {
    let mut buf = Vec::new();
    number::float(&mut buf, value);
    assert_eq!(std::str::from_utf8(&buf).expect("UTF-8"), text);
    assert_eq!(text.parse::<f64>().map(f64::to_bits), Ok(value.to_bits()));
}

#[rstest]
#[case(f64::MAX)]
#[case(f64::MIN)]
#[case(f64::MIN_POSITIVE)]
#[case(f64::EPSILON)]
#[case(5e-324)]
#[case(-1.7e-300)]
#[case(6.022_140_76e23)]
fn extreme_floats_have_no_exponent(#[case] value: f64) {
    let mut buf = Vec::new();
    number::float(&mut buf, value);
    let text = std::str::from_utf8(&buf).expect("UTF-8");
    assert!(!text.contains(['e', 'E', '+']), "{text}");
    assert!(text.contains('.'), "{text}");
    assert_eq!(text.parse::<f64>().map(f64::to_bits), Ok(value.to_bits()));
    let line = format!("m v={text} 0");
    let parsed = parse_lines(&line).next().expect("one").expect("parses");
    assert_eq!(parsed.field_set[0].1, Parsed::F64(value));
}
