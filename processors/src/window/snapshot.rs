//! A binary image of the whole state of [`Windows`], for the checkpoint of the
//! write-ahead log: [`Windows::snapshot`] writes it, [`Windows::restore`]
//! rebuilds windows from it that behave exactly as the ones it was taken of.
//!
//! The image is logical: keys are written as text, fields by name, symbols
//! as their text, and the tables rebuilt as readings would build them; slab
//! slots, key ids, slot numbers and hints are not part of it, so an image
//! does not depend on the memory layout or the attribute table of the build
//! that wrote it. Version 1:
//!
//! ```text
//! header   magic "MDNWINDS", version u32 (1), body length u64
//! body     config   device_window_s u32, rollup_window_s u32,
//!                   allowed_lateness_s u32, max_open_windows u64,
//!                   full_threshold f64, fire_temperature_c f64
//!          clock    max_seen: flag, then i64
//!          stats    accepted, too_late, capacity_exceeded, corrections,
//!                   points_emitted: var each
//!          fields   n, n × (slot u8, name str, holds u8: number, symbol,
//!                   flag): the slots the windows below use
//!          keys     device keys, then rollup keys: n, n × (domain and
//!                   lane flag u8, commune str, device str, lane var);
//!                   numbered in the order the windows refer to them
//!          windows  device windows, then rollups: n buckets by ascending
//!                   start, each: start i64, m, m × window in the bucket's
//!                   order, then d, d × position of a window changed since
//!                   its last emission, in the order they will be emitted
//!            device window  key, emitted flag, count var, district
//!                   (flag, time, str), fields in output order: n u8,
//!                   n × (slot u8, time of `last`, figures: symbol str,
//!                   flag, or a number seen once (0, f64) or more (1, sum
//!                   f64, n var, min f64, max f64, last f64))
//!            rollup  key, emitted flag, members in the order they joined:
//!                   n, n × (device key, the figures of the domain, each
//!                   latest value as flag, time, value)
//! trailer  checksum u64 of header and body (see `checksum`)
//! ```
//!
//! Fixed-width numbers are little-endian; `var` (and every count, index and
//! length) is LEB128; a time is the zigzag LEB128 distance from the start of
//! its window (a field's from the field before), so it is short. `str` is a
//! length and UTF-8 bytes.
//!
//! Windows keep the order they have in their bucket, and the changed ones
//! the order they will be emitted in, so restored windows emit the same
//! points in the same order and forget windows in the same order; and they
//! write the same image again, byte for byte. Nothing is written in the order
//! of a hash map, so the same state always gives the same bytes.
//!
//! Restoring checks the image whole before reading anything: magic, version,
//! length, checksum; then the configuration it was made with (see
//! [`SnapshotError::ConfigMismatch`]), then every field. No input makes it
//! panic, loop, or allocate more than the image's size allows.

use schemas::Domain;

use super::key::AsKeyRef;
use super::keys::KeyId;
use super::slots::{self, Holds};
use super::table::{Aggregate, KeyRef, Labels, Table};
use super::{WindowConfig, WindowStats, Windows};

/// The first bytes of every image.
const MAGIC: [u8; 8] = *b"MDNWINDS";
/// The version of the image format this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Magic, version and body length.
const HEADER: usize = 8 + 4 + 8;
/// The checksum after the body.
const TRAILER: usize = 8;

/// Why an image could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a window snapshot.
    #[error("not a window snapshot: the image does not start with the magic bytes `MDNWINDS`")]
    BadMagic,
    /// A window snapshot in a format this build does not read.
    #[error(
        "window snapshot version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version of the image.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The image is shorter than its header says.
    #[error("window snapshot truncated: {expected} bytes expected, {actual} present")]
    Truncated {
        /// The length the header announces (or the least a header needs).
        expected: u64,
        /// The bytes present.
        actual: u64,
    },
    /// The image is longer than its header says.
    #[error("window snapshot has {extra} bytes after its end")]
    TrailingBytes {
        /// The bytes after the image.
        extra: u64,
    },
    /// The bytes were changed after the image was written.
    #[error("window snapshot checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")]
    Checksum {
        /// The checksum the image carries.
        stored: u64,
        /// The checksum of the bytes present.
        computed: u64,
    },
    /// The image is intact but a field in it cannot be.
    #[error("window snapshot corrupt at byte {offset}, in `{field}`: {problem}")]
    Corrupt {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
        /// Where in the image the field starts.
        offset: usize,
    },
    /// The image was made with another configuration: its windows are cut or
    /// judged otherwise than the configured ones would be. Only the first key
    /// that differs is named. `max_open_windows` is recorded but may differ.
    #[error("window snapshot was made with `{key}` = {image}, but `{key}` is configured as {configured}")]
    ConfigMismatch {
        /// The configuration key.
        key: &'static str,
        /// Its value when the image was made.
        image: String,
        /// Its value now.
        configured: String,
    },
}

