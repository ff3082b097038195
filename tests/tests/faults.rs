//! Zero loss under faults. Each test publishes numbered messages with the
//! simulator's load test (QoS 1, a few thousand messages over several
//! seconds), injects a fault mid-stream — once the service has written its
//! first points — and asks the loss oracle (`simulators::verify`) whether
//! every message the broker acknowledged is in the database exactly once as
//! a series point.
//!
//! The database is InfluxDB 1.x, which keeps one point per series and
//! timestamp like InfluxDB 2: a replayed write overwrites. The tests run one
//! at a time (each starts a broker, a database, the service and a load).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use common::{
    config, http_client, ingest_binary, scrape, to_influx1, wait_ready, Metrics, Process, Service,
    SERVICE,
};
use harness::{wait_until, Influx1, Mosquitto};
use ingest::config::Config;
use simulators::publish::load::load_with_manifest;
use simulators::publish::{Bound, Broker, LoadConfig, LoadReport};
use simulators::spec::FaultRates;
use simulators::verify::{verify, Database, Manifest, VerifyConfig, VerifyReport};
use simulators::FleetSpec;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Messages per test, and their rate: about 7 s of publishing.
const COUNT: u64 = 6000;
const RATE: f64 = 850.0;
/// Points written before the fault is injected: mid-stream.
const BEFORE_FAULT: f64 = 800.0;
/// The bound on one fault test.
const FAULT_TEST: Duration = Duration::from_secs(300);
/// How long the oracle waits for the last points.
const ORACLE: Duration = Duration::from_secs(120);
/// Messages per source batch in the tests of the log's limit: the log takes
/// whole batches, so it may pass its limit by one.
const SOURCE_BATCH: usize = 64;
/// How far past its limit the log may go: one source batch of the largest
/// messages of the fleet (LoRaWAN uplinks, under 2 kB).
const OVERSHOOT: f64 = SOURCE_BATCH as f64 * 2048.0;
/// The service's resident memory must stay below this (a debug build).
const RSS_BOUND_KB: u64 = 256 * 1024;

/// One test at a time: each loads the two cores on its own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn servers() -> anyhow::Result<Option<(Mosquitto, Influx1)>> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(None);
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(None);
    };
    Ok(Some((broker, db)))
}

/// Runs one fault test: alone (each loads both cores on its own), on fresh
/// servers (skipped without them, unless in CI), within [`FAULT_TEST`];
/// `needs_binary` when it runs the built `ingest` rather than in-process.
async fn fault_test(
    needs_binary: bool,
    body: impl AsyncFnOnce(Mosquitto, Influx1) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let _one = SERIAL.lock().await;
    let binary_built = needs_binary.then(ingest_binary);
    let Some((broker, db)) = servers().await? else {
        return Ok(());
    };
    if let Some(binary) = binary_built {
        anyhow::ensure!(binary.is_file(), "{} not built", binary.display());
    }
    tokio::time::timeout(FAULT_TEST, body(broker, db))
        .await
        .context("the test took too long")?
}

fn load_config(broker: &Mosquitto) -> LoadConfig {
    let spec = FleetSpec {
        faults: FaultRates::NONE,
        ..FleetSpec::default()
    };
    LoadConfig {
        broker: Broker {
            host: broker.host().to_owned(),
            port: broker.port(),
        },
        spec,
        rate: RATE,
        connections: 2,
        qos: rumqttc::QoS::AtLeastOnce,
        bound: Bound::Count(COUNT),
        pool: None,
        report: None,
        manifest: None,
        progress: false,
        drop: 0,
        drop_seed: 0,
    }
}

fn oracle(db: &Influx1) -> VerifyConfig {
    let mut v = VerifyConfig::new(Database::InfluxV1 {
        url: db.base_url().to_owned(),
        database: db.database().to_owned(),
        retention_policy: None,
        username: None,
        password: None,
    });
    v.timeout = ORACLE;
    v.settle = Duration::from_secs(1);
    v
}

/// Starts the load test in the background.
fn start_load(broker: &Mosquitto) -> Load {
    tokio::spawn(load_with_manifest(
        load_config(broker),
        CancellationToken::new(),
    ))
}

