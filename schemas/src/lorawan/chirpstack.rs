//! Uplinks of ChirpStack v4 (MQTT integration, `event/up`, JSON encoding):
//! the device is `deviceInfo.deviceName` or `deviceInfo.devEui`, the decoded
//! payload `object` (the device profile's codec output), the gateways `rxInfo`.
//! An event of the common shape is read by the scanner of [`crate::scan`],
//! anything else by `serde_json`, as for The Things Stack; a property test
//! holds both to the same readings or the same fault.

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

const APPLICATION_ID: &str = "deviceInfo.applicationId";
const APPLICATION_NAME: &str = "deviceInfo.applicationName";
const DEVICE_NAME: &str = "deviceInfo.deviceName";
const DEV_EUI: &str = "deviceInfo.devEui";

#[derive(Debug, PartialEq, Deserialize)]
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

#[derive(Debug, PartialEq, Deserialize)]
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

#[derive(Debug, PartialEq, Deserialize)]
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

/// [`decode_chirpstack_text`] for a payload whose text is not checked yet.
#[cfg(test)]
pub(crate) fn decode_chirpstack(
    payload: &[u8],
    application: &str,
    dev_eui: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let text = std::str::from_utf8(payload).ok();
    decode_chirpstack_text(payload, text, application, dev_eui, ctx, out)
}

/// Decodes an uplink of `application/{application}/device/{dev_eui}/event/up`
/// into one reading appended to `out`; returns how many decoded-payload keys
/// map to no attribute. On error nothing is appended. `text` is the payload
/// when it is UTF-8, as the format sniffer found.
pub(crate) fn decode_chirpstack_text(
    payload: &[u8],
    text: Option<&str>,
    application: &str,
    dev_eui: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
    let scanned = text.and_then(scan_event);
    let event = match scanned {
        Some(event) => event,
        None => serde_event(payload)?,
    };
    decode_event(&event, application, dev_eui, ctx, out)
}

/// Reads an event with `serde_json`, the reference for every result and
/// fault.
fn serde_event(payload: &[u8]) -> Result<Event<'_>, Fault> {
    match parse::<Obj<Event<'_>>>(payload)? {
        Obj::Present(event) => Ok(event),
        Obj::Absent => Err(not_an_object("null")),
        Obj::Wrong(kind) => Err(not_an_object(kind)),
    }
}

/// Checks an event read by either path against the topic and decodes it.
fn decode_event(
    event: &Event<'_>,
    application: &str,
    dev_eui: &str,
    ctx: &Context<'_>,
    out: &mut Vec<Reading>,
) -> Result<u32, Fault> {
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

/// Reads an event in its common shape with the scanner of [`crate::scan`]:
/// every key this decoder reads present at most once and of the expected
/// type (not null), `deviceInfo` an object, `rxInfo` a list of objects, no
/// escape anywhere, numbers that convert exactly. Gives the event
/// `serde_json` would give, or `None` for anything else, which is then
/// parsed by `serde_json`.
fn scan_event(text: &str) -> Option<Event<'_>> {
    let mut s = FlatObject::open_str(text)?;
    let mut event = Event {
        device_info: Obj::Absent,
        time: None,
        object: None,
        rx_info: Gateways::default(),
    };
    let mut seen = Seen(0);
    while let Next::Key(key) = s.next_key()? {
        s.colon()?;
        match key {
            "deviceInfo" => {
                seen.once(0)?;
                event.device_info = Obj::Present(scan_device_info(&mut s)?);
            }
            "time" => {
                seen.once(1)?;
                event.time = Some(scan_leaf(&mut s)?);
            }
            "object" => {
                seen.once(2)?;
                if s.peek_value()? == b'n' {
                    return None;
                }
                let from = s.offset();
                s.skip_value(1)?;
                event.object = Some(Raw(s.slice(from, s.offset())?));
            }
            "rxInfo" => {
                seen.once(3)?;
                let list = s.enter(b'[')?;
                let mut index = 0;
                while s.next_element()? {
                    let gateway = scan_gateway(&mut s)?;
                    event.rx_info.consider(&Obj::Present(gateway), index);
                    index += 1;
                }
                s.leave(list);
            }
            _ => s.skip_value(1)?,
        }
    }
    s.close()?;
    Some(event)
}

