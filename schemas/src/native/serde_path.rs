//! The general reader of native objects, through `serde_json`: any valid
//! JSON, and the reference for every parser error.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::entry::State;
use super::{uplink_key, Read};
use crate::decode::Format;
use crate::json::{FaultSlot, Key, Scalar};
use crate::rejection::Fault;

struct ObjectVisitor<'s, 't, 'v> {
    state: &'s mut State<'t, 'v>,
    slot: &'s mut FaultSlot,
    uplink: &'s mut Option<Format>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(format) = uplink_key(&key) {
                *self.uplink = Some(format);
                // Stop here: the caller decodes it as what it is.
                return Err(serde::de::Error::custom("uplink"));
            }
            let value: Scalar<'de> = match map.next_value() {
                Ok(v) => v,
                Err(e) => {
                    self.slot.key = Some(key.into_owned());
                    return Err(e);
                }
            };
            if let Err(fault) = self.state.entry(&key, &value) {
                return Err(self.slot.fail(fault));
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ObjectVisitor<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    visitor: ObjectVisitor<'_, '_, '_>,
    de: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<()> {
    visitor.deserialize(&mut *de)?;
    de.end()
}

/// Reads a native object's keys into `state`.
pub(super) fn read(payload: &[u8], state: &mut State<'_, '_>) -> Result<Read, Fault> {
    let mut slot = FaultSlot::default();
    let mut uplink = None;
    let visitor = ObjectVisitor {
        state,
        slot: &mut slot,
        uplink: &mut uplink,
    };
    // Valid UTF-8 (nearly every payload) is parsed as text, which spares the
    // parser a UTF-8 check of every string; anything else as bytes, which
    // reports where it breaks.
    let parsed = match std::str::from_utf8(payload) {
        Ok(text) => parse(visitor, &mut serde_json::Deserializer::from_str(text)),
        Err(_) => parse(visitor, &mut serde_json::Deserializer::from_slice(payload)),
    };
    if let Some(format) = uplink {
        return Ok(Read::Uplink(format));
    }
    match parsed {
        Ok(()) => Ok(Read::Object),
        Err(err) => Err(slot.into_fault(&err)),
    }
}
