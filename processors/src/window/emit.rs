//! Where a window goes once due: a [`Point`], or a line of line protocol
//! written straight into a buffer.
//!
//! A window names its tags and fields once, to an [`Out`]; a [`Point`] is one,
//! and so is a line being written ([`DynLine`]), which writes the bytes
//! [`crate::encode::encode_point`] would write for the point, copying the
//! names the window prepared once. Both forms hold the same tags and fields in
//! the same order.

use std::borrow::Cow;

use schemas::Timestamp;

use super::key::WindowKey;
use super::WindowConfig;
use crate::encode::{DynLine, EncodeError, KeyRun, LineWriter, Name, Stage, StagedName};
use crate::point::{FieldValue, Point};

/// What a window writes itself to: all its tags, then its fields.
pub(crate) trait Out {
    fn tag(&mut self, key: impl Into<Name>, value: &str);
    /// A tag whose value is known to need no escape
    /// ([`crate::encode::plain_tag_value`]).
    fn plain_tag(&mut self, key: impl Into<Name>, value: &str) {
        self.tag(key, value);
    }
    fn float(&mut self, key: impl Into<Name>, value: f64);
    /// Float fields one after the other: `keys` with `values`, in order.
    fn floats<const N: usize>(&mut self, keys: &'static KeyRun<N>, values: [f64; N]) {
        for (key, value) in keys.keys().iter().zip(values) {
            self.float(key, value);
        }
    }
    fn integer(&mut self, key: impl Into<Name>, value: i64);
    fn boolean(&mut self, key: impl Into<Name>, value: bool);
    fn string(&mut self, key: impl Into<Name>, value: &'static str);
}

impl Point {
    fn push_field(&mut self, key: impl Into<Name>, value: FieldValue) {
        self.fields
            .push((Cow::Borrowed(key.into().as_str()), value));
    }
}

impl Out for Point {
    fn tag(&mut self, key: impl Into<Name>, value: &str) {
        self.tags
            .push((Cow::Borrowed(key.into().as_str()), value.to_owned()));
    }
    fn float(&mut self, key: impl Into<Name>, value: f64) {
        self.push_field(key, FieldValue::Float(value));
    }
    fn integer(&mut self, key: impl Into<Name>, value: i64) {
        self.push_field(key, FieldValue::Integer(value));
    }
    fn boolean(&mut self, key: impl Into<Name>, value: bool) {
        self.push_field(key, FieldValue::Boolean(value));
    }
    fn string(&mut self, key: impl Into<Name>, value: &'static str) {
        self.push_field(key, FieldValue::String(Cow::Borrowed(value)));
    }
}

impl Out for DynLine<'_, '_> {
    fn tag(&mut self, key: impl Into<Name>, value: &str) {
        DynLine::tag(self, key.into(), value);
    }
    fn float(&mut self, key: impl Into<Name>, value: f64) {
        DynLine::float(self, key.into(), value);
    }
    fn integer(&mut self, key: impl Into<Name>, value: i64) {
        DynLine::integer(self, key.into(), value);
    }
    fn boolean(&mut self, key: impl Into<Name>, value: bool) {
        DynLine::boolean(self, key.into(), value);
    }
    fn string(&mut self, key: impl Into<Name>, value: &'static str) {
        DynLine::string(self, key.into(), value);
    }
}

/// The common line, staged: a key given as text makes it give up, and the
/// line is then written by [`DynLine`].
impl Out for Stage {
    fn tag(&mut self, key: impl Into<Name>, value: &str) {
        match key.into() {
            Name::Prepared(key) => Stage::tag(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
    fn plain_tag(&mut self, key: impl Into<Name>, value: &str) {
        match key.into() {
            Name::Prepared(key) => Stage::plain_tag(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
    fn float(&mut self, key: impl Into<Name>, value: f64) {
        match key.into() {
            Name::Prepared(key) => Stage::float(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
    fn floats<const N: usize>(&mut self, keys: &'static KeyRun<N>, values: [f64; N]) {
        Stage::floats(self, keys, values);
    }
    fn integer(&mut self, key: impl Into<Name>, value: i64) {
        match key.into() {
            Name::Prepared(key) => Stage::integer(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
    fn boolean(&mut self, key: impl Into<Name>, value: bool) {
        match key.into() {
            Name::Prepared(key) => Stage::boolean(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
    fn string(&mut self, key: impl Into<Name>, value: &'static str) {
        match key.into() {
            Name::Prepared(key) => Stage::string(self, key, value),
            Name::Text(_) => self.give_up(),
        }
    }
}

/// The measurement of a table's points, checked once for the stage.
#[derive(Debug)]
pub(crate) struct Measurement {
    name: String,
    staged: StagedName,
}

impl Measurement {
    pub(crate) fn new(name: String) -> Self {
        let staged = StagedName::new(&name);
        Self { name, staged }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
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
        measurement: &Measurement,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    );
}

impl Emit for Vec<Point> {
    fn emit<A: Write>(
        &mut self,
        measurement: &Measurement,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    ) {
        let mut point = Point::new(
            measurement.as_str().to_owned(),
            Timestamp::from_nanos(start),
        );
        window.write(key, config, &mut point);
        self.push(point);
    }
}

/// Lines written straight into a buffer, and why any was not. Each line is
/// staged first ([`Stage`]); one the stage gives up on is written again by
/// the general path.
#[derive(Debug)]
pub(crate) struct Lines<'b, 'e> {
    pub(crate) writer: LineWriter<'b>,
    pub(crate) errors: &'e mut Vec<EncodeError>,
    pub(crate) stage: Box<Stage>,
}

impl<'b, 'e> Lines<'b, 'e> {
    pub(crate) fn new(out: &'b mut Vec<u8>, errors: &'e mut Vec<EncodeError>) -> Self {
        Self {
            writer: LineWriter::new(out),
            errors,
            stage: Box::default(),
        }
    }
}

impl Emit for Lines<'_, '_> {
    fn emit<A: Write>(
        &mut self,
        measurement: &Measurement,
        start: i64,
        key: &WindowKey,
        config: &WindowConfig,
        window: &A,
    ) {
        let time = Timestamp::from_nanos(start);
        self.stage
            .start_named(&measurement.staged, measurement.as_str());
        window.write(key, config, &mut *self.stage);
        if let Some(line) = self.stage.finish(time) {
            self.writer.append_line(line);
            return;
        }
        let written = self.writer.line(measurement.as_str()).and_then(|line| {
            let mut line = DynLine::new(line);
            window.write(key, config, &mut line);
            line.finish(time)
        });
        if let Err(e) = written {
            self.errors.push(e);
        }
    }
}
