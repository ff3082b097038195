//! The whole sink stage against real servers: VictoriaMetrics (v2 API) and
//! InfluxDB 1.x (v1 API).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::testserver::{client, Server};
use super::*;
use crate::config::InfluxConfig;

pub(super) const BOUND: Duration = Duration::from_secs(60);
pub(super) const T0: u64 = 1_795_896_000_000_000_000;

/// Log lines written while it lives (on this thread).
pub(super) struct Logs {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    pub(super) fn capture() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(Arc::clone(&writer)))
            .finish();
        Self {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub(super) fn count(&self, text: &str) -> usize {
        let buf = self.buf.lock().expect("the log");
        String::from_utf8_lossy(&buf).matches(text).count()
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().expect("the log")).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn sink_cfg(kind: SinkKind, url: String) -> SinkConfig {
    SinkConfig {
        kind,
        influxdb: InfluxConfig {
            url,
            timeout_ms: 2000,
            ..InfluxConfig::default()
        },
        batch: BatchConfig {
            max_lines: 1000,
            max_bytes: 1 << 20,
            max_age_ms: 50,
            gzip: true,
        },
        retry: RetryConfig {
            initial_ms: 20,
            max_ms: 300,
        },
        ..SinkConfig::default()
    }
}

pub(super) struct Running {
    pub(super) tx: mpsc::Sender<LineBatch>,
    pub(super) letters: mpsc::Receiver<DeadLetter>,
    pub(super) metrics: Metrics,
    pub(super) task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub(super) fn spawn(cfg: SinkConfig, token: Option<String>) -> Running {
    let (tx, rx) = mpsc::channel(4);
    let (letters_tx, letters) = mpsc::channel(64);
    let metrics = Metrics::new(&mut Registry::default());
    let task = tokio::spawn(run(
        cfg,
        token,
        rx,
        letters_tx,
        None,
        metrics.clone(),
        Health::default(),
    ));
    Running {
        tx,
        letters,
        metrics,
        task,
    }
}

impl Running {
    /// Closes the input and waits until everything is written.
    pub(super) async fn finish(self) -> (Vec<DeadLetter>, Metrics) {
        let Running {
            tx,
            mut letters,
            metrics,
            task,
        } = self;
        drop(tx);
        timeout(BOUND, task)
            .await
            .expect("the sink finishes in time")
            .expect("the sink task")
            .expect("the sink succeeds");
        let mut dead = Vec::new();
        while let Ok(d) = letters.try_recv() {
            dead.push(d);
        }
        (dead, metrics)
    }
}

pub(super) fn batch(lines: &[String]) -> LineBatch {
    LineBatch {
        buf: lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect(),
        raw: lines.len(),
        windows: 0,
        checkpoint: None,
    }
}

/// Polls `probe` until it gives a value, within `BOUND`.
pub(super) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The values VictoriaMetrics holds for a series.
async fn vm_values(url: &str, series: &str) -> Vec<f64> {
    let c = client();
    let _ = c.get(format!("{url}/internal/force_flush")).send().await;
    let Ok(resp) = c
        .get(format!("{url}/api/v1/export"))
        .query(&[("match[]", series)])
        .send()
        .await
    else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| {
            v["values"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_f64)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect()
}

async fn vm_has(url: &str, series: &str, n: usize) -> Vec<f64> {
    eventually(series, || async {
        let mut v = vm_values(url, series).await;
        v.sort_by(f64::total_cmp);
        (v.len() >= n).then_some(v)
    })
    .await
}

#[tokio::test]
async fn v2_batch_lands_in_victoria_metrics() {
    let Some(vm) = Server::victoria_metrics("v2_batch_lands_in_victoria_metrics").await else {
        return;
    };
    let s = spawn(
        sink_cfg(SinkKind::InfluxdbV2, vm.url()),
        Some("unused".into()),
    );
    let lines: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "street_light,commune=rabat,device=lamp-{i} power_w={}.5 {}",
                i + 1,
                T0 + i
            )
        })
        .collect();
    s.tx.send(batch(&lines)).await.expect("sent");
    let (dead, metrics) = s.finish().await;
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(metrics.written(PointKind::raw).get(), 3);
    assert_eq!(
        vm_has(&vm.url(), "street_light_power_w", 3).await,
        [1.5, 2.5, 3.5]
    );
}

