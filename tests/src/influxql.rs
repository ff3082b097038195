//! What InfluxDB 1.x answers, typed: series of a query, field types, points.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Deserialize;

/// A field's type, as `SHOW FIELD KEYS` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `float`: line protocol `1.5` or `1`.
    Float,
    /// `integer`: line protocol `1i`.
    Integer,
    /// `unsigned`: line protocol `1u` (InfluxDB 1.8 and later only).
    Unsigned,
    /// `string`: line protocol `"text"`.
    String,
    /// `boolean`: line protocol `true` / `false` (and `t`, `F`, ...).
    Boolean,
}

impl FieldType {
    pub(crate) fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "float" => Self::Float,
            "integer" => Self::Integer,
            "unsigned" => Self::Unsigned,
            "string" => Self::String,
            "boolean" => Self::Boolean,
            other => anyhow::bail!("unknown field type {other:?}"),
        })
    }
}

/// A field value with its exact type.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// A float field.
    Float(f64),
    /// An integer field.
    Integer(i64),
    /// An unsigned integer field.
    Unsigned(u64),
    /// A string field.
    String(String),
    /// A boolean field.
    Boolean(bool),
}

impl FieldValue {
    fn from_json(field_type: FieldType, value: &serde_json::Value) -> Option<Self> {
        Some(match field_type {
            FieldType::Float => Self::Float(value.as_f64()?),
            FieldType::Integer => Self::Integer(value.as_i64()?),
            FieldType::Unsigned => Self::Unsigned(value.as_u64()?),
            FieldType::String => Self::String(value.as_str()?.to_owned()),
            FieldType::Boolean => Self::Boolean(value.as_bool()?),
        })
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Float(v) => Some(v),
            Self::Integer(v) => Some(v as f64),
            Self::Unsigned(v) => Some(v as f64),
            Self::String(_) | Self::Boolean(_) => None,
        }
    }
}

/// One stored point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The measurement.
    pub measurement: String,
    /// The tags it has (a tag the point lacks is absent, not empty).
    pub tags: BTreeMap<String, String>,
    /// The fields it has, with their types.
    pub fields: BTreeMap<String, FieldValue>,
    /// Nanoseconds since the epoch.
    pub time_ns: i64,
}

impl Point {
    /// The value of a tag.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags.get(name).map(String::as_str)
    }

    /// A field.
    pub fn field(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)
    }
}

/// One series of an InfluxQL answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InfluxSeries {
    /// The measurement (or, for `SHOW` statements, what was shown); empty
    /// where the answer names none, as for `SHOW SERIES`.
    #[serde(default)]
    pub name: String,
    /// The tags of the group, with `GROUP BY`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Column names; the first is `time` for `SELECT`.
    pub columns: Vec<String>,
    /// Rows, one value per column (`null` where a field is absent).
    #[serde(default)]
    pub values: Vec<Vec<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueryAnswer {
    #[serde(default)]
    pub(crate) results: Vec<StatementAnswer>,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatementAnswer {
    #[serde(default)]
    pub(crate) series: Vec<InfluxSeries>,
    pub(crate) error: Option<String>,
}

/// An InfluxQL identifier, quoted.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', r"\\").replace('"', "\\\""))
}
pub(crate) fn typed_point(
    measurement: &str,
    tags: &BTreeMap<String, String>,
    columns: &[String],
    row: &[serde_json::Value],
    types: &BTreeMap<String, FieldType>,
) -> anyhow::Result<Point> {
    let mut time_ns = None;
    let mut fields = BTreeMap::new();
    for (column, value) in columns.iter().zip(row) {
        if column == "time" {
            time_ns = value.as_i64();
            continue;
        }
        if value.is_null() {
            continue;
        }
        let field_type = *types
            .get(column)
            .with_context(|| format!("no type known for the field {column}"))?;
        let typed = FieldValue::from_json(field_type, value)
            .with_context(|| format!("field {column}: {value} is not {field_type:?}"))?;
        fields.insert(column.clone(), typed);
    }
    Ok(Point {
        measurement: measurement.to_owned(),
        tags: tags.clone(),
        fields,
        time_ns: time_ns.with_context(|| format!("a row without time: {row:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("traffic_1m"), r#""traffic_1m""#);
        assert_eq!(quote_ident(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn a_row_is_typed_by_the_field_keys() {
        let types: BTreeMap<String, FieldType> = [
            ("power".to_owned(), FieldType::Float),
            ("level".to_owned(), FieldType::Integer),
        ]
        .into();
        let columns = ["time", "level", "power"].map(String::from);
        let row = [
            serde_json::json!(7),
            serde_json::json!(null),
            serde_json::json!(3),
        ];
        let point = typed_point("m", &BTreeMap::new(), &columns, &row, &types).expect("typed");
        assert_eq!(point.time_ns, 7);
        assert_eq!(point.field("power"), Some(&FieldValue::Float(3.0)));
        assert_eq!(point.field("level"), None, "null is absent");

        let bad = [
            serde_json::json!(7),
            serde_json::json!("x"),
            serde_json::json!(3),
        ];
        assert!(typed_point("m", &BTreeMap::new(), &columns, &bad, &types).is_err());
    }
}
