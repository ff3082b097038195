//! Names known ahead of time: tag and field keys escaped once, written by
//! copying bytes, and checked for duplicates with a bit each.
//!
//! A [`KeySet`] is made once (per process, typically) from a list of names.
//! Each name becomes a [`PreparedKey`]: its written form (escaped, with the
//! `=` after it) and the filter bits of the duplicate-key check are computed
//! then, not per line. Names of one set with the same written form share one
//! bit, and distinct written forms have distinct bits (the first
//! [`MASK_BITS`] of them), so while a line holds only keys of one set, two keys
//! are the same exactly when their bits are: the check is one `and`.
//!
//! The `prepared_*` methods of [`LineBuilder`] write exactly the bytes, and
//! fail with exactly the errors, of the methods taking a `&str`: a name that
//! cannot be written (empty, or ending with a backslash) is kept as text and
//! goes through the general path, which reports it.

use std::sync::atomic::{AtomicU64, Ordering};

use super::builder::{no_trailing_backslash, Fields, LineBuilder, LineWriter, State, Tags};
use super::error::{EncodeError, Part};
use super::stage::BLOCK;
use super::{escape, number, scan};

/// How many distinct written forms of a set get a bit of their own.
pub const MASK_BITS: usize = 128;

/// Set number of a line that holds no key yet.
pub(super) const NO_SET: u64 = 0;
/// Set number of a line whose keys are checked with the Bloom filter only.
pub(super) const MIXED: u64 = u64::MAX;

/// Numbers sets, so a key's bit is only compared with bits of its own set.
static NEXT_SET: AtomicU64 = AtomicU64::new(1);

/// A tag or field key prepared once; see the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct PreparedKey {
    text: Box<str>,
    /// The escaped key followed by `=`; `None` when the name is unwritable.
    written: Option<Box<[u8]>>,
    /// The two Bloom filter bits of the written key, as word and mask.
    bloom: [(usize, u64); 2],
    /// Its bit in the set, or 0 when the set has run out of bits.
    bit: u128,
    set: u64,
    /// The written key and `=`, padded, and its length; 0 when it does not
    /// fit or the name is unwritable.
    block: [u8; BLOCK],
    block_len: u8,
}

impl PreparedKey {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The written key and `=` as one padded block, and its length.
    #[inline]
    pub(super) fn block(&self) -> Option<(&[u8; BLOCK], usize)> {
        (self.block_len != 0).then_some((&self.block, usize::from(self.block_len)))
    }

    #[inline]
    pub(super) fn bit(&self) -> u128 {
        self.bit
    }

    #[inline]
    pub(super) fn set(&self) -> u64 {
        self.set
    }
}

/// Keys of one set written one after the other, as fields of one line,
/// checked for duplicates at once: [`Stage`](super::Stage) takes them with
/// one test of their bits instead of one per key.
#[derive(Debug)]
pub(crate) struct KeyRun<const N: usize> {
    keys: &'static [PreparedKey; N],
    /// Their bits together; 0 when they cannot be checked at once (a key
    /// without a bit or a block, two keys of the same written form).
    bits: u128,
    set: u64,
}

impl<const N: usize> KeyRun<N> {
    pub(crate) fn new(keys: &'static [PreparedKey; N]) -> Self {
        let set = keys.first().map_or(NO_SET, |k| k.set);
        let bits = keys.iter().fold(0, |bits, k| bits | k.bit);
        let apart = keys
            .iter()
            .all(|k| k.bit != 0 && k.set == set && k.block().is_some())
            && bits.count_ones() as usize == N;
        Self {
            keys,
            bits: if apart { bits } else { 0 },
            set,
        }
    }

    /// The keys, in the order they are written.
    #[inline]
    pub(crate) fn keys(&self) -> &'static [PreparedKey; N] {
        self.keys
    }

    #[inline]
    pub(super) fn bits(&self) -> u128 {
        self.bits
    }

    #[inline]
    pub(super) fn set(&self) -> u64 {
        self.set
    }
}

/// Names prepared together; see the [module](self) documentation.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<PreparedKey>,
}

impl KeySet {
    /// Prepares `names`; the keys are in the same order.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let set = NEXT_SET.fetch_add(1, Ordering::Relaxed);
        let mut keys: Vec<PreparedKey> = Vec::new();
        let mut distinct = 0;
        for name in names {
            let writable = !name.is_empty() && !name.ends_with('\\');
            let mut written = Vec::with_capacity(name.len() + 1);
            escape::name(&mut written, name, escape::KEY);
            let bits = scan::bloom_bits(&written);
            let shared = keys
                .iter()
                .find(|k| {
                    k.written
                        .as_deref()
                        .is_some_and(|w| w[..w.len() - 1] == written)
                })
                .map(|k| k.bit);
            let bit = match shared {
                Some(bit) => bit,
                None if writable => {
                    let bit = if distinct < MASK_BITS {
                        1 << distinct
                    } else {
                        0
                    };
                    distinct += 1;
                    bit
                }
                None => 0,
            };
            written.push(b'=');
            let mut block = [0; BLOCK];
            let block_len = match block.get_mut(..written.len()) {
                Some(room) if writable => {
                    room.copy_from_slice(&written);
                    written.len() as u8
                }
                _ => 0,
            };
            keys.push(PreparedKey {
                text: name.into(),
                written: writable.then(|| written.into_boxed_slice()),
                bloom: bits.map(|bit| (bit >> 6, 1 << (bit & 63))),
                bit,
                set,
                block,
                block_len,
            });
        }
        Self { keys }
    }

    /// The keys, in the order of the names given.
    pub fn keys(&self) -> &[PreparedKey] {
        &self.keys
    }
}