fn scan_device_info<'a>(s: &mut FlatObject<'a>) -> Option<DeviceInfo<'a>> {
    let [application_id, application_name, device_name, dev_eui] =
        scan_leaves(s, 2, |key| match key {
            "applicationId" => Some(0),
            "applicationName" => Some(1),
            "deviceName" => Some(2),
            "devEui" => Some(3),
            _ => None,
        })?;
    Some(DeviceInfo {
        application_id,
        application_name,
        device_name,
        dev_eui,
    })
}

fn scan_gateway<'a>(s: &mut FlatObject<'a>) -> Option<RxInfo<'a>> {
    let [rssi, snr] = scan_leaves(s, 3, |key| match key {
        "rssi" => Some(0),
        "snr" => Some(1),
        _ => None,
    })?;
    Some(RxInfo { rssi, snr })
}

fn not_an_object(kind: &str) -> Fault {
    Fault::new(
        Reason::UnknownFormat,
        format!("an uplink event of ChirpStack is a JSON object; found {kind}"),
    )
}

#[cfg(test)]
mod scan_tests {
    use proptest::prelude::*;

    use super::{decode_chirpstack, decode_event, scan_event, serde_event};
    use crate::context::Context;
    use crate::lorawan::tests::{
        applications, edited_fixture, mutated_fixture, run, CHIRPSTACK_TRAFFIC, TRAFFIC_APP_ID,
    };
    use crate::reading::Reading;
    use crate::rejection::Fault;

    const EUI: &str = "70b3d57ed0051a2f";

    /// [`decode_chirpstack`] through `serde_json` only, as it was before the
    /// scanner.
    fn decode_serde(
        payload: &[u8],
        application: &str,
        dev_eui: &str,
        ctx: &Context<'_>,
        out: &mut Vec<Reading>,
    ) -> Result<u32, Fault> {
        decode_event(&serde_event(payload)?, application, dev_eui, ctx, out)
    }

    /// Whatever the scanner reads, `serde_json` reads the same, and the
    /// decoder gives the same readings or the same fault either way.
    /// Returns whether the scanner read the event, and whether it decoded.
    fn same_as_serde(payload: &[u8]) -> Result<(bool, bool), TestCaseError> {
        let shown = String::from_utf8_lossy(payload);
        let fast = std::str::from_utf8(payload).ok().and_then(scan_event);
        let scanned = fast.is_some();
        if let Some(fast) = fast {
            prop_assert_eq!(serde_event(payload).ok(), Some(fast), "{}", shown);
        }
        let apps = applications(Some(TRAFFIC_APP_ID));
        let mut decoded = false;
        for (application, dev_eui) in [
            (TRAFFIC_APP_ID, EUI),
            ("rabat-traffic", EUI),
            ("rabat-traffic", "70B3D57ED0051A2F"),
        ] {
            let fast = run(decode_chirpstack, &apps, payload, application, dev_eui);
            let serde = run(decode_serde, &apps, payload, application, dev_eui);
            decoded |= fast.0.is_ok();
            prop_assert_eq!(fast, serde, "{} on {}/{}", shown, application, dev_eui);
        }
        Ok((scanned, decoded))
    }

