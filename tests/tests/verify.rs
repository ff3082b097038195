//! The loss oracle (`simulators::verify`) against the real service: a load
//! test through mosquitto and the service into the database, then the
//! oracle's verdict. With one message dropped on purpose (`drop`), it must
//! report exactly that message missing and nothing duplicated; with none,
//! everything found.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{bounded, config, to_influx1, to_victoria, Service, VISIBLE};
use harness::{require, wait_until, Influx1, Mosquitto, VictoriaMetrics};
use simulators::publish::{load, Bound, Broker, LoadConfig};
use simulators::verify::{load_and_verify, verify, Database, Manifest, VerifyConfig};
use simulators::FleetSpec;
use tokio_util::sync::CancellationToken;

/// Messages of the load test with a dropped message.
const COUNT: u64 = 3000;
/// Distinct messages rendered: the last 400 messages repeat the first 400.
const POOL: usize = 2600;

fn load_config(broker: &Mosquitto, count: u64) -> LoadConfig {
    LoadConfig {
        broker: Broker {
            host: broker.host().to_owned(),
            port: broker.port(),
        },
        // The default fleet with its faults: malformed messages the service
        // must reject, late ones, duplicate copies.
        spec: FleetSpec::default(),
        rate: 0.0,
        connections: 2,
        qos: rumqttc::QoS::AtLeastOnce,
        bound: Bound::Count(count),
        pool: None,
        report: None,
        manifest: None,
        progress: false,
        drop: 0,
        drop_seed: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_exactly_the_dropped_message_missing() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    if require(&harness::VICTORIA_METRICS).is_none() {
        return Ok(());
    }
    // Deduplication on, as in production: a rewrite replaces a sample.
    let vm = VictoriaMetrics::launch_with(&["-dedup.minScrapeInterval=1ms"]).await?;
    bounded(async {
        let mut cfg = config(&broker)?;
        to_victoria(&mut cfg, &vm);
        let service = Service::start(cfg).await?;

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("manifest.jsonl");
        let mut load_cfg = load_config(&broker, COUNT);
        load_cfg.pool = Some(POOL);
        load_cfg.manifest = Some(path.clone());
        load_cfg.drop = 1;
        load_cfg.drop_seed = 20_261_129;
        let loaded = load(load_cfg, CancellationToken::new()).await?;
        assert!(loaded.complete(), "{loaded:?}");
        // One pool message, sent once or, if among the first 400, twice.
        assert!(
            (1..=2).contains(&loaded.dropped.len()),
            "{:?}",
            loaded.dropped
        );
        assert_eq!(
            loaded.queued,
            COUNT - loaded.dropped.len() as u64,
            "a dropped message is never queued"
        );

        let manifest = Manifest::read(&path)?;
        assert_eq!(manifest.len() as u64, COUNT, "dropped messages are listed");
        // What the service must write: a raw point per valid message sent.
        let text = std::fs::read_to_string(&path)?;
        let dropped: BTreeSet<u64> = loaded.dropped.iter().copied().collect();
        let mut valid_sent = 0_u64;
        let mut invalid = 0_u64;
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line)?;
            let seq = line["seq"].as_u64().unwrap_or(u64::MAX);
            match line["valid"].as_bool() {
                Some(true) if !dropped.contains(&seq) => valid_sent += 1,
                Some(true) => {}
                _ => invalid += 1,
            }
        }
        // Once the database acknowledged every raw point, what it lacks is
        // lost; the oracle's timeout then only covers its own indexing.
        wait_until(
            "the service to write every raw point",
            VISIBLE,
            async || {
                let written = service
                    .metrics()
                    .await?
                    .get("ingest_points_written_total{kind=\"raw\"}");
                anyhow::ensure!(
                    written >= valid_sent as f64,
                    "{written} of {valid_sent} raw points"
                );
                Ok(())
            },
        )
        .await?;

        let database = Database::VictoriaMetrics {
            url: vm.base_url().to_owned(),
            force_flush: true,
        };
        let verify_cfg = VerifyConfig {
            timeout: Duration::from_secs(5),
            interval: Duration::from_millis(250),
            ..VerifyConfig::new(database)
        };
        let report = verify(&manifest, &verify_cfg, &CancellationToken::new()).await?;
        let text = report.text();

        assert_eq!(report.missing, 1, "{text}");
        assert_eq!(report.missing_points.len(), 1, "{text}");
        assert_eq!(
            report.missing_points[0].seqs, loaded.dropped,
            "the dropped message, every time it was due: {text}"
        );
        assert_eq!(report.found, report.expected - 1, "{text}");
        assert_eq!(report.duplicated, 0, "{text}");
        assert!(report.duplicated_points.is_empty(), "{text}");
        assert_eq!(report.invalid, invalid, "{text}");
        assert_eq!(
            (report.unacknowledged, report.unacknowledged_found),
            (0, 0),
            "{text}"
        );
        // The cycled part of the pool (400 lines) and duplicate copies share
        // points with earlier lines.
        assert!(report.repeats >= COUNT - POOL as u64, "{text}");
        assert_eq!(
            report.expected + report.repeats + report.invalid,
            COUNT,
            "{text}"
        );
        let latency = report.latency.as_ref().expect("points were found");
        assert_eq!(latency.points, report.found, "{text}");
        assert!(
            0.0 <= latency.p50_s
                && latency.p50_s <= latency.p90_s
                && latency.p90_s <= latency.p99_s
                && latency.p99_s <= latency.max_s
                && latency.max_s < 60.0,
            "{text}"
        );
        assert_eq!(latency.resolution_s, 0.25);
        assert!(report.timed_out && !report.passed(), "{text}");
        assert!(text.contains("FAILED: 1 missing, 0 duplicated"), "{text}");
        service.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_and_verify_finds_everything_in_influxdb_1() -> anyhow::Result<()> {
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

        let database = Database::InfluxV1 {
            url: db.base_url().to_owned(),
            database: db.database().to_owned(),
            retention_policy: None,
            username: None,
            password: None,
        };
        let verify_cfg = VerifyConfig {
            // Stops as soon as everything is found.
            timeout: VISIBLE,
            interval: Duration::from_millis(200),
            ..VerifyConfig::new(database)
        };
        let (loaded, report) = load_and_verify(
            load_config(&broker, 500),
            &verify_cfg,
            CancellationToken::new(),
        )
        .await?;
        let text = report.text();
        assert!(loaded.complete() && loaded.dropped.is_empty(), "{loaded:?}");
        assert_eq!(report.lines, 500, "{text}");
        assert!(report.expected > 0, "{text}");
        assert_eq!(
            (report.found, report.missing, report.duplicated),
            (report.expected, 0, 0),
            "{text}"
        );
        assert!(report.passed() && !report.timed_out, "{text}");
        assert!(report.waited_s < VISIBLE.as_secs_f64(), "{text}");
        service.stop().await
    })
    .await
}
