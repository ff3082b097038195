//! Simulated fleets of street lights, waste containers and traffic counters
//! for the communes of a [`FleetSpec`], publishing in every wire format the
//! service reads. The core is pure and deterministic: no I/O, no clock; the
//! same seed gives byte-identical messages. [`publish`] is the async shell
//! that sends them to an MQTT broker (the `simulate` binary).
//!
//! - [`spec`]: the fleet spec (TOML), with defaults and validation.
//! - [`sun`]: sunrise and sunset (NOAA solar equations).
//! - [`lighting`], [`waste`], [`traffic`]: device models, each a step
//!   function from a time to an [`Observation`] of canonical values.
//! - [`format`](mod@format): an observation as (topic, payload) in native JSON, SenML,
//!   The Things Stack v3 or ChirpStack v4.
//! - [`fleet`]: the devices of a spec; [`stream`]: their [`Message`]s over a
//!   time range, faults included, and how a message is identified.
//! - [`publish`]: `simulate run`, `backfill` and `load` over MQTT.
//! - [`verify`]: the loss oracle, `simulate verify`: which messages of a load
//!   test the database holds, lost or holds twice, and how fast.

pub mod fleet;
pub mod format;
pub mod lighting;
pub mod observation;
pub mod publish;
mod random;
pub mod spec;
pub mod stream;
pub mod sun;
pub mod traffic;
pub mod verify;
pub mod waste;

pub use fleet::Fleet;
pub use observation::{Observation, ObservedAt};
pub use spec::{FleetSpec, SpecError};
pub use stream::{Message, MessageFault, Messages};