/// An error about the field that starts at `offset` in the image.
pub(crate) fn corrupt(offset: usize, field: &'static str, problem: &'static str) -> SnapshotError {
    SnapshotError::Corrupt {
        field,
        problem,
        offset,
    }
}

/// Writes the fields of an image.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    /// An unsigned number in LEB128: seven bits a byte, low first.
    pub(crate) fn var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// A count or an index.
    pub(crate) fn len(&mut self, v: usize) {
        self.var(v as u64);
    }

    /// A signed number, zigzag-encoded so that small ones are short.
    pub(crate) fn zig(&mut self, v: i64) {
        self.var(((v << 1) ^ (v >> 63)) as u64);
    }

    /// An event time, as its distance from `base` (the start of its window,
    /// or a time written before): short, as times in a window are close.
    pub(crate) fn time(&mut self, t: i64, base: i64) {
        self.zig(t.wrapping_sub(base));
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.len(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }
}

/// Reads the fields of an image, naming the field whatever goes wrong.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Where `bytes` starts in the image, for the offsets of errors.
    base: usize,
}

impl<'a> Reader<'a> {
    /// Where the next field starts in the image.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.at
    }

    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], SnapshotError> {
        let bytes = self
            .bytes
            .get(self.at..)
            .and_then(|rest| rest.first_chunk::<N>())
            .ok_or_else(|| corrupt(self.offset(), field, "the image ends inside it"))?;
        self.at += N;
        Ok(*bytes)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, SnapshotError> {
        let offset = self.offset();
        let b = self.bytes.get(self.at).copied();
        let b = b.ok_or_else(|| corrupt(offset, field, "the image ends inside it"))?;
        self.at += 1;
        Ok(b)
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, SnapshotError> {
        let offset = self.offset();
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt(offset, field, "a flag other than 0 or 1")),
        }
    }

    pub(crate) fn var(&mut self, field: &'static str) -> Result<u64, SnapshotError> {
        let offset = self.offset();
        let mut v = 0_u64;
        let mut shift = 0;
        loop {
            let b = self.u8(field)?;
            if shift == 63 && b > 1 {
                return Err(corrupt(offset, field, "a number too large"));
            }
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    pub(crate) fn zig(&mut self, field: &'static str) -> Result<i64, SnapshotError> {
        let v = self.var(field)?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// What [`Writer::time`] wrote.
    pub(crate) fn time(&mut self, field: &'static str, base: i64) -> Result<i64, SnapshotError> {
        Ok(base.wrapping_add(self.zig(field)?))
    }

    /// A count of things that take at least `least` bytes each: more than
    /// the rest of the image can hold is an error, so that no count in a bad
    /// image makes a reader allocate or loop for nothing.
    pub(crate) fn count(
        &mut self,
        field: &'static str,
        least: usize,
    ) -> Result<usize, SnapshotError> {
        let offset = self.offset();
        let n = usize::try_from(self.var(field)?).unwrap_or(usize::MAX);
        let rest = self.bytes.len().saturating_sub(self.at);
        if n.saturating_mul(least.max(1)) > rest {
            return Err(corrupt(offset, field, "more than the image can hold"));
        }
        Ok(n)
    }

    /// An index below `bound`.
    pub(crate) fn index(
        &mut self,
        field: &'static str,
        bound: usize,
    ) -> Result<usize, SnapshotError> {
        let offset = self.offset();
        let i = usize::try_from(self.var(field)?).unwrap_or(usize::MAX);
        if i >= bound {
            return Err(corrupt(offset, field, "refers past the end of its table"));
        }
        Ok(i)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, SnapshotError> {
        self.take(field).map(u64::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, SnapshotError> {
        self.take(field).map(u32::from_le_bytes)
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, SnapshotError> {
        self.take(field).map(i64::from_le_bytes)
    }

    pub(crate) fn f64(&mut self, field: &'static str) -> Result<f64, SnapshotError> {
        self.u64(field).map(f64::from_bits)
    }

    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, SnapshotError> {
        let offset = self.offset();
        let len = self.count(field, 1)?;
        let bytes = &self.bytes[self.at..self.at + len];
        self.at += len;
        std::str::from_utf8(bytes).map_err(|_| corrupt(offset, field, "text that is not UTF-8"))
    }

    /// A value present or not: a flag, then the value if present.
    pub(crate) fn option<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(&mut Self) -> Result<T, SnapshotError>,
    ) -> Result<Option<T>, SnapshotError> {
        if self.bool(field)? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// How the image writes a domain; not `Domain as u8`, so that reordering the
/// enum does not change the format.
fn domain_code(d: Domain) -> u8 {
    match d {
        Domain::Lighting => 0,
        Domain::Waste => 1,
        Domain::Traffic => 2,
    }
}

/// Odd multipliers of the checksum's four lanes.
const MIX: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0x85EB_CA77_C2B2_AE63,
];

/// One step of a lane: a bijection of the lane for any word, and injective
/// in the word for any lane.
fn mix(lane: u64, word: u64, k: u64) -> u64 {
    (lane ^ word).wrapping_mul(k).rotate_left(29)
}

/// The checksum of an image: 8-byte words fed to four lanes in turn (the
/// tail, zero-padded, to the first), then the lanes and the length folded
/// together. Every step is a bijection of the state, so any change confined
/// to one aligned 8-byte word (any single byte, for one) always changes the
/// result; other changes go unseen with a chance of about 2⁻⁶⁴. Four
/// independent lanes make it several times faster than a table-driven
/// CRC-32. It is part of the format: changing it needs a new version.
fn checksum(bytes: &[u8]) -> u64 {
    let mut lanes = MIX;
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (i, word) in block.chunks_exact(8).enumerate() {
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            lanes[i] = mix(lanes[i], word, MIX[i]);
        }
    }
    for tail in blocks.remainder().chunks(8) {
        let mut word = [0; 8];
        word[..tail.len()].copy_from_slice(tail);
        lanes[0] = mix(lanes[0], u64::from_le_bytes(word), MIX[0]);
    }
    let mut h = bytes.len() as u64;
    for (lane, k) in lanes.into_iter().zip(MIX) {
        h = mix(h, lane, k);
    }
    h ^ (h >> 32)
}

/// Checks magic, version, length and checksum; returns the body.
fn open(image: &[u8]) -> Result<&[u8], SnapshotError> {
    let actual = image.len() as u64;
    let Some(magic) = image.first_chunk::<8>() else {
        return Err(if MAGIC.starts_with(image) {
            SnapshotError::Truncated {
                expected: (HEADER + TRAILER) as u64,
                actual,
            }
        } else {
            SnapshotError::BadMagic
        });
    };
    if *magic != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let Some(header) = image.first_chunk::<HEADER>() else {
        return Err(SnapshotError::Truncated {
            expected: (HEADER + TRAILER) as u64,
            actual,
        });
    };
    let (_, rest) = header.split_at(8);
    let (version, len) = rest.split_at(4);
    let version = u32::from_le_bytes(version.try_into().unwrap_or_default());
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            found: version,
            supported: SNAPSHOT_VERSION,
        });
    }
    let body_len = u64::from_le_bytes(len.try_into().unwrap_or_default());
    let expected = body_len.saturating_add((HEADER + TRAILER) as u64);
    if actual < expected {
        return Err(SnapshotError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(SnapshotError::TrailingBytes {
            extra: actual - expected,
        });
    }
    let (checked, trailer) = image.split_at(image.len() - TRAILER);
    let stored = u64::from_le_bytes(trailer.try_into().unwrap_or_default());
    let computed = checksum(checked);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    Ok(&checked[HEADER..])
}

fn write_config(w: &mut Writer<'_>, c: &WindowConfig) {
    w.u32(c.device_window_s);
    w.u32(c.rollup_window_s);
    w.u32(c.allowed_lateness_s);
    w.u64(c.max_open_windows as u64);
    w.f64(c.full_threshold);
    w.f64(c.fire_temperature_c);
}

/// Checks the configuration an image was made with against `c`.
fn check_config(r: &mut Reader<'_>, c: &WindowConfig) -> Result<(), SnapshotError> {
    fn mismatch(key: &'static str, image: String, configured: String) -> SnapshotError {
        SnapshotError::ConfigMismatch {
            key,
            image,
            configured,
        }
    }
    for (key, configured) in [
        ("device_window_s", c.device_window_s),
        ("rollup_window_s", c.rollup_window_s),
        ("allowed_lateness_s", c.allowed_lateness_s),
    ] {
        let image = r.u32(key)?;
        if image != configured {
            return Err(mismatch(key, image.to_string(), configured.to_string()));
        }
    }
    // Bounds memory only: a restart may change it (an image holding more
    // windows than it allows opens no more until the watermark closes some).
    r.u64("max_open_windows")?;
    for (key, configured) in [
        ("full_threshold", c.full_threshold),
        ("fire_temperature_c", c.fire_temperature_c),
    ] {
        let image = r.f64(key)?;
        if image.to_bits() != configured.to_bits() && image != configured {
            return Err(mismatch(key, image.to_string(), configured.to_string()));
        }
    }
    Ok(())
}

/// Numbers the keys an image refers to, in the order it first refers to
/// them.
#[derive(Debug, Default)]
struct KeyNumbers {
    /// By key id: the key's number plus one, or 0.
    by_id: Vec<u32>,
    /// Key ids by number.
    ids: Vec<KeyId>,
}

impl KeyNumbers {
    /// Gives key `id` a number if it has none.
    fn add(&mut self, id: KeyId) {
        if id >= self.by_id.len() {
            self.by_id.resize(id + 1, 0);
        }
        if self.by_id[id] == 0 {
            self.ids.push(id);
            self.by_id[id] = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        }
    }

    /// The number of key `id`, given by [`KeyNumbers::add`].
    fn get(&self, id: KeyId) -> u32 {
        self.by_id.get(id).map_or(u32::MAX, |n| n.wrapping_sub(1))
    }

    /// Writes the keys by number.
    fn write<A: Aggregate>(&self, w: &mut Writer<'_>, table: &Table<A>) {
        w.len(self.ids.len());
        for &id in &self.ids {
            // A window or member holds its key, so every key is there.
            let key = table.key(id).map(AsKeyRef::key_ref);
            let key = key.unwrap_or(KeyRef {
                domain: Domain::Lighting,
                commune: "",
                device: "",
                lane: None,
            });
            w.u8(domain_code(key.domain) | u8::from(key.lane.is_some()) << 2);
            w.str(key.commune);
            w.str(key.device);
            if let Some(lane) = key.lane {
                w.var(u64::from(lane));
            }
        }
    }
}

/// Reads a table of keys, as [`KeyNumbers::write`] wrote it.
fn read_keys<'a>(r: &mut Reader<'a>, what: &'static str) -> Result<Vec<KeyRef<'a>>, SnapshotError> {
    // A tag and two empty texts: three bytes at least.
    let n = r.count(what, 3)?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = r.offset();
        let tag = r.u8(what)?;
        let domain = Domain::ALL
            .into_iter()
            .find(|&d| domain_code(d) == tag & 0b11)
            .filter(|_| tag >> 3 == 0)
            .ok_or_else(|| corrupt(offset, what, "not a domain and lane flag"))?;
        let commune = r.str(what)?;
        let device = r.str(what)?;
        let lane = if tag & 0b100 == 0 {
            None
        } else {
            let offset = r.offset();
            let lane = u32::try_from(r.var(what)?);
            Some(lane.map_err(|_| corrupt(offset, what, "a lane too large"))?)
        };
        keys.push(KeyRef {
            domain,
            commune,
            device,
            lane,
        });
    }
    Ok(keys)
}

/// By slot in an image: the slot of the same field in this build.
pub(crate) type SlotMap = [Option<u8>; 256];

fn hold_code(h: Holds) -> u8 {
    match h {
        Holds::Number => 0,
        Holds::Symbol => 1,
        Holds::Flag => 2,
    }
}

/// Writes the fields a device window may have: slot, name, what it holds.
fn write_slots(w: &mut Writer<'_>) {
    w.len(slots::all().count());
    for (slot, name, holds) in slots::all() {
        w.u8(slot as u8);
        w.str(name);
        w.u8(hold_code(holds));
    }
}

/// Reads what [`write_slots`] wrote. A field this build does not know (or
/// knows as another type) is left out: a window that has one is refused.
fn read_slots(r: &mut Reader<'_>) -> Result<SlotMap, SnapshotError> {
    const FIELD: &str = "table of fields";
    let mut map = [None; 256];
    let mut seen = [false; 256];
    let n = r.count(FIELD, 3)?;
    for _ in 0..n {
        let offset = r.offset();
        let slot = usize::from(r.u8(FIELD)?);
        let name = r.str(FIELD)?;
        let code = r.u8(FIELD)?;
        if std::mem::replace(&mut seen[slot], true) {
            return Err(corrupt(offset, FIELD, "the same slot twice"));
        }
        let holds = [Holds::Number, Holds::Symbol, Holds::Flag]
            .into_iter()
            .find(|&h| hold_code(h) == code);
        map[slot] = holds
            .and_then(|h| slots::by_name(name, h))
            .and_then(|s| u8::try_from(s).ok());
    }
    Ok(map)
}

const DEVICE_LABELS: Labels = Labels {
    buckets: "device buckets",
    start: "device bucket start",
    windows: "device windows",
    key: "device window key",
    emitted: "device window emitted",
    changed: "device windows changed",
};

const ROLLUP_LABELS: Labels = Labels {
    buckets: "rollup buckets",
    start: "rollup bucket start",
    windows: "rollups",
    key: "rollup key",
    emitted: "rollup emitted",
    changed: "rollups changed",
};

impl Windows {
    /// Appends a self-contained, versioned binary image of the whole state to
    /// `out`: the configuration it was made with, the highest event time
    /// seen, the counters of [`WindowStats`], and every window held with its
    /// figures, the members of every rollup, and whether each window was
    /// emitted already and has changed since. The same state always gives
    /// the same bytes. See [`Windows::restore`] and [`SNAPSHOT_VERSION`].
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        let begin = out.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&0_u64.to_le_bytes());
        let body = out.len();
        let mut w = Writer { out };
        write_config(&mut w, &self.config);
        w.bool(self.clock.max_seen.is_some());
        if let Some(t) = self.clock.max_seen {
            w.i64(t);
        }
        let s = &self.stats;
        for counter in [
            s.accepted,
            s.too_late,
            s.capacity_exceeded,
            s.corrections,
            s.points_emitted,
        ] {
            w.var(counter);
        }
        write_slots(&mut w);
        // The keys, numbered in the order the windows refer to them, then
        // the windows.
        let (mut devices, mut rollups) = (KeyNumbers::default(), KeyNumbers::default());
        self.devices
            .for_each_window(|window| devices.add(window.id));
        self.rollups.for_each_window(|window| {
            rollups.add(window.id);
            for id in window.aggregate.member_ids() {
                devices.add(id);
            }
        });
        devices.write(&mut w, &self.devices);
        rollups.write(&mut w, &self.rollups);
        self.devices.write(&mut w, |w, start, window| {
            w.len(devices.get(window.id) as usize);
            w.bool(window.emitted);
            window.aggregate.save(w, start);
        });
        self.rollups.write(&mut w, |w, start, window| {
            w.len(rollups.get(window.id) as usize);
            w.bool(window.emitted);
            window.aggregate.save(w, start, |id| devices.get(id));
        });
        let len = (out.len() - body) as u64;
        out[body - 8..body].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(&out[begin..]);
        out.extend_from_slice(&sum.to_le_bytes());
    }

    /// Rebuilds windows from an image made by [`Windows::snapshot`] with the
    /// same configuration (`max_open_windows` aside). The windows restored
    /// behave exactly as those the image was taken of: fed the same readings,
    /// they emit the same points in the same order, count on from the same
    /// counters and write the same image.
    ///
    /// Any input gives an error rather than a panic: an image cut short or
    /// altered, of another version, or made with another configuration
    /// ([`SnapshotError::ConfigMismatch`] names the key).
    pub fn restore(config: WindowConfig, image: &[u8]) -> Result<Windows, SnapshotError> {
        let body = open(image)?;
        let mut r = Reader {
            bytes: body,
            at: 0,
            base: HEADER,
        };
        check_config(&mut r, &config)?;
        let mut windows = Windows::new(config);
        windows.clock.max_seen = r.option("max_seen", |r| r.i64("max_seen"))?;
        windows.stats = WindowStats {
            open_windows: 0,
            accepted: r.var("accepted")?,
            too_late: r.var("too_late")?,
            capacity_exceeded: r.var("capacity_exceeded")?,
            corrections: r.var("corrections")?,
            points_emitted: r.var("points_emitted")?,
        };
        let slots = read_slots(&mut r)?;
        let device_keys = read_keys(&mut r, "device keys")?;
        let offset = r.offset();
        let rollup_keys = read_keys(&mut r, "rollup keys")?;
        if rollup_keys
            .iter()
            .any(|k| !k.device.is_empty() || k.lane.is_some())
        {
            return Err(corrupt(
                offset,
                "rollup keys",
                "a rollup key with a device or lane",
            ));
        }
        let mut device_ids = vec![None; device_keys.len()];
        let mut rollup_ids = vec![None; rollup_keys.len()];
        let Windows {
            devices, rollups, ..
        } = &mut windows;
        devices.reserve_keys(device_keys.len());
        devices.read(
            &mut r,
            DEVICE_LABELS,
            &device_keys,
            &mut device_ids,
            |window, r, key, start| window.load(r, key.domain, start, &slots),
        )?;
        rollups.read(
            &mut r,
            ROLLUP_LABELS,
            &rollup_keys,
            &mut rollup_ids,
            |rollup, r, key, start| {
                rollup.load(r, key, start, &device_keys, &mut device_ids, devices)
            },
        )?;
        if r.at != r.bytes.len() {
            return Err(corrupt(
                r.offset(),
                "end of image",
                "bytes after the last rollup",
            ));
        }
        Ok(windows)
    }
}

