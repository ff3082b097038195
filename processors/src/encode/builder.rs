//! The line writer and its typestate builder.
//!
//! [`LineWriter`] holds the caller's buffer and the state of the line being
//! written; [`LineBuilder`] is a handle on it whose type says what may come
//! next. The handle is one reference, so each step moves 8 bytes, not the state.

use std::marker::PhantomData;

use schemas::Timestamp;

use super::error::{EncodeError, Part};
use super::{escape, number, prepared, scan};

/// State of a line whose measurement (and perhaps some tags) is written: tags
/// or a first field may follow.
#[derive(Debug)]
pub struct Tags;

/// State of a line with at least one field: more fields or the timestamp may
/// follow.
#[derive(Debug)]
pub struct Fields;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Tags {}
    impl Sealed for super::Fields {}
}

/// A state in which a field may be added: [`Tags`] or [`Fields`].
pub trait State: sealed::Sealed {
    /// What goes before the next field: a space before the first, a comma after.
    #[doc(hidden)]
    const FIELD_SEPARATOR: u8;
}

impl State for Tags {
    const FIELD_SEPARATOR: u8 = b' ';
}

impl State for Fields {
    const FIELD_SEPARATOR: u8 = b',';
}

/// Writes complete lines of line protocol at the end of a caller's buffer.
///
/// [`line`](LineWriter::line) starts a line and returns a [`LineBuilder`].
/// A line that is not finished (an error, or a builder dropped before
/// [`finish`](LineBuilder::finish)) is removed from the buffer when the writer
/// starts its next line or is dropped; the writer holds the buffer until then,
/// so no partial line can ever be seen in it.
///
/// ```
/// use processors::encode::LineWriter;
/// use schemas::Timestamp;
///
/// let mut buf = Vec::new();
/// let mut writer = LineWriter::new(&mut buf);
/// writer
///     .line("waste")?
///     .tag("commune", "rabat")?
///     .float("fill_ratio", 0.8)?
///     .finish(Timestamp::from_secs(1));
/// assert!(writer.line("waste")?.tag("", "x").is_err());
/// drop(writer);
/// assert_eq!(buf, b"waste,commune=rabat fill_ratio=0.8 1000000000\n");
/// # Ok::<(), processors::encode::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct LineWriter<'b> {
    pub(super) buf: &'b mut Vec<u8>,
    /// Where the last finished line ends: anything after it is unfinished.
    end: usize,
    /// Where the line being written starts its tags (after the measurement).
    pub(super) tags: usize,
    /// Bloom filter of the keys of the line being written (two bits a key);
    /// only when it says "maybe" is the line searched for the key.
    pub(super) seen: [u64; 4],
    /// The [`KeySet`](super::KeySet) number of the keys of the line being
    /// written while they are all prepared keys of one set with a bit
    /// ([`prepared::NO_SET`] before the first key, [`prepared::MIXED`] once
    /// not), and their bits: then `mask` alone answers the duplicate check.
    pub(super) set: u64,
    pub(super) mask: u128,
    /// The last float of the line being written: its bits and where its text
    /// is. Aggregates often repeat a value (mean, min, max and last of one
    /// reading), and copying the text is cheaper than writing it again.
    last_float: Option<(u64, usize, usize)>,
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.end);
    }
}

