//! The running figures of the fields of a device window, kept in place.
//!
//! A window keeps its first [`INLINE`] fields inside itself, so that folding a
//! reading in touches the window's own memory and nothing else; a window with
//! more fields (rare: no device of one domain sends that many) moves them all
//! to the heap. Cleared windows keep that memory for the next window.

use super::slots::{self, Holds};
use super::snapshot::{corrupt, Reader, SnapshotError, Writer};
use crate::normalize::Field;

/// How many fields a window keeps in place.
pub(crate) const INLINE: usize = 7;

/// The running figures of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Figures {
    Number {
        sum: f64,
        n: u64,
        min: f64,
        max: f64,
        last: f64,
    },
    Text(&'static str),
    Flag(bool),
}

/// One field of a window: its figures and the event time of its `last`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FieldState {
    /// Event time of the reading `last` came from.
    pub(crate) last_at: i64,
    pub(crate) figures: Figures,
}

impl FieldState {
    const EMPTY: Self = Self {
        last_at: 0,
        figures: Figures::Flag(false),
    };

    pub(crate) fn new(field: Field, at: i64) -> Self {
        let figures = match field {
            Field::Float(_, v) => Figures::Number {
                sum: v,
                n: 1,
                min: v,
                max: v,
                last: v,
            },
            Field::String(_, s) => Figures::Text(s),
            Field::Boolean(_, b) => Figures::Flag(b),
        };
        Self {
            last_at: at,
            figures,
        }
    }

    pub(crate) fn update(&mut self, field: Field, at: i64) {
        let latest = at >= self.last_at;
        match (&mut self.figures, field) {
            (
                Figures::Number {
                    sum,
                    n,
                    min,
                    max,
                    last,
                },
                Field::Float(_, v),
            ) => {
                *sum += v;
                *n += 1;
                *min = min.min(v);
                *max = max.max(v);
                if latest {
                    *last = v;
                }
            }
            (Figures::Text(last), Field::String(_, s)) => {
                if latest {
                    *last = s;
                }
            }
            (Figures::Flag(last), Field::Boolean(_, b)) => {
                if latest {
                    *last = b;
                }
            }
            // A field keeps the type it first had; a value of another type is
            // left out rather than changing the type written.
            _ => return,
        }
        if latest {
            self.last_at = at;
        }
    }
}

impl FieldState {
    /// Writes the event time of `last` (as its distance from `base`), then
    /// the figures: a number seen once as one value.
    pub(crate) fn save(&self, w: &mut Writer<'_>, base: i64) {
        w.time(self.last_at, base);
        match self.figures {
            Figures::Number {
                sum,
                n,
                min,
                max,
                last,
            } => {
                let bits = sum.to_bits();
                if n == 1 && [min, max, last].iter().all(|v| v.to_bits() == bits) {
                    w.u8(0);
                    w.f64(sum);
                } else {
                    w.u8(1);
                    w.f64(sum);
                    w.var(n);
                    w.f64(min);
                    w.f64(max);
                    w.f64(last);
                }
            }
            Figures::Text(s) => w.str(s),
            Figures::Flag(b) => w.bool(b),
        }
    }

    /// Reads what [`FieldState::save`] wrote for the field in `slot`.
    pub(crate) fn load(r: &mut Reader<'_>, slot: usize, base: i64) -> Result<Self, SnapshotError> {
        const FIELD: &str = "device window field figures";
        let last_at = r.time("device window field time", base)?;
        let figures = match slots::holds(slot) {
            Some(Holds::Number) => {
                let offset = r.offset();
                match r.u8(FIELD)? {
                    0 => {
                        let v = r.f64(FIELD)?;
                        Figures::Number {
                            sum: v,
                            n: 1,
                            min: v,
                            max: v,
                            last: v,
                        }
                    }
                    1 => Figures::Number {
                        sum: r.f64(FIELD)?,
                        n: r.var(FIELD)?,
                        min: r.f64(FIELD)?,
                        max: r.f64(FIELD)?,
                        last: r.f64(FIELD)?,
                    },
                    _ => return Err(corrupt(offset, FIELD, "not a form of figures")),
                }
            }
            Some(Holds::Symbol) => {
                let offset = r.offset();
                let text = r.str(FIELD)?;
                let Some(symbol) = slots::symbol(slot, text) else {
                    return Err(corrupt(offset, FIELD, "not a value the field takes"));
                };
                Figures::Text(symbol)
            }
            Some(Holds::Flag) => Figures::Flag(r.bool(FIELD)?),
            None => return Err(corrupt(r.offset(), FIELD, "not a field")),
        };
        Ok(Self { last_at, figures })
    }
}

/// The fields of a window in output order, each with its slot
/// ([`super::slots`]).
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    /// Slots of the fields kept in place, in one cache line to search.
    slots: [u8; INLINE],
    states: [FieldState; INLINE],
    len: u8,
    /// Bit `slot % 64` of every field held: a slot whose bit is clear is
    /// not held, so a field seen first in a window is not looked for.
    held: u64,
    /// Every field, once there are more than [`INLINE`]; else empty.
    spilled: Vec<(u8, FieldState)>,
}

/// The bit of `slot` in [`Fields::held`].
#[inline]
fn held_bit(slot: u8) -> u64 {
    1 << (slot % 64)
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            slots: [0; INLINE],
            states: [FieldState::EMPTY; INLINE],
            len: 0,
            held: 0,
            spilled: Vec::new(),
        }
    }
}

impl Fields {
    pub(crate) fn len(&self) -> usize {
        if self.spilled.is_empty() {
            usize::from(self.len)
        } else {
            self.spilled.len()
        }
    }

