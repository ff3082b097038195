//! The machinery every kind of window shares: keys looked up by borrowed parts
//! and numbered while held ([`super::keys`]), epoch-aligned buckets of windows,
//! and the emit / forget cycle driven by the highest event time seen and the
//! watermark.
//!
//! Every window holds the id of its key, and so does whatever a caller
//! [`Table::hold`]s it for (a commune member holds its device's id); a key is
//! forgotten with its last hold.

use std::borrow::Cow;
use std::collections::BTreeMap;
// The tests look keys up in a plain `HashMap` by borrowed parts.
#[cfg(test)]
use std::collections::HashMap;

use schemas::{Domain, Reading, Timestamp};

#[cfg(test)]
use super::key::AsKeyRef;
use super::key::FastMap;
pub(crate) use super::key::{KeyRef, WindowKey};
pub(crate) use super::keys::KeyId;
use super::keys::{hint, Keys};
use super::{WindowConfig, WindowStats};
use crate::point::Point;

/// What a window keeps between readings and how it becomes a point.
pub(crate) trait Aggregate: Default {
    /// Folds one reading in (readings arrive in any order of event time).
    fn update(&mut self, reading: &Reading);
    /// Adds the window's tags and fields to `point` (which already has its
    /// measurement and time).
    fn write(&self, key: &WindowKey, config: &WindowConfig, point: &mut Point);
}

#[derive(Debug)]
struct Slot<A> {
    id: KeyId,
    aggregate: A,
    /// Changed since its last emission (or never emitted).
    dirty: bool,
    /// Emitted at least once, so the next emission is a correction.
    emitted: bool,
}

/// The windows that share one start. Windows are only ever forgotten a whole
/// bucket at a time, so slot indices stay valid for the bucket's life.
#[derive(Debug)]
struct Bucket<A> {
    /// Slot by key id.
    index: FastMap<KeyId, usize>,
    slots: Vec<Slot<A>>,
    /// Slots with `dirty` set, each once.
    dirty: Vec<usize>,
}

impl<A> Default for Bucket<A> {
    fn default() -> Self {
        Self {
            index: FastMap::default(),
            slots: Vec::new(),
            dirty: Vec::new(),
        }
    }
}

/// A window found by [`Table::find`]: its bucket start, the id of its key and
/// its slot, when they exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    start: i64,
    id: Option<KeyId>,
    slot: Option<usize>,
    member: u32,
}

impl Found {
    pub(crate) fn exists(self) -> bool {
        self.slot.is_some()
    }

    /// The hint kept with [`Table::set_member_hint`], if the key has one.
    pub(crate) fn member_hint(self) -> Option<usize> {
        usize::try_from(self.member).ok()
    }
}

/// Tumbling windows of one width, aligned to the epoch.
#[derive(Debug)]
pub(crate) struct Table<A> {
    width_ns: i64,
    /// Measurement per domain, in [`Domain::ALL`] order.
    measurements: [Cow<'static, str>; 3],
    keys: Keys,
    buckets: BTreeMap<i64, Bucket<A>>,
    open: usize,
}

fn domain_index(domain: Domain) -> usize {
    match domain {
        Domain::Lighting => 0,
        Domain::Waste => 1,
        Domain::Traffic => 2,
    }
}

impl<A: Aggregate> Table<A> {
    /// Windows `width_s` wide (at least one second); `measurement` names the
    /// points of each domain.
    pub(crate) fn new(width_s: u32, measurement: impl Fn(Domain) -> String) -> Self {
        Self {
            width_ns: i64::from(width_s.max(1)) * 1_000_000_000,
            measurements: Domain::ALL.map(|d| Cow::Owned(measurement(d))),
            keys: Keys::default(),
            buckets: BTreeMap::new(),
            open: 0,
        }
    }

    /// How many windows are held.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// How many keys are held.
    #[cfg(test)]
    pub(crate) fn held_keys(&self) -> usize {
        self.keys.len()
    }

    /// The start of the window holding `t`.
    pub(crate) fn start_of(&self, t: Timestamp) -> i64 {
        let t = t.as_nanos();
        t.saturating_sub(t.rem_euclid(self.width_ns))
    }

    /// The (exclusive) end of the window starting at `start`.
    pub(crate) fn end_of(&self, start: i64) -> i64 {
        start.saturating_add(self.width_ns)
    }

