//! SenML packs (RFC 8428) about the device of a native topic.
//!
//! - [`record`]: the pack off the wire, record by record, labels checked.
//! - [`fast_path`]: the same for packs of the common shape, through the
//!   scanner of [`crate::scan`]; anything else is read by [`record`], and a
//!   property test holds both to the same readings or the same fault.
//! - [`value`]: a record's value checked and converted for its attribute.
//! - here: records resolved (§4.6: base fields carried over, names joined,
//!   times made absolute), checked against the device and the attribute
//!   table, converted to canonical units, then grouped into one
//!   [`Reading`] per distinct time.

mod fast_path;
mod record;
#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod tests;
mod value;

use std::borrow::Cow;

use crate::attribute::{Attribute, Value};
use crate::context::{Context, Target};
use crate::domain::Domain;
use crate::reading::{Reading, TimeSource, Timestamp};
use crate::rejection::{Fault, Reason};

use record::Record;
use value::Field;

/// Resolved times below this many seconds are relative to the time of receipt (2^28).
const RELATIVE_BELOW: f64 = 268_435_456.0;

/// How far into the past a relative time may reach, in nanoseconds (about 127 years).
const MAX_OFFSET_NS: f64 = 4e18;

/// The name of the lane of a traffic counter, a tag rather than a field.
const LANE: &str = "laneId";

/// Decodes a SenML pack (a JSON array) about the topic's device; appends one Reading per distinct resolved time, sorted by time; returns how many records named an attribute unknown to the domain (ignored and counted, not fatal).
pub(crate) fn decode(
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let mut resolver = Resolver::new(target, ctx);
    let scanned = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| fast_path::read(text, &mut resolver));
    if scanned.is_none() {
        // Declined, maybe after some records: read again from the start.
        resolver = Resolver::new(target, ctx);
        record::parse(payload, &mut resolver)?;
    }
    resolver.finish(out)
}

/// [`decode`] through `serde_json` only, as it was before the scanner.
#[cfg(test)]
fn decode_serde(
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let mut resolver = Resolver::new(target, ctx);
    record::parse(payload, &mut resolver)?;
    resolver.finish(out)
}

/// Whether the scanner reads the pack (the records it reads are dropped).
#[cfg(test)]
fn scans(payload: &[u8], target: Target<'_>, ctx: &Context<'_>) -> bool {
    let mut resolver = Resolver::new(target, ctx);
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| fast_path::read(text, &mut resolver))
        .is_some()
}

/// What a record is about.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Attribute(Attribute),
    Lane,
}

/// What a resolved record contributes to its reading.
#[derive(Debug, Clone, Copy)]
enum Item {
    Value(Attribute, Value),
    Lane(u32),
}

/// One resolved record of a known attribute.
#[derive(Debug, Clone, Copy)]
struct Entry {
    time: Timestamp,
    index: usize,
    item: Item,
}

/// The state of RFC 8428 §4.6 resolution across the records of one pack.
pub(super) struct Resolver<'de, 'a> {
    target: Target<'a>,
    ctx: &'a Context<'a>,
    bn: Option<Cow<'de, str>>,
    bt: f64,
    bu: Option<Cow<'de, str>>,
    bv: f64,
    bs: f64,
    /// The resolved name of the current record (reused across records).
    name: String,
    records: usize,
    stated_time: bool,
    unknown: u32,
    first_unknown: Option<(usize, String)>,
    entries: Vec<Entry>,
    /// The first fault found while resolving; later records are only parsed.
    fault: Option<Fault>,
}

impl<'de, 'a> Resolver<'de, 'a> {
    fn new(target: Target<'a>, ctx: &'a Context<'a>) -> Self {
        Self {
            target,
            ctx,
            bn: None,
            bt: 0.0,
            bu: None,
            bv: 0.0,
            bs: 0.0,
            name: String::new(),
            records: 0,
            stated_time: false,
            unknown: 0,
            first_unknown: None,
            entries: Vec::with_capacity(8),
            fault: None,
        }
    }

    /// Takes the next record of the pack.
    fn push(&mut self, index: usize, record: Record<'de>) {
        self.records += 1;
        if self.fault.is_none() {
            if let Err(fault) = self.resolve(index, record) {
                self.fault = Some(fault);
            }
        }
    }

