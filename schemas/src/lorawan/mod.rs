//! LoRaWAN network servers: uplinks of The Things Stack v3 and ChirpStack v4,
//! each decoded into one [`Reading`].
//!
//! - [`tts`], The Things Stack: `v3/{application}[@{tenant}]/devices/{device}/up`.
//! - [`chirpstack`], ChirpStack: `application/{application}/device/{dev_eui}/event/up`.
//! - [`payload`], the decoded payload (`decoded_payload`, `object`), walked once
//!   the application and its field map are known.
//! - this module: the envelope pieces both servers share, the choice of the best
//!   gateway and the assembly of the reading.
//!
//! Envelopes are read with serde derive into borrowed fields, skipping everything
//! else. Every leaf is a [`Leaf`] and every nested object an [`Obj`]: both accept
//! any JSON type, so that a wrong type becomes a fault naming its key instead of a
//! bare parser error. The decoded payload is kept as raw JSON until the
//! application is known, then walked once without building a tree.

mod chirpstack;
mod payload;
mod tts;

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::application::AppRef;
use crate::attribute::Attribute;
use crate::context::Context;
use crate::json::{parse_fault, value_fault, wrong_type, Scalar};
use crate::reading::{Reading, TimeSource};
use crate::rejection::{Fault, Reason};
use crate::scan::{FlatObject, Next};
use crate::time::parse_rfc3339;

#[cfg(test)]
pub(crate) use chirpstack::decode_chirpstack;
pub(crate) use chirpstack::decode_chirpstack_text;
#[cfg(test)]
pub(crate) use tts::decode_tts;
pub(crate) use tts::decode_tts_text;

/// Parses an envelope. Valid UTF-8 (nearly every payload) is parsed as text,
/// which spares the parser a second UTF-8 check of every key and string it
/// borrows; anything else is parsed as bytes, which reports where it breaks.
fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, Fault> {
    match std::str::from_utf8(payload) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(payload),
    }
    .map_err(|err| envelope_fault(&err))
}

/// The fault for a parser error in an envelope. Derived structs report a
/// repeated key as an error of their own, which becomes a duplicate-key fault.
fn envelope_fault(err: &serde_json::Error) -> Fault {
    let text = err.to_string();
    if text.starts_with("duplicate field") {
        return Fault::new(
            Reason::DuplicateKey,
            format!("a key appears twice in one object: {text}"),
        );
    }
    parse_fault(err, None)
}

/// The fault for a topic level and an envelope key that disagree.
fn mismatch(key: &str, found: &str, what: &str, topic: &str) -> Fault {
    Fault::new(
        Reason::IdMismatch,
        format!("key `{key}`: {found:?} differs from the topic's {what} {topic:?}"),
    )
}

/// The fault for an application that neither the configuration nor the naming
/// convention knows.
fn unknown_application(shown: &str) -> Fault {
    Fault::new(
        Reason::UnknownApplication,
        format!(
            "application {shown} is not configured: configure it under `applications` \
             with its commune and domain, or name it {{commune}}-{{domain}} (e.g. rabat-waste)"
        ),
    )
}

/// Any JSON value in an envelope, read without failing on its type.
#[derive(Debug, PartialEq)]
struct Leaf<'a>(Scalar<'a>);

/// A JSON value kept as its text (what a `RawValue` holds), to be read later.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Raw<'a>(&'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'de RawValue>::deserialize(d).map(|raw| Raw(raw.get()))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Leaf<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Scalar::deserialize(d).map(Leaf)
    }
}

impl Leaf<'_> {
    /// The value as a string, or a fault naming `key`.
    fn text(&self, key: &str) -> Result<&str, Fault> {
        match &self.0 {
            Scalar::Str(s) => Ok(s),
            other => Err(wrong_type(key, &other.describe(), "a string")),
        }
    }
}

/// A nested object of an envelope: absent (or null), present, or some other
/// JSON type, which is kept as the name of that type.
#[derive(Debug, Default, PartialEq)]
enum Obj<T> {
    #[default]
    Absent,
    Present(T),
    Wrong(&'static str),
}

impl<T> Obj<T> {
    /// The object, if present; a fault naming `key` if it is not an object.
    fn get(&self, key: &str) -> Result<Option<&T>, Fault> {
        match self {
            Obj::Absent => Ok(None),
            Obj::Present(t) => Ok(Some(t)),
            Obj::Wrong(kind) => Err(wrong_type(key, kind, "an object")),
        }
    }
}

/// Reads an [`Obj`]: objects are handed to `T`, other types are named.
struct ObjVisitor<T>(PhantomData<fn() -> T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Obj::Absent)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Obj::Absent)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj::Wrong("a string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj::Wrong("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Present)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(PhantomData))
    }
}

