//! Reading a SenML pack off the wire: serde visitors over the JSON array that
//! check each record's labels and hand the records, one at a time, to the
//! [`Resolver`]. No JSON tree is built; strings stay borrowed from the payload.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use super::Resolver;
use crate::json::{FaultSlot, Key, Scalar};
use crate::rejection::{Fault, Reason};

/// The highest SenML version (`bver`) this service reads (RFC 8428).
pub(super) const MAX_VERSION: f64 = 10.0;

/// The labels of one record, as found on the wire (base fields not yet applied).
#[derive(Debug, Default)]
pub(super) struct Record<'de> {
    pub(super) bn: Option<Cow<'de, str>>,
    pub(super) bt: Option<f64>,
    pub(super) bu: Option<Cow<'de, str>>,
    pub(super) bv: Option<f64>,
    pub(super) bs: Option<f64>,
    pub(super) n: Option<Cow<'de, str>>,
    pub(super) u: Option<Cow<'de, str>>,
    pub(super) v: Option<f64>,
    pub(super) vs: Option<Cow<'de, str>>,
    pub(super) vb: Option<bool>,
    pub(super) vd: Option<Cow<'de, str>>,
    pub(super) s: Option<f64>,
    pub(super) t: Option<f64>,
}

/// A label this service understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    Bn,
    Bt,
    Bu,
    Bv,
    Bs,
    Bver,
    N,
    U,
    V,
    Vs,
    Vb,
    Vd,
    S,
    T,
    Ut,
}

impl Label {
    pub(super) fn parse(s: &str) -> Option<Label> {
        Some(match s {
            "bn" => Label::Bn,
            "bt" => Label::Bt,
            "bu" => Label::Bu,
            "bv" => Label::Bv,
            "bs" => Label::Bs,
            "bver" => Label::Bver,
            "n" => Label::N,
            "u" => Label::U,
            "v" => Label::V,
            "vs" => Label::Vs,
            "vb" => Label::Vb,
            "vd" => Label::Vd,
            "s" => Label::S,
            "t" => Label::T,
            "ut" => Label::Ut,
            _ => return None,
        })
    }

    const fn as_str(self) -> &'static str {
        match self {
            Label::Bn => "bn",
            Label::Bt => "bt",
            Label::Bu => "bu",
            Label::Bv => "bv",
            Label::Bs => "bs",
            Label::Bver => "bver",
            Label::N => "n",
            Label::U => "u",
            Label::V => "v",
            Label::Vs => "vs",
            Label::Vb => "vb",
            Label::Vd => "vd",
            Label::S => "s",
            Label::T => "t",
            Label::Ut => "ut",
        }
    }

    /// The JSON type the label holds, for messages.
    const fn expects(self) -> &'static str {
        match self {
            Label::Bn | Label::Bu | Label::N | Label::U | Label::Vs | Label::Vd => "a string",
            Label::Vb => "a boolean",
            _ => "a number",
        }
    }

    pub(super) const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl<'de> Record<'de> {
    /// Stores a label's value; gives the value back when its JSON type is wrong.
    pub(super) fn set(&mut self, label: Label, value: Scalar<'de>) -> Result<(), Scalar<'de>> {
        match (label, value) {
            (Label::Bn, Scalar::Str(s)) => self.bn = Some(s),
            (Label::Bu, Scalar::Str(s)) => self.bu = Some(s),
            (Label::N, Scalar::Str(s)) => self.n = Some(s),
            (Label::U, Scalar::Str(s)) => self.u = Some(s),
            (Label::Vs, Scalar::Str(s)) => self.vs = Some(s),
            (Label::Vd, Scalar::Str(s)) => self.vd = Some(s),
            (Label::Vb, Scalar::Bool(b)) => self.vb = Some(b),
            (Label::Bt, Scalar::Number(n)) => self.bt = Some(n),
            (Label::Bv, Scalar::Number(n)) => self.bv = Some(n),
            (Label::Bs, Scalar::Number(n)) => self.bs = Some(n),
            (Label::V, Scalar::Number(n)) => self.v = Some(n),
            (Label::S, Scalar::Number(n)) => self.s = Some(n),
            (Label::T, Scalar::Number(n)) => self.t = Some(n),
            // The update time and the version are checked for type only; the
            // version's value is checked by the caller.
            (Label::Ut | Label::Bver, Scalar::Number(_)) => {}
            (_, other) => return Err(other),
        }
        Ok(())
    }
}

/// Parses a pack, feeding each record to the resolver. Faults of the JSON
/// and of the labels come back at once; faults found while resolving are
/// kept by the resolver, so that a later syntax error or not-understood
/// mandatory label still decides the reason.
pub(super) fn parse<'de>(
    payload: &'de [u8],
    resolver: &mut Resolver<'de, '_>,
) -> Result<(), Fault> {
    fn run<'de, R: serde_json::de::Read<'de>>(
        visitor: PackVisitor<'_, 'de, '_>,
        de: &mut serde_json::Deserializer<R>,
    ) -> serde_json::Result<()> {
        de.deserialize_any(visitor)?;
        de.end()
    }
    let mut slot = FaultSlot::default();
    let visitor = PackVisitor {
        slot: &mut slot,
        resolver,
    };
    // Valid UTF-8 is parsed as text, sparing a UTF-8 check of every string.
    let parsed = match std::str::from_utf8(payload) {
        Ok(text) => run(visitor, &mut serde_json::Deserializer::from_str(text)),
        Err(_) => run(visitor, &mut serde_json::Deserializer::from_slice(payload)),
    };
    parsed.map_err(|e| slot.into_fault(&e))
}

