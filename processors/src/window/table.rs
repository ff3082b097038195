//! The machinery every kind of window shares: keys looked up by borrowed parts
//! and numbered while held ([`super::keys`]), windows chained by key
//! ([`super::chain`]) in epoch-aligned buckets, and the emit / forget cycle
//! driven by the highest event time seen and the watermark.
//!
//! A key is held by its windows (once, while it has any) and by whatever a
//! caller [`Table::hold`]s it for (a commune member holds its device's id); it
//! is forgotten with its last hold.

use std::collections::BTreeMap;
// The tests look keys up in a plain `HashMap` by borrowed parts.
#[cfg(test)]
use std::collections::HashMap;

use schemas::{Domain, Reading, Timestamp};

use super::chain::{Chains, Window};
use super::emit::{Emit, Measurement, Write};
#[cfg(test)]
use super::key::AsKeyRef;
pub(crate) use super::key::{KeyRef, WindowKey};
pub(crate) use super::keys::KeyId;
use super::keys::{hint, Handle, Keys, NONE};
use super::snapshot::{corrupt, Reader, SnapshotError, Writer};
use super::{WindowConfig, WindowStats};

/// What a window keeps between readings; [`Write`] turns it into a point.
pub(crate) trait Aggregate: Default + Write {
    /// Folds one reading in (readings arrive in any order of event time).
    fn update(&mut self, reading: &Reading);
    /// Makes it as new, keeping what memory it can for the next window.
    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// The windows that share one start, by index in the slab. Windows are only
/// ever forgotten a whole bucket at a time.
#[derive(Debug, Default)]
struct Bucket {
    windows: Vec<usize>,
    /// Windows with `dirty` set, each once.
    dirty: Vec<usize>,
}

/// A window found by [`Table::find`]: its start, the id of its key and where
/// it is, when they exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    start: i64,
    id: Option<KeyId>,
    window: Option<usize>,
    /// The key's newest window, or [`NONE`], and its start.
    head: usize,
    head_start: i64,
    member: u32,
    rollup: u32,
}

impl Found {
    pub(crate) fn exists(self) -> bool {
        self.window.is_some()
    }

    /// The hint kept with [`Table::set_member_hint`], if the key has one.
    pub(crate) fn member_hint(self) -> Option<usize> {
        usize::try_from(self.member).ok()
    }

    /// The hint kept with [`Table::set_rollup_hint`], if the key has one.
    pub(crate) fn rollup_hint(self) -> Option<KeyId> {
        (self.rollup != u32::MAX).then_some(self.rollup as KeyId)
    }
}

