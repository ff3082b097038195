//! Identifiers crafted to inject line protocol (a newline, a comma, an equals
//! sign, a space, a quote) in device ids, tag values and string fields: the
//! service rejects each with a reason, and the database holds exactly the
//! points of the honest messages around them.

mod common;

use std::collections::BTreeMap;

use anyhow::Context as _;

use common::messages::{CHIRPSTACK_APP, CHIRPSTACK_EUI};
use common::{
    bounded, config, fixture_json, now_s, ns, publish, rfc3339, rfc3339_ms, to_influx1, Service,
    DELIVERY, PROBE_DEAD_LETTER, VISIBLE,
};
use harness::mqtt::{QoS, Subscriber};
use harness::{wait_until, Influx1, Mosquitto};
use serde_json::json;

/// What is smuggled: a second line, a tag set, a field set, a quote.
const NEWLINE: &str = "lamp-1\nevil v=1";
const TAGS: &str = "a,b=c d";
const QUOTE: &str = "x\" y";

/// The crafted messages, each with the reason it must be rejected with.
fn crafted(t: i64) -> Vec<(String, String, &'static str)> {
    let native = |commune: &str, device: &str, body: serde_json::Value| {
        (
            format!("city/{commune}/lighting/{device}/telemetry"),
            body.to_string(),
        )
    };
    let reading = || json!({"dateObserved": t, "powerConsumption": 40});
    let mut out = Vec::new();
    let mut add = |(topic, payload): (String, String), reason| out.push((topic, payload, reason));

    // Native: the topic's levels, the payload's `id`, a string field.
    add(native("rabat", TAGS, reading()), "invalid_topic");
    add(native("rabat", QUOTE, reading()), "invalid_topic");
    add(native(TAGS, "lamp-1", reading()), "invalid_topic");
    let mut with_id = reading();
    with_id["id"] = json!(NEWLINE);
    add(native("rabat", "lamp-1", with_id), "id_mismatch");
    add(
        native(
            "rabat",
            "lamp-1",
            json!({"dateObserved": t, "powerState": "on\nevil v=1", "powerConsumption": 40}),
        ),
        "invalid_value",
    );
    add(
        native(
            "rabat",
            "lamp-1",
            json!({"dateObserved": t, "status": "ok\" ,x=1", "powerConsumption": 40}),
        ),
        "invalid_value",
    );

    // SenML: the device segment of the base name (RFC 8428 allows neither a
    // control character nor a comma, an equals sign or a space in a name).
    add(
        native(
            "rabat",
            "lamp-1",
            json!([{"bn": format!("urn:dev:ow:{NEWLINE}:"), "bt": t, "n": "powerConsumption", "v": 40}]),
        ),
        "invalid_senml",
    );
    add(
        native(
            "rabat",
            "lamp-1",
            json!([{"bn": format!("urn:dev:ow:{TAGS}:"), "bt": t, "n": "powerConsumption", "v": 40}]),
        ),
        "invalid_senml",
    );

    // The Things Stack: `end_device_ids.device_id` in the payload and the topic.
    let tts = |device_in_payload: &str| {
        let mut up = fixture_json("ttn-v3-uplink-streetlight.json");
        up["end_device_ids"]["device_id"] = json!(device_in_payload);
        up["uplink_message"]["received_at"] = json!(rfc3339_ms(t * 1000));
        up.to_string()
    };
    // The identifier is checked before it is compared with the topic's.
    for device in [NEWLINE, TAGS, QUOTE] {
        add(
            (
                "v3/casablanca-lighting/devices/lamp-1/up".to_owned(),
                tts(device),
            ),
            "invalid_value",
        );
    }
    for device in [TAGS, QUOTE] {
        add(
            (
                format!("v3/casablanca-lighting/devices/{device}/up"),
                tts(device),
            ),
            "invalid_topic",
        );
    }

    // ChirpStack: `deviceInfo.deviceName`, which names the device.
    for device in [NEWLINE, TAGS, QUOTE] {
        let mut up = fixture_json("chirpstack-v4-uplink-traffic.json");
        up["deviceInfo"]["deviceName"] = json!(device);
        up["object"]["dateObserved"] = json!(format!("{}/{}", rfc3339(t), rfc3339(t + 60)));
        add(
            (
                format!("application/{CHIRPSTACK_APP}/device/{CHIRPSTACK_EUI}/event/up"),
                up.to_string(),
            ),
            "invalid_value",
        );
    }
    out
}

