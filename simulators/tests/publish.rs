//! `simulate load`, `run` and `backfill` against a real mosquitto on a free
//! port, checked by an independent subscriber.
//!
//! A subscriber knows it has everything when a marker arrives: the marker
//! is published after the broker acknowledged every message under test,
//! and mosquitto forwards messages in the order it accepts them.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use chrono::TimeDelta;
use harness::mqtt::{self, QoS, Subscriber};
use harness::Mosquitto;
use simulators::publish::pace::Pace;
use simulators::publish::{load, replay, Bound, Broker, LoadConfig, ReplayConfig};
use simulators::spec::FaultRates;
use simulators::{Fleet, FleetSpec};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// The bound on each test's publishing.
const WAIT: Duration = Duration::from_secs(60);
const MARKER: &str = "simulate-test/marker";

fn broker(mosquitto: &Mosquitto) -> Broker {
    Broker {
        host: mosquitto.host().to_owned(),
        port: mosquitto.port(),
    }
}

async fn subscribe(mosquitto: &Mosquitto) -> Subscriber {
    Subscriber::connect(mosquitto.host(), mosquitto.port(), "#", QoS::AtLeastOnce)
        .await
        .expect("subscribes")
}

/// Publishes the marker and returns every message received before it.
async fn until_marker(mosquitto: &Mosquitto, subscriber: &mut Subscriber) -> Vec<mqtt::Message> {
    mqtt::publish_all(
        mosquitto.host(),
        mosquitto.port(),
        QoS::AtLeastOnce,
        [(MARKER, "end")],
    )
    .await
    .expect("marker published");
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = subscriber.next(left).await.expect("the marker arrives");
        if message.topic == MARKER {
            return received;
        }
        received.push(message);
    }
}

