//! Wire formats: an [`Observation`] rendered as the (topic, payload) a
//! device or a network server would publish.
//!
//! - native JSON and SenML packs, here, on `city/{commune}/{domain}/{device}/telemetry`;
//! - `lorawan`: The Things Stack v3 and ChirpStack v4 uplinks, with the
//!   radio metadata of a [`Link`].
//!
//! Values are written in the contract's canonical units, so that decoding
//! gives back exactly the observed numbers.

mod lorawan;

use chrono::{DateTime, SecondsFormat, Utc};
use schemas::{Attribute, Domain, Format, Value};
use serde_json::{json, Map, Value as Json};

use crate::observation::{Observation, ObservedAt};

pub use lorawan::{dev_eui, GatewayRx, Link};

/// The native topic of a device.
pub fn native_topic(obs: &Observation) -> String {
    format!(
        "city/{}/{}/{}/telemetry",
        obs.commune, obs.domain, obs.device
    )
}

/// The LoRaWAN application of a commune's domain: `{commune}-{domain}`.
pub fn application(obs: &Observation) -> String {
    format!("{}-{}", obs.commune, obs.domain)
}

/// Renders an observation in a wire format as (topic, payload).
pub fn render(obs: &Observation, format: Format, link: &Link) -> (String, Vec<u8>) {
    match format {
        Format::Native => (native_topic(obs), to_bytes(&native(obs))),
        Format::Senml => (native_topic(obs), to_bytes(&senml(obs))),
        Format::TheThingsStack => lorawan::the_things_stack(obs, link),
        Format::ChirpStack => lorawan::chirpstack(obs, link),
    }
}

fn to_bytes(v: &Json) -> Vec<u8> {
    // Serialising a `serde_json::Value` cannot fail (string keys, finite numbers).
    serde_json::to_vec(v).unwrap_or_default()
}

/// An RFC 3339 instant in UTC, to the second.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An RFC 3339 instant in UTC with a given precision.
pub(crate) fn rfc3339_precise(t: DateTime<Utc>, precision: SecondsFormat) -> String {
    t.to_rfc3339_opts(precision, true)
}

/// The `dateObserved` value: an instant, or `start/end`.
pub(crate) fn date_observed(time: ObservedAt) -> String {
    match time {
        ObservedAt::Instant(t) => rfc3339(t),
        ObservedAt::Interval { start, end } => format!("{}/{}", rfc3339(start), rfc3339(end)),
    }
}

/// A number as JSON: whole numbers as integers (as devices send counts and
/// readings without decimals), anything else as a float.
pub(crate) fn number(v: f64) -> Json {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        Json::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number)
    }
}

fn value(v: Value) -> Json {
    match v {
        Value::Number(n) => number(n),
        Value::Symbol(s) => Json::from(s),
        Value::Bool(b) => Json::from(b),
    }
}

/// The observation's attributes (and lane and time) as a flat object under
/// Smart Data Models names: a native message, or a decoded LoRaWAN payload.
pub(crate) fn attributes(obs: &Observation) -> Map<String, Json> {
    let mut map = Map::new();
    map.insert("dateObserved".into(), Json::from(date_observed(obs.time)));
    if let Some(lane) = obs.lane {
        map.insert("laneId".into(), Json::from(lane));
    }
    for (attribute, v) in obs.values.iter() {
        map.insert(attribute.key().into(), value(v));
    }
    map
}

/// The Smart Data Models entity type of a domain.
pub const fn entity_type(domain: Domain) -> &'static str {
    match domain {
        Domain::Lighting => "Streetlight",
        Domain::Waste => "WasteContainer",
        Domain::Traffic => "TrafficFlowObserved",
    }
}

fn native(obs: &Observation) -> Json {
    let mut map = attributes(obs);
    map.insert("id".into(), Json::from(obs.device.as_str()));
    map.insert("type".into(), Json::from(entity_type(obs.domain)));
    Json::Object(map)
}

/// The SenML unit a canonical value is written in.
fn senml_unit(attribute: Attribute) -> Option<&'static str> {
    use schemas::unit::Unit as U;
    Some(match attribute.unit()? {
        U::Ratio => "/",
        U::Watt => "W",
        U::KilowattHour => "kWh",
        U::Volt => "V",
        U::Ampere => "A",
        U::Celsius => "Cel",
        U::MicrogramPerCubicMetre => "ug/m3",
        U::Kilogram => "kg",
        U::Metre => "m",
        U::KilometrePerHour => "km/h",
        U::Count => "count",
        U::Lux => "lx",
        U::DecibelMilliwatt => "dBm",
        U::Decibel => "dB",
    })
}

/// A SenML pack: base name `urn:dev:ow:{device}:`, base time the event time
/// (a traffic period's start; SenML has no period, so it is not sent).
fn senml(obs: &Observation) -> Json {
    let mut records = Vec::with_capacity(obs.values.len() + 1);
    if let Some(lane) = obs.lane {
        records.push(json!({ "n": "laneId", "v": lane }));
    }
    for (attribute, v) in obs.values.iter() {
        let mut record = Map::new();
        record.insert("n".into(), Json::from(attribute.key()));
        match v {
            Value::Number(n) => {
                if let Some(u) = senml_unit(attribute) {
                    record.insert("u".into(), Json::from(u));
                }
                record.insert("v".into(), number(n));
            }
            Value::Symbol(s) => {
                record.insert("vs".into(), Json::from(s));
            }
            Value::Bool(b) => {
                record.insert("vb".into(), Json::from(b));
            }
        }
        records.push(Json::Object(record));
    }
    if let Some(Json::Object(first)) = records.first_mut() {
        first.insert(
            "bn".into(),
            Json::from(format!("urn:dev:ow:{}:", obs.device)),
        );
        first.insert("bt".into(), Json::from(obs.time.event_time().timestamp()));
    }
    Json::Array(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lamp() -> Observation {
        let at = "2026-11-28T19:30:00Z".parse().expect("RFC 3339");
        let mut obs = Observation::new(
            Domain::Lighting,
            "chefchaouen",
            "lamp-chefchaouen-00007",
            ObservedAt::Instant(at),
        );
        obs.symbol(Attribute::PowerState, "on");
        obs.number(Attribute::IlluminanceLevel, 0.5);
        obs.number(Attribute::PowerConsumption, 42.0);
        obs
    }

    #[test]
    fn native_and_senml_look_like_the_contract() {
        let obs = lamp();
        let (topic, payload) = render(&obs, Format::Native, &Link::default());
        assert_eq!(
            topic,
            "city/chefchaouen/lighting/lamp-chefchaouen-00007/telemetry"
        );
        let parsed = |bytes: &[u8]| serde_json::from_slice::<Json>(bytes).expect("JSON");
        assert_eq!(
            parsed(&payload),
            json!({
                "dateObserved": "2026-11-28T19:30:00Z", "id": "lamp-chefchaouen-00007",
                "illuminanceLevel": 0.5, "powerConsumption": 42, "powerState": "on",
                "type": "Streetlight"
            })
        );
        let (_, payload) = render(&obs, Format::Senml, &Link::default());
        assert_eq!(
            parsed(&payload),
            json!([
                { "bn": "urn:dev:ow:lamp-chefchaouen-00007:", "bt": 1_795_894_200_i64, "n": "powerState", "vs": "on" },
                { "n": "illuminanceLevel", "u": "/", "v": 0.5 },
                { "n": "powerConsumption", "u": "W", "v": 42 }
            ])
        );
    }
}
