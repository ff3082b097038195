//! `simulate load` across a graceful restart of mosquitto mid-stream: the
//! connections lose what was in flight and in their request queues,
//! reconnect and send it again. The manifest must still hold one record per
//! queued message, acknowledged exactly when a PUBACK came for it.
//!
//! An independent subscriber with a persistent session (which mosquitto
//! saves across the restart) checks that the broker got every message.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use harness::mqtt::{unique_client_id, QoS, Subscriber};
use harness::Mosquitto;
use simulators::publish::load::load_with_manifest;
use simulators::publish::{Bound, Broker, LoadConfig};
use simulators::spec::FaultRates;
use simulators::FleetSpec;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// The bound on each step.
const WAIT: Duration = Duration::from_secs(120);

fn config(mosquitto: &Mosquitto, rate: f64, count: u64, manifest: PathBuf) -> LoadConfig {
    let spec = FleetSpec {
        faults: FaultRates::NONE,
        ..FleetSpec::default()
    };
    LoadConfig {
        broker: Broker {
            host: mosquitto.host().to_owned(),
            port: mosquitto.port(),
        },
        spec,
        rate,
        connections: 2,
        qos: QoS::AtLeastOnce,
        bound: Bound::Count(count),
        pool: None,
        report: None,
        manifest: Some(manifest),
        progress: false,
        drop: 0,
        drop_seed: 0,
    }
}

/// Publishes `count` messages at `rate` (0: flat out) over 2 connections,
/// restarts the broker once the subscriber has `before` of them, and checks
/// the manifest and what the broker got.
async fn restart_mid_load(rate: f64, count: u64, before: usize) {
    let Some(mut mosquitto) = Mosquitto::start_or_skip().await else {
        return;
    };
    let mut subscriber = Subscriber::connect_persistent(
        mosquitto.host(),
        mosquitto.port(),
        &unique_client_id("restart-sub"),
        "#",
        QoS::AtLeastOnce,
    )
    .await
    .expect("subscribes");
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("manifest.jsonl");
    let load = tokio::spawn(load_with_manifest(
        config(&mosquitto, rate, count, path.clone()),
        CancellationToken::new(),
    ));

    let mut received = subscriber.expect(before, WAIT).await.expect("mid-stream");
    mosquitto.restart().await.expect("mosquitto restarts");
    let (report, manifest) = timeout(WAIT, load)
        .await
        .expect("the load ends")
        .expect("the load task")
        .expect("the load runs");

    assert!(
        report.errors >= 2,
        "both connections saw the restart: {report:?}"
    );
    assert_eq!(report.queued, count, "{report:?}");
    assert_eq!(report.unfinished_connections, 0, "{report:?}");
    assert!(report.complete(), "{report:?}");
    // One record per queued message, in memory and in the file.
    assert_eq!(manifest.len() as u64, count, "{report:?}");
    let text = std::fs::read_to_string(&path).expect("manifest written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l["seq"].as_u64()).collect();
    assert_eq!(seqs, (0..count).collect::<Vec<_>>());
    // Acknowledged exactly as many times as PUBACKs came: here, all of them.
    let acked = lines.iter().filter(|l| l["acked"] == true).count() as u64;
    assert_eq!(Some(acked), report.acked, "{report:?}");
    assert_eq!(acked, count, "{report:?}");
    assert!(lines.iter().all(|l| l["published_at"].is_string()));

    // The broker got them all (redeliveries to the subscriber aside).
    let mut distinct: HashSet<(String, bytes::Bytes)> =
        received.drain(..).map(|m| (m.topic, m.payload)).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while (distinct.len() as u64) < count {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = subscriber.next(left).await else {
            break;
        };
        distinct.insert((m.topic, m.payload));
    }
    assert_eq!(
        distinct.len() as u64,
        count,
        "the subscriber's distinct messages"
    );
}

/// At a modest rate: little in flight when the broker goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_load_keeps_one_manifest_record_per_message() {
    restart_mid_load(2000.0, 8000, 2000).await;
}

/// Flat out: the in-flight window and the request queues are full when the
/// broker goes, so requests taken from the queues are sent again too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_full_load_keeps_one_manifest_record_per_message() {
    restart_mid_load(0.0, 60_000, 10_000).await;
}
