//! Uplinks of The Things Stack v3 (MQTT integration, `.../up`): the device is
//! `end_device_ids.device_id`, the decoded payload
//! `uplink_message.decoded_payload`, the gateways `uplink_message.rx_metadata`.
//! The Things Stack leaves empty fields out, so every field is optional here
//! except the device id.

use serde::Deserialize;

use super::{
    mismatch, parse, scan_leaf, scan_leaves, unknown_application, Gateway, Gateways, Leaf, Obj,
    Raw, Seen, Server, Uplink,
};
use crate::context::Context;
use crate::json::Scalar;
use crate::reading::Reading;
use crate::rejection::{Fault, Reason};
use crate::scan::{FlatObject, Next};
use crate::topic::check_id;

const DEVICE_ID: &str = "end_device_ids.device_id";
const APPLICATION_ID: &str = "end_device_ids.application_ids.application_id";

#[derive(Debug, PartialEq, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    end_device_ids: Obj<DeviceIds<'a>>,
    #[serde(borrow, default)]
    received_at: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    uplink_message: Obj<UplinkMessage<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct DeviceIds<'a> {
    #[serde(borrow, default)]
    device_id: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    application_ids: Obj<ApplicationIds<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct ApplicationIds<'a> {
    #[serde(borrow, default)]
    application_id: Option<Leaf<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct UplinkMessage<'a> {
    #[serde(borrow, default)]
    decoded_payload: Option<Raw<'a>>,
    #[serde(borrow, default)]
    rx_metadata: Gateways<RxMetadata<'a>>,
    #[serde(borrow, default)]
    received_at: Option<Leaf<'a>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct RxMetadata<'a> {
    #[serde(borrow, default)]
    rssi: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    channel_rssi: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    snr: Option<Leaf<'a>>,
}

impl Gateway for RxMetadata<'_> {
    const LIST: &'static str = "uplink_message.rx_metadata";

    fn rssi(&self) -> Option<(&'static str, &Scalar<'_>)> {
        match (&self.rssi, &self.channel_rssi) {
            (Some(rssi), _) => Some(("rssi", &rssi.0)),
            (None, Some(channel)) => Some(("channel_rssi", &channel.0)),
            (None, None) => None,
        }
    }

    fn snr(&self) -> Option<&Scalar<'_>> {
        self.snr.as_ref().map(|l| &l.0)
    }
}

/// [`decode_tts_text`] for a payload whose text is not checked yet.
#[cfg(test)]
pub(crate) fn decode_tts(
    payload: &[u8],
    application: &str,
    device: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let text = std::str::from_utf8(payload).ok();
    decode_tts_text(payload, text, application, device, ctx, out)
}

/// Decodes an uplink of `v3/{application}[@{tenant}]/devices/{device}/up` into
/// one reading appended to `out`; returns how many decoded-payload keys map to
/// no attribute. On error nothing is appended. `text` is the payload when it
/// is UTF-8, as the format sniffer found.
pub(crate) fn decode_tts_text(
    payload: &[u8],
    text: Option<&str>,
    application: &str,
    device: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let scanned = text.and_then(scan_envelope);
    let envelope = match scanned {
        Some(envelope) => envelope,
        None => match parse::<Obj<Envelope<'_>>>(payload)? {
            Obj::Present(envelope) => envelope,
            Obj::Absent => return Err(not_an_object("null")),
            Obj::Wrong(kind) => return Err(not_an_object(kind)),
        },
    };
    let ids = envelope.end_device_ids.get("end_device_ids")?;
    let id = ids
        .and_then(|ids| ids.device_id.as_ref())
        .ok_or_else(|| {
            Fault::new(
                Reason::MissingKey,
                format!("key `{DEVICE_ID}` is missing: it names the device"),
            )
        })?
        .text(DEVICE_ID)?;
    let id = check_id("key `end_device_ids.device_id`", id)?;
    if id != device {
        return Err(mismatch(DEVICE_ID, id, "device", device));
    }
    let application_ids = match ids {
        Some(ids) => ids.application_ids.get("end_device_ids.application_ids")?,
        None => None,
    };
    if let Some(leaf) = application_ids.and_then(|a| a.application_id.as_ref()) {
        let stated = leaf.text(APPLICATION_ID)?;
        if stated != application {
            return Err(mismatch(APPLICATION_ID, stated, "application", application));
        }
    }
    let app = ctx
        .applications
        .find(application)
        .ok_or_else(|| unknown_application(&format!("{application:?}")))?;
    let uplink = envelope.uplink_message.get("uplink_message")?;
    let radio = match uplink {
        Some(u) => u.rx_metadata.best()?,
        None => None,
    };
    Uplink {
        server: Server::TheThingsStack,
        application,
        app,
        device: id,
        payload: uplink.and_then(|u| u.decoded_payload).map(|raw| raw.0),
        times: [
            uplink
                .and_then(|u| u.received_at.as_ref())
                .map(|t| ("uplink_message.received_at", t)),
            envelope.received_at.as_ref().map(|t| ("received_at", t)),
        ],
        radio,
    }
    .finish(ctx, out)
}

