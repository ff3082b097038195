//! Normalization: the canonical fields of a reading, derived fields included.
//!
//! Units are already canonical once `schemas` has validated a reading; what is
//! left is to derive what the wire does not carry (`flow_vph` from a vehicle
//! count and its period) and to give every field its one, fixed type.

use schemas::{Attribute, Reading, Value};

use crate::point::FieldValue;

/// Derived field: vehicles per hour, from `vehicle_count` and `period_s`.
pub const FLOW_VPH: &str = "flow_vph";
/// Field: length of a traffic observation interval in seconds.
pub const PERIOD_S: &str = "period_s";

/// A field of a normalized reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    /// A float field.
    Float(&'static str, f64),
    /// A string field (values come from a fixed set).
    String(&'static str, &'static str),
    /// A boolean field.
    Boolean(&'static str, bool),
}

impl Field {
    /// The field name.
    pub fn name(self) -> &'static str {
        match self {
            Field::Float(n, _) | Field::String(n, _) | Field::Boolean(n, _) => n,
        }
    }

    /// As a point's field value.
    pub fn value(self) -> FieldValue {
        match self {
            Field::Float(_, v) => FieldValue::Float(v),
            Field::String(_, s) => FieldValue::String(s.into()),
            Field::Boolean(_, b) => FieldValue::Boolean(b),
        }
    }
}

/// Vehicles per hour over the reading's observation period, when it has both.
pub fn flow_vph(reading: &Reading) -> Option<f64> {
    let count = reading.values.number(Attribute::Intensity)?;
    let period = reading.period_s.filter(|p| *p > 0)?;
    Some(count * 3600.0 / f64::from(period))
}

/// Every field of a reading, in a stable order: the attributes in table order,
/// then `period_s` and `flow_vph` for traffic intervals.
pub fn fields(reading: &Reading) -> impl Iterator<Item = Field> + '_ {
    let attributes = reading.values.iter().map(|(a, v)| match v {
        Value::Number(n) => Field::Float(a.field(), n),
        Value::Symbol(s) => Field::String(a.field(), s),
        Value::Bool(b) => Field::Boolean(a.field(), b),
    });
    let period = reading
        .period_s
        .map(|p| Field::Float(PERIOD_S, f64::from(p)));
    let flow = flow_vph(reading).map(|f| Field::Float(FLOW_VPH, f));
    attributes.chain(period).chain(flow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Domain, Timestamp};

    #[test]
    fn flow_is_derived_from_count_and_period() {
        let mut r = Reading::new(Domain::Traffic, "rabat", "c-1", Timestamp::from_secs(0));
        r.values.set(Attribute::Intensity, Value::Number(118.0));
        r.values.set(Attribute::Congested, Value::Bool(true));
        assert_eq!(flow_vph(&r), None);
        r.period_s = Some(300);
        assert_eq!(flow_vph(&r), Some(1416.0));
        let names: Vec<_> = fields(&r).map(Field::name).collect();
        assert_eq!(
            names,
            ["vehicle_count", "congested", "period_s", "flow_vph"]
        );
    }
}
