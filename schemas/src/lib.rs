//! Wire formats of municipal telemetry, validated into one [`Reading`].
//!
//! - [`domain`], [`attribute`], [`unit`]: the data contract as a table: every
//!   attribute's wire name, field name, type, range and canonical unit.
//! - [`reading`]: the internal form every format decodes into.
//! - [`topic`]: topic levels, validated.
//! - [`time`]: timestamps and the acceptable range of event times.
//! - [`application`]: LoRaWAN applications and their field maps.
//! - [`context`]: what a decoder needs besides the message.
//! - [`decode`]: the entry point, a message in, readings or a rejection out;
//!   the native, SenML and LoRaWAN decoders sit behind it.
//! - [`rejection`]: why a message was refused, as a value.
//!
//! Pure: no I/O, no async, and the current time is always passed in.

pub mod application;
pub mod attribute;
pub mod context;
pub mod decode;
pub mod domain;
mod json;
mod lorawan;
mod native;
mod observed;
pub mod reading;
pub mod rejection;
mod scan;
mod senml;
pub mod time;
pub mod topic;
pub mod unit;

pub use application::{ApplicationConfig, Applications, FieldMapping};
pub use attribute::{Attribute, Kind, Value};
pub use context::{Context, Target};
pub use decode::{Decoded, Decoder, Format};
pub use domain::Domain;
pub use reading::{Reading, TimeSource, Timestamp, Values};
pub use rejection::{Fault, Reason, Rejection};
pub use time::TimeLimits;
pub use topic::Topic;