/// Reads an envelope in its common shape with the scanner of
/// [`crate::scan`]: every key this decoder reads present at most once and of
/// the expected type (not null), no escape anywhere, numbers that convert
/// exactly. Gives the envelope `serde_json` would give, or `None` for
/// anything else, which is then parsed by `serde_json`.
fn scan_envelope(text: &str) -> Option<Envelope<'_>> {
    let mut s = FlatObject::open_str(text)?;
    let mut envelope = Envelope {
        end_device_ids: Obj::Absent,
        received_at: None,
        uplink_message: Obj::Absent,
    };
    let mut seen = Seen(0);
    while let Next::Key(key) = s.next_key()? {
        s.colon()?;
        match key {
            "end_device_ids" => {
                seen.once(0)?;
                envelope.end_device_ids = Obj::Present(scan_device_ids(&mut s)?);
            }
            "received_at" => {
                seen.once(1)?;
                envelope.received_at = Some(scan_leaf(&mut s)?);
            }
            "uplink_message" => {
                seen.once(2)?;
                envelope.uplink_message = Obj::Present(scan_uplink(&mut s)?);
            }
            _ => s.skip_value(1)?,
        }
    }
    s.close()?;
    Some(envelope)
}

fn scan_device_ids<'a>(s: &mut FlatObject<'a>) -> Option<DeviceIds<'a>> {
    let entered = s.enter(b'{')?;
    let mut ids = DeviceIds {
        device_id: None,
        application_ids: Obj::Absent,
    };
    let mut seen = Seen(0);
    while let Next::Key(key) = s.next_key()? {
        s.colon()?;
        match key {
            "device_id" => {
                seen.once(0)?;
                ids.device_id = Some(scan_leaf(s)?);
            }
            "application_ids" => {
                seen.once(1)?;
                let [application_id] =
                    scan_leaves(s, 3, |key| (key == "application_id").then_some(0))?;
                ids.application_ids = Obj::Present(ApplicationIds { application_id });
            }
            _ => s.skip_value(2)?,
        }
    }
    s.leave(entered);
    Some(ids)
}

fn scan_uplink<'a>(s: &mut FlatObject<'a>) -> Option<UplinkMessage<'a>> {
    let entered = s.enter(b'{')?;
    let mut uplink = UplinkMessage {
        decoded_payload: None,
        rx_metadata: Gateways::default(),
        received_at: None,
    };
    let mut seen = Seen(0);
    while let Next::Key(key) = s.next_key()? {
        s.colon()?;
        match key {
            "decoded_payload" => {
                seen.once(0)?;
                if s.peek_value()? == b'n' {
                    return None;
                }
                let from = s.offset();
                s.skip_value(2)?;
                uplink.decoded_payload = Some(Raw(s.slice(from, s.offset())?));
            }
            "rx_metadata" => {
                seen.once(1)?;
                let list = s.enter(b'[')?;
                let mut index = 0;
                while s.next_element()? {
                    let gateway = scan_gateway(s)?;
                    uplink.rx_metadata.consider(&Obj::Present(gateway), index);
                    index += 1;
                }
                s.leave(list);
            }
            "received_at" => {
                seen.once(2)?;
                uplink.received_at = Some(scan_leaf(s)?);
            }
            _ => s.skip_value(2)?,
        }
    }
    s.leave(entered);
    Some(uplink)
}

