//! JSON helpers shared by the decoders: a scalar view of any value that never
//! allocates for nested structures, borrowed keys, and the mapping of parser
//! errors to rejection faults.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::attribute::{Attribute, Value, ValueError};
use crate::reading::Values;
use crate::rejection::{Fault, Reason};

/// Any JSON value, with arrays and objects skipped rather than built.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'de> {
    Null,
    Bool(bool),
    Number(f64),
    Str(Cow<'de, str>),
    Array,
    Object,
}

impl Scalar<'_> {
    /// The value as it appears in a message, with its JSON type.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Null => "null".to_owned(),
            Scalar::Bool(b) => format!("{b} (a boolean)"),
            Scalar::Number(n) => format!("{n} (a number)"),
            Scalar::Str(s) => format!("{s:?} (a string)"),
            Scalar::Array => "an array".to_owned(),
            Scalar::Object => "an object".to_owned(),
        }
    }

    /// Checks the value against an attribute; numbers are first converted
    /// with `scale` and `offset` (1 and 0 for values already in the canonical unit).
    #[inline]
    pub(crate) fn to_value(
        &self,
        key: &str,
        attribute: Attribute,
        scale: f64,
        offset: f64,
    ) -> Result<Value, Fault> {
        self.check(key, attribute, scale, offset, |v| v)
    }

    /// Like [`Scalar::to_value`] with no conversion, storing the value in
    /// `values`. Each kind of value is stored where it is made, never
    /// gathered into a temporary first (this is on the hot path).
    #[inline]
    pub(crate) fn store(
        &self,
        key: &str,
        attribute: Attribute,
        values: &mut Values,
    ) -> Result<(), Fault> {
        self.check(key, attribute, 1.0, 0.0, |v| {
            values.set(attribute, v);
        })
    }

    #[inline]
    fn check<R>(
        &self,
        key: &str,
        attribute: Attribute,
        scale: f64,
        offset: f64,
        then: impl FnOnce(Value) -> R,
    ) -> Result<R, Fault> {
        let error = match self {
            Scalar::Number(n) => match attribute.number(crate::unit::scale(*n, scale, offset)) {
                Ok(v) => return Ok(then(v)),
                Err(e) => e,
            },
            Scalar::Str(s) => match attribute.symbol(s) {
                Ok(v) => return Ok(then(v)),
                Err(e) => e,
            },
            Scalar::Bool(b) => match attribute.boolean(*b) {
                Ok(v) => return Ok(then(v)),
                Err(e) => e,
            },
            Scalar::Null | Scalar::Array | Scalar::Object => ValueError::WrongType,
        };
        Err(self.fault(key, attribute, error))
    }

    #[cold]
    #[inline(never)]
    fn fault(&self, key: &str, attribute: Attribute, e: ValueError) -> Fault {
        value_fault(key, attribute, &self.describe(), e)
    }
}

/// A value of the wrong JSON type for a key that is not an attribute.
pub(crate) fn wrong_type(key: &str, shown: &str, expected: &str) -> Fault {
    Fault::new(
        Reason::WrongType,
        format!("key `{key}`: {shown} has the wrong type; expected {expected}"),
    )
}

/// The fault for a value that does not fit its attribute.
pub(crate) fn value_fault(key: &str, attribute: Attribute, shown: &str, e: ValueError) -> Fault {
    let (reason, what) = match e {
        ValueError::WrongType => (Reason::WrongType, "has the wrong type"),
        ValueError::NotFinite => (Reason::NotFinite, "is not a finite number"),
        ValueError::OutOfRange => (Reason::OutOfRange, "is out of range"),
        ValueError::InvalidSymbol => (Reason::InvalidValue, "is not an allowed value"),
    };
    Fault::new(
        reason,
        format!(
            "key `{key}`: {shown} {what}; expected {}",
            attribute.describe_kind()
        ),
    )
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// A place for a visitor to leave the fault that made it stop. Serde errors
/// are strings; the fault keeps its reason and message intact beside them.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot {
    fault: Option<Fault>,
    /// The key whose value was being read, to name it in parser errors.
    pub(crate) key: Option<String>,
}

impl FaultSlot {
    /// Stores a fault and returns the serde error that unwinds the parser.
    pub(crate) fn fail<E: de::Error>(&mut self, fault: Fault) -> E {
        self.fault = Some(fault);
        E::custom("rejected")
    }

    /// The fault for a failed parse: the stored one, else the parser's error.
    pub(crate) fn into_fault(self, err: &serde_json::Error) -> Fault {
        self.fault
            .unwrap_or_else(|| parse_fault(err, self.key.as_deref()))
    }
}

/// The fault for a parser error.
pub(crate) fn parse_fault(err: &serde_json::Error, key: Option<&str>) -> Fault {
    let at = format!("line {} column {}", err.line(), err.column());
    let text = err.to_string();
    if text.starts_with("number out of range") {
        let key = key.map_or_else(String::new, |k| format!("key `{k}`: "));
        return Fault::new(
            Reason::NotFinite,
            format!("{key}number at {at} is too large to be a finite number"),
        );
    }
    if err.is_eof() && err.line() == 1 && err.column() == 0 {
        return Fault::new(Reason::EmptyPayload, "payload is empty");
    }
    let key = key.map_or_else(String::new, |k| format!(" (in key `{k}`)"));
    Fault::new(Reason::InvalidJson, format!("not valid JSON{key}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_skip_structures_and_keep_borrowed_strings() {
        let v: Vec<Scalar<'_>> =
            serde_json::from_str(r#"[null, true, 1, -2.5, "x", [1, [2]], {"a": {"b": 1}}]"#)
                .expect("valid");
        assert_eq!(
            v,
            [
                Scalar::Null,
                Scalar::Bool(true),
                Scalar::Number(1.0),
                Scalar::Number(-2.5),
                Scalar::Str(Cow::Borrowed("x")),
                Scalar::Array,
                Scalar::Object,
            ]
        );
    }

    #[test]
    fn out_of_range_numbers_are_not_finite() {
        let err = serde_json::from_str::<Scalar<'_>>("1e309").expect_err("overflows");
        let f = parse_fault(&err, Some("powerConsumption"));
        assert_eq!(f.reason, Reason::NotFinite);
        assert!(f.message.contains("powerConsumption"), "{}", f.message);
    }

    #[test]
    fn values_are_checked_against_the_attribute() {
        let f = Scalar::Str("fifty".into())
            .to_value("powerConsumption", Attribute::PowerConsumption, 1.0, 0.0)
            .expect_err("string for a number");
        assert_eq!(f.reason, Reason::WrongType);
        assert!(f.message.contains("\"fifty\""), "{}", f.message);
        let v = Scalar::Number(83.0)
            .to_value("fill_pct", Attribute::FillingLevel, 0.01, 0.0)
            .expect("scaled into range");
        assert_eq!(v, Value::Number(0.83));
    }
}