impl<'b> LineWriter<'b> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        let end = buf.len();
        Self {
            buf,
            end,
            tags: end,
            seen: [0; 4],
            set: prepared::NO_SET,
            mask: 0,
            last_float: None,
        }
    }

    /// Starts a line with its measurement, removing any unfinished line first.
    #[inline]
    pub fn line(&mut self, measurement: &str) -> Result<LineBuilder<'_, 'b, Tags>, EncodeError> {
        self.buf.truncate(self.end);
        if measurement.is_empty() {
            return Err(EncodeError::EmptyMeasurement);
        }
        if measurement.starts_with('#') {
            return Err(EncodeError::CommentMeasurement(measurement.to_owned()));
        }
        no_trailing_backslash(measurement, Part::Measurement)?;
        escape::name(self.buf, measurement, escape::MEASUREMENT);
        self.tags = self.buf.len();
        self.seen = [0; 4];
        self.set = prepared::NO_SET;
        self.mask = 0;
        self.last_float = None;
        Ok(LineBuilder {
            writer: self,
            state: PhantomData,
        })
    }

    /// Appends a complete line as a [`Stage`](super::Stage) wrote it,
    /// removing any unfinished line first.
    #[inline]
    pub(crate) fn append_line(&mut self, line: &[u8]) {
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(line);
        self.end = self.buf.len();
        self.tags = self.end;
    }

    /// Writes an escaped key and the `=` after it; fails if the line has it.
    /// The separator before the key is already written.
    #[inline]
    fn key(&mut self, key: &str) -> Result<(), EncodeError> {
        let start = self.buf.len();
        escape::name(self.buf, key, escape::KEY);
        let written = &self.buf[start..];
        let bits = scan::bloom_bits(written);
        let maybe_seen = bits
            .iter()
            .all(|&bit| self.seen[bit >> 6] & (1 << (bit & 63)) != 0);
        // The line so far, without the separator just written.
        if maybe_seen && scan::has_key(&self.buf[self.tags..start - 1], written) {
            return Err(EncodeError::DuplicateKey(key.to_owned()));
        }
        for bit in bits {
            self.seen[bit >> 6] |= 1 << (bit & 63);
        }
        self.set = prepared::MIXED;
        self.buf.push(b'=');
        Ok(())
    }

    #[inline]
    pub(super) fn tag(&mut self, key: &str, value: &str) -> Result<(), EncodeError> {
        if key.is_empty() {
            return Err(EncodeError::EmptyTagKey);
        }
        no_trailing_backslash(key, Part::TagKey)?;
        if value.is_empty() {
            return Ok(());
        }
        no_trailing_backslash(value, Part::TagValue)?;
        self.buf.push(b',');
        self.key(key)?;
        escape::name(self.buf, value, escape::KEY);
        Ok(())
    }

    /// Writes the separator and key of a field; the value follows.
    #[inline]
    fn field_key(&mut self, separator: u8, key: &str) -> Result<(), EncodeError> {
        if key.is_empty() {
            return Err(EncodeError::EmptyFieldKey);
        }
        no_trailing_backslash(key, Part::FieldKey)?;
        self.buf.push(separator);
        self.key(key)
    }

    #[inline]
    pub(super) fn float(
        &mut self,
        separator: u8,
        key: &str,
        value: f64,
    ) -> Result<(), EncodeError> {
        if !value.is_finite() {
            return Err(EncodeError::NonFiniteFloat(key.to_owned()));
        }
        self.field_key(separator, key)?;
        self.float_value(value);
        Ok(())
    }

    /// Writes a finite float value.
    #[inline]
    pub(super) fn float_value(&mut self, value: f64) {
        let bits = value.to_bits();
        let start = self.buf.len();
        // Within one line the buffer only grows, so the text is still there.
        match self.last_float {
            Some((last, from, to)) if last == bits && to <= start => {
                self.buf.extend_from_within(from..to);
            }
            _ => number::float(self.buf, value),
        }
        self.last_float = Some((bits, start, self.buf.len()));
    }

    #[inline]
    pub(super) fn integer(
        &mut self,
        separator: u8,
        key: &str,
        value: i64,
    ) -> Result<(), EncodeError> {
        self.field_key(separator, key)?;
        number::integer(self.buf, value);
        Ok(())
    }

    #[inline]
    pub(super) fn boolean(
        &mut self,
        separator: u8,
        key: &str,
        value: bool,
    ) -> Result<(), EncodeError> {
        self.field_key(separator, key)?;
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    #[inline]
    pub(super) fn string(
        &mut self,
        separator: u8,
        key: &str,
        value: &str,
    ) -> Result<(), EncodeError> {
        self.field_key(separator, key)?;
        escape::string(self.buf, value);
        Ok(())
    }

    #[inline]
    pub(super) fn finish(&mut self, time: Timestamp) {
        self.buf.push(b' ');
        number::timestamp(self.buf, time.as_nanos());
        self.buf.push(b'\n');
        self.end = self.buf.len();
    }
}

