//! The decoded payload of an uplink (`decoded_payload` in The Things Stack,
//! `object` in ChirpStack): a flat object whose keys are attribute names or
//! source keys of the application's field map, plus `laneId` and the
//! `dateObserved` family, read with the same meaning as in native messages.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::application::{Application, Mapping};
use crate::domain::Domain;
use crate::json::wrong_type;
use crate::json::{FaultSlot, Key, Scalar};
use crate::observed::{date_observed, instant, lane, resolve, Observed};
use crate::reading::{Timestamp, Values};
use crate::rejection::{Fault, Reason};

/// A decoded payload, validated.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decoded {
    pub(super) values: Values,
    pub(super) lane: Option<u32>,
    pub(super) observed: Option<Observed>,
    /// Keys that map to no attribute.
    pub(super) unknown: u32,
}

/// Reads the decoded payload (its JSON text) found at `key` with the
/// application's field map.
pub(super) fn walk(raw: &str, key: &str, app: &Application) -> Result<Decoded, Fault> {
    let mut state = State {
        app,
        key,
        values: Values::default(),
        lane: None,
        date: None,
        from: None,
        to: None,
        unknown: 0,
        slot: FaultSlot::default(),
    };
    let mut de = serde_json::Deserializer::from_str(raw);
    if let Err(err) = (&mut de).deserialize_any(Walker(&mut state)) {
        return Err(state.slot.into_fault(&err));
    }
    Ok(Decoded {
        observed: resolve(state.date, state.from, state.to)?,
        values: state.values,
        lane: state.lane,
        unknown: state.unknown,
    })
}

struct State<'s> {
    app: &'s Application,
    /// Where the payload is in the uplink, for messages.
    key: &'s str,
    values: Values,
    lane: Option<u32>,
    date: Option<Observed>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    unknown: u32,
    slot: FaultSlot,
}

fn twice(key: &str) -> Fault {
    Fault::new(
        Reason::DuplicateKey,
        format!("key `{key}` appears twice in the decoded payload"),
    )
}

/// What a key of the decoded payload is.
#[derive(Debug, Clone, Copy)]
enum Role {
    Date,
    From,
    To,
    Lane,
    Attribute(Mapping),
    Unknown,
}

impl State<'_> {
    fn role(&self, key: &str) -> Role {
        match key {
            "dateObserved" => Role::Date,
            "dateObservedFrom" if self.app.domain == Domain::Traffic => Role::From,
            "dateObservedTo" if self.app.domain == Domain::Traffic => Role::To,
            "laneId" if self.app.domain == Domain::Traffic => Role::Lane,
            _ => self.app.mapping(key).map_or(Role::Unknown, Role::Attribute),
        }
    }

    /// Takes in the value of a key that has a role.
    fn take(&mut self, role: Role, key: &str, v: &Scalar<'_>) -> Result<(), Fault> {
        match role {
            Role::Date => {
                if self.date.is_some() {
                    return Err(twice(key));
                }
                self.date = Some(date_observed(key, v, self.app.domain)?);
            }
            Role::From | Role::To => {
                let slot = if matches!(role, Role::From) {
                    &mut self.from
                } else {
                    &mut self.to
                };
                if slot.is_some() {
                    return Err(twice(key));
                }
                *slot = Some(instant(key, v)?);
            }
            Role::Lane => {
                if self.lane.is_some() {
                    return Err(twice(key));
                }
                self.lane = Some(lane(key, v)?);
            }
            Role::Attribute(m) => {
                let value = v.to_value(key, m.attribute, m.scale, m.offset)?;
                if self.values.set(m.attribute, value).is_some() {
                    return Err(Fault::new(
                        Reason::DuplicateKey,
                        format!(
                            "key `{key}`: {} is given twice in the decoded payload",
                            m.attribute.key()
                        ),
                    ));
                }
            }
            // Skipped and counted without reading the value (see `visit_map`).
            Role::Unknown => {}
        }
        Ok(())
    }
}

/// Visits the payload object, reading only the keys the application knows.
struct Walker<'w, 's>(&'w mut State<'s>);

impl Walker<'_, '_> {
    fn not_an_object<E: serde::de::Error>(self, shown: &str) -> E {
        let fault = wrong_type(self.0.key, shown, "an object");
        self.0.slot.fail(fault)
    }
}

impl<'de> Visitor<'de> for Walker<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(self.not_an_object("null"))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Bool(v).describe()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v as f64).describe()))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v as f64).describe()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Number(v).describe()))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        Err(self.not_an_object(&Scalar::Str(v.into()).describe()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object(&Scalar::Array.describe()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let role = self.0.role(&key);
            if matches!(role, Role::Unknown) {
                map.next_value::<IgnoredAny>()?;
                self.0.unknown += 1;
                continue;
            }
            let value = match map.next_value::<Scalar<'de>>() {
                Ok(v) => v,
                Err(e) => {
                    self.0.slot.key = Some(key.into_owned());
                    return Err(e);
                }
            };
            if let Err(fault) = self.0.take(role, &key, &value) {
                return Err(self.0.slot.fail(fault));
            }
        }
        Ok(())
    }
}