fn counts<'a>(topics: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut counts = HashMap::new();
    for topic in topics {
        *counts.entry(topic).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_publishes_the_count_over_several_connections() {
    let Some(mosquitto) = Mosquitto::start_or_skip().await else {
        return;
    };
    let mut subscriber = subscribe(&mosquitto).await;
    let dir = tempfile::tempdir().expect("temporary folder");
    let config = LoadConfig {
        broker: broker(&mosquitto),
        spec: FleetSpec::default(),
        rate: 0.0,
        connections: 4,
        qos: QoS::AtLeastOnce,
        bound: Bound::Count(2000),
        pool: None,
        report: Some(dir.path().join("report.json")),
        manifest: Some(dir.path().join("manifest.jsonl")),
        progress: false,
        drop: 0,
        drop_seed: 0,
    };
    let report = timeout(WAIT, load(config, CancellationToken::new()))
        .await
        .expect("bounded")
        .expect("load test runs");
    assert_eq!(
        (report.queued, report.sent, report.acked),
        (2000, 2000, Some(2000))
    );
    assert_eq!((report.errors, report.unfinished_connections), (0, 0));
    assert!(report.complete() && report.rate > 0.0, "{report:?}");

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("report written"),
    )
    .expect("report is JSON");
    assert_eq!(json["sent"], 2000);
    assert_eq!(json["acked"], 2000);

    let manifest = std::fs::read_to_string(dir.path().join("manifest.jsonl")).expect("manifest");
    let lines: Vec<serde_json::Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2000);
    assert!(lines
        .iter()
        .all(|l| l["acked"] == true && l["device"].is_string()));
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert_eq!(seqs, (0..2000).collect::<Vec<_>>());

    let received = until_marker(&mosquitto, &mut subscriber).await;
    assert_eq!(received.len(), 2000);
    let expected = counts(lines.iter().filter_map(|l| l["topic"].as_str()));
    assert_eq!(counts(received.iter().map(|m| m.topic.as_str())), expected);
    let shapes = ["city/", "v3/", "application/"];
    assert!(expected
        .keys()
        .all(|t| shapes.iter().any(|s| t.starts_with(s))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accelerated_run_publishes_the_span_on_its_schedule() {
    let Some(mosquitto) = Mosquitto::start_or_skip().await else {
        return;
    };
    let mut subscriber = subscribe(&mosquitto).await;
    // Default faults: late copies of the last ticks fall after the span.
    let spec = common::small(
        7,
        FaultRates {
            late: 0.05,
            duplicate: 0.05,
            ..FaultRates::default()
        },
    );
    let (from, to) = ("2026-03-04T06:00:00Z", "2026-03-04T06:10:00Z");
    let expected = common::run(&spec, from, to);
    let (from, to) = (common::at(from), common::at(to));
    assert!(
        expected.iter().any(|m| m.publish_at >= to),
        "a late copy spills over"
    );
    let config = ReplayConfig {
        broker: broker(&mosquitto),
        spec,
        from,
        to: Some(to),
        speed: Some(1200.0),
        catch_up: false,
        qos: QoS::AtLeastOnce,
        connections: 3,
    };
    let started = Instant::now();
    let summary = timeout(WAIT, replay(config, CancellationToken::new()))
        .await
        .expect("bounded")
        .expect("replay runs");
    let elapsed = started.elapsed();
    let n = expected.len() as u64;
    assert_eq!(
        (summary.queued, summary.sent, summary.acked),
        (n, n, Some(n))
    );
    assert!(!summary.interrupted);
    // Each message waited for its time on the simulated clock.
    let last_on_time = expected
        .iter()
        .map(|m| m.publish_at)
        .filter(|&t| t < to)
        .max()
        .expect("messages");
    let pace = Pace::new(from, 1200.0);
    assert!(elapsed >= pace.due(last_on_time), "{elapsed:?}");

    let received = until_marker(&mosquitto, &mut subscriber).await;
    let want = counts(expected.iter().map(|m| m.topic.as_str()));
    assert_eq!(counts(received.iter().map(|m| m.topic.as_str())), want);
    let payloads: std::collections::HashSet<&[u8]> =
        received.iter().map(|m| m.payload.as_ref()).collect();
    assert!(expected
        .iter()
        .all(|m| payloads.contains(m.payload.as_slice())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_publishes_the_period_flat_out() {
    let Some(mosquitto) = Mosquitto::start_or_skip().await else {
        return;
    };
    let mut subscriber = subscribe(&mosquitto).await;
    let spec = common::small(3, FaultRates::NONE);
    let to = chrono::Utc::now();
    let from = to - TimeDelta::hours(6);
    let n = Fleet::new(&spec).expect("valid").messages(from, to).count() as u64;
    let config = ReplayConfig {
        broker: broker(&mosquitto),
        spec,
        from,
        to: Some(to),
        speed: None,
        catch_up: false,
        qos: QoS::AtLeastOnce,
        connections: 2,
    };
    let summary = timeout(WAIT, replay(config, CancellationToken::new()))
        .await
        .expect("bounded")
        .expect("backfill runs");
    assert_eq!((summary.sent, summary.acked), (n, Some(n)));
    let received = until_marker(&mosquitto, &mut subscriber).await;
    assert_eq!(received.len() as u64, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_time_run_stops_on_shutdown() {
    let Some(mosquitto) = Mosquitto::start_or_skip().await else {
        return;
    };
    let mut subscriber = subscribe(&mosquitto).await;
    let config = ReplayConfig {
        broker: broker(&mosquitto),
        spec: common::small(5, FaultRates::NONE),
        from: chrono::Utc::now(),
        to: None,
        speed: Some(1.0),
        catch_up: false,
        qos: QoS::AtLeastOnce,
        connections: 1,
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(replay(config, shutdown.clone()));
    // The small fleet's counters report within 30 s of a period's end, its
    // lamps every two minutes: something comes within the bound.
    let first = subscriber.next(WAIT).await.expect("a message in real time");
    assert!(!first.topic.is_empty());
    shutdown.cancel();
    let summary = timeout(WAIT, running)
        .await
        .expect("stops promptly")
        .expect("task")
        .expect("replay runs");
    assert!(summary.interrupted);
    assert!(summary.sent >= 1);
    assert_eq!(summary.acked, Some(summary.sent));
}