/// Fails if a name or tag value ends with a backslash.
pub(super) fn no_trailing_backslash(text: &str, part: Part) -> Result<(), EncodeError> {
    if text.ends_with('\\') {
        Err(EncodeError::EndsWithBackslash {
            part,
            text: text.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// One line being written by a [`LineWriter`]; its type only offers what may
/// come next: tags before the first field, [`finish`](LineBuilder::finish)
/// (the timestamp) only after one.
///
/// Every step takes the builder and gives it back on success; on error the
/// line is abandoned, and removed from the buffer as [`LineWriter`] says.
#[derive(Debug)]
#[must_use = "a line that is not finished is removed from the buffer"]
pub struct LineBuilder<'w, 'b, S> {
    writer: &'w mut LineWriter<'b>,
    state: PhantomData<S>,
}

impl LineBuilder<'_, '_, Tags> {
    /// Adds a tag. A tag whose value is empty is omitted (line protocol has no
    /// empty tag values); its key is still checked.
    #[inline]
    pub fn tag(self, key: &str, value: &str) -> Result<Self, EncodeError> {
        self.writer.tag(key, value)?;
        Ok(self)
    }
}

impl<'w, 'b, S: State> LineBuilder<'w, 'b, S> {
    #[inline]
    pub(super) fn into_writer(self) -> &'w mut LineWriter<'b> {
        self.writer
    }

    #[inline]
    pub(super) fn writer(&mut self) -> &mut LineWriter<'b> {
        self.writer
    }

    #[inline]
    pub(super) fn into_fields(self) -> LineBuilder<'w, 'b, Fields> {
        LineBuilder {
            writer: self.writer,
            state: PhantomData,
        }
    }

    /// Adds a float field; NaN and infinities are an error.
    #[inline]
    pub fn float(self, key: &str, value: f64) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        self.writer.float(S::FIELD_SEPARATOR, key, value)?;
        Ok(self.into_fields())
    }

    /// Adds an integer field (`3i`).
    #[inline]
    pub fn integer(
        self,
        key: &str,
        value: i64,
    ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        self.writer.integer(S::FIELD_SEPARATOR, key, value)?;
        Ok(self.into_fields())
    }

    /// Adds a boolean field (`true`, `false`).
    #[inline]
    pub fn boolean(
        self,
        key: &str,
        value: bool,
    ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        self.writer.boolean(S::FIELD_SEPARATOR, key, value)?;
        Ok(self.into_fields())
    }

    /// Adds a string field (quoted and escaped; newlines become spaces).
    #[inline]
    pub fn string(
        self,
        key: &str,
        value: &str,
    ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        self.writer.string(S::FIELD_SEPARATOR, key, value)?;
        Ok(self.into_fields())
    }
}

impl LineBuilder<'_, '_, Fields> {
    /// Writes the timestamp and the terminating newline: the line is complete.
    #[inline]
    pub fn finish(self, time: Timestamp) {
        self.writer.finish(time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_float_is_written_as_if_new() -> Result<(), EncodeError> {
        let mut buf = Vec::new();
        let mut writer = LineWriter::new(&mut buf);
        // Text left by a line given up must not be copied into the next one.
        let _ = writer
            .line("m")?
            .float("a", 1234.5678)?
            .float("b", f64::NAN);
        writer
            .line("m")?
            .float("a", 0.1)?
            .float("b", 0.1)?
            .float("c", -0.0)?
            .float("d", 0.0)?
            .float("e", 0.0)?
            .float("f", 1234.5678)?
            .float("g", 1234.5678)?
            .finish(Timestamp::from_secs(1));
        writer
            .line("m")?
            .float("a", 1234.5678)?
            .finish(Timestamp::from_secs(2));
        drop(writer);
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "m a=0.1,b=0.1,c=-0.0,d=0.0,e=0.0,f=1234.5678,g=1234.5678 1000000000\n\
             m a=1234.5678 2000000000\n"
        );
        Ok(())
    }
}