    fn resolve(&mut self, index: usize, mut record: Record<'de>) -> Result<(), Fault> {
        // Base fields apply to their own record and every later one.
        if let Some(bn) = record.bn.take() {
            self.bn = Some(bn);
        }
        if let Some(bu) = record.bu.take() {
            self.bu = Some(bu);
        }
        if let Some(bt) = record.bt {
            self.bt = bt;
        }
        if let Some(bv) = record.bv {
            self.bv = bv;
        }
        if let Some(bs) = record.bs {
            self.bs = bs;
        }
        self.stated_time |= record.bt.is_some() || record.t.is_some();

        let field = self.field(index, &record)?;
        self.name.clear();
        self.name.push_str(self.bn.as_deref().unwrap_or(""));
        self.name.push_str(record.n.as_deref().unwrap_or(""));
        check_name(index, &self.name)?;
        let (prefix, key) = split(&self.name);
        if !prefix.is_empty() {
            let device = split(prefix).1;
            if device != self.target.device {
                return Err(Fault::new(
                    Reason::IdMismatch,
                    format!(
                        "record {index}: name {:?} is about device {device:?}, but the topic's device is {:?}",
                        self.name, self.target.device
                    ),
                ));
            }
        }
        let time = self.time(index, record.t)?;
        let subject = if key == LANE && self.target.domain == Domain::Traffic {
            Subject::Lane
        } else if let Some(attribute) = Attribute::from_key(self.target.domain, key) {
            Subject::Attribute(attribute)
        } else {
            self.unknown = self.unknown.saturating_add(1);
            if self.first_unknown.is_none() {
                self.first_unknown = Some((index, key.to_owned()));
            }
            return Ok(());
        };
        let item = value::item(
            index,
            subject,
            field,
            record.u.as_deref(),
            self.bu.as_deref(),
        )?;
        self.entries.push(Entry { time, index, item });
        Ok(())
    }

    /// The one value of a record.
    fn field<'r>(&self, index: usize, record: &'r Record<'de>) -> Result<Field<'r>, Fault> {
        let given = [
            record.v.map(|v| Field::V(self.bv + v)),
            record.vs.as_deref().map(Field::Vs),
            record.vb.map(Field::Vb),
            record.vd.as_deref().map(Field::Vd),
        ];
        let mut values = given.iter().flatten();
        match (values.next(), values.next()) {
            (Some(field), None) => Ok(*field),
            (None, _) => record.s.map(|s| Field::S(self.bs + s)).ok_or_else(|| {
                Fault::new(
                    Reason::InvalidSenml,
                    format!(
                        "record {index} has no value; a record carries one of `v`, `vs`, `vb`, `vd` (or a sum `s`)"
                    ),
                )
            }),
            (Some(_), Some(_)) => {
                let labels: Vec<_> = given.iter().flatten().map(|f| format!("`{}`", f.label())).collect();
                Err(Fault::new(
                    Reason::InvalidSenml,
                    format!(
                        "record {index} has {} values ({}); a record carries exactly one",
                        labels.len(),
                        labels.join(", ")
                    ),
                ))
            }
        }
    }

    /// The record's resolved time, absolute and within the limits.
    fn time(&self, index: usize, t: Option<f64>) -> Result<Timestamp, Fault> {
        let secs = self.bt + t.unwrap_or(0.0);
        if !secs.is_finite() {
            return Err(Fault::new(
                Reason::InvalidTimestamp,
                format!(
                    "key `record {index} time`: base time {} plus time {} is not a finite number of seconds",
                    self.bt,
                    t.unwrap_or(0.0)
                ),
            ));
        }
        let now = self.ctx.now;
        let time = if secs < RELATIVE_BELOW {
            // Clamped so that no later arithmetic on the time can overflow.
            now.add_nanos((secs * 1e9).round().max(-MAX_OFFSET_NS) as i64)
        } else {
            // Rounded to microseconds: a float of epoch seconds holds no finer.
            let whole = secs.floor();
            let micros = ((secs - whole) * 1e6).round() as i64;
            Timestamp::from_secs(whole as i64).add_nanos(micros * 1000)
        };
        // The key is spelled out only when the time is refused.
        let limits = self.ctx.limits;
        limits.check("time", time, now).map_err(|first| {
            limits
                .check(&format!("record {index} time"), time, now)
                .err()
                .unwrap_or(first)
        })
    }

