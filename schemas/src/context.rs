//! What a decoder needs to know besides the message: the time of receipt,
//! the limits on event times and the LoRaWAN applications.

use crate::application::Applications;
use crate::domain::Domain;
use crate::reading::Timestamp;
use crate::time::TimeLimits;

/// The environment of one decode call.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// When the message was received; the reference for relative and missing times.
    pub now: Timestamp,
    /// How far event times may stray from `now`.
    pub limits: &'a TimeLimits,
    /// LoRaWAN applications.
    pub applications: &'a Applications,
}

/// The device a native or SenML message is about, from its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// Domain level of the topic.
    pub domain: Domain,
    /// Commune level of the topic.
    pub commune: &'a str,
    /// Device level of the topic.
    pub device: &'a str,
}
