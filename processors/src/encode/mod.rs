//! InfluxDB line protocol: the one encoder of the workspace.
//!
//! - [`LineWriter`] appends lines to a caller's `Vec<u8>`; its [`LineBuilder`]
//!   cannot write a malformed line: its type walks measurement → tags → at
//!   least one field → timestamp, and a line not finished (an error, or a
//!   builder dropped) is truncated away, so no partial line is ever left.
//! - [`encode_reading`] writes a raw reading (the hot path: no allocation);
//!   [`encode_point`] writes a window or event [`Point`]. For a batch, one
//!   [`LineWriter`] with [`reading`](LineWriter::reading) and
//!   [`point`](LineWriter::point) does the same.
//! - [`EncodeError`]: why a line was not written.
//!
//! # What is written, exactly
//!
//! Escaping follows the line protocol of InfluxDB 1.x, 2.x and 3.x:
//!
//! | part | escaped with a backslash |
//! |---|---|
//! | measurement | comma, space |
//! | tag key, tag value, field key | comma, equals sign, space |
//! | string field value (quoted) | double quote, backslash |
//!
//! **Backslashes in names** (measurement, tag keys and values, field keys) are
//! written as they are, except where the reader would take them for an escape:
//! a backslash directly before another backslash, before a character that is
//! escaped in that part, or before a control character (see below) is doubled.
//! Readers that decode `\\` as one backslash (InfluxDB 3.x and the
//! `influxdb-line-protocol` crate) read the original name back; readers that
//! never unescape backslashes (the Go parser of InfluxDB 1.x and 2.x) read a
//! lone backslash back unchanged and keep only those doubled ones. A name that
//! *ends* with a backslash cannot be written in any dialect (every parser
//! rejects it), so it is an error, [`EncodeError::EndsWithBackslash`].
//!
//! **Control characters in names** cannot be escaped: a newline ends the line,
//! and a tab or NUL ends a name for some readers. Every ASCII control character
//! (U+0000–U+001F and U+007F, `char::is_ascii_control`) in a measurement, tag
//! key, tag value or field key is therefore written as an escaped space (`\ `),
//! and reads back as a space. No input string can add a line.
//!
//! **Newlines in string field values**: a newline inside quotes keeps the line
//! whole for the InfluxDB parsers, but the InfluxDB documentation states that
//! line protocol does not support it and readers that split on newlines first
//! would cut the line. Newline (U+000A) and carriage return (U+000D) in a string
//! field value are written as a plain space. Other characters, tabs included,
//! are kept. So a written line holds exactly one newline: its terminator.
//!
//! **A measurement starting with `#`** would make the line a comment for every
//! reader, and no escape helps (`\#` reads back as two characters): it is an
//! error, [`EncodeError::CommentMeasurement`].
//!
//! **Empty tag values** are not allowed by line protocol: a tag whose value is
//! empty is omitted (its key is still checked). This is not an error.
//!
//! **Floats** are written in plain decimal notation, never with an exponent,
//! always with a decimal point (`41.8`, `300.0`, `0.000001`,
//! `100000000000000000000.0`), with the shortest digits that read back to the
//! same `f64`. Every InfluxDB version and VictoriaMetrics reads this form; the
//! decimal point keeps the value a float even for readers that once took `1`
//! for an integer. NaN and infinities are an error, never written.
//! **Integers** carry the `i` suffix (`3i`), **booleans** are `true`/`false`,
//! **timestamps** are nanoseconds since the epoch.
//!
//! **Keys**: a key may appear once per line, tags and fields together (InfluxDB
//! 3.x stores both as columns of one table); two keys are the same when their
//! written form is, i.e. after the control-character mapping above.

mod builder;
mod dynamic;
mod error;
mod escape;
mod number;
mod prepared;
mod scan;
mod stage;
#[cfg(test)]
mod tests;

pub use builder::{Fields, LineBuilder, LineWriter, State, Tags};
pub(crate) use dynamic::{DynLine, Name};
pub use error::{EncodeError, Part};
pub(crate) use prepared::KeyRun;
pub use prepared::{KeySet, PreparedKey, MASK_BITS};
pub(crate) use stage::{plain_tag_value, Stage, StagedName};

use std::cell::RefCell;
use std::sync::LazyLock;

