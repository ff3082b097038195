//! Fields of a device window by number. Every field name has one slot, so a
//! window finds the running figures of a field without comparing names, knows
//! where the field goes in its point from a table, and writes names
//! (`power_w_mean`, …) that are made once per process.

use std::sync::LazyLock;

use schemas::{Attribute, Domain, Kind, Reading, Value};

use crate::encode::{KeyRun, KeySet, PreparedKey, TAG_COMMUNE, TAG_DEVICE, TAG_DISTRICT, TAG_LANE};
use crate::normalize::{self, Field, FLOW_VPH, PERIOD_S};

/// One slot per attribute, then the two derived fields. Attributes written
/// under the same field name (`status`) share the slot of the first of them.
pub(crate) const SLOTS: usize = Attribute::COUNT + 2;

/// The slot of `period_s`.
const PERIOD: usize = slot_named(PERIOD_S, Attribute::COUNT);
/// The slot of `flow_vph`.
const FLOW: usize = slot_named(FLOW_VPH, Attribute::COUNT + 1);

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The slot of the field `name`: the first attribute written under that name,
/// else `otherwise`.
const fn slot_named(name: &str, otherwise: usize) -> usize {
    let mut i = 0;
    while i < Attribute::COUNT {
        if same(Attribute::ALL[i].field(), name) {
            return i;
        }
        i += 1;
    }
    otherwise
}

/// The slot of each attribute, in [`Attribute::ALL`] order.
const ATTRIBUTE_SLOTS: [usize; Attribute::COUNT] = {
    let mut slots = [0; Attribute::COUNT];
    let mut i = 0;
    while i < Attribute::COUNT {
        slots[i] = slot_named(Attribute::ALL[i].field(), i);
        i += 1;
    }
    slots
};

/// The field name of each slot.
const NAMES: [&str; SLOTS] = {
    let mut names = [""; SLOTS];
    let mut i = 0;
    while i < Attribute::COUNT {
        names[i] = Attribute::ALL[i].field();
        i += 1;
    }
    names[Attribute::COUNT] = PERIOD_S;
    names[Attribute::COUNT + 1] = FLOW_VPH;
    names
};

/// Whether an attribute is one a device of `domain` sends.
const fn ours(attribute: Attribute, domain: Domain) -> bool {
    match attribute.domain() {
        None => true,
        Some(d) => d as u8 == domain as u8,
    }
}

/// Where a field goes in the output of a `domain` window: the domain's
/// attributes in table order, then the derived fields, then anything else
/// (among which the name decides).
const fn rank_of(domain: Domain, slot: usize) -> usize {
    let mut i = 0;
    while i < Attribute::COUNT {
        if ours(Attribute::ALL[i], domain) && ATTRIBUTE_SLOTS[i] == slot {
            return i;
        }
        i += 1;
    }
    if slot == PERIOD {
        Attribute::COUNT
    } else if slot == FLOW {
        Attribute::COUNT + 1
    } else {
        Attribute::COUNT + 2
    }
}

/// [`rank_of`] for every domain (in [`Domain::ALL`] order) and slot.
const RANKS: [[usize; SLOTS]; 3] = {
    let mut ranks = [[0; SLOTS]; 3];
    let mut d = 0;
    while d < 3 {
        let mut slot = 0;
        while slot < SLOTS {
            ranks[d][slot] = rank_of(Domain::ALL[d], slot);
            slot += 1;
        }
        d += 1;
    }
    ranks
};

// `RANKS` is looked up by `domain as usize`, which must be the domain's place
// in `Domain::ALL`.
const _: () = {
    let mut d = 0;
    while d < 3 {
        assert!(Domain::ALL[d] as usize == d);
        d += 1;
    }
};

/// The order of a field in the output of a `domain` window: by rank, then name.
pub(crate) fn order(domain: Domain, slot: usize) -> (usize, &'static str) {
    (RANKS[domain as usize][slot], NAMES[slot])
}

