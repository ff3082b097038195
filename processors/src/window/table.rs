//! The machinery every kind of window shares: keys looked up by borrowed parts,
//! epoch-aligned buckets of windows, and the emit / forget cycle driven by the
//! highest event time seen and the watermark.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use schemas::{Domain, Reading, Timestamp};

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

/// Which series a window belongs to. Commune rollups leave `device` empty and
/// `lane` unset.
#[derive(Debug, Clone)]
pub(crate) struct WindowKey {
    pub(crate) domain: Domain,
    pub(crate) commune: Box<str>,
    pub(crate) device: Box<str>,
    pub(crate) lane: Option<u32>,
}

/// A key made of borrowed parts, to look a window up without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyRef<'a> {
    pub(crate) domain: Domain,
    pub(crate) commune: &'a str,
    pub(crate) device: &'a str,
    pub(crate) lane: Option<u32>,
}

impl KeyRef<'_> {
    fn to_owned_key(self) -> WindowKey {
        WindowKey {
            domain: self.domain,
            commune: self.commune.into(),
            device: self.device.into(),
            lane: self.lane,
        }
    }
}

/// Both key forms seen as the same thing, so that a `HashMap<WindowKey, _>`
/// answers lookups by a [`KeyRef`].
pub(crate) trait AsKeyRef {
    fn key_ref(&self) -> KeyRef<'_>;
}

impl AsKeyRef for WindowKey {
    fn key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            domain: self.domain,
            commune: &self.commune,
            device: &self.device,
            lane: self.lane,
        }
    }
}

impl AsKeyRef for KeyRef<'_> {
    fn key_ref(&self) -> KeyRef<'_> {
        *self
    }
}

impl<'a> Borrow<dyn AsKeyRef + 'a> for WindowKey {
    fn borrow(&self) -> &(dyn AsKeyRef + 'a) {
        self
    }
}

impl Hash for dyn AsKeyRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash(state);
    }
}

impl PartialEq for dyn AsKeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key_ref() == other.key_ref()
    }
}

impl Eq for dyn AsKeyRef + '_ {}

// Must hash exactly as `dyn AsKeyRef` does, which `Borrow` requires.
impl Hash for WindowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key_ref().hash(state);
    }
}

impl PartialEq for WindowKey {
    fn eq(&self, other: &Self) -> bool {
        self.key_ref() == other.key_ref()
    }
}

impl Eq for WindowKey {}

#[derive(Debug)]
struct Slot<A> {
    key: WindowKey,
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
    index: HashMap<WindowKey, usize>,
    slots: Vec<Slot<A>>,
    /// Slots with `dirty` set, each once.
    dirty: Vec<usize>,
}

impl<A> Default for Bucket<A> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            dirty: Vec::new(),
        }
    }
}

/// A window found by [`Table::find`]: its bucket start and slot, if it exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    start: i64,
    slot: Option<usize>,
}

impl Found {
    pub(crate) fn exists(self) -> bool {
        self.slot.is_some()
    }
}

/// Tumbling windows of one width, aligned to the epoch.
#[derive(Debug)]
pub(crate) struct Table<A> {
    width_ns: i64,
    /// Measurement per domain, in [`Domain::ALL`] order.
    measurements: [Cow<'static, str>; 3],
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
            buckets: BTreeMap::new(),
            open: 0,
        }
    }

    /// How many windows are held.
    pub(crate) fn open(&self) -> usize {
        self.open
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
        let slot = self
            .buckets
            .get(&start)
            .and_then(|b| b.index.get(&key as &dyn AsKeyRef).copied());
        Found { start, slot }
    }

    /// Folds a reading into the window `found` (opening it when it does not exist).
    pub(crate) fn merge(&mut self, found: Found, key: KeyRef<'_>, reading: &Reading) {
        let bucket = self.buckets.entry(found.start).or_default();
        let index = match found.slot {
            Some(index) if index < bucket.slots.len() => index,
            _ => {
                let index = bucket.slots.len();
                let key = key.to_owned_key();
                bucket.index.insert(key.clone(), index);
                bucket.slots.push(Slot {
                    key,
                    aggregate: A::default(),
                    dirty: false,
                    emitted: false,
                });
                self.open += 1;
                index
            }
        };
        if let Some(slot) = bucket.slots.get_mut(index) {
            slot.aggregate.update(reading);
            if !slot.dirty {
                slot.dirty = true;
                bucket.dirty.push(index);
            }
        }
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
        let width = self.width_ns;
        for (&start, bucket) in &mut self.buckets {
            if start.saturating_add(width) > max_seen {
                break;
            }
            emit(&self.measurements, start, bucket, config, out, stats);
        }
        while let Some(entry) = self.buckets.first_entry() {
            if entry.key().saturating_add(width) > watermark {
                break;
            }
            self.open = self.open.saturating_sub(entry.remove().slots.len());
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
            emit(&self.measurements, start, bucket, config, out, stats);
        }
    }
}

fn emit<A: Aggregate>(
    measurements: &[Cow<'static, str>; 3],
    start: i64,
    bucket: &mut Bucket<A>,
    config: &WindowConfig,
    out: &mut Vec<Point>,
    stats: &mut WindowStats,
) {
    for index in bucket.dirty.drain(..) {
        let Some(slot) = bucket.slots.get_mut(index) else {
            continue;
        };
        let measurement = measurements[domain_index(slot.key.domain)].clone();
        let mut point = Point::new(measurement, Timestamp::from_nanos(start));
        slot.aggregate.write(&slot.key, config, &mut point);
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
