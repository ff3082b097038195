//! Self-tests of the harness: each server starts, takes a write, answers the
//! query helpers, and keeps its data across a stop and a start on the same port.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use harness::mqtt::{self, QoS, Subscriber};
use harness::{wait_until, FieldType, FieldValue, Influx1, Mosquitto, VictoriaMetrics};

/// The bound on a whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The bound on a write becoming visible.
const VISIBLE: Duration = Duration::from_secs(20);
/// The bound on a message arriving.
const DELIVERY: Duration = Duration::from_secs(10);

/// 2024-05-01T12:00:00.123456789Z.
const T0_NS: i64 = 1_714_564_800_123_456_789;
const T0_MS: i64 = T0_NS / 1_000_000;
const T1_NS: i64 = T0_NS + 60_000_000_000;

async fn bounded(test: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .map_err(|_| anyhow::anyhow!("the test took over {TEST_TIMEOUT:?}"))?
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn victoria_metrics_takes_a_write_and_keeps_it_across_a_restart() -> anyhow::Result<()> {
    let Some(mut vm) = VictoriaMetrics::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let port = vm.port();
        vm.write_lines(&format!(
            "lighting,commune=Sainte\\ Anne,device=L1 power=12.5,on=true,level=3i,label=\"x\" {T0_NS}"
        ))
        .await?;

        let series = wait_until("the lighting point in VictoriaMetrics", VISIBLE, async || {
            let series = vm.export().await?;
            anyhow::ensure!(series.len() >= 3, "saw {series:?}");
            Ok(series)
        })
        .await?;
        let by_name: BTreeMap<&str, _> = series.iter().map(|s| (s.name.as_str(), s)).collect();
        let power = by_name["lighting_power"];
        assert_eq!(power.labels, labels(&[("commune", "Sainte Anne"), ("device", "L1")]));
        // Timestamps are kept in milliseconds.
        assert_eq!(power.timestamps, [T0_MS]);
        assert_eq!(power.values, [12.5]);
        assert_eq!(by_name["lighting_on"].values, [1.0], "a boolean is stored as 1/0");
        assert_eq!(by_name["lighting_level"].values, [3.0]);
        // A string field is no number; this version stores it as 0.
        if let Some(label) = by_name.get("lighting_label") {
            assert_eq!(label.values, [0.0], "{label:?}");
        }

        vm.stop().await?;
        assert!(!vm.is_running());
        let refused = vm.write_lines(&format!("lighting,device=L2 power=1 {T1_NS}")).await;
        assert!(refused.is_err(), "a stopped server took a write");

        vm.start().await?;
        assert_eq!(vm.port(), port, "restarted on another port");
        let power = vm.series("lighting_power").await?;
        assert_eq!(power.len(), 1, "{power:?}");
        assert_eq!(power[0].last(), Some((T0_MS, 12.5)), "the data survived the restart");

        vm.write_lines(&format!("lighting,device=L2 power=7.25 {T1_NS}")).await?;
        let l2 = wait_until("the write after the restart", VISIBLE, async || {
            let series = vm.series("lighting_power").await?;
            series
                .into_iter()
                .find(|s| s.label("device") == Some("L2"))
                .ok_or_else(|| anyhow::anyhow!("no series for device L2 yet"))
        })
        .await?;
        assert_eq!(l2.last(), Some((T1_NS / 1_000_000, 7.25)));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn influx1_keeps_exact_field_types_and_data_across_a_restart() -> anyhow::Result<()> {
    let Some(mut influx) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let port = influx.port();
        influx
            .write_lines(&format!(
                "lighting,commune=Sainte\\ Anne,device=L1 power=12.5,level=3i,state=\"on\",ok=true {T0_NS}\n\
                 lighting,commune=c2,device=L2 power=13 {T1_NS}"
            ))
            .await?;

        let types = influx.field_types("lighting").await?;
        let expected: BTreeMap<String, FieldType> = [
            ("level", FieldType::Integer),
            ("ok", FieldType::Boolean),
            ("power", FieldType::Float),
            ("state", FieldType::String),
        ]
        .into_iter()
        .map(|(name, kind)| (name.to_owned(), kind))
        .collect();
        assert_eq!(types, expected);

        let points = influx.points("lighting").await?;
        assert_eq!(points.len(), 2, "{points:?}");
        let first = &points[0];
        assert_eq!(first.time_ns, T0_NS, "nanoseconds are kept");
        assert_eq!(first.tags, labels(&[("commune", "Sainte Anne"), ("device", "L1")]));
        assert_eq!(first.field("power"), Some(&FieldValue::Float(12.5)));
        assert_eq!(first.field("level"), Some(&FieldValue::Integer(3)));
        assert_eq!(first.field("state"), Some(&FieldValue::String("on".into())));
        assert_eq!(first.field("ok"), Some(&FieldValue::Boolean(true)));
        // `13` is a float field whose JSON reads like an integer.
        assert_eq!(points[1].field("power"), Some(&FieldValue::Float(13.0)));
        assert_eq!(points[1].fields.len(), 1, "absent fields stay absent");

        let conflict = influx.write_lines(&format!("lighting,device=L1 power=1i {T1_NS}")).await;
        let message = format!("{:#}", conflict.expect_err("a type conflict is refused"));
        assert!(message.contains("field type conflict"), "{message}");
        assert_eq!(influx.measurements().await?, ["lighting"]);

        // Same series and timestamp: the fields merge, the point is not doubled.
        influx
            .write_lines(&format!("lighting,commune=c2,device=L2 level=5i {T1_NS}"))
            .await?;
        let points = influx.points("lighting").await?;
        assert_eq!(points.len(), 2, "{points:?}");
        assert_eq!(points[1].field("power"), Some(&FieldValue::Float(13.0)));
        assert_eq!(points[1].field("level"), Some(&FieldValue::Integer(5)));

        influx.stop().await?;
        assert!(!influx.is_running());
        let refused = influx.write_lines(&format!("lighting,device=L3 power=1 {T1_NS}")).await;
        assert!(refused.is_err(), "a stopped server took a write");

        influx.start().await?;
        assert_eq!(influx.port(), port, "restarted on another port");
        let points = influx.points("lighting").await?;
        assert_eq!(points.len(), 2, "the data survived the restart: {points:?}");
        assert_eq!(points[0].field("state"), Some(&FieldValue::String("on".into())));

        influx
            .write_lines(&format!("lighting,device=L3 power=2.5 {}", T1_NS + 1))
            .await?;
        let rows = influx
            .query("SELECT power FROM lighting WHERE device = 'L3'")
            .await?;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].columns, ["time", "power"]);
        assert_eq!(rows[0].values, [vec![serde_json::json!(T1_NS + 1), serde_json::json!(2.5)]]);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn mosquitto_delivers_what_a_publisher_sends() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let (host, port) = (broker.host(), broker.port());
        let mut subscriber =
            Subscriber::connect(host, port, "city/+/lighting/#", QoS::AtLeastOnce).await?;
        let sent: Vec<(String, String)> = (0..5)
            .map(|i| (format!("city/c1/lighting/L{i}"), format!("{{\"n\":{i}}}")))
            .collect();
        mqtt::publish_all(host, port, QoS::AtLeastOnce, sent.clone()).await?;
        mqtt::publish_all(
            host,
            port,
            QoS::AtMostOnce,
            [("city/c1/lighting/L9", "qos0")],
        )
        .await?;
        mqtt::publish_all(
            host,
            port,
            QoS::AtLeastOnce,
            [("city/c1/waste/B1", "elsewhere")],
        )
        .await?;

        let received = subscriber.expect(6, DELIVERY).await?;
        let got: Vec<(String, String)> = received
            .iter()
            .map(|m| (m.topic.clone(), m.text()))
            .collect();
        let mut want = sent;
        want.push(("city/c1/lighting/L9".into(), "qos0".into()));
        assert_eq!(got, want, "in order, and nothing outside the filter");
        assert!(received[..5]
            .iter()
            .all(|m| m.qos == QoS::AtLeastOnce && !m.retain));
        assert_eq!(received[5].qos, QoS::AtMostOnce);
        subscriber.disconnect().await
    })
    .await
}

