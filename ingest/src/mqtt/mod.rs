//! The MQTT side of the service.
//!
//! - [`options`]: rumqttc options from `[mqtt]`: session, limits, credentials.
//! - [`tls`]: the rustls configuration of `[mqtt.tls]`.
//! - [`source`]: the task that owns the subscribing connection and feeds the
//!   pipeline with batches of messages, acknowledging them at one point.
//! - [`dead_letter`]: the publisher of rejected records, on its own connection.
//!
//! MQTT 3.1.1 and MQTT 5 differ only inside `client`, which gives both one face.

pub(crate) mod client;
pub mod dead_letter;
pub mod options;
pub mod source;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
pub mod tls;

pub use dead_letter::DeadLetterPublisher;
pub use options::{OptionsError, Role};
pub use source::{Acks, Source};