    /// Groups the resolved records into readings, appended to `out` sorted
    /// by time; on a fault `out` is left as it was.
    fn finish(mut self, out: &mut Vec<Reading>) -> Result<u32, Fault> {
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        if self.records == 0 {
            return Err(Fault::new(
                Reason::EmptyPack,
                "the SenML pack has no records",
            ));
        }
        if self.entries.is_empty() {
            let (index, key) = self.first_unknown.unwrap_or_default();
            return Err(Fault::new(
                Reason::NoMeasurements,
                format!(
                    "none of the pack's {} records names an attribute of the {} domain (record {index} names {key:?})",
                    self.records, self.target.domain
                ),
            ));
        }
        // Stable: records of one time stay in pack order.
        self.entries.sort_by_key(|e| e.time);
        let before = out.len();
        let source = if self.stated_time {
            TimeSource::Observed
        } else {
            TimeSource::Received
        };
        for group in self.entries.chunk_by(|a, b| a.time == b.time) {
            match self.reading(group, source) {
                Ok(reading) => out.push(reading),
                Err(fault) => {
                    out.truncate(before);
                    return Err(fault);
                }
            }
        }
        Ok(self.unknown)
    }

    /// The reading of the records of one time.
    fn reading(&self, group: &[Entry], source: TimeSource) -> Result<Reading, Fault> {
        let Target {
            domain,
            commune,
            device,
        } = self.target;
        let time = group.first().map_or(self.ctx.now, |e| e.time);
        let mut reading = Reading::new(domain, commune, device, time);
        reading.time_source = source;
        for (at, entry) in group.iter().enumerate() {
            let repeated = match entry.item {
                Item::Value(attribute, value) => reading.values.set(attribute, value).is_some(),
                Item::Lane(lane) => reading.lane.replace(lane).is_some(),
            };
            if repeated {
                let same = |e: &&Entry| match (e.item, entry.item) {
                    (Item::Value(a, _), Item::Value(b, _)) => a == b,
                    (Item::Lane(_), Item::Lane(_)) => true,
                    _ => false,
                };
                let first = group[..at].iter().find(same).map_or(0, |e| e.index);
                return Err(Fault::new(
                    Reason::DuplicateKey,
                    format!(
                        "record {} `{}`: a second value at {time}; record {first} already gave one",
                        entry.index,
                        item_key(entry.item)
                    ),
                ));
            }
        }
        if reading.values.is_empty() {
            let index = group.first().map_or(0, |e| e.index);
            return Err(Fault::new(
                Reason::NoMeasurements,
                format!("record {index} `{LANE}`: no attribute at the same time {time} to go with the lane"),
            ));
        }
        Ok(reading)
    }
}

const fn item_key(item: Item) -> &'static str {
    match item {
        Item::Value(attribute, _) => attribute.key(),
        Item::Lane(_) => LANE,
    }
}

/// The bytes a resolved name may hold (RFC 8428's charset), by value.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < table.len() {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b':' | b'.' | b'/' | b'_');
        b += 1;
    }
    table
};

/// Checks a resolved name against RFC 8428's charset.
fn check_name(index: usize, name: &str) -> Result<(), Fault> {
    if name.is_empty() {
        return Err(Fault::new(
            Reason::InvalidSenml,
            format!("record {index} has no name: neither `n` nor a base name `bn`"),
        ));
    }
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let valid = name.bytes().all(|b| NAME_BYTES[usize::from(b)]);
    if starts_well && valid {
        Ok(())
    } else {
        Err(Fault::new(
            Reason::InvalidSenml,
            format!(
                "record {index}: name {name:?} must start with a letter or digit and hold only A-Z a-z 0-9 - : . / _"
            ),
        ))
    }
}

/// Splits a name at its last `:` or `/`: what comes before, and the last segment.
fn split(name: &str) -> (&str, &str) {
    // Both are ASCII, so a byte of either is a whole character.
    match name.bytes().rposition(|b| b == b':' || b == b'/') {
        Some(at) => (&name[..at], &name[at + 1..]),
        None => ("", name),
    }
}
