//! The source and the dead-letter publisher against real brokers: the
//! embedded one, and a mosquitto child process where the broker restarts.

use bytes::Bytes;
use prometheus_client::registry::Registry;
use rumqttc::{AsyncClient, Event as RawEvent, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::test_support::{
    embedded, free_port, mosquitto_or_skip, mqtt, publish, start_source, Mosquitto, LIMIT, TOPIC,
};
use super::DeadLetterPublisher;
use crate::config::{DeadLetterConfig, Protocol};
use crate::message::DeadLetter;
use crate::metrics::{render, Metrics};

#[tokio::test]
async fn the_source_delivers_what_an_independent_client_publishes() {
    for (protocol, name) in [(Protocol::V4, "v4"), (Protocol::V5, "v5")] {
        let port = embedded(protocol).await;
        let mut source = start_source(&mqtt(port, &format!("ingest-{name}"), protocol));
        // Retained: it arrives whenever the subscription is in place.
        publish(port, protocol, b"retained-first", true).await;
        source.expect(b"retained-first").await;

        let payload = br#"{"powerConsumption": 42.5, "status": "on"}"#;
        let before = schemas::Timestamp::from_datetime(chrono::Utc::now()).expect("now");
        publish(port, protocol, payload, false).await;
        let m = source.expect(payload).await;
        assert_eq!(m.topic, TOPIC, "{name}");
        assert_eq!(m.payload, Bytes::from_static(payload), "{name}");
        assert!(m.received_at >= before, "{name}");
        assert!(source.metrics.messages_received.get() >= 2, "{name}");
        assert!(source.health.broker_connected(), "{name}");
        assert_eq!(source.metrics.mqtt_connected.get(), 1, "{name}");
        assert_eq!(source.disconnects(), 0, "{name}");
        source.stop().await;
    }
}

#[tokio::test]
async fn the_source_reconnects_and_resubscribes_after_a_broker_restart() {
    let Some(binary) =
        mosquitto_or_skip("the_source_reconnects_and_resubscribes_after_a_broker_restart")
    else {
        return;
    };
    let port = free_port();
    let broker = Mosquitto::start(&binary, port).await;
    let mut source = start_source(&mqtt(port, "ingest-restart", Protocol::V4));
    publish(port, Protocol::V4, b"before-restart", true).await;
    source.expect(b"before-restart").await;
    assert_eq!(source.disconnects(), 0);

    drop(broker);
    // The new broker knows neither the session nor the subscription: only a
    // resubscription brings the retained message.
    let _broker = Mosquitto::start(&binary, port).await;
    publish(port, Protocol::V4, b"after-restart", true).await;
    source.expect(b"after-restart").await;
    publish(port, Protocol::V4, b"later-plain", false).await;
    source.expect(b"later-plain").await;

    assert_eq!(source.disconnects(), 1, "{}", render(&source.registry));
    assert!(source.health.broker_connected());
    source.stop().await;
}

#[tokio::test]
async fn dead_letters_reach_an_independent_subscriber() {
    let port = embedded(Protocol::V4).await;
    let (client, mut events) =
        AsyncClient::new(MqttOptions::new("test-dlq-reader", "127.0.0.1", port), 10);
    client
        .subscribe("dlq/#", QoS::AtLeastOnce)
        .await
        .expect("queued");
    let subscribed = async {
        while !matches!(
            events.poll().await.expect("reader connection"),
            RawEvent::Incoming(Packet::SubAck(_))
        ) {}
    };
    timeout(LIMIT, subscribed).await.expect("SUBACK in time");

    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let cfg = mqtt(port, "ingest-dl", Protocol::V4);
    let publisher =
        DeadLetterPublisher::new(&cfg, None, &DeadLetterConfig::default(), metrics.clone())
            .expect("options");
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(publisher.run(rx));
    tx.send(DeadLetter::Message {
        topic: TOPIC.to_owned(),
        payload: Bytes::from_static(br#"{"powerConsumption": -5}"#),
        reason: "out_of_range",
        message: "key `powerConsumption`: -5 is out of range".to_owned(),
        received_at: schemas::Timestamp::from_secs(1_795_896_000),
    })
    .await
    .expect("publisher running");

    let received = async {
        loop {
            if let RawEvent::Incoming(Packet::Publish(p)) =
                events.poll().await.expect("reader connection")
            {
                return p;
            }
        }
    };
    let p = timeout(LIMIT, received).await.expect("dead letter in time");
    assert_eq!(p.topic, format!("dlq/{TOPIC}"));
    let v: serde_json::Value = serde_json::from_slice(&p.payload).expect("JSON");
    assert_eq!(v["reason"], "out_of_range");
    assert_eq!(v["topic"], TOPIC);
    assert_eq!(v["payload"], r#"{"powerConsumption": -5}"#);
    assert_eq!(v["received_at"], "2026-11-28T20:00:00Z");

    drop(tx);
    timeout(LIMIT, task)
        .await
        .expect("stops once its input closes")
        .expect("no panic");
    assert_eq!(metrics.dead_letter("published").get(), 1);
    assert_eq!(metrics.dead_letter("failed").get(), 0);
}

#[tokio::test]
async fn disabled_dead_letters_are_counted_and_dropped() {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let off = DeadLetterConfig {
        enabled: false,
        ..DeadLetterConfig::default()
    };
    // No broker listens there: a disabled publisher never connects.
    let cfg = mqtt(free_port(), "ingest-off", Protocol::V4);
    let publisher = DeadLetterPublisher::new(&cfg, None, &off, metrics.clone()).expect("options");
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(publisher.run(rx));
    for status in [400, 422] {
        let line = DeadLetter::Line {
            line: "m f=1".to_owned(),
            status,
            error: "bad".to_owned(),
        };
        tx.send(line).await.expect("running");
    }
    drop(tx);
    timeout(LIMIT, task)
        .await
        .expect("in time")
        .expect("no panic");
    assert_eq!(metrics.dead_letter("dropped_disabled").get(), 2);
    assert_eq!(metrics.dead_letter("published").get(), 0);
}

#[tokio::test]
async fn a_persistent_session_keeps_what_arrives_while_away_and_forgets_what_was_acknowledged() {
    let Some(binary) = mosquitto_or_skip("a_persistent_session_keeps_what_arrives_while_away")
    else {
        return;
    };
    let port = free_port();
    let _broker = Mosquitto::start(&binary, port).await;
    let cfg = mqtt(port, "ingest-session", Protocol::V4);

    let mut first = start_source(&cfg);
    publish(port, Protocol::V4, b"ready", true).await;
    first.expect(b"ready").await;
    publish(port, Protocol::V4, b"handed-over", false).await;
    first.expect(b"handed-over").await;
    first.stop().await;

    // Away: the broker keeps QoS 1 messages for the session.
    publish(port, Protocol::V4, b"while-away", false).await;
    let mut second = start_source(&cfg);
    second.expect(b"while-away").await;
    publish(port, Protocol::V4, b"back", false).await;
    let last = second.expect(b"back").await;
    assert_eq!(last.topic, TOPIC);
    // Acknowledged before: not redelivered. The session kept the
    // subscription: the retained message does not come again.
    assert!(second.passed.is_empty(), "{:?}", second.passed);
    assert!(second.seen.is_empty(), "{:?}", second.seen);
    second.stop().await;
}