    /// White space between tokens, mostly none.
    fn ws() -> impl Strategy<Value = &'static str> {
        prop_oneof![6 => Just(""), 2 => Just(" "), 1 => Just("\n  "), 1 => Just("\t")]
    }

    /// The text of a string: plain, realistic, or with escapes (some of
    /// which spell a realistic value).
    fn string_text() -> BoxedStrategy<String> {
        prop_oneof![
            12 => prop::sample::select(vec![
                TRAFFIC_APP_ID,
                "rabat-traffic",
                "sale-traffic",
                EUI,
                "70B3D57ED0051A2F",
                "70b3d57ed0051a30",
                "counter-rabat-1",
                "Counter 1",
                "2026-11-28T21:10:01.482913+00:00",
                "2026-11-28T21:05:00Z",
                "2026-11-28T21:05:00Z/2026-11-28T21:10:00Z",
                "2026-13-01",
                "",
                "é",
            ])
            .prop_map(|s| format!("\"{s}\"")),
            4 => "[a-z0-9 -]{0,10}".prop_map(|s| format!("\"{s}\"")),
            1 => prop::sample::select(vec![
                r#""rabat-tr\u0061ffic""#,
                r#""70b3d57ed0051a2\u0066""#,
                r#""counter\-1""#,
                r#""a\"b""#,
                r#""line\n""#,
                r#""\/""#,
                r#""\ud83d\ude00""#,
            ])
            .prop_map(str::to_owned),
        ]
        .boxed()
    }

    /// A number, null, boolean or string, as text; some numbers are ones
    /// the scanner does not convert.
    fn scalar_text() -> BoxedStrategy<String> {
        prop_oneof![
            3 => prop::sample::select(vec!["null", "true", "false"]).prop_map(str::to_owned),
            2 => prop::sample::select(vec![
                "0", "-0", "-104", "-89", "2.8", "9.5", "-20.25", "3.612", "0.42", "118",
                "1e2", "1E+2", "-1e-7", "1795900000000",
            ])
            .prop_map(str::to_owned),
            1 => prop::sample::select(vec![
                "1e400", "123456789012345678901", "0.1234567890123456789", "-0.0e-0",
                "1e22", "1e23",
            ])
            .prop_map(str::to_owned),
            4 => (-200i32..200).prop_map(|n| n.to_string()),
            6 => string_text(),
        ]
        .boxed()
    }

    /// An object's text from its entries (key text, value text) in order,
    /// repeated keys kept.
    fn object_text(entries: &[(String, String)], ws: &str) -> String {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{ws}{k}{ws}:{ws}{v}"))
            .collect();
        format!("{{{}{ws}}}", body.join(","))
    }

    fn array_text(items: &[String], ws: &str) -> String {
        let body: Vec<String> = items.iter().map(|v| format!("{ws}{v}")).collect();
        format!("[{}{ws}]", body.join(","))
    }

    /// A key's text: one of `keys`, or one written with an escape.
    fn key_text(keys: &'static [&'static str]) -> BoxedStrategy<String> {
        prop_oneof![
            16 => prop::sample::select(keys).prop_map(|k| format!("\"{k}\"")),
            1 => prop::sample::select(vec![
                r#""rx\u0049nfo""#,
                r#""rss\u0069""#,
                r#""devEu\u0069""#,
                r#""obj\u0065ct""#,
                r#""a\nb""#,
            ])
            .prop_map(str::to_owned),
        ]
        .boxed()
    }

    /// Any JSON value, nested objects and arrays included, as text.
    fn any_value() -> BoxedStrategy<String> {
        const KEYS: &[&str] = &[
            "rssi",
            "snr",
            "latitude",
            "laneId",
            "intensity",
            "deviceInfo",
            "object",
            "x",
            "",
        ];
        // Mostly plain, so that a value with many leaves is often read.
        let leaf = prop_oneof![
            20 => prop::sample::select(vec![
                "null", "true", "false", "0", "-89", "2.8", "1795900000000", "\"\"",
                "\"counter-rabat-1\"", "\"EU868\"",
            ])
            .prop_map(str::to_owned),
            1 => scalar_text(),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            let key = prop_oneof![
                20 => prop::sample::select(KEYS).prop_map(|k| format!("\"{k}\"")),
                1 => key_text(KEYS),
            ];
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), ws())
                    .prop_map(|(items, ws)| array_text(&items, ws)),
                (prop::collection::vec((key, inner), 0..4), ws())
                    .prop_map(|(entries, ws)| object_text(&entries, ws)),
            ]
        })
        .boxed()
    }

    /// Mostly `good`, sometimes a scalar or any value of another type.
    fn mostly(good: BoxedStrategy<String>) -> BoxedStrategy<String> {
        prop_oneof![24 => good, 1 => scalar_text(), 1 => any_value()].boxed()
    }

    /// An object with the `known` keys, each mostly present with a value of
    /// its strategy, and a few of the `extra` keys (unknown ones, or
    /// sometimes a known one again) with any value, in any order.
    fn object_of(
        known: Vec<(&'static str, BoxedStrategy<String>)>,
        extra: &'static [&'static str],
    ) -> BoxedStrategy<String> {
        let names: Vec<&'static str> = known.iter().map(|(k, _)| *k).collect();
        let extra_key = prop_oneof![
            10 => key_text(extra),
            1 => prop::sample::select(names).prop_map(|k| format!("\"{k}\"")),
        ];
        let fields: Vec<BoxedStrategy<Option<(String, String)>>> = known
            .into_iter()
            .map(|(key, value)| {
                prop::option::weighted(0.85, value.prop_map(move |v| (format!("\"{key}\""), v)))
                    .boxed()
            })
            .collect();
        let extras = prop::collection::vec((extra_key, any_value()), 0..3);
        (fields, extras, ws())
            .prop_flat_map(|(fields, extras, ws)| {
                let entries: Vec<_> = fields.into_iter().flatten().chain(extras).collect();
                (Just(entries).prop_shuffle(), Just(ws))
            })
            .prop_map(|(entries, ws)| object_text(&entries, ws))
            .boxed()
    }

    /// One of `values` as a JSON string, the first ones most often.
    fn one_of(values: &'static [&'static str]) -> BoxedStrategy<String> {
        let first = values[0];
        prop_oneof![
            6 => Just(format!("\"{first}\"")),
            1 => prop::sample::select(values).prop_map(|s| format!("\"{s}\"")),
        ]
        .boxed()
    }

    /// A decimal number between `low` and `high` tenths.
    fn number(low: i32, high: i32) -> BoxedStrategy<String> {
        prop_oneof![
            (low / 10..high / 10).prop_map(|n| n.to_string()),
            (low..high).prop_map(|n| format!("{}.{}", n / 10, (n % 10).abs())),
        ]
        .boxed()
    }

    fn device_info() -> BoxedStrategy<String> {
        object_of(
            vec![
                (
                    "applicationId",
                    mostly(one_of(&[TRAFFIC_APP_ID, "rabat-traffic", "0c1d"])),
                ),
                (
                    "applicationName",
                    mostly(one_of(&[
                        "rabat-traffic",
                        "Traffic counters",
                        "sale-traffic",
                    ])),
                ),
                (
                    "deviceName",
                    mostly(one_of(&["counter-rabat-1", "Counter 1", "c-2"])),
                ),
                (
                    "devEui",
                    mostly(one_of(&[EUI, "70B3D57ED0051A2F", "70b3d57ed0051a30"])),
                ),
            ],
            &[
                "tenantId",
                "tenantName",
                "deviceProfileName",
                "tags",
                "ApplicationId",
            ],
        )
    }

    fn decoded_object() -> BoxedStrategy<String> {
        object_of(
            vec![
                (
                    "laneId",
                    mostly((1u8..4).prop_map(|n| n.to_string()).boxed()),
                ),
                ("intensity", mostly(number(0, 5000))),
                (
                    "occupancy",
                    mostly(
                        (0u8..110)
                            .prop_map(|n| format!("{}.{:02}", n / 100, n % 100))
                            .boxed(),
                    ),
                ),
                (
                    "dateObserved",
                    mostly(one_of(&[
                        "2026-11-28T21:05:00Z/2026-11-28T21:10:00Z",
                        "2026-11-28T21:05:00Z",
                        "2026-11-28T21:10:00+01:00",
                        "2026-11-28T19:00:00Z/2026-11-28T21:00:00Z",
                        "yesterday",
                    ])),
                ),
            ],
            &[
                "averageVehicleSpeed",
                "congested",
                "batteryVoltage",
                "nested",
                "vehicles",
            ],
        )
    }

    fn gateways() -> BoxedStrategy<String> {
        let gateway = prop_oneof![
            8 => object_of(
                vec![
                    ("rssi", mostly(number(-1300, -200))),
                    ("snr", mostly(number(-200, 150))),
                ],
                &["gatewayId", "location", "metadata", "RSSI", "channel", "context"],
            ),
            1 => any_value(),
        ];
        (prop::collection::vec(gateway, 0..4), ws())
            .prop_map(|(items, ws)| array_text(&items, ws))
            .boxed()
    }

    /// ChirpStack events, mostly of the expected shape, with keys left out,
    /// repeated, unknown or escaped, values of other types, and nesting.
    fn event() -> BoxedStrategy<Vec<u8>> {
        let time = one_of(&[
            "2026-11-28T21:10:01.482913+00:00",
            "2026-11-28T21:14:00Z",
            "2026-11-28T22:00:00Z",
            "2026-13-01",
        ]);
        let object = object_of(
            vec![
                ("deviceInfo", mostly(device_info())),
                ("time", mostly(time)),
                ("object", mostly(decoded_object())),
                ("rxInfo", mostly(gateways())),
            ],
            &[
                "deduplicationId",
                "devAddr",
                "txInfo",
                "data",
                "fCnt",
                "DeviceInfo",
            ],
        );
        prop_oneof![
            12 => object,
            1 => any_value(),
            1 => (any_value(), prop::sample::select(vec![" ", "x", "}", ",", "\n{}"]))
                .prop_map(|(v, tail)| format!("{v}{tail}")),
        ]
        .prop_map(String::into_bytes)
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn the_scanner_decodes_what_serde_decodes(payload in prop_oneof![
            4 => event(),
            1 => mutated_fixture(),
            1 => edited_fixture(
                vec![CHIRPSTACK_TRAFFIC],
                &["\"rssi\": 3,", "\"devEui\": \"x\",", "\"snr\":"],
            ),
        ]) {
            same_as_serde(&payload)?;
        }
    }

    /// The property above proves little unless the scanner reads many of
    /// its cases, and many of them decode.
    #[test]
    fn generated_events_often_take_the_scanner() -> Result<(), TestCaseError> {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = event();
        let (mut scanned, mut decoded) = (0, 0);
        for _ in 0..1000 {
            let payload = strategy.new_tree(&mut runner).expect("a case").current();
            let (s, d) = same_as_serde(&payload)?;
            scanned += usize::from(s);
            decoded += usize::from(s && d);
        }
        assert!((250..750).contains(&scanned), "{scanned} of 1000 scanned");
        assert!(decoded >= 50, "{decoded} of 1000 scanned and decoded");
        Ok(())
    }

    #[test]
    fn the_fixture_takes_the_scanner() -> Result<(), TestCaseError> {
        let compact = serde_json::to_vec(
            &serde_json::from_str::<serde_json::Value>(CHIRPSTACK_TRAFFIC).expect("JSON"),
        )
        .expect("serialisable");
        for payload in [CHIRPSTACK_TRAFFIC.as_bytes(), &compact] {
            assert_eq!(same_as_serde(payload)?, (true, true));
        }
        Ok(())
    }

    #[test]
    fn the_scanner_gives_up_on_what_it_does_not_read() -> Result<(), TestCaseError> {
        for payload in [
            r#"{"deviceInfo": {"devEui": "a", "devEui": "a"}}"#,
            r#"{"time": "2026-11-28T21:14:00Z", "time": "2026-11-28T21:14:00Z"}"#,
            r#"{"object": {}, "object": {}}"#,
            r#"{"rxInfo": [], "rxInfo": []}"#,
            r#"{"rxInfo": [{"rssi": -90, "rssi": -91}]}"#,
            r#"{"time": null}"#,
            r#"{"object": null}"#,
            r#"{"rxInfo": null}"#,
            r#"{"deviceInfo": null}"#,
            r#"{"deviceInfo": {"deviceName": null}}"#,
            r#"{"rxInfo": [{"snr": null}]}"#,
            r#"{"deviceInfo": []}"#,
            r#"{"deviceInfo": "x"}"#,
            r#"{"rxInfo": {}}"#,
            r#"{"rxInfo": 2}"#,
            r#"{"rxInfo": [null]}"#,
            r#"{"rxInfo": [-89]}"#,
            r#"{"deviceInfo": {"deviceName": {}}}"#,
            r#"{"time": []}"#,
            r#"{"time": "a\"b"}"#,
            r#"{"deviceInfo": {"deviceName": "counter\u002d1"}}"#,
            r#"{"rx\u0049nfo": []}"#,
            r#"{"object": {"a": "\n"}}"#,
            r#"{"x": 1e400}"#,
            r#"{"object": {"intensity": 0.1234567890123456789}}"#,
            r#"{"object": {}} x"#,
            "[]",
            "null",
            "",
        ] {
            assert_eq!(scan_event(payload), None, "{payload}");
            assert!(!same_as_serde(payload.as_bytes())?.0, "{payload}");
        }
        assert!(!same_as_serde(b"{\"time\": \"\xff\"}")?.0, "not UTF-8");
        Ok(())
    }
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