    /// The slot of the field at `i`.
    pub(crate) fn slot(&self, i: usize) -> Option<u8> {
        if self.spilled.is_empty() {
            self.slots[..usize::from(self.len)].get(i).copied()
        } else {
            self.spilled.get(i).map(|&(slot, _)| slot)
        }
    }

    /// The position of the field in `slot`, looking from `from` on first:
    /// readings of a device carry their fields in output order, so the next
    /// one is usually right there.
    #[inline]
    pub(crate) fn position(&self, slot: u8, from: usize) -> Option<usize> {
        if self.held & held_bit(slot) == 0 {
            return None;
        }
        self.search(slot, from)
    }

    /// [`Fields::position`] of a slot that may be held.
    fn search(&self, slot: u8, from: usize) -> Option<usize> {
        if !self.spilled.is_empty() {
            let at = |i: usize| self.spilled[i].0 == slot;
            let len = self.spilled.len();
            return (from.min(len)..len)
                .chain(0..from.min(len))
                .find(|&i| at(i));
        }
        let slots = &self.slots[..usize::from(self.len)];
        let (before, after) = slots.split_at(from.min(slots.len()));
        after
            .iter()
            .position(|&s| s == slot)
            .map(|i| from + i)
            .or_else(|| before.iter().position(|&s| s == slot))
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut FieldState> {
        if self.spilled.is_empty() {
            self.states[..usize::from(self.len)].get_mut(i)
        } else {
            self.spilled.get_mut(i).map(|(_, state)| state)
        }
    }

    /// Puts a field after the last one.
    #[inline]
    pub(crate) fn push(&mut self, slot: u8, state: FieldState) {
        let len = usize::from(self.len);
        if len < INLINE && self.spilled.is_empty() {
            self.slots[len] = slot;
            self.states[len] = state;
            self.len += 1;
            self.held |= held_bit(slot);
            return;
        }
        self.insert(self.len(), slot, state);
    }

    /// Puts a field at `i`, moving those from `i` on one place up.
    pub(crate) fn insert(&mut self, i: usize, slot: u8, state: FieldState) {
        self.held |= held_bit(slot);
        let len = usize::from(self.len);
        if self.spilled.is_empty() && len < INLINE {
            let i = i.min(len);
            // Fields mostly come in output order: then nothing moves (and
            // nothing calls `memmove` for no bytes).
            if i < len {
                self.slots.copy_within(i..len, i + 1);
                self.states.copy_within(i..len, i + 1);
            }
            self.slots[i] = slot;
            self.states[i] = state;
            self.len += 1;
            return;
        }
        if self.spilled.is_empty() {
            let inline = self.slots[..len].iter().zip(&self.states[..len]);
            self.spilled.extend(inline.map(|(&s, &f)| (s, f)));
            self.len = 0;
        }
        let i = i.min(self.spilled.len());
        self.spilled.insert(i, (slot, state));
    }

    /// Every field with its slot, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u8, &FieldState)> + '_ {
        let len = usize::from(self.len);
        let inline = self.slots[..len].iter().zip(&self.states[..len]);
        let spilled = self.spilled.iter().map(|(slot, state)| (slot, state));
        inline.chain(spilled).map(|(&slot, state)| (slot, state))
    }

    /// Forgets every field, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.held = 0;
        self.spilled.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(v: f64) -> FieldState {
        FieldState::new(Field::Float("x", v), 0)
    }

    #[test]
    fn pushed_fields_are_found_in_place_and_spilled() {
        let mut fields = Fields::default();
        let slots = [3_u8, 0, 7, 1, 64, 9, 2, 5, 130];
        for (k, &slot) in slots.iter().enumerate() {
            assert_eq!(fields.position(slot, 0), None, "slot {slot} before");
            fields.push(slot, state(k as f64));
            assert_eq!(fields.len(), k + 1);
            for (i, &s) in slots[..=k].iter().enumerate() {
                assert_eq!(fields.position(s, 0), Some(i), "slot {s}");
                assert_eq!(fields.position(s, k), Some(i), "slot {s}");
            }
            let got: Vec<u8> = fields.iter().map(|(s, _)| s).collect();
            assert_eq!(got, slots[..=k]);
        }
        // Slots 0 and 64 share a bit: 128 is looked for, not found.
        assert_eq!(fields.position(128, 0), None);
        fields.clear();
        assert!(slots.iter().all(|&s| fields.position(s, 0).is_none()));
    }

    #[test]
    fn fields_stay_in_order_in_place_and_spilled() {
        let mut fields = Fields::default();
        let mut want: Vec<u8> = Vec::new();
        for (k, slot) in [5_u8, 1, 9, 3, 7, 2, 8, 4, 6, 0, 10]
            .into_iter()
            .enumerate()
        {
            let at = want.iter().position(|&s| s > slot).unwrap_or(want.len());
            want.insert(at, slot);
            fields.insert(at, slot, state(k as f64));
            let got: Vec<u8> = fields.iter().map(|(s, _)| s).collect();
            assert_eq!(got, want);
            assert_eq!(fields.len(), want.len());
            for (i, &s) in want.iter().enumerate() {
                assert_eq!(fields.slot(i), Some(s));
                assert_eq!(fields.position(s, 3), Some(i));
            }
            assert_eq!(fields.position(200, 1), None);
        }
        if let Some(f) = fields.get_mut(0) {
            f.update(Field::Float("x", 1.0), 1);
        }
        assert_eq!(fields.iter().next().map(|(_, f)| f.last_at), Some(1));
        fields.clear();
        assert_eq!((fields.len(), fields.iter().count()), (0, 0));
        fields.insert(0, 4, state(1.0));
        assert_eq!(fields.iter().map(|(s, _)| s).collect::<Vec<_>>(), [4]);
    }
}
