//! Native JSON objects: one reading of the topic's device, keyed by Smart
//! Data Models attribute names.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::attribute::Attribute;
use crate::context::{Context, Target};
use crate::domain::Domain;
use crate::json::{wrong_type, FaultSlot, Key, Scalar};
use crate::observed::{date_observed, instant, lane, resolve, Observed};
use crate::reading::{Reading, TimeSource, Timestamp, Values};
use crate::rejection::{Fault, Reason};

/// What a native object turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A reading was appended; this many keys were unknown.
    Reading(u32),
    /// The object is a network server's uplink, not a native reading.
    Uplink(crate::decode::Format),
}

/// Top-level keys that mark a LoRaWAN network server's envelope.
pub(crate) fn uplink_key(key: &str) -> Option<crate::decode::Format> {
    use crate::decode::Format;
    match key {
        "end_device_ids" | "uplink_message" => Some(Format::TheThingsStack),
        "deviceInfo" => Some(Format::ChirpStack),
        _ => None,
    }
}

/// Structural keys, given bits after the attributes' in the duplicate mask.
const ID: u32 = Attribute::COUNT as u32;
const DATE: u32 = ID + 1;
const DATE_FROM: u32 = ID + 2;
const DATE_TO: u32 = ID + 3;
const LANE: u32 = ID + 4;

#[derive(Debug, Default)]
struct State {
    values: Values,
    lane: Option<u32>,
    date: Option<Observed>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    unknown: u32,
    seen: u64,
    uplink: Option<crate::decode::Format>,
}

struct ObjectVisitor<'s, 't> {
    target: Target<'t>,
    state: &'s mut State,
    slot: &'s mut FaultSlot,
}

impl ObjectVisitor<'_, '_> {
    fn mark(&mut self, bit: u32, key: &str) -> Result<(), Fault> {
        let mask = 1u64 << bit;
        if self.state.seen & mask != 0 {
            return Err(Fault::new(
                Reason::DuplicateKey,
                format!("key `{key}` appears twice"),
            ));
        }
        self.state.seen |= mask;
        Ok(())
    }

    fn entry(&mut self, key: &str, value: &Scalar<'_>) -> Result<(), Fault> {
        let domain = self.target.domain;
        if let Some(attribute) = Attribute::from_key(domain, key) {
            self.mark(attribute.index() as u32, key)?;
            let v = value.to_value(key, attribute, 1.0, 0.0)?;
            self.state.values.set(attribute, v);
            return Ok(());
        }
        match key {
            "id" => {
                self.mark(ID, key)?;
                let Scalar::Str(id) = value else {
                    return Err(wrong_type(key, &value.describe(), "a string"));
                };
                if id != self.target.device {
                    return Err(Fault::new(
                        Reason::IdMismatch,
                        format!(
                            "key `id`: {id:?} differs from the topic's device {:?}",
                            self.target.device
                        ),
                    ));
                }
            }
            "dateObserved" => {
                self.mark(DATE, key)?;
                self.state.date = Some(date_observed(key, value, domain)?);
            }
            "dateObservedFrom" | "dateObservedTo" if domain == Domain::Traffic => {
                let from = key == "dateObservedFrom";
                self.mark(if from { DATE_FROM } else { DATE_TO }, key)?;
                let t = instant(key, value)?;
                *(if from {
                    &mut self.state.from
                } else {
                    &mut self.state.to
                }) = Some(t);
            }
            "laneId" if domain == Domain::Traffic => {
                self.mark(LANE, key)?;
                self.state.lane = Some(lane(key, value)?);
            }
            "type" | "@context" => {}
            _ => self.state.unknown += 1,
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if let Some(format) = uplink_key(&key) {
                self.state.uplink = Some(format);
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
            if let Err(fault) = self.entry(&key, &value) {
                return Err(self.slot.fail(fault));
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ObjectVisitor<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

fn parse<'de, R: serde_json::de::Read<'de>>(
    visitor: ObjectVisitor<'_, '_>,
    de: &mut serde_json::Deserializer<R>,
) -> serde_json::Result<()> {
    visitor.deserialize(&mut *de)?;
    de.end()
}

/// Decodes a native object about the topic's device.
pub(crate) fn decode(
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<Outcome, Fault> {
    let mut state = State::default();
    let mut slot = FaultSlot::default();
    let visitor = ObjectVisitor {
        target,
        state: &mut state,
        slot: &mut slot,
    };
    // Valid UTF-8 (nearly every payload) is parsed as text, which spares the
    // parser a UTF-8 check of every string; anything else as bytes, which
    // reports where it breaks.
    let parsed = match std::str::from_utf8(payload) {
        Ok(text) => parse(visitor, &mut serde_json::Deserializer::from_str(text)),
        Err(_) => parse(visitor, &mut serde_json::Deserializer::from_slice(payload)),
    };
    if let Some(format) = state.uplink {
        return Ok(Outcome::Uplink(format));
    }
    if let Err(err) = parsed {
        return Err(slot.into_fault(&err));
    }

    let (time, period_s, source) = match resolve(state.date, state.from, state.to)? {
        Some(o) => {
            ctx.limits.check(o.key, o.start, ctx.now)?;
            (o.start, o.period_s, TimeSource::Observed)
        }
        None => (ctx.now, None, TimeSource::Received),
    };
    if state.values.is_empty() {
        return Err(Fault::new(
            Reason::NoMeasurements,
            format!(
                "the object holds no attribute of {}; expected keys such as {}",
                target.domain,
                example_keys(target.domain)
            ),
        ));
    }
    let mut reading = Reading::new(target.domain, target.commune, target.device, time);
    reading.time_source = source;
    reading.period_s = period_s;
    reading.lane = state.lane;
    reading.values = state.values;
    out.push(reading);
    Ok(Outcome::Reading(state.unknown))
}

fn example_keys(domain: Domain) -> &'static str {
    match domain {
        Domain::Lighting => "powerState, powerConsumption, illuminanceLevel",
        Domain::Waste => "fillingLevel, temperature, status",
        Domain::Traffic => "intensity, occupancy, averageVehicleSpeed",
    }
}

/// Skips a JSON value; used to tell a scalar payload from broken JSON.
pub(crate) fn is_json(payload: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(payload).is_ok()
}
