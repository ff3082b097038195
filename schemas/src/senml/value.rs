//! A resolved record's value, checked against its attribute (or lane) and
//! converted to the attribute's canonical unit.

use std::borrow::Cow;

use super::{Item, Subject, LANE};
use crate::attribute::{Attribute, Kind, Value, ValueError};
use crate::json::{value_fault, Scalar};
use crate::rejection::{Fault, Reason};
use crate::unit::{senml_unit, Unit};

/// The value a record carries, base value or base sum already added.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field<'r> {
    V(f64),
    Vs(&'r str),
    Vb(bool),
    Vd(&'r str),
    S(f64),
}

impl Field<'_> {
    pub(super) const fn label(self) -> &'static str {
        match self {
            Field::V(_) => "v",
            Field::Vs(_) => "vs",
            Field::Vb(_) => "vb",
            Field::Vd(_) => "vd",
            Field::S(_) => "s",
        }
    }

    pub(super) fn scalar(self) -> Scalar<'static> {
        match self {
            Field::V(n) | Field::S(n) => Scalar::Number(n),
            Field::Vs(s) | Field::Vd(s) => Scalar::Str(Cow::Owned(s.to_owned())),
            Field::Vb(b) => Scalar::Bool(b),
        }
    }
}

/// Checks and converts a record's value for its attribute or lane.
pub(super) fn item(
    index: usize,
    subject: Subject,
    field: Field<'_>,
    u: Option<&str>,
    bu: Option<&str>,
) -> Result<Item, Fault> {
    let (key, sums) = match subject {
        Subject::Lane => (LANE, false),
        Subject::Attribute(a) => (
            a.key(),
            matches!(a, Attribute::EnergyConsumed | Attribute::Intensity),
        ),
    };
    if matches!(field, Field::S(_)) && !sums {
        return Err(Fault::new(
            Reason::InvalidSenml,
            format!(
                "record {index} `{key}`: a sum `s` is accepted only for `energyConsumed` and `intensity`; send the value in `v`"
            ),
        ));
    }
    let Subject::Attribute(attribute) = subject else {
        no_unit(index, key, u)?;
        return lane(index, field).map(Item::Lane);
    };
    let expected = match attribute.kind() {
        Kind::Number { .. } => "v",
        Kind::Symbol(_) => "vs",
        Kind::Bool => "vb",
    };
    let label = match field {
        Field::S(_) => "v",
        other => other.label(),
    };
    if label != expected {
        let fault = wrong(
            index,
            attribute,
            &field.scalar().describe(),
            ValueError::WrongType,
        );
        return Err(Fault::new(
            fault.reason,
            format!("{} in `{expected}`, not `{}`", fault.message, field.label()),
        ));
    }
    let checked = match field {
        Field::V(n) | Field::S(n) => {
            return number(index, attribute, n, u, bu).map(|v| Item::Value(attribute, v))
        }
        Field::Vs(s) => attribute.symbol(s),
        Field::Vb(b) => attribute.boolean(b),
        Field::Vd(_) => Err(ValueError::WrongType),
    };
    no_unit(index, key, u)?;
    checked
        .map(|v| Item::Value(attribute, v))
        .map_err(|e| wrong(index, attribute, &field.scalar().describe(), e))
}

/// A number in the record's unit (its own, else the base unit), converted
/// to the attribute's canonical unit and checked against its range.
fn number(
    index: usize,
    attribute: Attribute,
    n: f64,
    u: Option<&str>,
    bu: Option<&str>,
) -> Result<Value, Fault> {
    let given = match (u, bu) {
        (Some(u), _) => Some((u, "u")),
        (None, Some(bu)) => Some((bu, "bu")),
        (None, None) => None,
    };
    let Some((symbol, label)) = given else {
        return attribute
            .number(n)
            .map_err(|e| wrong(index, attribute, &Scalar::Number(n).describe(), e));
    };
    let key = attribute.key();
    let conversion = senml_unit(symbol).ok_or_else(|| unknown_unit(index, key, symbol, label))?;
    let canonical = attribute.unit();
    if canonical != Some(conversion.unit) {
        let expected = canonical.map_or("no unit", unit_symbol);
        return Err(Fault::new(
            Reason::UnitMismatch,
            format!(
                "record {index} `{key}`: unit {symbol:?} (label `{label}`) does not fit; expected {expected} or a unit that converts to it"
            ),
        ));
    }
    let converted = conversion.apply(n);
    attribute.number(converted).map_err(|e| {
        let shown = if conversion.scale == 1.0 && conversion.offset == 0.0 {
            Scalar::Number(n).describe()
        } else {
            format!(
                "{n} {symbol} (a number, {converted} {})",
                unit_symbol(conversion.unit)
            )
        };
        wrong(index, attribute, &shown, e)
    })
}

/// A value fault in the style of the other decoders, naming the record.
fn wrong(index: usize, attribute: Attribute, shown: &str, e: ValueError) -> Fault {
    let key = attribute.key();
    let fault = value_fault(key, attribute, shown, e);
    let detail = fault
        .message
        .split_once(": ")
        .map_or(fault.message.as_str(), |(_, detail)| detail);
    Fault::new(fault.reason, format!("record {index} `{key}`: {detail}"))
}

fn unknown_unit(index: usize, key: &str, symbol: &str, label: &str) -> Fault {
    Fault::new(
        Reason::UnknownUnit,
        format!("record {index} `{key}`: unit {symbol:?} (label `{label}`) is not a SenML unit this service understands"),
    )
}

/// Refuses a unit given to something that has none (symbols, booleans, lanes).
fn no_unit(index: usize, key: &str, u: Option<&str>) -> Result<(), Fault> {
    let Some(symbol) = u else { return Ok(()) };
    if senml_unit(symbol).is_none() {
        return Err(unknown_unit(index, key, symbol, "u"));
    }
    Err(Fault::new(
        Reason::UnitMismatch,
        format!(
            "record {index} `{key}`: unit {symbol:?} (label `u`) does not fit; expected no unit"
        ),
    ))
}

/// A lane number: an integer ≥ 1 in `v`.
fn lane(index: usize, field: Field<'_>) -> Result<u32, Fault> {
    let shown = field.scalar().describe();
    match field {
        Field::V(n) if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) => Ok(n as u32),
        Field::V(_) => Err(Fault::new(
            Reason::OutOfRange,
            format!("record {index} `{LANE}`: {shown} is out of range; expected an integer ≥ 1"),
        )),
        other => Err(Fault::new(
            Reason::WrongType,
            format!(
                "record {index} `{LANE}`: {shown} has the wrong type; expected an integer ≥ 1 in `v`, not `{}`",
                other.label()
            ),
        )),
    }
}

/// The SenML symbol of a canonical unit, for messages.
const fn unit_symbol(unit: Unit) -> &'static str {
    match unit {
        Unit::Ratio => "/",
        Unit::Watt => "W",
        Unit::KilowattHour => "kWh",
        Unit::Volt => "V",
        Unit::Ampere => "A",
        Unit::Celsius => "Cel",
        Unit::MicrogramPerCubicMetre => "ug/m3",
        Unit::Kilogram => "kg",
        Unit::Metre => "m",
        Unit::KilometrePerHour => "km/h",
        Unit::Count => "count",
        Unit::Lux => "lx",
        Unit::DecibelMilliwatt => "dBm",
        Unit::Decibel => "dB",
    }
}
