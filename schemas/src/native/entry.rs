//! What each key of a native object means: the one place where a key and its
//! value are checked, whichever parser read them.

use crate::attribute::Attribute;
use crate::context::Target;
use crate::domain::Domain;
use crate::json::{wrong_type, Scalar};
use crate::observed::{date_observed, instant, lane, Observed};
use crate::reading::{Timestamp, Values};
use crate::rejection::{Fault, Reason};

/// Structural keys, given bits after the attributes' in the duplicate mask.
const ID: u32 = Attribute::COUNT as u32;
const DATE: u32 = ID + 1;
const DATE_FROM: u32 = ID + 2;
const DATE_TO: u32 = ID + 3;
const LANE: u32 = ID + 4;

/// What the keys read so far have said. Attribute values go straight into
/// the reading being built.
#[derive(Debug)]
pub(super) struct State<'t, 'v> {
    pub(super) target: Target<'t>,
    pub(super) values: &'v mut Values,
    pub(super) lane: Option<u32>,
    pub(super) date: Option<Observed>,
    pub(super) from: Option<Timestamp>,
    pub(super) to: Option<Timestamp>,
    pub(super) unknown: u32,
    seen: u64,
}

impl<'t, 'v> State<'t, 'v> {
    /// Nothing read yet, into `values`, which must be empty.
    pub(super) fn new(target: Target<'t>, values: &'v mut Values) -> Self {
        Self {
            target,
            values,
            lane: None,
            date: None,
            from: None,
            to: None,
            unknown: 0,
            seen: 0,
        }
    }

    /// Forgets everything read, to read the object again from its start.
    pub(super) fn reset(&mut self) {
        *self.values = Values::default();
        self.lane = None;
        self.date = None;
        self.from = None;
        self.to = None;
        self.unknown = 0;
        self.seen = 0;
    }

    #[inline]
    fn mark(&mut self, bit: u32, key: &str) -> Result<(), Fault> {
        let mask = 1u64 << bit;
        if self.seen & mask != 0 {
            return Err(duplicate(key));
        }
        self.seen |= mask;
        Ok(())
    }

    /// Checks one key and its value and records what it says.
    #[inline]
    pub(super) fn entry(&mut self, key: &str, value: &Scalar<'_>) -> Result<(), Fault> {
        let domain = self.target.domain;
        if let Some(attribute) = Attribute::from_key(domain, key) {
            self.mark(attribute.index() as u32, key)?;
            return value.store(key, attribute, self.values);
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
                self.date = Some(date_observed(key, value, domain)?);
            }
            "dateObservedFrom" | "dateObservedTo" if domain == Domain::Traffic => {
                let from = key == "dateObservedFrom";
                self.mark(if from { DATE_FROM } else { DATE_TO }, key)?;
                let t = instant(key, value)?;
                *(if from { &mut self.from } else { &mut self.to }) = Some(t);
            }
            "laneId" if domain == Domain::Traffic => {
                self.mark(LANE, key)?;
                self.lane = Some(lane(key, value)?);
            }
            "type" | "@context" => {}
            _ => self.unknown += 1,
        }
        Ok(())
    }
}

#[cold]
#[inline(never)]
fn duplicate(key: &str) -> Fault {
    Fault::new(Reason::DuplicateKey, format!("key `{key}` appears twice"))
}
