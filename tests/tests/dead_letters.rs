//! Bad inputs between good messages: each bad one reaches the dead-letter
//! topic with its reason and is counted by reason on `/metrics`; every good
//! one around them is written; the service keeps going.

mod common;

use std::collections::BTreeMap;

use common::{
    bounded, config, fixture, now_s, ns, publish, to_influx1, Service, DELIVERY, VISIBLE,
};
use harness::mqtt::{QoS, Subscriber};
use harness::{wait_until, FieldValue, Influx1, Mosquitto};
use schemas::Reason;

const TOPIC: &str = "city/rabat/lighting/lamp-1/telemetry";
const DEAD_LETTER_TOPIC: &str = "dlq/city/rabat/lighting/lamp-1/telemetry";

/// Every line of `bad-inputs.txt` with the reason it must produce, from
/// `bad-inputs.reasons` (the table the decoder's own test uses too).
fn bad_lines() -> Vec<(String, Reason)> {
    let reasons = fixture("bad-inputs.reasons");
    let table: BTreeMap<&str, Reason> = reasons
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (reason, payload) = l.split_once('\t').expect("reason<TAB>payload");
            let reason = Reason::parse(reason).unwrap_or_else(|| panic!("unknown reason {reason}"));
            (payload, reason)
        })
        .collect();
    let text = fixture("bad-inputs.txt");
    let lines: Vec<(String, Reason)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let reason = *table
                .get(l)
                .unwrap_or_else(|| panic!("no expected reason for the bad input {l}"));
            (l.to_owned(), reason)
        })
        .collect();
    assert_eq!(lines.len(), table.len(), "every line has a reason");
    lines
}

#[tokio::test]
async fn bad_inputs_are_dead_lettered_counted_and_good_ones_written() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        let service = Service::start(cfg).await?;
        let mut dead = Subscriber::connect(
            broker.host(),
            broker.port(),
            DEAD_LETTER_TOPIC,
            QoS::AtLeastOnce,
        )
        .await?;
        let before = service.metrics().await?;

        // good, bad, good, bad, …, good: one good message more than bad ones.
        let bad = bad_lines();
        let t0 = now_s() - 300;
        let good = |i: usize| {
            let i = i as i64;
            format!(
                r#"{{"dateObserved": {}, "powerConsumption": {}}}"#,
                t0 + i,
                40 + i
            )
        };
        let mut messages = vec![(TOPIC.to_owned(), good(0))];
        for (i, (line, _)) in bad.iter().enumerate() {
            messages.push((TOPIC.to_owned(), line.clone()));
            messages.push((TOPIC.to_owned(), good(i + 1)));
        }
        let total = messages.len();
        publish(&broker, messages).await?;

        // Dead letters, in order, each with its reason, topic and payload.
        let letters = dead.expect(bad.len(), DELIVERY).await?;
        for (letter, (line, reason)) in letters.iter().zip(&bad) {
            let json: serde_json::Value = serde_json::from_slice(&letter.payload)
                .map_err(|e| anyhow::anyhow!("dead letter {:?} is not JSON: {e}", letter.text()))?;
            assert_eq!(json["reason"], reason.as_str(), "{line}: {json}");
            assert_eq!(json["topic"], TOPIC, "{line}: {json}");
            assert_eq!(json["payload"], line.as_str(), "{json}");
            assert!(json["received_at"].is_string(), "{json}");
            assert!(
                json["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{json}"
            );
        }

        // Counted by reason (the readiness probe is an `invalid_topic`, which no
        // bad input produces).
        let mut want: BTreeMap<String, f64> = BTreeMap::new();
        for (_, reason) in &bad {
            *want.entry(reason.as_str().to_owned()).or_default() += 1.0;
        }
        let good_count = bad.len() + 1;
        let after = wait_until("the rejections on /metrics", VISIBLE, async || {
            let after = service.metrics().await?;
            let old = before.rejected();
            let delta: BTreeMap<String, f64> = after
                .rejected()
                .into_iter()
                .filter(|(reason, _)| reason != "invalid_topic")
                .map(|(reason, n)| {
                    let d = n - old.get(&reason).copied().unwrap_or(0.0);
                    (reason, d)
                })
                .filter(|&(_, d)| d != 0.0)
                .collect();
            anyhow::ensure!(delta == want, "rejected since the start: {delta:?}");
            Ok(after)
        })
        .await?;
        let delta = |key: &str| after.get(key) - before.get(key);
        assert_eq!(
            delta("ingest_messages_decoded_total{format=\"native\"}"),
            good_count as f64
        );
        assert_eq!(
            delta("ingest_readings_total{domain=\"lighting\"}"),
            good_count as f64
        );
        assert_eq!(
            delta("ingest_messages_received_total"),
            total as f64,
            "each MQTT message is received once"
        );

        // Every good message is written, nothing else.
        let points = wait_until("the good messages in InfluxDB", VISIBLE, async || {
            let points = db.points("lighting").await?;
            anyhow::ensure!(points.len() >= good_count, "{} points", points.len());
            Ok(points)
        })
        .await?;
        assert_eq!(points.len(), good_count, "{points:?}");
        for (i, p) in points.iter().enumerate() {
            let i = i as i64;
            assert_eq!(p.time_ns, ns(t0 + i));
            assert_eq!(p.tag("device"), Some("lamp-1"));
            assert_eq!(p.tag("commune"), Some("rabat"));
            assert_eq!(
                p.field("power_w"),
                Some(&FieldValue::Float((40 + i) as f64))
            );
            assert_eq!(p.fields.len(), 1, "{p:?}");
        }
        dead.disconnect().await?;
        service.stop().await
    })
    .await
}