#[tokio::test]
async fn mosquitto_keeps_a_queued_message_for_an_offline_session_across_a_restart(
) -> anyhow::Result<()> {
    let Some(mut broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    bounded(async {
        let port = broker.port();
        let id = mqtt::unique_client_id("harness-persistent");
        let filter = "city/+/alerts/#";
        let first =
            Subscriber::connect_persistent(broker.host(), port, &id, filter, QoS::AtLeastOnce)
                .await?;
        assert!(!first.session_present(), "a new session");
        first.disconnect().await?;

        let topic = "city/c1/alerts/lighting/L1";
        mqtt::publish_all(
            broker.host(),
            port,
            QoS::AtLeastOnce,
            [(topic, "lamp_failure")],
        )
        .await?;

        broker.stop().await?;
        let refused =
            mqtt::publish_all(broker.host(), port, QoS::AtLeastOnce, [(topic, "lost")]).await;
        assert!(refused.is_err(), "a stopped broker took a message");
        broker.start().await?;
        assert_eq!(broker.port(), port, "restarted on another port");

        let mut second =
            Subscriber::connect_persistent(broker.host(), port, &id, filter, QoS::AtLeastOnce)
                .await?;
        assert!(second.session_present(), "the session survived the restart");
        let received = second.expect(1, DELIVERY).await?;
        assert_eq!(received[0].topic, topic);
        assert_eq!(received[0].text(), "lamp_failure");
        assert_eq!(received[0].qos, QoS::AtLeastOnce);
        second.disconnect().await
    })
    .await
}