/// What [`for_each_field`] shows the fields of a reading to.
pub(crate) trait FieldSink {
    /// One field, with its slot.
    fn field(&mut self, slot: usize, field: Field);
}

#[cfg(test)]
impl<F: FnMut(usize, Field)> FieldSink for F {
    fn field(&mut self, slot: usize, field: Field) {
        self(slot, field);
    }
}

/// Shows `sink` every field of a reading with its slot, as
/// [`normalize::fields`] gives them, in its order. (Internal iteration: a
/// `for` over the chained iterator costs more than the fields.)
#[inline]
pub(crate) fn for_each_field(reading: &Reading, sink: &mut impl FieldSink) {
    reading.values.iter().for_each(|(a, v)| {
        let field = match v {
            Value::Number(n) => Field::Float(a.field(), n),
            Value::Symbol(s) => Field::String(a.field(), s),
            Value::Bool(b) => Field::Boolean(a.field(), b),
        };
        sink.field(ATTRIBUTE_SLOTS[a.index()], field);
    });
    if let Some(p) = reading.period_s {
        sink.field(PERIOD, Field::Float(PERIOD_S, f64::from(p)));
    }
    if let Some(flow) = normalize::flow_vph(reading) {
        sink.field(FLOW, Field::Float(FLOW_VPH, flow));
    }
}

/// What the field in a slot holds, as its first value made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holds {
    Number,
    Symbol,
    Flag,
}

/// What a field in `slot` holds; `None` for a number that is no slot (an
/// attribute written under the name of an earlier one has that one's slot).
pub(crate) fn holds(slot: usize) -> Option<Holds> {
    if slot == PERIOD || slot == FLOW {
        return Some(Holds::Number);
    }
    let attribute = *Attribute::ALL.get(slot)?;
    if ATTRIBUTE_SLOTS[slot] != slot {
        return None;
    }
    Some(match attribute.kind() {
        Kind::Number { .. } => Holds::Number,
        Kind::Symbol(_) => Holds::Symbol,
        Kind::Bool => Holds::Flag,
    })
}

/// Every slot a field can be in, with its name and what it holds.
pub(crate) fn all() -> impl Iterator<Item = (usize, &'static str, Holds)> {
    (0..SLOTS).filter_map(|slot| holds(slot).map(|h| (slot, NAMES[slot], h)))
}

/// The slot of the field `name`, if it holds `kind`.
pub(crate) fn by_name(name: &str, kind: Holds) -> Option<usize> {
    all()
        .find(|&(_, n, h)| n == name && h == kind)
        .map(|(slot, _, _)| slot)
}

/// The symbol `text` as the data contract holds it, among the values of the
/// attributes written to `slot`.
pub(crate) fn symbol(slot: usize, text: &str) -> Option<&'static str> {
    Attribute::ALL
        .iter()
        .filter(|a| ATTRIBUTE_SLOTS[a.index()] == slot)
        .find_map(|&a| symbol_of(a, text))
}

/// The symbol `text` as the data contract holds it, among the values of
/// `attribute`.
pub(crate) fn symbol_of(attribute: Attribute, text: &str) -> Option<&'static str> {
    match attribute.kind() {
        Kind::Symbol(set) => set.iter().copied().find(|&s| s == text),
        _ => None,
    }
}

/// A figure of a numeric field, as its name ends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suffix {
    Mean,
    Min,
    Max,
    Last,
}

/// Every key a device window writes, prepared once per process: for each slot
/// `{field}_{suffix}` in [`Suffix`] order, then `count` and the tag keys
/// (see [`Key`]).
static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let suffixed = NAMES
        .iter()
        .flat_map(|name| ["mean", "min", "max", "last"].map(|suffix| format!("{name}_{suffix}")));
    let others = [COUNT, TAG_COMMUNE, TAG_DEVICE, TAG_DISTRICT, TAG_LANE].map(str::to_owned);
    let names: Vec<String> = suffixed.chain(others).collect();
    KeySet::new(names.iter().map(String::as_str))
});

/// Field name of the number of readings of a window.
const COUNT: &str = "count";

