//! Native JSON objects: one reading of the topic's device, keyed by Smart
//! Data Models attribute names.
//!
//! - [`entry`]: what each key means, checked in one place.
//! - [`fast_path`]: the common shape (a flat object without escapes) read
//!   in place by [`crate::scan`].
//! - [`serde_path`]: everything else, through `serde_json`, the reference
//!   for every result and message; the fast path hands over to it whenever
//!   it meets something it does not read.

mod entry;
mod fast_path;
mod serde_path;
#[cfg(test)]
mod tests;

use serde::de::IgnoredAny;

use crate::context::{Context, Target};
use crate::decode::Format;
use crate::domain::Domain;
use crate::observed::resolve;
use crate::reading::{Reading, TimeSource};
use crate::rejection::{Fault, Reason};
use entry::State;

/// What a native object turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A reading was appended; this many keys were unknown.
    Reading(u32),
    /// The object is a network server's uplink, not a native reading.
    Uplink(Format),
}

/// Top-level keys that mark a LoRaWAN network server's envelope.
pub(crate) fn uplink_key(key: &str) -> Option<Format> {
    match key {
        "end_device_ids" | "uplink_message" => Some(Format::TheThingsStack),
        "deviceInfo" => Some(Format::ChirpStack),
        _ => None,
    }
}

/// What reading an object's keys ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Every key was read.
    Object,
    /// A key marked a network server's uplink; reading stopped there.
    Uplink(Format),
}

/// Which reader to start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    /// The scanner, handing over to `serde_json` when it must.
    Fast,
    /// `serde_json` only.
    #[cfg_attr(not(test), allow(dead_code))]
    Serde,
}

/// Decodes a native object about the topic's device.
pub(crate) fn decode(
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<Outcome, Fault> {
    decode_with(Parser::Fast, payload, target, ctx, out)
}

fn decode_with(
    parser: Parser,
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<Outcome, Fault> {
    // The reading is built where it will stay, so that its values are never
    // copied; it is taken back unless the object is a valid reading.
    let at = out.len();
    out.resize_with(at + 1, || Reading::new(target.domain, "", "", ctx.now));
    let result = fill(parser, payload, target, ctx, &mut out[at]);
    if !matches!(result, Ok(Outcome::Reading(_))) {
        out.truncate(at);
    }
    result
}

fn fill(
    parser: Parser,
    payload: &[u8],
    target: Target<'_>,
    ctx: &Context<'_>,
    reading: &mut Reading,
) -> Result<Outcome, Fault> {
    let mut state = State::new(target, &mut reading.values);
    let fast = match parser {
        Parser::Fast => fast_path::read(payload, &mut state),
        Parser::Serde => None,
    };
    let read = fast.unwrap_or_else(|| {
        state.reset();
        serde_path::read(payload, &mut state)
    });
    if let Read::Uplink(format) = read? {
        return Ok(Outcome::Uplink(format));
    }

    let (time, period_s, source) = match resolve(state.date, state.from, state.to)? {
        Some(o) => {
            ctx.limits.check(o.key, o.start, ctx.now)?;
            (o.start, o.period_s, TimeSource::Observed)
        }
        None => (ctx.now, None, TimeSource::Received),
    };
    if state.values.is_empty() {
        return Err(Fault::new(
            Reason::NoMeasurements,
            format!(
                "the object holds no attribute of {}; expected keys such as {}",
                target.domain,
                example_keys(target.domain)
            ),
        ));
    }
    let (lane, unknown) = (state.lane, state.unknown);
    // Fresh strings of the right size: the reading's are empty, with no
    // allocation to reuse.
    reading.commune = String::from(target.commune);
    reading.device = String::from(target.device);
    reading.time = time;
    reading.time_source = source;
    reading.period_s = period_s;
    reading.lane = lane;
    Ok(Outcome::Reading(unknown))
}

fn example_keys(domain: Domain) -> &'static str {
    match domain {
        Domain::Lighting => "powerState, powerConsumption, illuminanceLevel",
        Domain::Waste => "fillingLevel, temperature, status",
        Domain::Traffic => "intensity, occupancy, averageVehicleSpeed",
    }
}

/// Skips a JSON value; used to tell a scalar payload from broken JSON.
pub(crate) fn is_json(payload: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(payload).is_ok()
}