/// Tumbling windows of one width, aligned to the epoch.
#[derive(Debug)]
pub(crate) struct Table<A> {
    width_ns: i64,
    /// Measurement per domain, in [`Domain::ALL`] order.
    measurements: [Measurement; 3],
    keys: Keys,
    windows: Chains<A>,
    buckets: BTreeMap<i64, Bucket>,
    /// Buckets forgotten, kept for their memory.
    spare: Vec<Bucket>,
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
            measurements: Domain::ALL.map(|d| Measurement::new(measurement(d))),
            keys: Keys::default(),
            windows: Chains::default(),
            buckets: BTreeMap::new(),
            spare: Vec::new(),
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
        self.found(start, self.keys.get(key))
    }

    /// As [`Table::find`], trying first whether `key` is held under `id`:
    /// then it is found without hashing it.
    pub(crate) fn find_hinted(&self, start: i64, key: KeyRef<'_>, id: Option<KeyId>) -> Found {
        let handle = id.and_then(|id| self.keys.get_by_id(id, key));
        self.found(start, handle.or_else(|| self.keys.get(key)))
    }

    /// The window starting at `start` of the key `handle` is of.
    fn found(&self, start: i64, handle: Option<Handle>) -> Found {
        let (head, head_start) = handle.map_or((NONE, i64::MIN), |h| (h.latest, h.latest_start));
        let window = self.windows.find(head, head_start, start);
        Found {
            start,
            id: handle.map(|h| h.id),
            window,
            head,
            head_start,
            member: handle.map_or(u32::MAX, |h| h.member),
            rollup: handle.map_or(u32::MAX, |h| h.rollup),
        }
    }

    /// Keeps a number with key `id`, given back by [`Table::find`] while the
    /// key is held; the caller checks it before use.
    pub(crate) fn set_member_hint(&mut self, id: KeyId, position: usize) {
        self.keys.set_member(id, hint(position));
    }

    /// Keeps with key `id` the id `rollup` of its commune rollup's key (in
    /// the rollups' table), given back by [`Table::find`] while the key is
    /// held; [`Table::find_hinted`] checks it before use.
    pub(crate) fn set_rollup_hint(&mut self, id: KeyId, rollup: KeyId) {
        self.keys.set_rollup(id, hint(rollup));
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
        let start = found.start;
        let existing = found.window.filter(|&i| {
            self.windows
                .get(i)
                .is_some_and(|w| w.live && w.id == id && w.start == start)
        });
        debug_assert_eq!(existing, found.window);
        let index = existing.unwrap_or_else(|| self.open_window(id, found));
        let Some(window) = self.windows.get_mut(index) else {
            return id;
        };
        update(&mut window.aggregate);
        if !window.dirty {
            window.dirty = true;
            if let Some(bucket) = self.buckets.get_mut(&start) {
                bucket.dirty.push(index);
            }
        }
        id
    }

    /// Opens the window of key `id` that `found` did not find, empty and
    /// dirty.
    fn open_window(&mut self, id: KeyId, found: Found) -> usize {
        let start = found.start;
        let (index, newest) = self.windows.open(id, start, found.head, found.head_start);
        if newest {
            self.keys.set_latest(id, index, start);
        }
        if found.head == NONE {
            self.keys.hold(id);
        }
        // Mostly the newest bucket: found without a search.
        let bucket = match self.buckets.last_entry() {
            Some(last) if *last.key() == start => last.into_mut(),
            _ => {
                let spare = &mut self.spare;
                self.buckets
                    .entry(start)
                    .or_insert_with(|| spare.pop().unwrap_or_default())
            }
        };
        bucket.windows.push(index);
        bucket.dirty.push(index);
        self.open += 1;
        index
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
        out: &mut impl Emit,
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
        out: &mut impl Emit,
        stats: &mut WindowStats,
        mut forget: impl FnMut(&A),
    ) {
        let width = self.width_ns;
        for (&start, bucket) in &mut self.buckets {
            if start.saturating_add(width) > max_seen {
                break;
            }
            let windows = &mut self.windows;
            emit(
                &self.measurements,
                &self.keys,
                windows,
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
            let mut bucket = entry.remove();
            self.open = self.open.saturating_sub(bucket.windows.len());
            for &index in &bucket.windows {
                // Windows go oldest first: a key's newest goes last.
                if let Some((id, head, start)) = self.windows.forget(index, &mut forget) {
                    self.keys.set_latest(id, head, start);
                    if head == NONE {
                        self.keys.release(id);
                    }
                }
            }
            bucket.windows.clear();
            bucket.dirty.clear();
            self.spare.push(bucket);
        }
    }

    /// Emits every changed window, due or not, and keeps them all.
    pub(crate) fn flush_all(
        &mut self,
        config: &WindowConfig,
        out: &mut impl Emit,
        stats: &mut WindowStats,
    ) {
        for bucket in self.buckets.values_mut() {
            let windows = &mut self.windows;
            emit(
                &self.measurements,
                &self.keys,
                windows,
                bucket,
                config,
                out,
                stats,
            );
        }
    }
}