/// A key of a device window other than the figures of a field.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    Count,
    Commune,
    Device,
    District,
    Lane,
}

// A field's figures are written together, in this order.
const _: () = assert!(
    Suffix::Mean as usize == 0
        && Suffix::Min as usize == 1
        && Suffix::Max as usize == 2
        && Suffix::Last as usize == 3
);

/// The keys of the four figures of every slot, in [`Suffix`] order, to be
/// written together.
static FIGURE_KEYS: LazyLock<Vec<KeyRun<4>>> = LazyLock::new(|| {
    let keys: &'static [PreparedKey] = KEYS.keys();
    keys[..SLOTS * 4]
        .chunks_exact(4)
        .filter_map(|run| <&[PreparedKey; 4]>::try_from(run).ok())
        .map(KeyRun::new)
        .collect()
});

/// The keys of the four figures of the field in `slot`, mean first.
pub(crate) fn figure_keys(slot: usize) -> &'static KeyRun<4> {
    &FIGURE_KEYS[slot]
}

/// The prepared key a figure of the field in `slot` is written as.
pub(crate) fn suffixed_key(slot: usize, suffix: Suffix) -> &'static PreparedKey {
    let keys: &'static [PreparedKey] = KEYS.keys();
    &keys[slot * 4 + suffix as usize]
}

/// The prepared key of a tag or of `count`.
pub(crate) fn key(key: Key) -> &'static PreparedKey {
    let keys: &'static [PreparedKey] = KEYS.keys();
    &keys[SLOTS * 4 + key as usize]
}

/// The name a figure of the field in `slot` is written as.
#[cfg(test)]
pub(crate) fn suffixed(slot: usize, suffix: Suffix) -> &'static str {
    suffixed_key(slot, suffix).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::Timestamp;

    fn everything(domain: Domain) -> Reading {
        let mut r = Reading::new(domain, "rabat", "d-1", Timestamp::from_secs(0));
        for &a in Attribute::ALL {
            let value = match a.kind() {
                Kind::Number { min, .. } => Value::Number(min),
                Kind::Symbol(set) => Value::Symbol(set[0]),
                Kind::Bool => Value::Bool(true),
            };
            r.values.set(a, value);
        }
        r.period_s = Some(60);
        r
    }

    #[test]
    fn slots_follow_normalized_fields_and_their_names() {
        for domain in Domain::ALL {
            let r = everything(domain);
            let mut ours = Vec::new();
            for_each_field(&r, &mut |slot, field| ours.push((slot, field)));
            let theirs: Vec<_> = normalize::fields(&r).collect();
            assert_eq!(ours.iter().map(|(_, f)| *f).collect::<Vec<_>>(), theirs);
            for (slot, field) in ours {
                assert_eq!(NAMES[slot], field.name());
                // One slot per name, whichever attribute carries it.
                assert_eq!(slot_named(field.name(), slot), slot);
            }
        }
    }

    #[test]
    fn ranks_put_the_domain_first_then_derived_fields() {
        let status = ATTRIBUTE_SLOTS[Attribute::WasteStatus.index()];
        assert_eq!(status, ATTRIBUTE_SLOTS[Attribute::LampStatus.index()]);
        assert_eq!(
            order(Domain::Lighting, status).0,
            Attribute::LampStatus.index()
        );
        assert_eq!(
            order(Domain::Waste, status).0,
            Attribute::WasteStatus.index()
        );
        assert_eq!(order(Domain::Traffic, status).0, Attribute::COUNT + 2);
        assert_eq!(order(Domain::Traffic, PERIOD).0, Attribute::COUNT);
        assert_eq!(order(Domain::Traffic, FLOW).0, Attribute::COUNT + 1);
        let power = ATTRIBUTE_SLOTS[Attribute::PowerConsumption.index()];
        assert_eq!(suffixed(power, Suffix::Mean), "power_w_mean");
        assert_eq!(suffixed(FLOW, Suffix::Last), "flow_vph_last");
    }
}