#[tokio::test]
async fn v1_type_conflict_dead_letters_exactly_the_bad_line() {
    let Some(db) = Server::influxdb1("v1_type_conflict_dead_letters_exactly_the_bad_line").await
    else {
        return;
    };
    let resp = client()
        .post(format!("{}/query", db.url()))
        .form(&[("q", "CREATE DATABASE telemetry")])
        .send()
        .await
        .expect("CREATE DATABASE");
    assert!(resp.status().is_success());
    let mut cfg = sink_cfg(SinkKind::InfluxdbV1, db.url());
    cfg.batch.gzip = false;
    let s = spawn(cfg, None);
    let mut lines: Vec<String> = (0..6)
        .map(|i| format!("street_light,device=lamp-{i} power_w={i}.0 {}", T0 + i))
        .collect();
    let bad = format!("street_light,device=lamp-x power_w=\"x\" {}", T0 + 100);
    lines.insert(4, bad.clone());
    lines.push(format!("waste_bin,device=bin-1 fill=0.5,full=false {T0}"));
    s.tx.send(batch(&lines)).await.expect("sent");
    let (dead, metrics) = s.finish().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let DeadLetter::Line {
        line,
        status,
        error,
    } = &dead[0]
    else {
        panic!("a line: {dead:?}");
    };
    assert_eq!((line, *status), (&bad, 400));
    assert!(error.contains("conflict"), "{error}");
    assert_eq!(metrics.lines_rejected.get(), 1);
    assert_eq!(metrics.written(PointKind::raw).get(), 7);

    let query = |q: &'static str| {
        let url = db.url();
        async move {
            let resp = client()
                .get(format!("{url}/query"))
                .query(&[("db", "telemetry"), ("q", q)])
                .send()
                .await
                .expect("a query");
            serde_json::from_str::<serde_json::Value>(&resp.text().await.expect("a body"))
                .expect("JSON")
        }
    };
    let v = query("SELECT count(power_w) FROM street_light").await;
    assert_eq!(v["results"][0]["series"][0]["values"][0][1], 6, "{v}");
    let v = query("SHOW FIELD KEYS").await;
    let series = v["results"][0]["series"].as_array().expect("series");
    let types: Vec<(String, String)> = series
        .iter()
        .flat_map(|s| {
            let name = s["name"].as_str().unwrap_or_default().to_owned();
            s["values"].as_array().into_iter().flatten().map(move |kv| {
                (
                    format!("{name}.{}", kv[0].as_str().unwrap_or_default()),
                    kv[1].to_string(),
                )
            })
        })
        .collect();
    assert_eq!(
        types,
        [
            ("street_light.power_w".to_owned(), "\"float\"".to_owned()),
            ("waste_bin.fill".to_owned(), "\"float\"".to_owned()),
            ("waste_bin.full".to_owned(), "\"boolean\"".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_batch_written_while_the_database_is_down_lands_when_it_is_back() {
    let Some(mut vm) = Server::victoria_metrics("a_batch_written_while_the_database_is_down").await
    else {
        return;
    };
    let logs = Logs::capture();
    vm.stop().await;
    let s = spawn(sink_cfg(SinkKind::InfluxdbV2, vm.url()), None);
    s.tx.send(batch(&[format!("counter,road=a1 vehicles=42i {T0}")]))
        .await
        .expect("sent");
    let retries = s.metrics.retry("connection");
    eventually("a few failed attempts", || {
        let n = retries.get();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    vm.start().await;
    let (dead, metrics) = s.finish().await;
    assert!(dead.is_empty());
    assert_eq!(metrics.written(PointKind::raw).get(), 1);
    assert_eq!(vm_has(&vm.url(), "counter_vehicles", 1).await, [42.0]);
    assert_eq!(logs.count("writes fail"), 1, "{}", logs.text());
    assert_eq!(logs.count("writes succeed again"), 1, "{}", logs.text());
    assert!(logs.text().contains("retries="), "{}", logs.text());
}