/// Names where a parser error happened, unless a deeper visitor already did.
fn locate<E>(slot: &mut FaultSlot, index: usize, label: Option<&str>, e: E) -> E {
    if slot.key.is_none() {
        slot.key = Some(match label {
            Some(label) => format!("record {index} {label}"),
            None => format!("record {index}"),
        });
    }
    e
}

/// Every JSON type but the one a visitor wants is refused with a fault.
macro_rules! refuse_others {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Bool(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Number(v as f64)))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Number(v as f64)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Number(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Str(Cow::Borrowed(v))))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Null))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.refuse(&Scalar::Null))
        }
    };
}

struct PackVisitor<'s, 'de, 'r> {
    slot: &'s mut FaultSlot,
    resolver: &'s mut Resolver<'de, 'r>,
}

impl PackVisitor<'_, '_, '_> {
    fn refuse<E: de::Error>(self, found: &Scalar<'_>) -> E {
        self.slot.fail(Fault::new(
            Reason::InvalidSenml,
            format!(
                "a SenML pack is an array of records, not {}",
                found.describe()
            ),
        ))
    }
}

impl<'de> Visitor<'de> for PackVisitor<'_, 'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SenML pack (an array of records)")
    }

    refuse_others!();

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(self.refuse(&Scalar::Object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let seed = RecordSeed {
                index,
                slot: &mut *self.slot,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(record)) => self.resolver.push(index, record),
                Ok(None) => return Ok(()),
                Err(e) => return Err(locate(self.slot, index, None, e)),
            }
            index += 1;
        }
    }
}

/// Reads one record, knowing its index for messages.
struct RecordSeed<'s> {
    index: usize,
    slot: &'s mut FaultSlot,
}

impl RecordSeed<'_> {
    fn refuse<E: de::Error>(self, found: &Scalar<'_>) -> E {
        let index = self.index;
        self.slot.fail(Fault::new(
            Reason::InvalidSenml,
            format!(
                "record {index} is {}; a SenML record is an object",
                found.describe()
            ),
        ))
    }
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Record<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SenML record (an object)")
    }

    refuse_others!();

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Record<'de>, A::Error> {
        Err(self.refuse(&Scalar::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let index = self.index;
        let slot = self.slot;
        let mut record = Record::default();
        let mut seen = 0_u16;
        loop {
            let key = match map.next_key::<Key<'de>>() {
                Ok(Some(Key(key))) => key,
                Ok(None) => return Ok(record),
                Err(e) => return Err(locate(slot, index, None, e)),
            };
            let Some(label) = Label::parse(&key) else {
                if key.ends_with('_') {
                    return Err(slot.fail(Fault::new(
                        Reason::UnknownMandatoryLabel,
                        format!(
                            "record {index}: label {key:?} ends in `_`, so it must be understood, and it is not"
                        ),
                    )));
                }
                map.next_value::<IgnoredAny>()
                    .map_err(|e| locate(slot, index, Some(&key), e))?;
                continue;
            };
            let name = label.as_str();
            if seen & label.bit() != 0 {
                return Err(slot.fail(Fault::new(
                    Reason::DuplicateKey,
                    format!("record {index}: label `{name}` appears twice"),
                )));
            }
            seen |= label.bit();
            let value: Scalar<'de> = map
                .next_value()
                .map_err(|e| locate(slot, index, Some(name), e))?;
            if let (Label::Bver, Scalar::Number(version)) = (label, &value) {
                if *version > MAX_VERSION {
                    return Err(slot.fail(Fault::new(
                        Reason::InvalidSenml,
                        format!(
                            "record {index}: `bver` {version} is a later SenML version than {MAX_VERSION}, the latest this service reads"
                        ),
                    )));
                }
            }
            if let Err(found) = record.set(label, value) {
                return Err(slot.fail(Fault::new(
                    Reason::InvalidSenml,
                    format!(
                        "record {index}: label `{name}` holds {}; expected {}",
                        found.describe(),
                        label.expects()
                    ),
                )));
            }
        }
    }
}