#[cfg(test)]
mod tests {
    use schemas::{Attribute, Reading, Timestamp, Value};

    use super::*;

    fn reading(domain: Domain, device: &str, secs: i64) -> Reading {
        let commune = if device.ends_with('2') {
            "sale"
        } else {
            "rabat"
        };
        let mut r = Reading::new(domain, commune, device, Timestamp::from_secs(secs));
        let v = &mut r.values;
        match domain {
            Domain::Lighting => {
                v.set(Attribute::PowerState, Value::Symbol("bootingUp"));
                v.set(Attribute::LampStatus, Value::Symbol("ok"));
                v.set(Attribute::PowerConsumption, Value::Number(secs as f64));
            }
            Domain::Waste => {
                r.district = Some("agdal".into());
                v.set(Attribute::FillingLevel, Value::Number(0.5));
                v.set(Attribute::Temperature, Value::Number(80.0));
                v.set(Attribute::WasteStatus, Value::Symbol("lidOpen"));
            }
            Domain::Traffic => {
                r.lane = Some(2);
                r.period_s = Some(60);
                v.set(Attribute::Intensity, Value::Number(12.0));
                v.set(Attribute::AverageVehicleSpeed, Value::Number(48.0));
                v.set(Attribute::Congested, Value::Bool(true));
            }
        }
        r
    }

