//! What the end-to-end tests share: the service under test, run in-process
//! with a configuration built in code (or as the built binary), a readiness
//! probe through the dead-letter topic, `/metrics` scraping, fixtures with
//! their timestamps moved to now, and helpers to compare values.
//!
//! Every test file compiles this module on its own, so not every helper is
//! used by every file.
#![allow(dead_code)]

pub mod messages;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use harness::mqtt::{self, QoS, Subscriber};
use harness::{wait_until, Influx1, Mosquitto, VictoriaMetrics};
use ingest::config::{Config, SinkKind};
use schemas::{ApplicationConfig, Domain, FieldMapping};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The bound on a whole test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// The bound on a write becoming visible in a database.
pub const VISIBLE: Duration = Duration::from_secs(30);
/// The bound on a message arriving.
pub const DELIVERY: Duration = Duration::from_secs(15);
/// The bound on the service becoming ready, or stopping.
pub const SERVICE: Duration = Duration::from_secs(30);

/// The topic of the readiness probe: its domain is unknown, so the service
/// rejects it (`invalid_topic`) and dead-letters it, writing nothing.
pub const PROBE_TOPIC: &str = "city/probe/parking/probe-1/telemetry";
/// Where the probe's dead letter is published.
pub const PROBE_DEAD_LETTER: &str = "dlq/city/probe/parking/probe-1/telemetry";

/// Runs a test body within [`TEST_TIMEOUT`].
pub async fn bounded(test: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .map_err(|_| anyhow::anyhow!("the test took over {TEST_TIMEOUT:?}"))?
}

/// A free TCP port of 127.0.0.1 (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// The LoRaWAN application of the The Things Stack waste fixture: the bins
/// report `fill_pct`, a percentage, mapped to `fillingLevel` × 0.01.
pub fn rabat_waste() -> ApplicationConfig {
    ApplicationConfig {
        commune: "rabat".into(),
        domain: Domain::Waste,
        fields: vec![FieldMapping {
            source: "fill_pct".into(),
            attribute: "fillingLevel".into(),
            scale: 0.01,
            offset: 0.0,
        }],
    }
}

/// The configuration of the service under test: the test's mosquitto (no
/// embedded broker), a client id of its own, `/metrics` on a free port, small
/// batches, and the `rabat-waste` application. The sink is still the file
/// sink: point it at a database with [`to_influx1`] or [`to_victoria`].
pub fn config(broker: &Mosquitto) -> anyhow::Result<Config> {
    let mut cfg = Config::default();
    cfg.broker.enabled = false;
    broker.host().clone_into(&mut cfg.mqtt.host);
    cfg.mqtt.port = broker.port();
    cfg.mqtt.client_id = mqtt::unique_client_id("ingest-e2e");
    cfg.mqtt.reconnect_min_ms = 50;
    cfg.mqtt.reconnect_max_ms = 1000;
    cfg.http.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    cfg.sink.batch.max_age_ms = 50;
    cfg.sink.retry.initial_ms = 50;
    cfg.sink.retry.max_ms = 1000;
    cfg.applications
        .insert("rabat-waste".to_owned(), rabat_waste());
    cfg.wal.dir = scratch_wal_dir();
    Ok(cfg)
}

/// Prefix of the write-ahead log folders [`config`] makes; [`Service`]
/// removes such a folder when it stops.
const SCRATCH_WAL: &str = "ingest-e2e-wal-";

/// A fresh folder name for a service's write-ahead log, in the system's
/// temporary folder.
pub fn scratch_wal_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{SCRATCH_WAL}{}-{n}", std::process::id()))
}

fn is_scratch(dir: &Path) -> bool {
    dir.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(SCRATCH_WAL))
}

/// Points the sink at InfluxDB 1.x through the v1 write API.
pub fn to_influx1(cfg: &mut Config, db: &Influx1) {
    cfg.sink.kind = SinkKind::InfluxdbV1;
    db.base_url().clone_into(&mut cfg.sink.influxdb.url);
    db.database().clone_into(&mut cfg.sink.influxdb.database);
}

/// Points the sink at VictoriaMetrics through the v2 write API (it takes any
/// org, bucket and token).
pub fn to_victoria(cfg: &mut Config, vm: &VictoriaMetrics) {
    cfg.sink.kind = SinkKind::InfluxdbV2;
    vm.base_url().clone_into(&mut cfg.sink.influxdb.url);
    "city".clone_into(&mut cfg.sink.influxdb.org);
    "telemetry".clone_into(&mut cfg.sink.influxdb.bucket);
    cfg.sink.influxdb.token = Some("e2e-token".to_owned());
}

/// Publishes every message at QoS 1 through the harness's own client.
pub async fn publish(broker: &Mosquitto, messages: Vec<(String, String)>) -> anyhow::Result<()> {
    mqtt::publish_all(broker.host(), broker.port(), QoS::AtLeastOnce, messages).await
}

/// Waits until the service takes messages from the broker at `host:port`:
/// publishes the probe until its dead letter comes back. The service
/// subscribes only after it connected, so a message published before that
/// would be lost; after this returns, none is. Later copies of the probe may
/// still come back on [`PROBE_DEAD_LETTER`].
pub async fn wait_ready(host: &str, port: u16) -> anyhow::Result<()> {
    // The broker may be the service's own, embedded one, still starting.
    let mut dead = wait_until("the broker to accept a subscriber", SERVICE, async || {
        Subscriber::connect(host, port, PROBE_DEAD_LETTER, QoS::AtLeastOnce).await
    })
    .await?;
    wait_until(
        "the service to dead-letter the probe",
        SERVICE,
        async || {
            mqtt::publish_all(host, port, QoS::AtLeastOnce, [(PROBE_TOPIC, "{}")]).await?;
            match dead.next(Duration::from_millis(300)).await {
                Some(_) => Ok(()),
                None => anyhow::bail!("no dead letter for the probe yet"),
            }
        },
    )
    .await?;
    dead.disconnect().await
}

