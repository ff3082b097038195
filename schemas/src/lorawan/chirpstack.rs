//! Uplinks of ChirpStack v4 (MQTT integration, `event/up`, JSON encoding):
//! the device is `deviceInfo.deviceName` or `deviceInfo.devEui`, the decoded
//! payload `object` (the device profile's codec output), the gateways `rxInfo`.

use serde::Deserialize;

use super::{
    mismatch, parse, unknown_application, Gateway, Gateways, Leaf, Obj, Raw, Server, Uplink,
};
use crate::context::Context;
use crate::json::Scalar;
use crate::reading::Reading;
use crate::rejection::{Fault, Reason};
use crate::topic::check_id;

const APPLICATION_ID: &str = "deviceInfo.applicationId";
const APPLICATION_NAME: &str = "deviceInfo.applicationName";
const DEVICE_NAME: &str = "deviceInfo.deviceName";
const DEV_EUI: &str = "deviceInfo.devEui";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    #[serde(borrow, default)]
    device_info: Obj<DeviceInfo<'a>>,
    #[serde(borrow, default)]
    time: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    object: Option<Raw<'a>>,
    #[serde(borrow, default)]
    rx_info: Gateways<RxInfo<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeviceInfo<'a> {
    #[serde(borrow, default)]
    application_id: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    application_name: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    device_name: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    dev_eui: Option<Leaf<'a>>,
}

#[derive(Debug, Deserialize)]
struct RxInfo<'a> {
    #[serde(borrow, default)]
    rssi: Option<Leaf<'a>>,
    #[serde(borrow, default)]
    snr: Option<Leaf<'a>>,
}

impl Gateway for RxInfo<'_> {
    const LIST: &'static str = "rxInfo";

    fn rssi(&self) -> Option<(&'static str, &Scalar<'_>)> {
        self.rssi.as_ref().map(|l| ("rssi", &l.0))
    }

    fn snr(&self) -> Option<&Scalar<'_>> {
        self.snr.as_ref().map(|l| &l.0)
    }
}

/// A string field, if given.
fn text<'l>(leaf: Option<&'l Leaf<'_>>, key: &str) -> Result<Option<&'l str>, Fault> {
    leaf.map(|l| l.text(key)).transpose()
}

/// Decodes an uplink of `application/{application}/device/{dev_eui}/event/up`
/// into one reading appended to `out`; returns how many decoded-payload keys
/// map to no attribute. On error nothing is appended.
pub(crate) fn decode_chirpstack(
    payload: &[u8],
    application: &str,
    dev_eui: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let event = match parse::<Obj<Event<'_>>>(payload)? {
        Obj::Present(event) => event,
        Obj::Absent => return Err(not_an_object("null")),
        Obj::Wrong(kind) => return Err(not_an_object(kind)),
    };
    let info = event.device_info.get("deviceInfo")?;
    let application_id = text(info.and_then(|i| i.application_id.as_ref()), APPLICATION_ID)?;
    if let Some(stated) = application_id {
        if stated != application {
            return Err(mismatch(APPLICATION_ID, stated, "application", application));
        }
    }
    let application_name = text(
        info.and_then(|i| i.application_name.as_ref()),
        APPLICATION_NAME,
    )?;
    let eui = text(info.and_then(|i| i.dev_eui.as_ref()), DEV_EUI)?;
    if let Some(stated) = eui {
        if !stated.eq_ignore_ascii_case(dev_eui) {
            return Err(mismatch(DEV_EUI, stated, "device EUI", dev_eui));
        }
    }
    let device = match (
        text(info.and_then(|i| i.device_name.as_ref()), DEVICE_NAME)?,
        eui,
    ) {
        (Some(name), _) => check_id("key `deviceInfo.deviceName`", name)?,
        (None, Some(eui)) => check_id("key `deviceInfo.devEui`", eui)?,
        (None, None) => check_id("device EUI level", dev_eui)?,
    };
    let app = ctx
        .applications
        .find(application)
        .or_else(|| application_name.and_then(|name| ctx.applications.find(name)))
        .ok_or_else(|| {
            unknown_application(&match application_name {
                Some(name) => format!("{application:?} (applicationName {name:?})"),
                None => format!("{application:?}"),
            })
        })?;
    Uplink {
        server: Server::ChirpStack,
        application,
        app,
        device,
        payload: event.object.map(|raw| raw.0),
        times: [event.time.as_ref().map(|t| ("time", t)), None],
        radio: event.rx_info.best()?,
    }
    .finish(ctx, out)
}