    /// Windows of every kind, emitted and not, corrected, with readings too
    /// late and over the cap counted.
    fn busy() -> Windows {
        let mut w = Windows::new(WindowConfig {
            max_open_windows: 20,
            ..WindowConfig::default()
        });
        let mut out = Vec::new();
        for secs in [10, 70, 130, 30, 400, 20, 500, 1_000, 5, 950] {
            for domain in Domain::ALL {
                for device in ["d-1", "d-2"] {
                    w.record(&reading(domain, device, secs));
                }
            }
            w.drain(&mut out);
        }
        w.flush_all(&mut out);
        w.record(&reading(Domain::Lighting, "d-1", 990));
        let stats = w.stats();
        assert!(
            stats.corrections > 0 && stats.too_late > 0 && stats.capacity_exceeded > 0,
            "{stats:?}"
        );
        w
    }

    fn image(w: &Windows) -> Vec<u8> {
        let mut out = Vec::new();
        w.snapshot(&mut out);
        out
    }

    /// Puts back a body length and checksum that fit the bytes.
    fn reseal(image: &mut Vec<u8>) {
        image.truncate(image.len() - TRAILER);
        let len = (image.len() - HEADER) as u64;
        image[HEADER - 8..HEADER].copy_from_slice(&len.to_le_bytes());
        let sum = checksum(image);
        image.extend_from_slice(&sum.to_le_bytes());
    }