    /// Looks up the window of `key` starting at `start`.
    pub(crate) fn find(&self, start: i64, key: KeyRef<'_>) -> Found {
        let handle = self.keys.get(key);
        let slot = handle.zip(self.buckets.get(&start)).and_then(|(h, b)| {
            // Most readings go to the key's latest window: the slot is the
            // key's own if it holds the key's id (a bucket holds a key once).
            let (latest_start, latest_slot) = h.latest;
            let latest = usize::try_from(latest_slot).ok().filter(|&slot| {
                latest_start == start && b.slots.get(slot).is_some_and(|s| s.id == h.id)
            });
            latest.or_else(|| b.index.get(&h.id).copied())
        });
        Found {
            start,
            id: handle.map(|h| h.id),
            slot,
            member: handle.map_or(u32::MAX, |h| h.member),
        }
    }

    /// Keeps a number with the key of `key`, given back by [`Table::find`]
    /// while the key is held; the caller checks it before use.
    pub(crate) fn set_member_hint(&mut self, key: KeyRef<'_>, position: usize) {
        self.keys.hint(key, |h| h.member = hint(position));
    }

    /// Gives the key of `found` an id if it has none yet. Nothing holds the
    /// id until the window is opened or the id is [`Table::hold`]en.
    pub(crate) fn intern(&mut self, found: &mut Found, key: KeyRef<'_>) -> KeyId {
        let id = found.id.unwrap_or_else(|| self.keys.intern(key));
        found.id = Some(id);
        id
    }

    /// Folds a reading into the window `found` (opening it when it does not
    /// exist) and returns the id of its key.
    pub(crate) fn merge(&mut self, found: Found, key: KeyRef<'_>, reading: &Reading) -> KeyId {
        self.merge_with(found, key, |aggregate| aggregate.update(reading))
    }

    /// As [`Table::merge`], with `update` folding the reading in.
    pub(crate) fn merge_with(
        &mut self,
        found: Found,
        key: KeyRef<'_>,
        update: impl FnOnce(&mut A),
    ) -> KeyId {
        let id = found.id.unwrap_or_else(|| self.keys.intern(key));
        let bucket = self.buckets.entry(found.start).or_default();
        let index = match found.slot {
            Some(index) if index < bucket.slots.len() => index,
            _ => {
                let index = bucket.slots.len();
                bucket.index.insert(id, index);
                bucket.slots.push(Slot {
                    id,
                    aggregate: A::default(),
                    dirty: false,
                    emitted: false,
                });
                self.keys.hold(id);
                let start = found.start;
                self.keys.hint(key, |h| h.latest = (start, hint(index)));
                self.open += 1;
                index
            }
        };
        if let Some(slot) = bucket.slots.get_mut(index) {
            update(&mut slot.aggregate);
            if !slot.dirty {
                slot.dirty = true;
                bucket.dirty.push(index);
            }
        }
        id
    }

    /// Holds `id` for someone other than a window of this table.
    pub(crate) fn hold(&mut self, id: KeyId) {
        self.keys.hold(id);
    }

    /// Lets go of an id taken with [`Table::hold`].
    pub(crate) fn release(&mut self, id: KeyId) {
        self.keys.release(id);
    }

    /// Emits the changed windows whose end the highest event time has reached,
    /// then forgets the windows whose end the watermark has reached.
    pub(crate) fn drain(
        &mut self,
        max_seen: i64,
        watermark: i64,
        config: &WindowConfig,
        out: &mut Vec<Point>,
        stats: &mut WindowStats,
    ) {
        self.drain_with(max_seen, watermark, config, out, stats, |_| {});
    }

    /// As [`Table::drain`], showing every window to `forget` before it goes.
    pub(crate) fn drain_with(
        &mut self,
        max_seen: i64,
        watermark: i64,
        config: &WindowConfig,
        out: &mut Vec<Point>,
        stats: &mut WindowStats,
        mut forget: impl FnMut(&A),
    ) {
        let width = self.width_ns;
        for (&start, bucket) in &mut self.buckets {
            if start.saturating_add(width) > max_seen {
                break;
            }
            emit(
                &self.measurements,
                &self.keys,
                start,
                bucket,
                config,
                out,
                stats,
            );
        }
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key().saturating_add(width) > watermark {
                break;
            }
            let bucket = entry.remove();
            self.open = self.open.saturating_sub(bucket.slots.len());
            for slot in &bucket.slots {
                forget(&slot.aggregate);
                self.keys.release(slot.id);
            }
        }
    }