#[tokio::test]
async fn crafted_identifiers_inject_nothing() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        cfg.windows.enabled = false;
        let service = Service::start(cfg).await?;
        let mut dead =
            Subscriber::connect(broker.host(), broker.port(), "dlq/#", QoS::AtLeastOnce).await?;

        let t = now_s() - 120;
        let honest = |at: i64| {
            (
                "city/rabat/lighting/lamp-1/telemetry".to_owned(),
                json!({"dateObserved": at, "powerConsumption": 40}).to_string(),
            )
        };
        let crafted = crafted(t + 1);
        let mut messages = vec![honest(t)];
        messages.extend(
            crafted
                .iter()
                .map(|(topic, payload, _)| (topic.clone(), payload.clone())),
        );
        messages.push(honest(t + 2));
        publish(&broker, messages).await?;

        // Each crafted message is dead-lettered with its reason.
        let mut letters = Vec::new();
        while letters.len() < crafted.len() {
            let letter = dead
                .next(DELIVERY)
                .await
                .with_context(|| format!("{} of {} dead letters", letters.len(), crafted.len()))?;
            // A readiness probe sent twice may still come back.
            if letter.topic != PROBE_DEAD_LETTER {
                letters.push(letter);
            }
        }
        let mut got: Vec<(String, String)> = Vec::new();
        for letter in &letters {
            let json: serde_json::Value = serde_json::from_slice(&letter.payload)?;
            let topic = json["topic"].as_str().unwrap_or_default().to_owned();
            assert_eq!(letter.topic, format!("dlq/{topic}"));
            let reason = json["reason"].as_str().unwrap_or_default().to_owned();
            got.push((
                json["payload"].as_str().unwrap_or_default().to_owned(),
                reason,
            ));
        }
        let want: Vec<(String, String)> = crafted
            .iter()
            .map(|(_, payload, reason)| (payload.clone(), (*reason).to_owned()))
            .collect();
        assert_eq!(got, want, "every crafted message is rejected, in order");

        // The database holds the two honest points, in one series, and nothing else.
        let points = wait_until("the honest points", VISIBLE, async || {
            let points = db.points("lighting").await?;
            anyhow::ensure!(points.len() >= 2, "{points:?}");
            Ok(points)
        })
        .await?;
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!(
            points.iter().map(|p| p.time_ns).collect::<Vec<_>>(),
            [ns(t), ns(t + 2)]
        );
        assert_eq!(db.measurements().await?, ["lighting"]);
        let series = db.query("SHOW SERIES").await?;
        let keys: Vec<String> = series
            .iter()
            .flat_map(|s| &s.values)
            .filter_map(|row| row.first()?.as_str().map(str::to_owned))
            .collect();
        assert_eq!(keys, ["lighting,commune=rabat,device=lamp-1"]);

        let metrics = service.metrics().await?;
        let mut reasons: BTreeMap<&str, f64> = BTreeMap::new();
        for (_, _, reason) in &crafted {
            *reasons.entry(reason).or_default() += 1.0;
        }
        for (reason, n) in reasons {
            let counted = metrics.get(&format!(
                "ingest_messages_rejected_total{{reason=\"{reason}\"}}"
            ));
            // The readiness probe is an `invalid_topic` too.
            assert!(counted >= n, "{reason}: {counted} < {n}");
        }
        dead.disconnect().await?;
        service.stop().await
    })
    .await
}