/// One entry of a gateway list (`rx_metadata`, `rxInfo`).
trait Gateway {
    /// Where the list is in the uplink, for messages.
    const LIST: &'static str;
    /// The received signal strength and the key it was read from.
    fn rssi(&self) -> Option<(&'static str, &Scalar<'_>)>;
    /// The signal to noise ratio.
    fn snr(&self) -> Option<&Scalar<'_>>;
}

/// The radio metadata of one gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Signal {
    rssi: f64,
    snr: Option<f64>,
    /// Position in the list, for messages.
    index: usize,
    /// The key `rssi` was read from, for messages.
    rssi_key: &'static str,
    /// The list, for messages.
    list: &'static str,
}

impl Signal {
    /// Whether this gateway heard the device better: higher RSSI, then higher SNR.
    fn beats(&self, other: &Signal) -> bool {
        let snr = |s: &Signal| s.snr.unwrap_or(f64::NEG_INFINITY);
        self.rssi > other.rssi || (self.rssi == other.rssi && snr(self) > snr(other))
    }

    /// Sets the RSSI and SNR, validated through their attributes.
    fn record(&self, values: &mut crate::reading::Values) -> Result<(), Fault> {
        let mut set = |attribute: Attribute, key: &str, v: f64| {
            let value = attribute.number(v).map_err(|e| {
                let key = format!("{}[{}].{key}", self.list, self.index);
                value_fault(&key, attribute, &Scalar::Number(v).describe(), e)
            })?;
            values.set(attribute, value);
            Ok(())
        };
        set(Attribute::Rssi, self.rssi_key, self.rssi)?;
        match self.snr {
            Some(snr) => set(Attribute::Snr, "snr", snr),
            None => Ok(()),
        }
    }
}

/// A gateway list, reduced while it is read to the best gateway, or to the
/// first fault found in it.
#[derive(Debug, PartialEq)]
struct Gateways<G> {
    best: Option<Signal>,
    fault: Option<Fault>,
    gateway: PhantomData<fn() -> G>,
}

impl<G> Default for Gateways<G> {
    fn default() -> Self {
        Self {
            best: None,
            fault: None,
            gateway: PhantomData,
        }
    }
}

impl<G: Gateway> Gateways<G> {
    /// The best gateway, if any entry reports a signal strength.
    fn best(&self) -> Result<Option<Signal>, Fault> {
        match &self.fault {
            Some(fault) => Err(fault.clone()),
            None => Ok(self.best),
        }
    }

    fn consider(&mut self, entry: &Obj<G>, index: usize) {
        if self.fault.is_some() {
            return;
        }
        match measure(entry, index) {
            Ok(Some(s)) if self.best.is_none_or(|b| s.beats(&b)) => self.best = Some(s),
            Ok(_) => {}
            Err(fault) => self.fault = Some(fault),
        }
    }
}

/// The signal of one list entry; `None` when it reports no signal strength.
fn measure<G: Gateway>(entry: &Obj<G>, index: usize) -> Result<Option<Signal>, Fault> {
    let key = |k: &str| format!("{}[{index}]{k}", G::LIST);
    let gateway = match entry {
        Obj::Absent => return Ok(None),
        Obj::Present(g) => g,
        Obj::Wrong(kind) => return Err(wrong_type(&key(""), kind, "an object")),
    };
    // The key is only formatted for a fault.
    let number = |k: &str, v: &Scalar<'_>| match v {
        Scalar::Number(n) => Ok(*n),
        other => Err(wrong_type(
            &key(&format!(".{k}")),
            &other.describe(),
            "a number",
        )),
    };
    let snr = gateway.snr().map(|v| number("snr", v)).transpose()?;
    let Some((rssi_key, rssi)) = gateway.rssi() else {
        return Ok(None);
    };
    Ok(Some(Signal {
        rssi: number(rssi_key, rssi)?,
        snr,
        index,
        rssi_key,
        list: G::LIST,
    }))
}

/// Reads a gateway list; anything but an array (or null) is a fault.
struct GatewaysVisitor<G>(PhantomData<fn() -> G>);

impl<G: Gateway> GatewaysVisitor<G> {
    fn wrong(kind: &str) -> Gateways<G> {
        Gateways {
            best: None,
            fault: Some(wrong_type(G::LIST, kind, "an array")),
            gateway: PhantomData,
        }
    }
}

impl<'de, G: Gateway + Deserialize<'de>> Visitor<'de> for GatewaysVisitor<G> {
    type Value = Gateways<G>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of gateways")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut gateways = Gateways::default();
        let mut index = 0;
        while let Some(entry) = seq.next_element::<Obj<G>>()? {
            gateways.consider(&entry, index);
            index += 1;
        }
        Ok(gateways)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Gateways::default())
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Gateways::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Self::wrong("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Self::wrong("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Self::wrong("a string"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::wrong("an object"))
    }
}