    /// Windows restored from a damaged image must still be windows: they
    /// write an image that restores to the same, take readings, emit, and
    /// forget every key with the last window that holds it.
    fn still_consistent(mut w: Windows) {
        let again = image(&w);
        let restored = Windows::restore(w.config().clone(), &again).expect("restores");
        assert_eq!(image(&restored), again);
        for domain in Domain::ALL {
            w.record(&reading(domain, "d-1", 1_000));
        }
        let mut out = Vec::new();
        w.drain(&mut out);
        w.flush_all(&mut out);
        w.advance(Timestamp::from_nanos(i64::MAX));
        w.drain(&mut out);
        if w.stats().open_windows == 0 {
            assert_eq!((w.devices.held_keys(), w.rollups.held_keys()), (0, 0));
        }
    }

    #[test]
    fn checksum_sees_every_changed_byte_and_stays_the_same() {
        // Part of the format: images written before must still check.
        assert_eq!(checksum(b""), 0x24CB_484E_56D9_2E0C);
        assert_eq!(checksum(b"123456789"), 0x0DBB_5FFA_1E19_837B);
        let bytes: Vec<u8> = (0..=255).cycle().take(1_003).collect();
        let sum = checksum(&bytes);
        for at in 0..bytes.len() {
            for xor in [0x01, 0x80, 0xFF] {
                let mut changed = bytes.clone();
                changed[at] ^= xor;
                assert_ne!(checksum(&changed), sum, "byte {at} ^ {xor:#x}");
            }
        }
        assert_ne!(checksum(&bytes[..1_002]), sum);
        assert_ne!(checksum(&[bytes.as_slice(), &[0]].concat()), sum);
    }