/// The service running in-process on the test's runtime.
#[derive(Debug)]
pub struct Service {
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    http: SocketAddr,
    client: reqwest::Client,
    /// A scratch log folder to remove once stopped.
    scratch: Option<PathBuf>,
}

impl Service {
    /// Starts `ingest::app::run` with `cfg` and waits until it takes messages.
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
        cfg.validate().context("the test's configuration")?;
        let client = http_client()?;
        let shutdown = CancellationToken::new();
        let (host, port, http) = (cfg.mqtt.host.clone(), cfg.mqtt.port, cfg.http.listen);
        let scratch = (cfg.wal.enabled && is_scratch(&cfg.wal.dir)).then(|| cfg.wal.dir.clone());
        let task = tokio::spawn(ingest::app::run(cfg, shutdown.clone()));
        let service = Self {
            shutdown,
            task: Some(task),
            http,
            client,
            scratch,
        };
        wait_ready(&host, port).await?;
        Ok(service)
    }

    /// `/metrics`, parsed.
    pub async fn metrics(&self) -> anyhow::Result<Metrics> {
        scrape(&self.client, self.http).await
    }

    /// Stops the service (stop reading, flush windows and sink) and returns
    /// what `run` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let task = self.task.take().context("stopped twice")?;
        tokio::time::timeout(SERVICE, task)
            .await
            .with_context(|| format!("the service did not stop within {SERVICE:?}"))?
            .context("the service task panicked")?
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The samples of a Prometheus text exposition, by `name{labels}` as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Parses the text format (comments skipped).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line
                .rsplit_once(' ')
                .with_context(|| format!("a metric line without value: {line}"))?;
            let value: f64 = value
                .parse()
                .with_context(|| format!("a metric value that is no number: {line}"))?;
            samples.insert(key.to_owned(), value);
        }
        Ok(Self(samples))
    }

    /// A sample, 0 when absent.
    pub fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// The samples of one metric name, by their label text (`reason="x"`).
    pub fn family(&self, name: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{name}{{");
        self.0
            .iter()
            .filter_map(|(k, &v)| {
                let labels = k.strip_prefix(&prefix)?.strip_suffix('}')?;
                Some((labels.to_owned(), v))
            })
            .collect()
    }

    /// Rejections by reason.
    pub fn rejected(&self) -> BTreeMap<String, f64> {
        self.family("ingest_messages_rejected_total")
            .into_iter()
            .filter_map(|(labels, v)| {
                let reason = labels.strip_prefix("reason=\"")?.strip_suffix('"')?;
                Some((reason.to_owned(), v))
            })
            .collect()
    }
}

/// An HTTP client for `/metrics`.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("HTTP client")
}

/// Scrapes `/metrics` at `addr`.
pub async fn scrape(client: &reqwest::Client, addr: SocketAddr) -> anyhow::Result<Metrics> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .with_context(|| format!("GET http://{addr}/metrics"))?
        .error_for_status()?
        .text()
        .await?;
    Metrics::parse(&text)
}

/// A fixture of `schemas/tests/fixtures`, as text.
pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../schemas/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture, parsed as JSON.
pub fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Seconds since the epoch, now.
pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// RFC 3339 in UTC, whole seconds: `2026-11-28T21:05:00Z`.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a time in range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// RFC 3339 in UTC with milliseconds: `2026-11-28T21:05:00.123Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("a time in range")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Nanoseconds of whole seconds.
pub const fn ns(secs: i64) -> i64 {
    secs * 1_000_000_000
}

/// Whether two floats agree to 1e-9 (for means computed by hand).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The `ingest` binary, built once per test process (debug profile, the
/// target folder of this build).
pub fn ingest_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace folder")
            .to_path_buf();
        // The test executable lives in {target}/{profile}/deps/.
        let exe = std::env::current_exe().expect("the test executable");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("{target}/{profile}/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("{target}").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|p| p == "release");
        let mut build = Command::new(env!("CARGO"));
        // The variables cargo sets for this test (package name, manifest, …)
        // are not the build's: build scripts that watch them would rebuild,
        // and the next `cargo test` would rebuild again.
        for (key, _) in std::env::vars() {
            let ours = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"]
                    .contains(&key.as_str());
            if ours {
                build.env_remove(key);
            }
        }
        build
            .current_dir(&workspace)
            .args(["build", "--quiet", "-p", "ingest", "--bin", "ingest"])
            .arg("--target-dir")
            .arg(&target_dir);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(
            status.success(),
            "cargo build -p ingest --bin ingest failed"
        );
        let binary = profile_dir.join("ingest");
        assert!(binary.is_file(), "{} was not built", binary.display());
        binary
    })
}

/// The `ingest` binary running as a child process, its output in a log
/// file; killed (and reaped) on drop if it still runs.
#[derive(Debug)]
pub struct Process {
    child: std::process::Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log).context("creating the log file")?;
        let err = out.try_clone().context("sharing the log file")?;
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(Self { child, log })
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as in a crash, and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait().context("reaping the killed process")?;
        Ok(())
    }

    /// Its resident memory now, in kB (from `/proc`).
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        let child = &mut self.child;
        wait_until("the process to exit", SERVICE, async || {
            child
                .try_wait()
                .context("waiting for the process")?
                .context("still running")
        })
        .await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