impl<'de, G: Gateway + Deserialize<'de>> Deserialize<'de> for Gateways<G> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GatewaysVisitor(PhantomData))
    }
}

/// Which network server an uplink came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    TheThingsStack,
    ChirpStack,
}

impl Server {
    /// Where the decoded payload is in the uplink.
    const fn payload_key(self) -> &'static str {
        match self {
            Server::TheThingsStack => "uplink_message.decoded_payload",
            Server::ChirpStack => "object",
        }
    }

    /// What decodes the frame payload on that server.
    const fn decoder(self) -> &'static str {
        match self {
            Server::TheThingsStack => "a payload formatter in The Things Stack",
            Server::ChirpStack => "a codec in the device profile in ChirpStack",
        }
    }
}

/// What both servers' envelopes come down to once read and checked.
struct Uplink<'u> {
    server: Server,
    /// The application id, for messages.
    application: &'u str,
    app: AppRef<'u>,
    device: &'u str,
    /// The decoded payload's JSON text.
    payload: Option<&'u str>,
    /// Times the network server stated, most preferred first, with their keys.
    times: [Option<(&'static str, &'u Leaf<'u>)>; 2],
    radio: Option<Signal>,
}

impl Uplink<'_> {
    /// Walks the decoded payload, settles the time and appends the reading.
    fn finish(self, ctx: &Context<'_>, out: &mut Vec<Reading>) -> Result<u32, Fault> {
        let payload_key = self.server.payload_key();
        let Some(raw) = self.payload else {
            return Err(Fault::new(
                Reason::NoMeasurements,
                format!(
                    "the uplink has no decoded payload (`{payload_key}`): configure {} \
                     for application {:?}",
                    self.server.decoder(),
                    self.application
                ),
            ));
        };
        let decoded = payload::walk(raw, payload_key, &self.app)?;
        if decoded.values.is_empty() {
            return Err(Fault::new(
                Reason::NoMeasurements,
                format!(
                    "the decoded payload (`{payload_key}`) holds no attribute of {} \
                     ({} keys map to none): configure {} that names them as the data \
                     contract does, or map them in the fields of application {:?}",
                    self.app.domain,
                    decoded.unknown,
                    self.server.decoder(),
                    self.application
                ),
            ));
        }
        let (time, time_source, period_s) = if let Some(o) = decoded.observed {
            let t = ctx.limits.check(o.key, o.start, ctx.now)?;
            (t, TimeSource::Observed, o.period_s)
        } else if let Some((key, leaf)) = self.times.into_iter().flatten().next() {
            let t = parse_rfc3339(key, leaf.text(key)?)?;
            (
                ctx.limits.check(key, t, ctx.now)?,
                TimeSource::Observed,
                None,
            )
        } else {
            (ctx.now, TimeSource::Received, None)
        };
        let mut values = decoded.values;
        if let Some(signal) = self.radio {
            signal.record(&mut values)?;
        }
        let mut reading = Reading::new(self.app.domain, self.app.commune, self.device, time);
        reading.time_source = time_source;
        reading.lane = decoded.lane;
        reading.period_s = period_s;
        reading.values = values;
        out.push(reading);
        Ok(decoded.unknown)
    }
}

/// The keys of an object read so far by a scanner fast path, to give up on
/// a repeated one (which `serde_json` reports).
struct Seen(u8);

impl Seen {
    fn once(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        Some(())
    }
}

/// A leaf that is not null (a null leaf is absent for `serde_json`).
fn scan_leaf<'a>(s: &mut FlatObject<'a>) -> Option<Leaf<'a>> {
    match s.scalar()? {
        Scalar::Null => None,
        scalar => Some(Leaf(scalar)),
    }
}

/// Reads an object whose wanted keys all hold leaves: `slot` gives a wanted
/// key's place in the result, and the other keys' values are skipped (the
/// object is `depth` levels deep). `None`, for `serde_json` to read it, when a
/// wanted key repeats or holds anything but a leaf other than null.
fn scan_leaves<'a, const N: usize>(
    s: &mut FlatObject<'a>,
    depth: u32,
    slot: impl Fn(&str) -> Option<u8>,
) -> Option<[Option<Leaf<'a>>; N]> {
    let entered = s.enter(b'{')?;
    let mut leaves = [const { None }; N];
    let mut seen = Seen(0);
    while let Next::Key(key) = s.next_key()? {
        s.colon()?;
        let Some(i) = slot(key) else {
            s.skip_value(depth)?;
            continue;
        };
        seen.once(i)?;
        *leaves.get_mut(usize::from(i))? = Some(scan_leaf(s)?);
    }
    s.leave(entered);
    Some(leaves)
}

#[cfg(test)]
mod tests;