    /// Emits every changed window, due or not, and keeps them all.
    pub(crate) fn flush_all(
        &mut self,
        config: &WindowConfig,
        out: &mut Vec<Point>,
        stats: &mut WindowStats,
    ) {
        for (&start, bucket) in &mut self.buckets {
            emit(
                &self.measurements,
                &self.keys,
                start,
                bucket,
                config,
                out,
                stats,
            );
        }
    }
}

fn emit<A: Aggregate>(
    measurements: &[Cow<'static, str>; 3],
    keys: &Keys,
    start: i64,
    bucket: &mut Bucket<A>,
    config: &WindowConfig,
    out: &mut Vec<Point>,
    stats: &mut WindowStats,
) {
    out.reserve(bucket.dirty.len());
    for index in bucket.dirty.drain(..) {
        let Some(slot) = bucket.slots.get_mut(index) else {
            continue;
        };
        let Some(key) = keys.key(slot.id) else {
            continue;
        };
        let measurement = measurements[domain_index(key.domain)].clone();
        let mut point = Point::new(measurement, Timestamp::from_nanos(start));
        slot.aggregate.write(key, config, &mut point);
        if slot.emitted {
            stats.corrections += 1;
        }
        slot.dirty = false;
        slot.emitted = true;
        stats.points_emitted += 1;
        out.push(point);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::FieldValue;

    /// Counts readings; enough to watch the machinery.
    #[derive(Debug, Default)]
    struct Count(i64);

    impl Aggregate for Count {
        fn update(&mut self, _: &Reading) {
            self.0 += 1;
        }
        fn write(&self, key: &WindowKey, _: &WindowConfig, point: &mut Point) {
            point.tags.push(("device".into(), key.device.to_string()));
            point.fields.push(("n".into(), FieldValue::Integer(self.0)));
        }
    }

    fn key(device: &str) -> KeyRef<'_> {
        KeyRef {
            domain: Domain::Waste,
            commune: "rabat",
            device,
            lane: None,
        }
    }

    const S: i64 = 1_000_000_000;

    #[test]
    fn borrowed_and_owned_keys_agree() {
        let mut map = HashMap::new();
        map.insert(key("bin-1").to_owned_key(), 7);
        assert_eq!(map.get(&key("bin-1") as &dyn AsKeyRef), Some(&7));
        assert_eq!(map.get(&key("bin-2") as &dyn AsKeyRef), None);
    }

    #[test]
    fn windows_align_to_the_epoch_and_survive_extremes() {
        let table: Table<Count> = Table::new(60, |d| format!("{d}_1m"));
        assert_eq!(table.start_of(Timestamp::from_secs(125)), 120 * S);
        assert_eq!(table.start_of(Timestamp::from_secs(-1)), -60 * S);
        let low = table.start_of(Timestamp::from_nanos(i64::MIN));
        assert_eq!(low, i64::MIN);
        assert_eq!(table.end_of(i64::MAX - 1), i64::MAX);
    }

    #[test]
    fn emits_once_due_and_forgets_past_the_watermark() {
        let config = WindowConfig::default();
        let mut stats = WindowStats::default();
        let mut table: Table<Count> = Table::new(60, |d| format!("{d}_1m"));
        let r = Reading::new(Domain::Waste, "rabat", "bin-1", Timestamp::from_secs(10));
        for _ in 0..2 {
            let found = table.find(0, key("bin-1"));
            table.merge(found, key("bin-1"), &r);
        }
        assert!(table.find(0, key("bin-1")).exists());
        assert_eq!(table.open(), 1);
        let mut out = Vec::new();
        table.drain(59 * S, 0, &config, &mut out, &mut stats);
        assert!(out.is_empty());
        table.drain(60 * S, 0, &config, &mut out, &mut stats);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].get("n"), Some(&FieldValue::Integer(2)));
        assert_eq!(out[0].measurement, "waste_1m");
        table.drain(61 * S, 60 * S, &config, &mut out, &mut stats);
        assert_eq!((out.len(), table.open()), (1, 0));
        assert_eq!(stats.points_emitted, 1);
    }
}