/// The names a table's fields go by in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Labels {
    pub(crate) buckets: &'static str,
    pub(crate) start: &'static str,
    pub(crate) windows: &'static str,
    pub(crate) key: &'static str,
    pub(crate) emitted: &'static str,
    pub(crate) changed: &'static str,
}

/// Snapshots: every window held, in a logical image (see
/// [`super::snapshot`]), and the path that rebuilds them.
impl<A: Aggregate> Table<A> {
    /// The key of id `id`, while held.
    pub(crate) fn key(&self, id: KeyId) -> Option<&WindowKey> {
        self.keys.key(id)
    }

    /// The windows of a bucket, in the bucket's order, with where each is.
    fn bucket_windows<'s>(
        &'s self,
        bucket: &'s Bucket,
    ) -> impl Iterator<Item = (usize, &'s Window<A>)> + 's {
        bucket.windows.iter().filter_map(|&index| {
            let window = self.windows.get(index).filter(|w| w.live)?;
            Some((index, window))
        })
    }

    /// Shows `f` every window [`Table::write`] writes, in the same order.
    pub(crate) fn for_each_window(&self, mut f: impl FnMut(&Window<A>)) {
        for bucket in self.buckets.values() {
            for (_, window) in self.bucket_windows(bucket) {
                f(window);
            }
        }
    }

    /// Writes every bucket, oldest start first: its start, its windows in
    /// its order (`window` writes each, given the bucket's start), then the
    /// positions of those changed since their last emission, in the order
    /// they will be emitted.
    pub(crate) fn write(
        &self,
        w: &mut Writer<'_>,
        mut write: impl FnMut(&mut Writer<'_>, i64, &Window<A>),
    ) {
        // By slab index: the window's position in its bucket.
        let mut position = vec![u32::MAX; self.windows.len()];
        let mut held = Vec::new();
        w.len(self.buckets.len());
        for (&start, bucket) in &self.buckets {
            held.clear();
            held.extend(self.bucket_windows(bucket));
            w.i64(start);
            w.len(held.len());
            for (at, &(index, window)) in held.iter().enumerate() {
                if let Some(p) = position.get_mut(index) {
                    *p = u32::try_from(at).unwrap_or(u32::MAX);
                }
                write(w, start, window);
            }
            let changed = bucket
                .dirty
                .iter()
                .filter_map(|&i| position.get(i).copied().filter(|&p| p != u32::MAX));
            w.len(changed.clone().count());
            for p in changed {
                w.len(p as usize);
            }
            for &(index, _) in &held {
                if let Some(p) = position.get_mut(index) {
                    *p = u32::MAX;
                }
            }
        }
    }

    /// Reads what [`Table::write`] wrote into this empty table. Each window
    /// names its key by its place in `keys`; `ids` keeps, by that place, the
    /// id the key was given here. `load` reads each window's aggregate,
    /// given its key and start.
    ///
    /// Windows are opened as a reading would open them, but each key is
    /// looked up once: buckets come oldest first, so every window opened is
    /// its key's newest, chained after the one before.
    pub(crate) fn read<'a>(
        &mut self,
        r: &mut Reader<'a>,
        labels: Labels,
        keys: &[KeyRef<'a>],
        ids: &mut [Option<KeyId>],
        mut load: impl FnMut(&mut A, &mut Reader<'a>, KeyRef<'a>, i64) -> Result<(), SnapshotError>,
    ) -> Result<(), SnapshotError> {
        // By key id: its newest window so far, and that window's start.
        let mut heads: Vec<(usize, i64)> = Vec::new();
        let mut opened = Vec::new();
        // A bucket takes 11 bytes at least, a window and a position 1.
        let buckets = r.count(labels.buckets, 11)?;
        let mut previous = None;
        for _ in 0..buckets {
            let offset = r.offset();
            let start = r.i64(labels.start)?;
            if self.start_of(Timestamp::from_nanos(start)) != start {
                return Err(corrupt(offset, labels.start, "not the start of a window"));
            }
            if previous.is_some_and(|p| p >= start) {
                return Err(corrupt(offset, labels.start, "not after the one before"));
            }
            previous = Some(start);
            let offset = r.offset();
            let n = r.count(labels.windows, 1)?;
            if n == 0 {
                return Err(corrupt(offset, labels.windows, "a bucket without windows"));
            }
            opened.clear();
            for _ in 0..n {
                let offset = r.offset();
                let k = r.index(labels.key, keys.len())?;
                let key = keys[k];
                let id = *ids[k].get_or_insert_with(|| self.keys.intern(key));
                if id >= heads.len() {
                    heads.resize(id + 1, (NONE, i64::MIN));
                }
                let (head, head_start) = heads[id];
                if head != NONE && head_start >= start {
                    return Err(corrupt(offset, labels.key, "the same window twice"));
                }
                let emitted = r.bool(labels.emitted)?;
                let (index, _) = self.windows.open(id, start, head, head_start);
                heads[id] = (index, start);
                opened.push(index);
                self.open += 1;
                let spare = &mut self.spare;
                let bucket = self
                    .buckets
                    .entry(start)
                    .or_insert_with(|| spare.pop().unwrap_or_default());
                bucket.windows.push(index);
                let Some(window) = self.windows.get_mut(index) else {
                    continue;
                };
                window.dirty = false;
                window.emitted = emitted;
                load(&mut window.aggregate, r, key, start)?;
            }
            let changed = r.count(labels.changed, 1)?;
            for _ in 0..changed {
                let offset = r.offset();
                let index = opened[r.index(labels.changed, opened.len())?];
                let Some(held) = self.windows.get_mut(index).filter(|w| !w.dirty) else {
                    return Err(corrupt(offset, labels.changed, "a window listed twice"));
                };
                held.dirty = true;
                if let Some(bucket) = self.buckets.get_mut(&start) {
                    bucket.dirty.push(index);
                }
            }
        }
        // What opening each key's windows would have done: the key is held
        // (once, for all its windows) and knows its newest.
        for (id, &(head, head_start)) in heads.iter().enumerate() {
            if head != NONE {
                self.keys.hold(id);
                self.keys.set_latest(id, head, head_start);
            }
        }
        Ok(())
    }

    /// The id of `key`, given one if it has none; nothing holds it yet.
    pub(crate) fn intern_key(&mut self, key: KeyRef<'_>) -> KeyId {
        self.keys.intern(key)
    }

    /// Makes room for `n` more keys.
    pub(crate) fn reserve_keys(&mut self, n: usize) {
        self.keys.reserve(n);
    }
}

fn emit<A: Aggregate>(
    measurements: &[Measurement; 3],
    keys: &Keys,
    windows: &mut Chains<A>,
    bucket: &mut Bucket,
    config: &WindowConfig,
    out: &mut impl Emit,
    stats: &mut WindowStats,
) {
    for index in bucket.dirty.drain(..) {
        let Some(window) = windows.get_mut(index) else {
            continue;
        };
        let Some(key) = keys.key(window.id) else {
            continue;
        };
        let measurement = &measurements[domain_index(key.domain)];
        out.emit(measurement, window.start, key, config, &window.aggregate);
        if window.emitted {
            stats.corrections += 1;
        }
        window.dirty = false;
        window.emitted = true;
        stats.points_emitted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::FieldValue;
    use crate::window::emit::Out;

    /// Counts readings; enough to watch the machinery.
    #[derive(Debug, Default)]
    struct Count(i64);

    impl Aggregate for Count {
        fn update(&mut self, _: &Reading) {
            self.0 += 1;
        }
    }

    impl Write for Count {
        fn write<O: Out>(&self, key: &WindowKey, _: &WindowConfig, out: &mut O) {
            out.tag("device", &key.device);
            out.integer("n", self.0);
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