impl LineWriter<'_> {
    /// Writes a prepared key (already known writable) and its `=`; fails if
    /// the line has it. The separator before the key is already written.
    #[inline]
    fn prepared_key(&mut self, key: &PreparedKey, written: &[u8]) -> Result<(), EncodeError> {
        let start = self.buf.len();
        self.buf.extend_from_slice(written);
        let seen = &mut self.seen;
        if key.bit != 0 && (self.set == key.set || self.set == NO_SET) {
            if self.mask & key.bit != 0 {
                return Err(EncodeError::DuplicateKey(key.text.to_string()));
            }
            self.set = key.set;
            self.mask |= key.bit;
        } else {
            self.set = MIXED;
            let maybe_seen = key.bloom.iter().all(|&(word, bit)| seen[word] & bit != 0);
            // The line so far, without the separator just written.
            let line = &self.buf[self.tags..start - 1];
            if maybe_seen && scan::has_key(line, &written[..written.len() - 1]) {
                return Err(EncodeError::DuplicateKey(key.text.to_string()));
            }
        }
        for (word, bit) in key.bloom {
            seen[word] |= bit;
        }
        Ok(())
    }
}

impl LineWriter<'_> {
    /// [`LineWriter::tag`] with a prepared key.
    #[inline]
    pub(super) fn prepared_tag(
        &mut self,
        key: &PreparedKey,
        value: &str,
    ) -> Result<(), EncodeError> {
        let Some(written) = &key.written else {
            return self.tag(&key.text, value);
        };
        if value.is_empty() {
            return Ok(());
        }
        no_trailing_backslash(value, Part::TagValue)?;
        self.buf.push(b',');
        self.prepared_key(key, written)?;
        escape::name(self.buf, value, escape::KEY);
        Ok(())
    }

    /// [`LineWriter::float`] with a prepared key.
    #[inline]
    pub(super) fn prepared_float(
        &mut self,
        separator: u8,
        key: &PreparedKey,
        value: f64,
    ) -> Result<(), EncodeError> {
        let Some(written) = &key.written else {
            return self.float(separator, &key.text, value);
        };
        if !value.is_finite() {
            return Err(EncodeError::NonFiniteFloat(key.text.to_string()));
        }
        self.buf.push(separator);
        self.prepared_key(key, written)?;
        self.float_value(value);
        Ok(())
    }

    /// [`LineWriter::integer`] with a prepared key.
    #[inline]
    pub(super) fn prepared_integer(
        &mut self,
        separator: u8,
        key: &PreparedKey,
        value: i64,
    ) -> Result<(), EncodeError> {
        let Some(written) = &key.written else {
            return self.integer(separator, &key.text, value);
        };
        self.buf.push(separator);
        self.prepared_key(key, written)?;
        number::integer(self.buf, value);
        Ok(())
    }

    /// [`LineWriter::boolean`] with a prepared key.
    #[inline]
    pub(super) fn prepared_boolean(
        &mut self,
        separator: u8,
        key: &PreparedKey,
        value: bool,
    ) -> Result<(), EncodeError> {
        let Some(written) = &key.written else {
            return self.boolean(separator, &key.text, value);
        };
        self.buf.push(separator);
        self.prepared_key(key, written)?;
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.buf.extend_from_slice(text);
        Ok(())
    }

    /// [`LineWriter::string`] with a prepared key.
    #[inline]
    pub(super) fn prepared_string(
        &mut self,
        separator: u8,
        key: &PreparedKey,
        value: &str,
    ) -> Result<(), EncodeError> {
        let Some(written) = &key.written else {
            return self.string(separator, &key.text, value);
        };
        self.buf.push(separator);
        self.prepared_key(key, written)?;
        escape::string(self.buf, value);
        Ok(())
    }
}

impl LineBuilder<'_, '_, Tags> {
    /// [`tag`](LineBuilder::tag) with a prepared key.
    #[inline]
    pub fn prepared_tag(mut self, key: &PreparedKey, value: &str) -> Result<Self, EncodeError> {
        self.writer().prepared_tag(key, value)?;
        Ok(self)
    }
}

/// The `prepared_*` field methods of [`LineBuilder`].
macro_rules! prepared_fields {
    ($($(#[$doc:meta])* $name:ident($value:ty);)+) => {
        impl<'w, 'b, S: State> LineBuilder<'w, 'b, S> {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $name(
                    mut self,
                    key: &PreparedKey,
                    value: $value,
                ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
                    self.writer().$name(S::FIELD_SEPARATOR, key, value)?;
                    Ok(self.into_fields())
                }
            )+
        }
    };
}

prepared_fields! {
    /// [`float`](LineBuilder::float) with a prepared key.
    prepared_float(f64);
    /// [`integer`](LineBuilder::integer) with a prepared key.
    prepared_integer(i64);
    /// [`boolean`](LineBuilder::boolean) with a prepared key.
    prepared_boolean(bool);
    /// [`string`](LineBuilder::string) with a prepared key.
    prepared_string(&str);
}