fn scan_gateway<'a>(s: &mut FlatObject<'a>) -> Option<RxMetadata<'a>> {
    let [rssi, channel_rssi, snr] = scan_leaves(s, 4, |key| match key {
        "rssi" => Some(0),
        "channel_rssi" => Some(1),
        "snr" => Some(2),
        _ => None,
    })?;
    Some(RxMetadata {
        rssi,
        channel_rssi,
        snr,
    })
}

fn not_an_object(kind: &str) -> Fault {
    Fault::new(
        Reason::UnknownFormat,
        format!("an uplink of The Things Stack is a JSON object; found {kind}"),
    )
}

#[cfg(test)]
mod scan_tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::{parse, scan_envelope, Envelope, Obj};
    use crate::lorawan::tests::{
        edited_fixture, json_value, mutated_fixture, TTS_LIGHTING, TTS_WASTE,
    };

    /// Whatever the scanner reads, `serde_json` reads the same.
    fn same_as_serde(payload: &[u8]) -> Result<bool, TestCaseError> {
        let Some(fast) = std::str::from_utf8(payload).ok().and_then(scan_envelope) else {
            return Ok(false);
        };
        let serde = parse::<Obj<Envelope<'_>>>(payload);
        prop_assert_eq!(
            serde.ok(),
            Some(Obj::Present(fast)),
            "{}",
            String::from_utf8_lossy(payload)
        );
        Ok(true)
    }

    fn edited() -> impl Strategy<Value = Vec<u8>> {
        edited_fixture(
            vec![TTS_WASTE, TTS_LIGHTING],
            &["\"rssi\": 3,", "\"device_id\": \"x\",", "\"snr\":"],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn the_scanner_reads_what_serde_reads(payload in prop_oneof![
            mutated_fixture(),
            edited(),
            json_value().prop_map(|v| serde_json::to_vec(
                &json!({ "end_device_ids": { "device_id": "d" }, "uplink_message": v })
            ).expect("serialisable")),
        ]) {
            same_as_serde(&payload)?;
        }
    }

    /// The property above proves little unless the scanner reads many cases.
    #[test]
    fn edited_fixtures_often_take_the_scanner() -> Result<(), TestCaseError> {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = prop_oneof![mutated_fixture(), edited()];
        let mut scanned = 0;
        for _ in 0..1000 {
            let payload = strategy.new_tree(&mut runner).expect("a case").current();
            scanned += usize::from(same_as_serde(&payload)?);
        }
        assert!((200..900).contains(&scanned), "{scanned} of 1000 scanned");
        Ok(())
    }

    #[test]
    fn the_fixtures_take_the_scanner() -> Result<(), TestCaseError> {
        for fixture in [TTS_WASTE, TTS_LIGHTING] {
            assert!(same_as_serde(fixture.as_bytes())?, "{fixture}");
        }
        Ok(())
    }

    #[test]
    fn the_scanner_gives_up_on_what_it_does_not_read() {
        for payload in [
            r#"{"end_device_ids": {"device_id": "a", "device_id": "a"}}"#,
            r#"{"received_at": null}"#,
            r#"{"received_at": "a\"b"}"#,
            r#"{"uplink_message": {"decoded_payload": null}}"#,
            r#"{"uplink_message": {"rx_metadata": [null]}}"#,
            r#"{"uplink_message": []}"#,
            r#"{"x": 1e400}"#,
            r#"{"uplink_message": {}} x"#,
        ] {
            assert_eq!(scan_envelope(payload), None, "{payload}");
        }
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::decode_tts;
    use crate::attribute::{Attribute, Value};
    use crate::domain::Domain;
    use crate::lorawan::tests::{applications, at, edit, run, TTS_LIGHTING, TTS_WASTE};
    use crate::reading::{Reading, TimeSource};
    use crate::rejection::{Fault, Reason};
    use crate::topic::Topic;

    const APP: &str = "rabat-waste";
    const DEVICE: &str = "bin-rabat-agdal-017";

    fn decode(payload: &[u8]) -> (Result<u32, Fault>, Vec<Reading>) {
        run(decode_tts, &applications(None), payload, APP, DEVICE)
    }

    fn one(payload: &[u8]) -> (u32, Reading) {
        let (result, mut out) = decode(payload);
        let unknown = result.expect("accepted");
        assert_eq!(out.len(), 1);
        (unknown, out.remove(0))
    }

    fn rejected(payload: &[u8]) -> Fault {
        let (result, out) = decode(payload);
        assert!(out.is_empty(), "{out:?}");
        result.expect_err("rejected")
    }

    #[rstest]
    #[case::cloud("v3/rabat-waste@ttn/devices/bin-rabat-agdal-017/up")]
    #[case::open_source("v3/rabat-waste/devices/bin-rabat-agdal-017/up")]
    fn the_waste_fixture_decodes(#[case] topic: &str) {
        let Ok(Topic::TheThingsStack {
            application,
            device,
            ..
        }) = Topic::parse(topic)
        else {
            panic!("{topic} is a The Things Stack topic");
        };
        let (result, out) = run(
            decode_tts,
            &applications(None),
            TTS_WASTE.as_bytes(),
            application,
            device,
        );
        assert_eq!(result, Ok(2), "tilt and battery_mv map to no attribute");
        let [r] = out.as_slice() else {
            panic!("one reading: {out:?}");
        };
        assert_eq!(
            (r.domain, r.commune.as_str(), r.device.as_str()),
            (Domain::Waste, "rabat", DEVICE)
        );
        assert_eq!(r.time, at("2026-11-28T21:14:05.640Z"));
        assert_eq!(r.time_source, TimeSource::Observed);
        assert_eq!(
            (r.lane, r.period_s, r.district.as_deref()),
            (None, None, None)
        );
        let values: Vec<_> = r.values.iter().collect();
        assert_eq!(
            values,
            [
                (Attribute::Rssi, Value::Number(-97.0)),
                (Attribute::Snr, Value::Number(7.25)),
                (Attribute::FillingLevel, Value::Number(0.83)),
                (Attribute::Temperature, Value::Number(24.5)),
            ]
        );
    }

    #[test]
    fn the_streetlight_fixture_decodes_by_convention() {
        let (result, out) = run(
            decode_tts,
            &applications(None),
            TTS_LIGHTING.as_bytes(),
            "casablanca-lighting",
            "lamp-casa-maarif-0412",
        );
        assert_eq!(result, Ok(1), "lux maps to no attribute");
        let r = &out[0];
        assert_eq!(
            (r.domain, r.commune.as_str()),
            (Domain::Lighting, "casablanca")
        );
        assert_eq!(r.time, at("2026-11-28T21:12:30.029Z"));
        let v = &r.values;
        assert_eq!(v.symbol(Attribute::PowerState), Some("on"));
        assert_eq!(v.symbol(Attribute::LampStatus), Some("ok"));
        assert_eq!(v.number(Attribute::IlluminanceLevel), Some(0.7));
        assert_eq!(v.number(Attribute::PowerConsumption), Some(84.5));
        assert_eq!(v.number(Attribute::EnergyConsumed), Some(1532.25));
        // The first gateway's channel_rssi ties the second's rssi; the better SNR wins.
        assert_eq!(v.number(Attribute::Rssi), Some(-101.0));
        assert_eq!(v.number(Attribute::Snr), Some(6.5));
        assert_eq!(v.len(), 9);
    }

    #[rstest]
    #[case::decoded_instant(
        "/uplink_message/decoded_payload/dateObserved",
        Some(r#""2026-11-28T21:10:00+01:00""#),
        "2026-11-28T20:10:00Z",
        None
    )]
    #[case::decoded_epoch_ms(
        "/uplink_message/decoded_payload/dateObserved",
        Some("1795900000000"),
        "2026-11-28T21:06:40Z",
        None
    )]
    #[case::decoded_epoch_s(
        "/uplink_message/decoded_payload/dateObserved",
        Some("1795900000.5"),
        "2026-11-28T21:06:40.5Z",
        None
    )]
    #[case::envelope(
        "/uplink_message/received_at",
        None,
        "2026-11-28T21:14:05.812345678Z",
        None
    )]
    fn the_time_comes_from_the_payload_then_the_network(
        #[case] pointer: &str,
        #[case] value: Option<&str>,
        #[case] expected: &str,
        #[case] period_s: Option<u32>,
    ) {
        let (_, r) = one(&edit(TTS_WASTE, pointer, value));
        assert_eq!(r.time, at(expected));
        assert_eq!(r.period_s, period_s);
        assert_eq!(r.time_source, TimeSource::Observed);
    }

    #[rstest]
    #[case::one_key(
        r#""dateObserved": "2026-11-28T21:00:00Z/2026-11-28T21:10:00Z""#,
        Ok(600)
    )]
    #[case::two_keys(
        r#""dateObservedFrom": "2026-11-28T21:00:00Z", "dateObservedTo": 1795900100"#,
        Ok(500)
    )]
    #[case::both_forms(r#""dateObserved": "2026-11-28T21:00:00Z/2026-11-28T21:10:00Z", "dateObservedFrom": "2026-11-28T21:00:00Z", "dateObservedTo": "2026-11-28T21:10:00Z""#, Err(Reason::InvalidInterval))]
    #[case::reversed(
        r#""dateObserved": "2026-11-28T21:10:00Z/2026-11-28T21:00:00Z""#,
        Err(Reason::InvalidInterval)
    )]
    #[case::half(r#""dateObservedTo": "2026-11-28T21:10:00Z""#, Err(Reason::MissingKey))]
    fn traffic_intervals(#[case] keys: &str, #[case] expected: Result<u32, Reason>) {
        let payload = format!(
            r#"{{"end_device_ids": {{"device_id": "{DEVICE}"}},
                "uplink_message": {{"decoded_payload": {{"intensity": 4, {keys}}},
                "received_at": "2026-11-28T21:14:00Z"}}}}"#
        );
        let (result, out) = run(
            decode_tts,
            &applications(None),
            payload.as_bytes(),
            "rabat-traffic",
            DEVICE,
        );
        match expected {
            Ok(period_s) => {
                assert_eq!(result, Ok(0));
                assert_eq!(out[0].time, at("2026-11-28T21:00:00Z"));
                assert_eq!(out[0].period_s, Some(period_s));
            }
            Err(reason) => {
                assert!(out.is_empty());
                let fault = result.expect_err("rejected");
                assert_eq!(fault.reason, reason, "{}", fault.message);
                assert!(fault.message.contains("dateObserved"), "{}", fault.message);
            }
        }
    }

    #[test]
    fn interval_keys_are_unknown_outside_traffic() {
        let payload = edit(
            TTS_WASTE,
            "/uplink_message/decoded_payload/dateObservedFrom",
            Some(r#""2026-11-28T21:00:00Z""#),
        );
        let (unknown, r) = one(&payload);
        assert_eq!(unknown, 3);
        assert_eq!(r.period_s, None);
    }

    #[test]
    fn without_any_time_the_reading_is_stamped_on_receipt() {
        let payload = edit(TTS_WASTE, "/uplink_message/received_at", None);
        let payload = edit(
            std::str::from_utf8(&payload).expect("UTF-8"),
            "/received_at",
            None,
        );
        let (_, r) = one(&payload);
        assert_eq!(r.time, at("2026-11-28T21:15:00Z"));
        assert_eq!(r.time_source, TimeSource::Received);
    }

    #[test]
    fn radio_metadata_is_optional() {
        let (_, r) = one(&edit(TTS_WASTE, "/uplink_message/rx_metadata", None));
        assert_eq!(r.values.get(Attribute::Rssi), None);
        assert_eq!(r.values.get(Attribute::Snr), None);
        assert_eq!(r.values.len(), 2);
    }

    #[rstest]
    #[case::channel_rssi_fallback(r#"[{"channel_rssi": -80}, {"rssi": -90, "snr": 12}]"#, -80.0, None)]
    #[case::snr_breaks_ties(r#"[{"rssi": -90, "snr": 1}, {"rssi": -90, "snr": 3}, {"rssi": -90}]"#, -90.0, Some(3.0))]
    #[case::gateways_without_rssi_are_skipped(r#"[{"snr": 9}, {"rssi": -120, "snr": -2}]"#, -120.0, Some(-2.0))]
    fn the_best_gateway_is_kept(
        #[case] gateways: &str,
        #[case] rssi: f64,
        #[case] snr: Option<f64>,
    ) {
        let (_, r) = one(&edit(
            TTS_WASTE,
            "/uplink_message/rx_metadata",
            Some(gateways),
        ));
        assert_eq!(r.values.number(Attribute::Rssi), Some(rssi));
        assert_eq!(r.values.number(Attribute::Snr), snr);
    }

    #[rstest]
    #[case::not_json(None, "{", Reason::InvalidJson, "not valid JSON")]
    #[case::empty(None, "", Reason::EmptyPayload, "empty")]
    #[case::array(None, "[]", Reason::UnknownFormat, "found an array")]
    #[case::null(None, "null", Reason::UnknownFormat, "found null")]
    #[case::ids_not_an_object(
        Some("/end_device_ids"),
        r#""bin""#,
        Reason::WrongType,
        "key `end_device_ids`"
    )]
    #[case::device_id_missing(
        Some("/end_device_ids/device_id"),
        "-",
        Reason::MissingKey,
        "key `end_device_ids.device_id`"
    )]
    #[case::device_id_null(
        Some("/end_device_ids/device_id"),
        "null",
        Reason::MissingKey,
        "key `end_device_ids.device_id`"
    )]
    #[case::device_id_number(
        Some("/end_device_ids/device_id"),
        "17",
        Reason::WrongType,
        "key `end_device_ids.device_id`: 17 (a number)"
    )]
    #[case::device_id_invalid(
        Some("/end_device_ids/device_id"),
        r#""bin 17""#,
        Reason::InvalidValue,
        "key `end_device_ids.device_id`"
    )]
    #[case::device_id_mismatch(Some("/end_device_ids/device_id"), r#""bin-18""#, Reason::IdMismatch, "key `end_device_ids.device_id`: \"bin-18\" differs from the topic's device \"bin-rabat-agdal-017\"")]
    #[case::application_mismatch(
        Some("/end_device_ids/application_ids/application_id"),
        r#""sale-waste""#,
        Reason::IdMismatch,
        "key `end_device_ids.application_ids.application_id`"
    )]
    #[case::application_id_number(
        Some("/end_device_ids/application_ids/application_id"),
        "1",
        Reason::WrongType,
        "key `end_device_ids.application_ids.application_id`"
    )]
    #[case::duplicate_envelope_key(
        None,
        r#"{"end_device_ids": {"device_id": "a", "device_id": "b"}}"#,
        Reason::DuplicateKey,
        "device_id"
    )]
    #[case::no_uplink_message(
        Some("/uplink_message"),
        "-",
        Reason::NoMeasurements,
        "no decoded payload (`uplink_message.decoded_payload`): configure a payload formatter"
    )]
    #[case::uplink_message_array(
        Some("/uplink_message"),
        "[]",
        Reason::WrongType,
        "key `uplink_message`"
    )]
    #[case::no_decoded_payload(
        Some("/uplink_message/decoded_payload"),
        "-",
        Reason::NoMeasurements,
        "the uplink has no decoded payload"
    )]
    #[case::only_unknown_keys(
        Some("/uplink_message/decoded_payload"),
        r#"{"tilt": true, "laneId": 2}"#,
        Reason::NoMeasurements,
        "holds no attribute of waste (2 keys map to none): configure a payload formatter"
    )]
    #[case::decoded_payload_array(
        Some("/uplink_message/decoded_payload"),
        "[83]",
        Reason::WrongType,
        "key `uplink_message.decoded_payload`: an array"
    )]
    #[case::decoded_payload_string(
        Some("/uplink_message/decoded_payload"),
        r#""UwAZAQ==""#,
        Reason::WrongType,
        "key `uplink_message.decoded_payload`"
    )]
    #[case::value_wrong_type(
        Some("/uplink_message/decoded_payload/temperature"),
        r#""warm""#,
        Reason::WrongType,
        "key `temperature`: \"warm\" (a string)"
    )]
    #[case::value_nested(
        Some("/uplink_message/decoded_payload/temperature"),
        r#"{"c": 3}"#,
        Reason::WrongType,
        "key `temperature`: an object"
    )]
    #[case::scaled_out_of_range(
        Some("/uplink_message/decoded_payload/fill_pct"),
        "120",
        Reason::OutOfRange,
        "key `fill_pct`: 120 (a number) is out of range"
    )]
    #[case::too_large(None, r#"{"end_device_ids": {"device_id": "bin-rabat-agdal-017"}, "uplink_message": {"decoded_payload": {"temperature": 1e309}}}"#, Reason::NotFinite, "key `temperature`")]
    #[case::same_attribute_twice(
        Some("/uplink_message/decoded_payload/fillingLevel"),
        "0.5",
        Reason::DuplicateKey,
        "fillingLevel is given twice"
    )]
    #[case::date_invalid(
        Some("/uplink_message/decoded_payload/dateObserved"),
        r#""yesterday""#,
        Reason::InvalidTimestamp,
        "key `dateObserved`"
    )]
    #[case::date_wrong_type(
        Some("/uplink_message/decoded_payload/dateObserved"),
        "true",
        Reason::InvalidTimestamp,
        "key `dateObserved`: true (a boolean)"
    )]
    #[case::date_in_future(
        Some("/uplink_message/decoded_payload/dateObserved"),
        r#""2026-11-28T22:00:00Z""#,
        Reason::TimestampInFuture,
        "key `dateObserved`"
    )]
    #[case::interval_outside_traffic(
        Some("/uplink_message/decoded_payload/dateObserved"),
        r#""2026-11-28T21:00:00Z/2026-11-28T21:10:00Z""#,
        Reason::InvalidTimestamp,
        "key `dateObserved`"
    )]
    #[case::network_time_invalid(
        Some("/uplink_message/received_at"),
        r#""soon""#,
        Reason::InvalidTimestamp,
        "key `uplink_message.received_at`"
    )]
    #[case::network_time_number(
        Some("/uplink_message/received_at"),
        "1795900000",
        Reason::WrongType,
        "key `uplink_message.received_at`"
    )]
    #[case::network_time_too_old(
        Some("/uplink_message/received_at"),
        r#""2026-10-01T00:00:00Z""#,
        Reason::TimestampTooOld,
        "key `uplink_message.received_at`"
    )]
    #[case::gateways_not_a_list(
        Some("/uplink_message/rx_metadata"),
        r#"{"rssi": -97}"#,
        Reason::WrongType,
        "key `uplink_message.rx_metadata`: an object"
    )]
    #[case::gateway_not_an_object(
        Some("/uplink_message/rx_metadata/1"),
        "-112",
        Reason::WrongType,
        "key `uplink_message.rx_metadata[1]`"
    )]
    #[case::rssi_wrong_type(
        Some("/uplink_message/rx_metadata/1/rssi"),
        r#""-112""#,
        Reason::WrongType,
        "key `uplink_message.rx_metadata[1].rssi`"
    )]
    #[case::snr_wrong_type(
        Some("/uplink_message/rx_metadata/0/snr"),
        "[]",
        Reason::WrongType,
        "key `uplink_message.rx_metadata[0].snr`"
    )]
    #[case::rssi_out_of_range(
        Some("/uplink_message/rx_metadata/0/rssi"),
        "60",
        Reason::OutOfRange,
        "key `uplink_message.rx_metadata[0].rssi`"
    )]
    #[case::snr_out_of_range(
        Some("/uplink_message/rx_metadata/0/snr"),
        "70",
        Reason::OutOfRange,
        "key `uplink_message.rx_metadata[0].snr`"
    )]
    fn rejections_name_the_key(
        #[case] pointer: Option<&str>,
        #[case] value: &str,
        #[case] reason: Reason,
        #[case] needle: &str,
    ) {
        let payload = match pointer {
            Some(p) => edit(TTS_WASTE, p, (value != "-").then_some(value)),
            None => value.as_bytes().to_vec(),
        };
        let fault = rejected(&payload);
        assert_eq!(fault.reason, reason, "{}", fault.message);
        assert!(fault.message.contains(needle), "{}", fault.message);
    }

    #[test]
    fn an_unknown_application_is_named() {
        let (result, out) = run(
            decode_tts,
            &applications(None),
            &edit(
                TTS_WASTE,
                "/end_device_ids/application_ids/application_id",
                Some(r#""parking-sensors""#),
            ),
            "parking-sensors",
            DEVICE,
        );
        assert!(out.is_empty());
        let fault = result.expect_err("unknown application");
        assert_eq!(fault.reason, Reason::UnknownApplication);
        for needle in ["\"parking-sensors\"", "configure", "{commune}-{domain}"] {
            assert!(fault.message.contains(needle), "{}", fault.message);
        }
    }

    #[test]
    fn the_application_id_may_be_left_out() {
        let payload = edit(TTS_WASTE, "/end_device_ids/application_ids", None);
        assert_eq!(one(&payload).0, 2);
    }

    #[test]
    fn a_traffic_uplink_carries_its_lane() {
        let payload = edit(
            TTS_WASTE,
            "/uplink_message/decoded_payload",
            Some(r#"{"laneId": 3, "intensity": 40, "congested": true}"#),
        );
        let (result, out) = run(
            decode_tts,
            &applications(None),
            &payload,
            "rabat-traffic",
            DEVICE,
        );
        // The fixture's application id differs from the topic's.
        assert_eq!(result.map_err(|f| f.reason), Err(Reason::IdMismatch));
        assert!(out.is_empty());
        let payload = edit(
            std::str::from_utf8(&payload).expect("UTF-8"),
            "/end_device_ids/application_ids",
            None,
        );
        let (result, out) = run(
            decode_tts,
            &applications(None),
            &payload,
            "rabat-traffic",
            DEVICE,
        );
        assert_eq!(result, Ok(0));
        assert_eq!(out[0].lane, Some(3));
        assert_eq!(out[0].values.boolean(Attribute::Congested), Some(true));
    }

    #[rstest]
    #[case::zero("0", Reason::OutOfRange)]
    #[case::fraction("1.5", Reason::OutOfRange)]
    #[case::string(r#""2""#, Reason::WrongType)]
    #[case::twice_is_a_duplicate("2, \"laneId\": 2", Reason::DuplicateKey)]
    fn lanes_are_integers_from_one(#[case] lane: &str, #[case] reason: Reason) {
        let payload = format!(
            r#"{{"end_device_ids": {{"device_id": "{DEVICE}"}},
                "uplink_message": {{"decoded_payload": {{"intensity": 4, "laneId": {lane}}}}}}}"#
        );
        let (result, out) = run(
            decode_tts,
            &applications(None),
            payload.as_bytes(),
            "rabat-traffic",
            DEVICE,
        );
        assert!(out.is_empty());
        let fault = result.expect_err("rejected");
        assert_eq!(fault.reason, reason, "{}", fault.message);
        assert!(fault.message.contains("laneId"), "{}", fault.message);
    }
}
