//! Normalization, event-time windows, commune rollups and line-protocol encoding.
//!
//! - [`encode`]: InfluxDB line protocol, written without a partial line.
//! - [`window`]: event-time tumbling windows per device and commune rollups,
//!   with a watermark, allowed lateness and bounded state.
//! - [`normalize`]: the canonical, typed fields of a reading, derived ones included.
//! - [`point`]: a point to write, as windows and alert rules produce it.
//!
//! Pure: no I/O, no async; time is passed in.

pub mod encode;
pub mod normalize;
pub mod point;
pub mod window;

pub use point::{FieldValue, Point};