    #[test]
    fn a_busy_state_round_trips() {
        let w = busy();
        let first = image(&w);
        let restored = Windows::restore(w.config().clone(), &first).expect("restores");
        assert_eq!(image(&restored), first);
        assert_eq!(restored.stats(), w.stats());
        assert_eq!(
            (restored.devices.held_keys(), restored.rollups.held_keys()),
            (w.devices.held_keys(), w.rollups.held_keys())
        );
    }

    /// Every byte of the body changed, the checksum made to fit: an error
    /// naming a field, or windows that are still consistent; never a panic.
    #[test]
    fn altered_fields_are_refused_or_harmless() {
        let good = image(&busy());
        let config = busy().config().clone();
        let (mut refused, mut accepted) = (0, 0);
        for at in HEADER..good.len() - TRAILER {
            for xor in [0x01, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[at] ^= xor;
                reseal(&mut bad);
                match Windows::restore(config.clone(), &bad) {
                    Ok(w) => {
                        accepted += 1;
                        still_consistent(w);
                    }
                    Err(SnapshotError::Corrupt { offset, .. }) => {
                        assert!((HEADER..good.len()).contains(&offset), "{offset}");
                        refused += 1;
                    }
                    Err(SnapshotError::ConfigMismatch { .. }) => refused += 1,
                    Err(e) => panic!("byte {at}: {e}"),
                }
            }
        }
        assert!(
            refused > 0 && accepted > 0,
            "{refused} refused, {accepted} accepted"
        );
    }