use schemas::{Attribute, Domain, Reading, Value};

use crate::normalize::{self, Field, FLOW_VPH, PERIOD_S};
use crate::point::{FieldValue, Point};

/// Tag key of the commune.
pub const TAG_COMMUNE: &str = "commune";
/// Tag key of the device.
pub const TAG_DEVICE: &str = "device";
/// Tag key of the district (written when the registry knows it).
pub const TAG_DISTRICT: &str = "district";
/// Tag key of a traffic counter's lane.
pub const TAG_LANE: &str = "lane";

/// Where the names of [`READING_KEYS`] are: the attributes' field names in
/// [`Attribute::ALL`] order, then these.
const KEY_PERIOD: usize = Attribute::COUNT;
const KEY_FLOW: usize = Attribute::COUNT + 1;
const KEY_COMMUNE: usize = Attribute::COUNT + 2;
const KEY_DEVICE: usize = Attribute::COUNT + 3;
const KEY_DISTRICT: usize = Attribute::COUNT + 4;
const KEY_LANE: usize = Attribute::COUNT + 5;

/// Every tag and field key a raw reading can have, prepared once per process.
static READING_KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    let attributes = Attribute::ALL.iter().map(|a| a.field());
    let others = [
        PERIOD_S,
        FLOW_VPH,
        TAG_COMMUNE,
        TAG_DEVICE,
        TAG_DISTRICT,
        TAG_LANE,
    ];
    KeySet::new(attributes.chain(others))
});

/// The measurements of raw readings, by domain (in [`Domain::ALL`] order).
static READING_MEASUREMENTS: LazyLock<[StagedName; 3]> =
    LazyLock::new(|| Domain::ALL.map(|d| StagedName::new(d.as_str())));

thread_local! {
    /// The stage of raw readings' lines, one a thread: making a stage clears
    /// its kilobyte, which costs more than most lines.
    static READING_STAGE: RefCell<Stage> = const { RefCell::new(Stage::new()) };
}

/// Appends one raw reading as a line (terminated by `\n`) to `buf`; see
/// [`LineWriter::reading`]. On error `buf` is left as it was.
pub fn encode_reading(reading: &Reading, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    LineWriter::new(buf).reading(reading)
}

/// Appends one point (a window aggregate or an event) as a line to `buf`; see
/// [`LineWriter::point`]. On error `buf` is left as it was.
pub fn encode_point(point: &Point, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    LineWriter::new(buf).point(point)
}

impl LineWriter<'_> {
    /// Writes one raw reading as a line.
    ///
    /// Measurement: the domain (`lighting`, `waste`, `traffic`). Tags, in this
    /// (sorted) order: `commune`, `device`, `district` when present, `lane` when
    /// present. Fields: [`normalize::fields`], in that order, each with its one
    /// type. Timestamp: the reading's time in nanoseconds.
    ///
    /// Allocates nothing unless it fails.
    pub fn reading(&mut self, reading: &Reading) -> Result<(), EncodeError> {
        let staged = READING_STAGE.with(|stage| match stage.try_borrow_mut() {
            Ok(mut stage) => self.stage_reading(&mut stage, reading),
            // Only were this called while the stage is in use.
            Err(_) => self.stage_reading_aside(reading),
        });
        if staged {
            return Ok(());
        }
        // Every name is prepared once: see `READING_KEYS`.
        let keys: &'static [PreparedKey] = READING_KEYS.keys();
        let mut line = self
            .line(reading.domain.as_str())?
            .prepared_tag(&keys[KEY_COMMUNE], &reading.commune)?
            .prepared_tag(&keys[KEY_DEVICE], &reading.device)?;
        if let Some(district) = &reading.district {
            line = line.prepared_tag(&keys[KEY_DISTRICT], district)?;
        }
        if let Some(lane) = reading.lane {
            line = line.prepared_tag(&keys[KEY_LANE], itoa::Buffer::new().format(lane))?;
        }
        let attributes = reading.values.iter().map(|(a, v)| (&keys[a.index()], v));
        let period = reading
            .period_s
            .map(|p| (&keys[KEY_PERIOD], Value::Number(f64::from(p))));
        let flow = normalize::flow_vph(reading).map(|f| (&keys[KEY_FLOW], Value::Number(f)));
        // The fields of `normalize::fields`, in its order.
        let mut fields = attributes.chain(period).chain(flow);
        let (key, value) = fields.next().ok_or(EncodeError::NoFields)?;
        // Internal iteration: much faster than `for` over the chained iterator.
        fields
            .try_fold(line.prepared_value(key, value)?, |line, (key, value)| {
                line.prepared_value(key, value)
            })?
            .finish(reading.time);
        Ok(())
    }

    /// Appends the line of `reading` if `stage` can write it; whether it
    /// did.
    #[inline]
    fn stage_reading(&mut self, stage: &mut Stage, reading: &Reading) -> bool {
        let Some(line) = staged_reading(stage, reading) else {
            return false;
        };
        self.append_line(line);
        true
    }

    /// [`LineWriter::stage_reading`] with a stage of its own.
    #[cold]
    fn stage_reading_aside(&mut self, reading: &Reading) -> bool {
        self.stage_reading(&mut Stage::default(), reading)
    }

    /// Writes one point (a window aggregate or an event) as a line, its tags
    /// and fields in the point's order.
    pub fn point(&mut self, point: &Point) -> Result<(), EncodeError> {
        let mut line = self.line(&point.measurement)?;
        for (key, value) in &point.tags {
            line = line.tag(key, value)?;
        }
        let mut fields = point.fields.iter();
        let (key, value) = fields.next().ok_or(EncodeError::NoFields)?;
        fields
            .try_fold(line.field(key, value)?, |line, (key, value)| {
                line.field(key, value)
            })?
            .finish(point.time);
        Ok(())
    }
}