fn raw_written(m: &Metrics) -> f64 {
    m.0.get("ingest_points_written_total{kind=\"raw\"}")
        .copied()
        .unwrap_or(0.0)
}

fn metric(m: &Metrics, key: &str) -> f64 {
    m.0.get(key).copied().unwrap_or(0.0)
}

/// Waits until the service at `http` has written `points` raw points.
async fn until_written(http: SocketAddr, points: f64) -> anyhow::Result<()> {
    let client = http_client()?;
    wait_until(
        "the service to write its first points",
        SERVICE,
        async || {
            let written = raw_written(&scrape(&client, http).await?);
            anyhow::ensure!(written >= points, "{written} raw points written");
            Ok(())
        },
    )
    .await
}

/// Finishes the load and asks the oracle; every acknowledged message must
/// be there exactly once.
async fn check(load: Load, db: &Influx1) -> anyhow::Result<VerifyReport> {
    let (loaded, manifest) = load.await.context("the load task")??;
    let report = verify(&manifest, &oracle(db), &CancellationToken::new()).await?;
    assert!(
        report.passed(),
        "messages lost or duplicated:\n{}",
        report.text()
    );
    assert_eq!(report.found, report.expected, "{}", report.text());
    assert!(
        report.expected + report.unacknowledged >= loaded.queued.min(COUNT) * 9 / 10,
        "the oracle saw the load: {loaded:?}\n{}",
        report.text()
    );
    Ok(report)
}

type Load = JoinHandle<anyhow::Result<(LoadReport, Manifest)>>;

