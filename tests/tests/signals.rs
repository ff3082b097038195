//! The built `ingest` binary as a child process: the embedded default with no
//! configuration at all, and SIGTERM, which must write everything taken in
//! (pending batch and open windows) before exiting 0.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use common::{
    bounded, config, free_port, http_client, ingest_binary, now_s, ns, publish, scrape, to_influx1,
    wait_ready, Process, SERVICE, VISIBLE,
};
use harness::mqtt::{self, QoS};
use harness::{wait_until, FieldValue, Influx1, Mosquitto};
use influxdb_line_protocol::{parse_lines, FieldValue as Lp};
use serde_json::json;

/// A line of a line-protocol file, owned.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    measurement: String,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, FieldValue>,
    time_ns: i64,
}

/// Every line of every `.lp` file under `dir`, parsed; a line that does not
/// parse is an error.
fn read_lines(dir: &Path) -> anyhow::Result<Vec<Line>> {
    let mut lines = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(lines);
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lp"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for parsed in parse_lines(&text) {
            let parsed = parsed.with_context(|| format!("a bad line in {}", file.display()))?;
            let tags = parsed
                .series
                .tag_set
                .iter()
                .flatten()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let fields = parsed
                .field_set
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Lp::I64(n) => FieldValue::Integer(*n),
                        Lp::U64(n) => FieldValue::Unsigned(*n),
                        Lp::F64(n) => FieldValue::Float(*n),
                        Lp::Boolean(b) => FieldValue::Boolean(*b),
                        Lp::String(s) => FieldValue::String(s.to_string()),
                    };
                    (k.to_string(), v)
                })
                .collect();
            lines.push(Line {
                measurement: parsed.series.measurement.to_string(),
                tags,
                fields,
                time_ns: parsed.timestamp.context("a line without timestamp")?,
            });
        }
    }
    Ok(lines)
}

fn is_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