/// The line of a reading in its common shape, as [`LineWriter::reading`]
/// writes it; `None` when the general path must write it.
#[inline]
fn staged_reading<'s>(stage: &'s mut Stage, reading: &Reading) -> Option<&'s [u8]> {
    let keys: &'static [PreparedKey] = READING_KEYS.keys();
    let measurement = reading.domain.as_str();
    match READING_MEASUREMENTS.get(reading.domain as usize) {
        Some(name) => stage.start_named(name, measurement),
        None => stage.start(measurement),
    }
    stage.tag(&keys[KEY_COMMUNE], &reading.commune);
    stage.tag(&keys[KEY_DEVICE], &reading.device);
    if let Some(district) = &reading.district {
        stage.tag(&keys[KEY_DISTRICT], district);
    }
    if let Some(lane) = reading.lane {
        stage.tag(&keys[KEY_LANE], itoa::Buffer::new().format(lane));
    }
    for (attribute, value) in reading.values.iter() {
        let key = &keys[attribute.index()];
        match value {
            Value::Number(v) => stage.float(key, v),
            Value::Symbol(v) => stage.string(key, v),
            Value::Bool(v) => stage.boolean(key, v),
        }
    }
    if let Some(period) = reading.period_s {
        stage.float(&keys[KEY_PERIOD], f64::from(period));
    }
    if let Some(flow) = normalize::flow_vph(reading) {
        stage.float(&keys[KEY_FLOW], flow);
    }
    stage.finish(reading.time)
}

impl<'w, 'b, S: State> LineBuilder<'w, 'b, S> {
    /// Adds a field of a point.
    pub fn field(
        self,
        key: &str,
        value: &FieldValue,
    ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        match value {
            FieldValue::Float(v) => self.float(key, *v),
            FieldValue::Integer(v) => self.integer(key, *v),
            FieldValue::Boolean(v) => self.boolean(key, *v),
            FieldValue::String(v) => self.string(key, v),
        }
    }

    /// Adds an attribute value (or a derived number) under a prepared key.
    #[inline]
    fn prepared_value(
        self,
        key: &PreparedKey,
        value: Value,
    ) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        match value {
            Value::Number(v) => self.prepared_float(key, v),
            Value::Symbol(v) => self.prepared_string(key, v),
            Value::Bool(v) => self.prepared_boolean(key, v),
        }
    }

    /// Adds a field of a normalized reading.
    pub fn normalized(self, field: Field) -> Result<LineBuilder<'w, 'b, Fields>, EncodeError> {
        match field {
            Field::Float(key, v) => self.float(key, v),
            Field::String(key, v) => self.string(key, v),
            Field::Boolean(key, v) => self.boolean(key, v),
        }
    }
}