/// The service in-process, writing to `db`, with the load started and its
/// first points written: the moment to inject a fault.
async fn in_process(
    broker: &Mosquitto,
    db: &Influx1,
) -> anyhow::Result<(Service, SocketAddr, Load)> {
    let mut cfg = config(broker)?;
    to_influx1(&mut cfg, db);
    let http = cfg.http.listen;
    let service = Service::start(cfg).await?;
    let load = start_load(broker);
    until_written(http, BEFORE_FAULT).await?;
    Ok((service, http, load))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_for_30_seconds_loses_nothing() -> anyhow::Result<()> {
    fault_test(false, async |broker: Mosquitto, mut db: Influx1| {
        let (service, http, load) = in_process(&broker, &db).await?;

        db.stop().await?;
        // The service keeps taking messages into its log while it retries.
        let client = http_client()?;
        wait_until("the sink to report the outage", SERVICE, async || {
            let ready = client.get(format!("http://{http}/readyz")).send().await?;
            let body = ready.text().await?;
            anyhow::ensure!(body.contains("sink not healthy"), "{body}");
            Ok(())
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(30)).await;
        db.start().await?;

        let report = check(load, &db).await?;
        assert_eq!(report.unacknowledged, 0, "{}", report.text());
        let m = service.metrics().await?;
        assert!(
            metric(&m, "ingest_write_retries_total{cause=\"connection\"}") > 0.0,
            "{m:?}"
        );
        service.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restarted_twice_in_a_row_loses_nothing() -> anyhow::Result<()> {
    fault_test(false, async |broker: Mosquitto, mut db: Influx1| {
        let (service, _, load) = in_process(&broker, &db).await?;
        db.restart().await?;
        db.restart().await?;
        let report = check(load, &db).await?;
        assert_eq!(report.unacknowledged, 0, "{}", report.text());
        service.stop().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing() -> anyhow::Result<()> {
    fault_test(false, async |mut broker: Mosquitto, db: Influx1| {
        let (service, _, load) = in_process(&broker, &db).await?;
        // Graceful: mosquitto saves the service's session, its
        // subscriptions and the messages queued for it.
        broker.restart().await?;
        check(load, &db).await?;
        let m = service.metrics().await?;
        let disconnects: f64 =
            m.0.iter()
                .filter(|(k, _)| k.starts_with("ingest_mqtt_disconnects_total"))
                .map(|(_, v)| v)
                .sum();
        assert!(disconnects >= 1.0, "the service saw the restart: {m:?}");
        service.stop().await
    })
    .await
}

/// The service as the built binary, with `cfg` written to `dir/ingest.toml`.
fn spawn_binary(cfg: &Config, dir: &Path, name: &str) -> anyhow::Result<Process> {
    let file = dir.join("ingest.toml");
    std::fs::write(
        &file,
        toml::to_string(cfg).context("writing the configuration")?,
    )?;
    let mut command = Command::new(ingest_binary());
    command
        .arg("run")
        .arg("--config")
        .arg(&file)
        .current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("INGEST") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    Process::spawn(command, dir.join(format!("{name}.log")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_stream_replays_its_log_and_loses_nothing() -> anyhow::Result<()> {
    fault_test(true, async |broker: Mosquitto, db: Influx1| {
        let dir = tempfile::tempdir()?;
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        cfg.wal.dir = dir.path().join("wal");
        // Checkpoints seldom: the crash leaves records to replay.
        cfg.wal.checkpoint_interval_ms = 5000;
        let http = cfg.http.listen;
        let mut first = spawn_binary(&cfg, dir.path(), "first")?;
        wait_ready(broker.host(), broker.port())
            .await
            .with_context(|| first.log())?;
        let load = start_load(&broker);
        until_written(http, BEFORE_FAULT)
            .await
            .with_context(|| first.log())?;
        first.kill()?;

        // The broker queues for the persistent session meanwhile.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let second = spawn_binary(&cfg, dir.path(), "second")?;
        let client = http_client()?;
        // Records after the last checkpoint are replayed.
        wait_until(
            "the restarted service to replay its log",
            SERVICE,
            async || {
                let m = scrape(&client, http).await?;
                let replayed = metric(&m, "ingest_wal_replayed_total");
                anyhow::ensure!(replayed > 0.0, "{replayed} records replayed");
                Ok(())
            },
        )
        .await
        .with_context(|| second.log())?;
        check(load, &db).await.with_context(|| second.log())?;
        drop(second);
        drop(first);
        Ok(())
    })
    .await
}

/// The highest figures the watcher saw.
#[derive(Debug, Clone, Copy, Default)]
struct Peaks {
    /// Resident memory of the service, kB.
    rss_kb: u64,
    /// `ingest_wal_bytes`.
    wal_bytes: f64,
    /// Whether `ingest_wal_full` was ever 1.
    full: bool,
}

/// Samples the service's memory, log size and queues every 100 ms until
/// `stop` is set; fails if a queue ever held more than its channel's
/// capacity.
fn watch(
    process: Arc<std::sync::Mutex<Process>>,
    http: SocketAddr,
    stop: Arc<AtomicBool>,
) -> JoinHandle<anyhow::Result<Peaks>> {
    tokio::spawn(async move {
        let client = http_client()?;
        let mut peaks = Peaks::default();
        let mut depth = 0.0_f64;
        while !stop.load(Ordering::Relaxed) {
            let rss = process.lock().ok().and_then(|p| p.rss_kb());
            peaks.rss_kb = peaks.rss_kb.max(rss.unwrap_or(0));
            if let Ok(m) = scrape(&client, http).await {
                peaks.wal_bytes = peaks.wal_bytes.max(metric(&m, "ingest_wal_bytes"));
                peaks.full |= metric(&m, "ingest_wal_full") > 0.0;
                for (k, v) in &m.0 {
                    if k.starts_with("ingest_queue_depth") {
                        depth = depth.max(*v);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::ensure!(
            depth <= 64.0,
            "a queue held {depth} batches, past its channel's 64"
        );
        Ok(peaks)
    })
}

/// The log's limit in the tests that reach it.
const TINY_LOG: u64 = 256 * 1024;

impl Peaks {
    /// The log stayed within its limit (plus one source batch) and memory
    /// within its bound.
    fn assert_bounded(&self) {
        let max_bytes = TINY_LOG as f64;
        assert!(
            self.wal_bytes <= max_bytes + OVERSHOOT,
            "the log grew to {} bytes past its limit of {max_bytes}",
            self.wal_bytes
        );
        assert!(
            self.rss_kb > 0 && self.rss_kb < RSS_BOUND_KB,
            "peak RSS {} kB",
            self.rss_kb
        );
    }
}

/// The service as the built binary with a tiny log, watched from its start.
struct Watched {
    process: Arc<std::sync::Mutex<Process>>,
    stop: Arc<AtomicBool>,
    watcher: JoinHandle<anyhow::Result<Peaks>>,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Watched {
    /// Starts the service with `cfg` and a log of [`TINY_LOG`] bytes, and
    /// waits until it takes messages.
    async fn start(broker: &Mosquitto, mut cfg: Config) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        cfg.wal.dir = dir.path().join("wal");
        cfg.wal.max_bytes = TINY_LOG;
        cfg.wal.segment_bytes = TINY_LOG / 8;
        cfg.pipeline.source_batch = SOURCE_BATCH;
        let http = cfg.http.listen;
        let process = spawn_binary(&cfg, dir.path(), "ingest")?;
        wait_ready(broker.host(), broker.port())
            .await
            .with_context(|| process.log())?;
        let process = Arc::new(std::sync::Mutex::new(process));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch(Arc::clone(&process), http, Arc::clone(&stop));
        Ok(Self {
            process,
            stop,
            watcher,
            http,
            _dir: dir,
        })
    }

    /// Stops watching: the peaks seen, and the service's log.
    async fn finish(self) -> anyhow::Result<(Peaks, String)> {
        self.stop.store(true, Ordering::Relaxed);
        let peaks = self.watcher.await??;
        let log = self.process.lock().map(|p| p.log()).unwrap_or_default();
        Ok((peaks, log))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_log_holds_back_the_broker_and_loses_nothing() -> anyhow::Result<()> {
    fault_test(true, async |broker: Mosquitto, mut db: Influx1| {
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        let service = Watched::start(&broker, cfg).await?;
        let http = service.http;
        let load = start_load(&broker);
        until_written(http, BEFORE_FAULT).await?;

        // With the database down the log fills; the service stops reading
        // and says why.
        db.stop().await?;
        let client = http_client()?;
        wait_until(
            "the log to fill and /readyz to say so",
            Duration::from_secs(60),
            async || {
                let body = client
                    .get(format!("http://{http}/readyz"))
                    .send()
                    .await?
                    .text()
                    .await?;
                anyhow::ensure!(body.contains("write-ahead log full"), "{body}");
                Ok(())
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        db.start().await?;

        let report = check(load, &db).await;
        // Room comes back with the next checkpoint after the last write
        // (one a second), and the segments it frees.
        let resumed = wait_until("the log to have room again", SERVICE, async || {
            let m = scrape(&client, http).await?;
            anyhow::ensure!(metric(&m, "ingest_wal_full") == 0.0, "ingest_wal_full is 1");
            Ok(())
        })
        .await;
        let (peaks, log) = service.finish().await?;
        report.with_context(|| log.clone())?;
        assert!(peaks.full, "ingest_wal_full was never 1");
        peaks.assert_bounded();
        assert!(resumed.is_ok(), "it did not resume on its own: {resumed:?}");
        Ok(())
    })
    .await
}

/// A TCP proxy that holds every chunk of the answer for `delay`: a database
/// that answers slowly.
async fn delaying_proxy(
    upstream: SocketAddr,
    delay: Duration,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                let mut buf = vec![0_u8; 64 * 1024];
                loop {
                    match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            tokio::time::sleep(delay).await;
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client_write.shutdown().await;
                up.abort();
            });
        }
    });
    Ok((addr, task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_keeps_memory_bounded_and_loses_nothing() -> anyhow::Result<()> {
    fault_test(true, async |broker: Mosquitto, db: Influx1| {
        let upstream: SocketAddr = format!("127.0.0.1:{}", db.port()).parse()?;
        let (proxy, proxy_task) = delaying_proxy(upstream, Duration::from_millis(400)).await?;
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        cfg.sink.influxdb.url = format!("http://{proxy}");
        // Small batches: at two or three answers a second the sink takes
        // fewer lines than arrive.
        cfg.sink.batch.max_lines = 150;
        let service = Watched::start(&broker, cfg).await?;
        let load = start_load(&broker);

        let report = check(load, &db).await;
        let (peaks, log) = service.finish().await?;
        proxy_task.abort();
        let report = report.with_context(|| log.clone())?;
        assert_eq!(report.unacknowledged, 0, "{}", report.text());
        assert!(
            peaks.full,
            "the slow database never held the service back: the test proves nothing"
        );
        peaks.assert_bounded();
        Ok(())
    })
    .await
}
