//! Where a window goes once due: a [`Point`], or a line of line protocol
//! written straight into a buffer.
//!
//! A window names its tags and fields once, to an [`Out`]; a [`Point`] is one,
//! and so is a line being written, which makes the very calls
//! [`crate::encode::encode_point`] would make for the point. Both forms hold
//! the same tags and fields in the same order.

use std::borrow::Cow;

use schemas::Timestamp;

use super::key::WindowKey;
use super::WindowConfig;
use crate::encode::{EncodeError, Fields, LineBuilder, LineWriter, Tags};
use crate::point::{FieldValue, Point};

/// What a window writes itself to: all its tags, then its fields.
pub(crate) trait Out {
    fn tag(&mut self, key: &'static str, value: &str);
    fn float(&mut self, key: &'static str, value: f64);
    fn integer(&mut self, key: &'static str, value: i64);
    fn boolean(&mut self, key: &'static str, value: bool);
    fn string(&mut self, key: &'static str, value: &'static str);
}

impl Out for Point {
    fn tag(&mut self, key: &'static str, value: &str) {
        self.tags.push((Cow::Borrowed(key), value.to_owned()));
    }
    fn float(&mut self, key: &'static str, value: f64) {
        self.fields
            .push((Cow::Borrowed(key), FieldValue::Float(value)));
    }
    fn integer(&mut self, key: &'static str, value: i64) {
        self.fields
            .push((Cow::Borrowed(key), FieldValue::Integer(value)));
    }
    fn boolean(&mut self, key: &'static str, value: bool) {
        self.fields
            .push((Cow::Borrowed(key), FieldValue::Boolean(value)));
    }
    fn string(&mut self, key: &'static str, value: &'static str) {
        self.fields
            .push((Cow::Borrowed(key), FieldValue::String(Cow::Borrowed(value))));
    }
}

/// A line being written: the builder in its state, or why the line failed.
#[derive(Debug)]
enum Line<'w, 'b> {
    Tags(LineBuilder<'w, 'b, Tags>),
    Fields(LineBuilder<'w, 'b, Fields>),
    Failed(EncodeError),
}

impl<'w, 'b> Line<'w, 'b> {
    fn step(
        &mut self,
        tag: impl FnOnce(LineBuilder<'w, 'b, Tags>) -> Result<Self, EncodeError>,
        field: impl FnOnce(LineBuilder<'w, 'b, Fields>) -> Result<Self, EncodeError>,
    ) {
        let next = match std::mem::replace(self, Line::Failed(EncodeError::NoFields)) {
            Line::Tags(line) => tag(line),
            Line::Fields(line) => field(line),
            failed @ Line::Failed(_) => Ok(failed),
        };
        *self = next.unwrap_or_else(Line::Failed);
    }

    fn field(
        &mut self,
        write: impl Fn(LineBuilder<'w, 'b, Fields>) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError>,
        first: impl FnOnce(
            LineBuilder<'w, 'b, Tags>,
        ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError>,
    ) {
        self.step(
            |line| first(line).map(Line::Fields),
            |line| write(line).map(Line::Fields),
        );
    }

    fn finish(self, time: Timestamp) -> Result<(), EncodeError> {
        match self {
            Line::Fields(line) => {
                line.finish(time);
                Ok(())
            }
            Line::Tags(_) => Err(EncodeError::NoFields),
            Line::Failed(e) => Err(e),
        }
    }
}

impl Out for Line<'_, '_> {
    fn tag(&mut self, key: &'static str, value: &str) {
        self.step(
            |line| line.tag(key, value).map(Line::Tags),
            // Tags come first; a tag after a field is a mistake of ours, and
            // a point would fail the same way when encoded.
            |_| Err(EncodeError::DuplicateKey(key.to_owned())),
        );
    }
    fn float(&mut self, key: &'static str, value: f64) {
        self.field(|l| l.float(key, value), |l| l.float(key, value));
    }
    fn integer(&mut self, key: &'static str, value: i64) {
        self.field(|l| l.integer(key, value), |l| l.integer(key, value));
    }
    fn boolean(&mut self, key: &'static str, value: bool) {
        self.field(|l| l.boolean(key, value), |l| l.boolean(key, value));
    }
    fn string(&mut self, key: &'static str, value: &'static str) {
        self.field(|l| l.string(key, value), |l| l.string(key, value));
    }
}

/// What a window writes to [`Out`].
pub(crate) trait Write {
    /// Writes the window's tags, then its fields.
    fn write<O: Out>(&self, key: &WindowKey, config: &WindowConfig, out: &mut O);
}

/// Where due windows go: points, or lines.
pub(crate) trait Emit {
    fn emit<A: Write>(
        &mut self,
        measurement: &str,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    );
}

impl Emit for Vec<Point> {
    fn emit<A: Write>(
        &mut self,
        measurement: &str,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    ) {
        let mut point = Point::new(measurement.to_owned(), Timestamp::from_nanos(start));
        window.write(key, config, &mut point);
        self.push(point);
    }
}

/// Lines written straight into a buffer, and why any was not.
#[derive(Debug)]
pub(crate) struct Lines<'b, 'e> {
    pub(crate) writer: LineWriter<'b>,
    pub(crate) errors: &'e mut Vec<EncodeError>,
}

impl Emit for Lines<'_, '_> {
    fn emit<A: Write>(
        &mut self,
        measurement: &str,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    ) {
        let written = self.writer.line(measurement).and_then(|line| {
            let mut line = Line::Tags(line);
            window.write(key, config, &mut line);
            line.finish(Timestamp::from_nanos(start))
        });
        if let Err(e) = written {
            self.errors.push(e);
        }
    }
}
