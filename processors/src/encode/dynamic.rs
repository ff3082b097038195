//! A line whose state (tags, or fields) is kept at run time, for writers
//! that name tags and fields one call at a time, as windows do.
//!
//! [`DynLine`] starts from a [`LineBuilder`] in the tags state and makes the
//! checks the builder's type makes (a tag only before the first field,
//! [`finish`](DynLine::finish) only after one) with a flag instead; the first
//! error is kept and later calls do nothing. Nothing moves between calls but
//! the flag, which keeps a long line of fields cheap.

use schemas::Timestamp;

use super::builder::{LineBuilder, LineWriter, Tags};
use super::error::EncodeError;
use super::prepared::PreparedKey;

/// A tag or field key: any text, or a key prepared once
/// (see [`KeySet`](super::KeySet)).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Name {
    Text(&'static str),
    Prepared(&'static PreparedKey),
}

impl Name {
    /// The name as given.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Name::Text(text) => text,
            Name::Prepared(key) => key.as_str(),
        }
    }
}

impl From<&'static str> for Name {
    fn from(text: &'static str) -> Self {
        Name::Text(text)
    }
}

impl From<&'static PreparedKey> for Name {
    fn from(key: &'static PreparedKey) -> Self {
        Name::Prepared(key)
    }
}

/// Calls the writer method for a key of either kind: `$text` with a `&str`,
/// `$prepared` with a prepared key.
macro_rules! either {
    ($writer:expr, $separator:expr, $key:expr, $text:ident, $prepared:ident, $value:expr) => {
        match $key {
            Name::Text(key) => $writer.$text($separator, key, $value),
            Name::Prepared(key) => $writer.$prepared($separator, key, $value),
        }
    };
}

/// A line being written, its state known at run time; see the
/// [module](self) documentation.
#[derive(Debug)]
pub(crate) struct DynLine<'w, 'b> {
    writer: &'w mut LineWriter<'b>,
    /// Whether a field is written (so tags may no longer come).
    fields: bool,
    error: Option<EncodeError>,
}

impl<'w, 'b> DynLine<'w, 'b> {
    pub(crate) fn new(line: LineBuilder<'w, 'b, Tags>) -> Self {
        Self {
            writer: line.into_writer(),
            fields: false,
            error: None,
        }
    }

    fn separator(&self) -> u8 {
        if self.fields {
            b','
        } else {
            b' '
        }
    }

    fn done(&mut self, result: Result<(), EncodeError>, field: bool) {
        match result {
            Ok(()) => self.fields |= field,
            Err(e) => self.error = Some(e),
        }
    }

    /// Adds a tag; see [`LineBuilder::tag`].
    pub(crate) fn tag(&mut self, key: Name, value: &str) {
        if self.error.is_some() {
            return;
        }
        let result = if self.fields {
            // Tags come first; a tag after a field is a mistake of ours, and
            // a point would fail the same way when encoded.
            Err(EncodeError::DuplicateKey(key.as_str().to_owned()))
        } else {
            match key {
                Name::Text(key) => self.writer.tag(key, value),
                Name::Prepared(key) => self.writer.prepared_tag(key, value),
            }
        };
        self.done(result, false);
    }

    /// Adds a float field; see [`LineBuilder::float`].
    pub(crate) fn float(&mut self, key: Name, value: f64) {
        if self.error.is_none() {
            let separator = self.separator();
            let result = either!(self.writer, separator, key, float, prepared_float, value);
            self.done(result, true);
        }
    }

    /// Adds an integer field; see [`LineBuilder::integer`].
    pub(crate) fn integer(&mut self, key: Name, value: i64) {
        if self.error.is_none() {
            let separator = self.separator();
            let result = either!(
                self.writer,
                separator,
                key,
                integer,
                prepared_integer,
                value
            );
            self.done(result, true);
        }
    }

    /// Adds a boolean field; see [`LineBuilder::boolean`].
    pub(crate) fn boolean(&mut self, key: Name, value: bool) {
        if self.error.is_none() {
            let separator = self.separator();
            let result = either!(
                self.writer,
                separator,
                key,
                boolean,
                prepared_boolean,
                value
            );
            self.done(result, true);
        }
    }

    /// Adds a string field; see [`LineBuilder::string`].
    pub(crate) fn string(&mut self, key: Name, value: &str) {
        if self.error.is_none() {
            let separator = self.separator();
            let result = either!(self.writer, separator, key, string, prepared_string, value);
            self.done(result, true);
        }
    }

    /// Writes the timestamp and ends the line; fails with the first error of
    /// the line, or if it has no field.
    pub(crate) fn finish(self, time: Timestamp) -> Result<(), EncodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.fields {
            return Err(EncodeError::NoFields);
        }
        self.writer.finish(time);
        Ok(())
    }
}