    /// The body cut anywhere, length and checksum made to fit.
    #[test]
    fn bodies_cut_short_are_refused() {
        let good = image(&busy());
        let config = busy().config().clone();
        for len in HEADER..good.len() - TRAILER {
            let mut bad = good[..len].to_vec();
            bad.extend_from_slice(&[0; TRAILER]);
            reseal(&mut bad);
            let got = Windows::restore(config.clone(), &bad);
            assert!(
                matches!(got, Err(SnapshotError::Corrupt { .. })),
                "cut at {len}: {:?}",
                got.map(|_| ())
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let good = image(&busy());
        let config = busy().config().clone();
        // Device windows come before rollups: the first "bootingUp" is the
        // last power state of a lamp's window.
        let at = good
            .windows(9)
            .position(|w| w == b"bootingUp")
            .expect("a power state");
        let mut bad = good.clone();
        bad[at + 7] = b'X';
        reseal(&mut bad);
        let err = Windows::restore(config.clone(), &bad)
            .map(|_| ())
            .expect_err("an unknown symbol");
        assert!(
            matches!(
                err,
                SnapshotError::Corrupt {
                    field: "device window field figures",
                    problem: "not a value the field takes",
                    offset,
                } if offset == at - 1
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("device window field figures"),
            "{err}"
        );
        let mut bad = good;
        bad.truncate(bad.len() - TRAILER);
        bad.push(0);
        bad.extend_from_slice(&[0; TRAILER]);
        reseal(&mut bad);
        let err = Windows::restore(config, &bad)
            .map(|_| ())
            .expect_err("a byte too many");
        assert!(err.to_string().contains("end of image"), "{err}");
    }
}