fn not_an_object(kind: &str) -> Fault {
    Fault::new(
        Reason::UnknownFormat,
        format!("an uplink event of ChirpStack is a JSON object; found {kind}"),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::decode_chirpstack;
    use crate::attribute::{Attribute, Value};
    use crate::domain::Domain;
    use crate::lorawan::tests::{applications, at, edit, run, CHIRPSTACK_TRAFFIC, TRAFFIC_APP_ID};
    use crate::reading::{Reading, TimeSource};
    use crate::rejection::{Fault, Reason};
    use crate::topic::Topic;

    const EUI: &str = "70b3d57ed0051a2f";

    fn decode(payload: &[u8], dev_eui: &str) -> (Result<u32, Fault>, Vec<Reading>) {
        run(
            decode_chirpstack,
            &applications(None),
            payload,
            TRAFFIC_APP_ID,
            dev_eui,
        )
    }

    fn one(payload: &[u8]) -> (u32, Reading) {
        let (result, mut out) = decode(payload, EUI);
        let unknown = result.expect("accepted");
        assert_eq!(out.len(), 1);
        (unknown, out.remove(0))
    }

    #[test]
    fn the_traffic_fixture_decodes_by_application_name() {
        let topic = format!("application/{TRAFFIC_APP_ID}/device/{EUI}/event/up");
        let Ok(Topic::ChirpStack {
            application,
            dev_eui,
        }) = Topic::parse(&topic)
        else {
            panic!("{topic} is a ChirpStack topic");
        };
        let (result, out) = run(
            decode_chirpstack,
            &applications(None),
            CHIRPSTACK_TRAFFIC.as_bytes(),
            application,
            dev_eui,
        );
        assert_eq!(result, Ok(1), "batteryVoltage maps to no attribute");
        let [r] = out.as_slice() else {
            panic!("one reading: {out:?}");
        };
        assert_eq!(
            (r.domain, r.commune.as_str(), r.device.as_str()),
            (
                Domain::Traffic,
                "rabat",
                "counter-rabat-avenue-fal-ould-oumeir-1"
            )
        );
        assert_eq!(r.time, at("2026-11-28T21:05:00Z"));
        assert_eq!(
            (r.time_source, r.period_s, r.lane),
            (TimeSource::Observed, Some(300), Some(2))
        );
        let values: Vec<_> = r.values.iter().collect();
        assert_eq!(
            values,
            [
                (Attribute::Rssi, Value::Number(-89.0)),
                (Attribute::Snr, Value::Number(9.5)),
                (Attribute::Intensity, Value::Number(118.0)),
                (Attribute::Occupancy, Value::Number(0.42)),
                (Attribute::AverageVehicleSpeed, Value::Number(23.5)),
                (Attribute::AverageVehicleLength, Value::Number(4.6)),
                (Attribute::Congested, Value::Bool(false)),
            ]
        );
    }

    #[test]
    fn the_application_id_is_resolved_first() {
        let payload = edit(
            CHIRPSTACK_TRAFFIC,
            "/object",
            Some(r#"{"vehicles": 12, "laneId": 1}"#),
        );
        let (result, out) = run(
            decode_chirpstack,
            &applications(Some(TRAFFIC_APP_ID)),
            &payload,
            TRAFFIC_APP_ID,
            EUI,
        );
        assert_eq!(result, Ok(0));
        let r = &out[0];
        assert_eq!(
            r.commune, "sale",
            "configured by id, not named rabat-traffic"
        );
        assert_eq!(r.values.number(Attribute::Intensity), Some(12.0));
        assert_eq!(
            r.time,
            at("2026-11-28T21:10:01.482913Z"),
            "the event's time"
        );
        assert_eq!(r.period_s, None);
    }

    #[test]
    fn the_device_eui_matches_in_any_case_and_names_an_unnamed_device() {
        let payload = edit(CHIRPSTACK_TRAFFIC, "/deviceInfo/deviceName", None);
        let (result, out) = decode(&payload, "70B3D57ED0051A2F");
        assert_eq!(result, Ok(1));
        assert_eq!(out[0].device, EUI);
        let payload = edit(CHIRPSTACK_TRAFFIC, "/deviceInfo", None);
        let (result, out) = decode(&payload, "70B3D57ED0051A2F");
        assert_eq!(
            result.map_err(|f| f.reason),
            Err(Reason::UnknownApplication)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn without_any_time_the_reading_is_stamped_on_receipt() {
        let payload = edit(CHIRPSTACK_TRAFFIC, "/object/dateObserved", None);
        let payload = edit(std::str::from_utf8(&payload).expect("UTF-8"), "/time", None);
        let (_, r) = one(&payload);
        assert_eq!(r.time, at("2026-11-28T21:15:00Z"));
        assert_eq!(r.time_source, TimeSource::Received);
    }

    #[rstest]
    #[case::no_gateways("/rxInfo", None, None, None)]
    #[case::one_gateway("/rxInfo/1", None, Some(-104.0), Some(2.8))]
    #[case::tie_on_rssi("/rxInfo/0/rssi", Some("-89"), Some(-89.0), Some(9.5))]
    #[case::higher_rssi_beats_snr("/rxInfo/0/rssi", Some("-88"), Some(-88.0), Some(2.8))]
    fn the_best_gateway_is_kept(
        #[case] pointer: &str,
        #[case] value: Option<&str>,
        #[case] rssi: Option<f64>,
        #[case] snr: Option<f64>,
    ) {
        let (_, r) = one(&edit(CHIRPSTACK_TRAFFIC, pointer, value));
        assert_eq!(r.values.number(Attribute::Rssi), rssi);
        assert_eq!(r.values.number(Attribute::Snr), snr);
    }

    #[rstest]
    #[case::not_json("", Some("{\"deviceInfo\":"), Reason::InvalidJson, "not valid JSON")]
    #[case::number("", Some("42"), Reason::UnknownFormat, "found a number")]
    #[case::device_info_list(
        "/deviceInfo",
        Some("[]"),
        Reason::WrongType,
        "key `deviceInfo`: an array"
    )]
    #[case::application_mismatch(
        "/deviceInfo/applicationId",
        Some(r#""0c1d""#),
        Reason::IdMismatch,
        "key `deviceInfo.applicationId`: \"0c1d\" differs from the topic's application"
    )]
    #[case::application_id_number(
        "/deviceInfo/applicationId",
        Some("7"),
        Reason::WrongType,
        "key `deviceInfo.applicationId`"
    )]
    #[case::application_name_object(
        "/deviceInfo/applicationName",
        Some("{}"),
        Reason::WrongType,
        "key `deviceInfo.applicationName`"
    )]
    #[case::dev_eui_mismatch(
        "/deviceInfo/devEui",
        Some(r#""70b3d57ed0051a30""#),
        Reason::IdMismatch,
        "key `deviceInfo.devEui`: \"70b3d57ed0051a30\" differs from the topic's device EUI"
    )]
    #[case::dev_eui_number(
        "/deviceInfo/devEui",
        Some("7"),
        Reason::WrongType,
        "key `deviceInfo.devEui`"
    )]
    #[case::device_name_invalid(
        "/deviceInfo/deviceName",
        Some(r#""Counter 1""#),
        Reason::InvalidValue,
        "key `deviceInfo.deviceName` \"Counter 1\""
    )]
    #[case::device_name_bool(
        "/deviceInfo/deviceName",
        Some("false"),
        Reason::WrongType,
        "key `deviceInfo.deviceName`"
    )]
    #[case::no_object(
        "/object",
        None,
        Reason::NoMeasurements,
        "the uplink has no decoded payload (`object`): configure a codec"
    )]
    #[case::null_object(
        "/object",
        Some("null"),
        Reason::NoMeasurements,
        "the uplink has no decoded payload"
    )]
    #[case::empty_object(
        "/object",
        Some("{}"),
        Reason::NoMeasurements,
        "holds no attribute of traffic (0 keys map to none): configure a codec"
    )]
    #[case::object_string("/object", Some(r#""AgB2""#), Reason::WrongType, "key `object`")]
    #[case::value_out_of_range(
        "/object/occupancy",
        Some("42"),
        Reason::OutOfRange,
        "key `occupancy`"
    )]
    #[case::lane_negative("/object/laneId", Some("-1"), Reason::OutOfRange, "key `laneId`")]
    #[case::interval_too_long(
        "/object/dateObserved",
        Some(r#""2026-11-28T19:00:00Z/2026-11-28T21:00:00Z""#),
        Reason::InvalidInterval,
        "key `dateObserved`"
    )]
    #[case::date_and_interval_half(
        "/object/dateObservedFrom",
        Some(r#""2026-11-28T21:00:00Z""#),
        Reason::InvalidInterval,
        "`dateObservedFrom`/`dateObservedTo` are both given"
    )]
    #[case::gateways_number("/rxInfo", Some("2"), Reason::WrongType, "key `rxInfo`: a number")]
    #[case::rssi_string(
        "/rxInfo/1/rssi",
        Some(r#""-89""#),
        Reason::WrongType,
        "key `rxInfo[1].rssi`"
    )]
    #[case::snr_out_of_range(
        "/rxInfo/1/snr",
        Some("-60"),
        Reason::OutOfRange,
        "key `rxInfo[1].snr`"
    )]
    fn rejections_name_the_key(
        #[case] pointer: &str,
        #[case] value: Option<&str>,
        #[case] reason: Reason,
        #[case] needle: &str,
    ) {
        let payload = if pointer.is_empty() {
            value.unwrap_or_default().as_bytes().to_vec()
        } else {
            edit(CHIRPSTACK_TRAFFIC, pointer, value)
        };
        let (result, out) = decode(&payload, EUI);
        assert!(out.is_empty(), "{out:?}");
        let fault = result.expect_err("rejected");
        assert_eq!(fault.reason, reason, "{}", fault.message);
        assert!(fault.message.contains(needle), "{}", fault.message);
    }

    #[test]
    fn the_event_time_is_read_only_when_the_payload_has_none() {
        let payload = edit(CHIRPSTACK_TRAFFIC, "/time", Some(r#""2026-13-01""#));
        assert_eq!(one(&payload).1.time, at("2026-11-28T21:05:00Z"));
        let payload = edit(
            std::str::from_utf8(&payload).expect("UTF-8"),
            "/object/dateObserved",
            None,
        );
        let (result, out) = decode(&payload, EUI);
        assert!(out.is_empty());
        let fault = result.expect_err("invalid event time");
        assert_eq!(fault.reason, Reason::InvalidTimestamp);
        assert!(fault.message.contains("key `time`"), "{}", fault.message);
    }

    #[test]
    fn both_interval_forms_are_rejected() {
        let payload = edit(
            CHIRPSTACK_TRAFFIC,
            "/object/dateObservedFrom",
            Some(r#""2026-11-28T21:00:00Z""#),
        );
        let payload = edit(
            std::str::from_utf8(&payload).expect("UTF-8"),
            "/object/dateObservedTo",
            Some(r#""2026-11-28T21:05:00Z""#),
        );
        let (result, _) = decode(&payload, EUI);
        let fault = result.expect_err("dateObserved is given too");
        assert_eq!(fault.reason, Reason::InvalidInterval, "{}", fault.message);
        assert!(
            fault.message.contains("dateObservedFrom"),
            "{}",
            fault.message
        );
    }

    #[test]
    fn an_unknown_application_names_id_and_name() {
        let payload = edit(
            CHIRPSTACK_TRAFFIC,
            "/deviceInfo/applicationName",
            Some(r#""Traffic counters""#),
        );
        let (result, out) = decode(&payload, EUI);
        assert!(out.is_empty());
        let fault = result.expect_err("unknown application");
        assert_eq!(fault.reason, Reason::UnknownApplication);
        for needle in [
            TRAFFIC_APP_ID,
            "\"Traffic counters\"",
            "configure",
            "{commune}-{domain}",
        ] {
            assert!(fault.message.contains(needle), "{}", fault.message);
        }
    }
}