#[tokio::test]
async fn the_embedded_default_takes_a_publish_and_writes_line_protocol_files() -> anyhow::Result<()>
{
    // Built before the clock of the test starts.
    let binary = ingest_binary();
    bounded(async {
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(binary);
        command.arg("run").current_dir(dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("INGEST") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        // No configuration: the embedded broker on 127.0.0.1:1883 and the
        // file sink under ./data. Only when this machine already uses port
        // 1883 (or 9464, the HTTP default) are they moved to free ports, so
        // that the test can run at all.
        let mut port = 1883;
        if !is_free(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
            port = free_port()?;
            command
                .env("INGEST__BROKER__LISTEN", format!("127.0.0.1:{port}"))
                .env("INGEST__MQTT__PORT", port.to_string());
        }
        if !is_free(SocketAddr::from((Ipv4Addr::LOCALHOST, 9464))) {
            command.env(
                "INGEST__HTTP__LISTEN",
                format!("127.0.0.1:{}", free_port()?),
            );
        }
        let mut service = Process::spawn(command, dir.path().join("ingest.log"))?;
        let host = "127.0.0.1";
        wait_ready(host, port)
            .await
            .with_context(|| format!("log:\n{}", service.log()))?;

        let t = now_s() - 30;
        let topic = "city/rabat/lighting/lamp-default/telemetry";
        let payload = json!({"dateObserved": t, "powerState": "on", "powerConsumption": 40.5});
        mqtt::publish_all(host, port, QoS::AtLeastOnce, [(topic, payload.to_string())]).await?;

        let data = dir.path().join("data");
        let ours = |l: &Line| l.tags.get("device").is_some_and(|d| d == "lamp-default");
        let raw = wait_until("the point in ./data", VISIBLE, async || {
            let lines = read_lines(&data)?;
            lines
                .into_iter()
                .find(|l| ours(l) && l.measurement == "lighting")
                .context("not written yet")
        })
        .await?;
        let tags: BTreeMap<String, String> = [("commune", "rabat"), ("device", "lamp-default")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(raw.tags, tags);
        assert_eq!(raw.time_ns, ns(t));
        assert_eq!(raw.fields.get("power_w"), Some(&FieldValue::Float(40.5)));
        assert_eq!(
            raw.fields.get("power_state"),
            Some(&FieldValue::String("on".into()))
        );

        let status = service.terminate().await?;
        assert!(status.success(), "exit {status:?}; log:\n{}", service.log());

        // After the stop: the point once, and its open windows flushed.
        let lines: Vec<Line> = read_lines(&data)?.into_iter().filter(ours).collect();
        let measurements: Vec<&str> = lines.iter().map(|l| l.measurement.as_str()).collect();
        assert_eq!(measurements, ["lighting", "lighting_1m"], "{lines:?}");
        assert_eq!(lines[1].fields.get("count"), Some(&FieldValue::Integer(1)));
        assert_eq!(lines[1].time_ns, ns(t / 60 * 60));
        Ok(())
    })
    .await
}

#[tokio::test]
async fn sigterm_writes_the_pending_batch_and_the_open_windows() -> anyhow::Result<()> {
    let Some(broker) = Mosquitto::start_or_skip().await else {
        return Ok(());
    };
    let Some(db) = Influx1::start_or_skip().await else {
        return Ok(());
    };
    let binary = ingest_binary();
    bounded(async {
        let dir = tempfile::tempdir()?;
        let mut cfg = config(&broker)?;
        to_influx1(&mut cfg, &db);
        // A batch waits a minute: what is written comes from the shutdown.
        cfg.sink.batch.max_age_ms = 60_000;
        cfg.windows.idle_advance_s = 0;
        let http = cfg.http.listen;
        let file = dir.path().join("ingest.toml");
        std::fs::write(&file, cfg.masked_toml())?;

        let mut command = Command::new(binary);
        command.arg("run").arg("--config").arg(&file).current_dir(dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("INGEST") {
                command.env_remove(key);
            }
        }
        let mut service = Process::spawn(command, dir.path().join("ingest.log"))?;
        wait_ready(broker.host(), broker.port())
            .await
            .with_context(|| format!("log:\n{}", service.log()))?;

        // Readings of one minute, all in open windows.
        let minute = (now_s() - 120) / 60 * 60;
        let lamp = |at: i64, power: f64| {
            (
                "city/sale/lighting/lamp-s1/telemetry".to_owned(),
                json!({"dateObserved": at, "powerState": "on", "powerConsumption": power})
                    .to_string(),
            )
        };
        let messages = vec![
            lamp(minute + 1, 30.0),
            lamp(minute + 2, 36.0),
            lamp(minute + 3, 33.0),
            (
                "city/sale/waste/bin-s1/telemetry".to_owned(),
                json!({"dateObserved": minute + 4, "fillingLevel": 0.4}).to_string(),
            ),
            (
                "city/sale/traffic/c-s1/telemetry".to_owned(),
                json!({"dateObserved": format!("{}/{}", common::rfc3339(minute), common::rfc3339(minute + 60)),
                       "laneId": 1, "intensity": 12, "averageVehicleSpeed": 40})
                .to_string(),
            ),
        ];
        publish(&broker, messages).await?;

        let client = http_client()?;
        wait_until("the service to take every reading", VISIBLE, async || {
            let m = scrape(&client, http).await?;
            let n = |d: &str| m.get(&format!("ingest_readings_total{{domain=\"{d}\"}}"));
            anyhow::ensure!(
                (n("lighting"), n("waste"), n("traffic")) == (3.0, 1.0, 1.0),
                "readings so far: {:?}",
                m.family("ingest_readings_total")
            );
            Ok(())
        })
        .await?;
        assert!(
            db.measurements().await?.is_empty(),
            "nothing is written before the batch is due"
        );

        let status = tokio::time::timeout(SERVICE, service.terminate()).await??;
        assert!(status.success(), "exit {status:?}; log:\n{}", service.log());

        // Everything is there at once, no polling: the raw points…
        assert_eq!(
            db.measurements().await?,
            [
                "lighting",
                "lighting_1m",
                "lighting_commune_15m",
                "traffic",
                "traffic_1m",
                "traffic_commune_15m",
                "waste",
                "waste_1m",
                "waste_commune_15m",
            ]
        );
        let raw = db.points("lighting").await?;
        assert_eq!(
            raw.iter().map(|p| p.time_ns).collect::<Vec<_>>(),
            [ns(minute + 1), ns(minute + 2), ns(minute + 3)]
        );
        assert_eq!(db.points("waste").await?.len(), 1);
        assert_eq!(db.points("traffic").await?.len(), 1);

        // …and the windows that were still open, flushed.
        let window = db.points("lighting_1m").await?;
        assert_eq!(window.len(), 1, "{window:?}");
        let w = &window[0];
        assert_eq!(w.time_ns, ns(minute));
        assert_eq!(w.field("count"), Some(&FieldValue::Integer(3)));
        assert_eq!(w.field("power_w_mean"), Some(&FieldValue::Float(33.0)));
        assert_eq!(w.field("power_w_last"), Some(&FieldValue::Float(33.0)));
        let rollup = db.points("lighting_commune_15m").await?;
        assert_eq!(rollup.len(), 1, "{rollup:?}");
        assert_eq!(rollup[0].time_ns, ns(minute / 900 * 900));
        assert_eq!(rollup[0].field("lamps_on"), Some(&FieldValue::Integer(1)));
        assert_eq!(rollup[0].field("load_w"), Some(&FieldValue::Float(33.0)));
        let bins = db.points("waste_commune_15m").await?;
        assert_eq!(bins.len(), 1, "{bins:?}");
        assert_eq!(bins[0].field("fill_mean"), Some(&FieldValue::Float(0.4)));
        let lanes = db.points("traffic_1m").await?;
        assert_eq!(lanes.len(), 1, "{lanes:?}");
        assert_eq!(lanes[0].field("vehicle_count_last"), Some(&FieldValue::Float(12.0)));
        Ok(())
    })
    .await
}
