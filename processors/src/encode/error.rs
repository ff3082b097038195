//! Why a line was not written.

use std::fmt;

/// A part of a line that holds a name or a tag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The measurement.
    Measurement,
    /// A tag key.
    TagKey,
    /// A tag value.
    TagValue,
    /// A field key.
    FieldKey,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Measurement => "measurement",
            Part::TagKey => "tag key",
            Part::TagValue => "tag value",
            Part::FieldKey => "field key",
        })
    }
}

/// Why a line was not written. The buffer is left as it was before the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The measurement is the empty string.
    #[error("the measurement is empty")]
    EmptyMeasurement,
    /// The measurement starts with `#`, which would make the line a comment.
    #[error("the measurement `{0}` starts with '#', which makes the line a comment")]
    CommentMeasurement(String),
    /// A tag key is the empty string.
    #[error("a tag key is empty")]
    EmptyTagKey,
    /// A field key is the empty string.
    #[error("a field key is empty")]
    EmptyFieldKey,
    /// The point has no field; line protocol needs at least one.
    #[error("the point has no field; a line needs at least one")]
    NoFields,
    /// A float field is NaN or infinite; it is never written.
    #[error("field `{0}` is NaN or infinite")]
    NonFiniteFloat(String),
    /// A key appears twice among the tags and fields of one line.
    #[error("key `{0}` appears twice among the tags and fields of one line")]
    DuplicateKey(String),
    /// A name or tag value ends with a backslash, which no line protocol parser
    /// accepts.
    #[error("the {part} `{text}` ends with a backslash, which line protocol cannot carry")]
    EndsWithBackslash {
        /// Where it is.
        part: Part,
        /// The text as given.
        text: String,
    },
}
