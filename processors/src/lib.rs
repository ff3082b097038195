//! Normalization, event-time windows, commune rollups and line-protocol encoding.
//!
//! - [`normalize`]: the canonical, typed fields of a reading, derived ones included.
//! - [`point`]: a point to write, as windows and alert rules produce it.
//!
//! Pure: no I/O, no async; time is passed in.

pub mod normalize;
pub mod point;

pub use point::{FieldValue, Point};
