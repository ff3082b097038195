//! VictoriaMetrics, single node: the InfluxDB v2 write API's stand-in.
//!
//! What it does with line protocol (checked against the Debian build, 1.79):
//! - A point `m,tag=v f1=..,f2=..` becomes one sample per field, in series named
//!   `m_f1`, `m_f2`, with the tags as labels. Tags with an empty value are absent.
//! - Floats and integers are kept as float64; booleans become 1 and 0; a string
//!   field is not dropped but stored as 0 (a test should never read it).
//! - Timestamps are truncated to milliseconds.
//! - Points older than the retention period (one month by default; the harness
//!   sets 100 years) or more than two days ahead are dropped silently, and so are
//!   lines that do not parse: the write still answers 204.
//! - Two writes of a series at the same timestamp are two samples, unless
//!   deduplication is on (`-dedup.minScrapeInterval=1ms`, see
//!   [`VictoriaMetrics::launch_with`]); then the later write wins.
//! - A new series shows in queries only after VictoriaMetrics flushes its
//!   buffers and index: a few seconds by default, about one second with the
//!   `/internal/force_flush` that [`VictoriaMetrics::export`] sends first. Poll
//!   with [`crate::wait_until`]; never assume a write is visible at once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

use crate::http::{client, send_ok};
use crate::process::{free_port, process_controls, Readiness, ServerProcess, Spec};
use crate::require::{require, VICTORIA_METRICS};

/// A VictoriaMetrics server on a free port of 127.0.0.1. A graceful stop
/// writes what it holds in memory; a kill (a crash) may lose the last second
/// of writes.
#[derive(Debug)]
pub struct VictoriaMetrics {
    process: ServerProcess,
    port: u16,
    base_url: String,
    http: reqwest::Client,
}

/// One series as exported: samples sorted by timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSeries {
    /// The metric name: `{measurement}_{field}`.
    pub name: String,
    /// The labels, from the tags, without `__name__`.
    pub labels: BTreeMap<String, String>,
    /// Sample timestamps in milliseconds since the epoch, ascending.
    pub timestamps: Vec<i64>,
    /// Sample values, one per timestamp.
    pub values: Vec<f64>,
}

impl VmSeries {
    /// The value of a label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The latest sample: (timestamp in ms, value).
    pub fn last(&self) -> Option<(i64, f64)> {
        Some((*self.timestamps.last()?, *self.values.last()?))
    }
}

/// One line of `/api/v1/export`.
#[derive(Debug, Deserialize)]
struct ExportLine {
    metric: BTreeMap<String, String>,
    values: Vec<serde_json::Value>,
    timestamps: Vec<i64>,
}

impl VictoriaMetrics {
    /// Starts a server, or returns `None` (after saying why) when VictoriaMetrics
    /// is not installed and `CI` is not set; see [`crate::require`].
    ///
    /// # Panics
    /// When VictoriaMetrics is missing and `CI` is set, or when it does not start.
    pub async fn start_or_skip() -> Option<Self> {
        let program = require(&VICTORIA_METRICS)?;
        Some(
            Self::launch_at(&program, &[])
                .await
                .expect("VictoriaMetrics starts"),
        )
    }

    /// Starts a server.
    pub async fn launch() -> anyhow::Result<Self> {
        Self::launch_with(&[]).await
    }

    /// Starts a server with extra command-line flags, for instance
    /// `-dedup.minScrapeInterval=1ms` so that a rewrite replaces a sample.
    pub async fn launch_with(extra_flags: &[&str]) -> anyhow::Result<Self> {
        let program = VICTORIA_METRICS
            .locate()
            .context("victoria-metrics is not installed")?;
        Self::launch_at(&program, extra_flags).await
    }

    async fn launch_at(program: &Path, extra_flags: &[&str]) -> anyhow::Result<Self> {
        let http = client()?;
        let (process, port) = ServerProcess::launch("victoria-metrics", program, |dir| {
            let port = free_port()?;
            let mut args: Vec<OsString> = vec![
                format!("-httpListenAddr=127.0.0.1:{port}").into(),
                format!("-storageDataPath={}", dir.join("data").display()).into(),
                // Answer with the latest samples, not those 30 s old and older.
                "-search.latencyOffset=0s".into(),
                // A cached answer would hide later writes.
                "-search.disableCache".into(),
                // Accept the fixed, old timestamps of test fixtures.
                "-retentionPeriod=100y".into(),
            ];
            args.extend(extra_flags.iter().map(OsString::from));
            Ok(Spec {
                args,
                ready: Readiness::Http {
                    url: format!("http://127.0.0.1:{port}/health"),
                    client: http.clone(),
                },
                chosen: port,
            })
        })
        .await?;
        Ok(Self {
            process,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            http,
        })
    }

    /// The port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The InfluxDB v2 write endpoint, `{base_url}/api/v2/write`. It ignores
    /// `org`, `bucket` and the token, and honours `precision`.
    pub fn write_url(&self) -> String {
        format!("{}/api/v2/write", self.base_url)
    }

    process_controls!();

    /// Writes line protocol (nanosecond timestamps) through `/api/v2/write`.
    pub async fn write_lines(&self, lines: &str) -> anyhow::Result<()> {
        let request = self
            .http
            .post(self.write_url())
            .query(&[("precision", "ns")])
            .body(lines.to_owned());
        send_ok(request, "VictoriaMetrics write").await?;
        Ok(())
    }

    /// Asks the server to make recent writes searchable now.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let request = self
            .http
            .get(format!("{}/internal/force_flush", self.base_url));
        send_ok(request, "VictoriaMetrics force_flush").await?;
        Ok(())
    }

    /// Every series with all its samples, sorted by name then labels.
    pub async fn export(&self) -> anyhow::Result<Vec<VmSeries>> {
        self.export_matching(r#"{__name__!=""}"#).await
    }

    /// The series of one metric name (`{measurement}_{field}`).
    pub async fn series(&self, name: &str) -> anyhow::Result<Vec<VmSeries>> {
        let escaped = name.replace('\\', r"\\").replace('"', "\\\"");
        self.export_matching(&format!(r#"{{__name__="{escaped}"}}"#))
            .await
    }

    /// The series that match a series selector such as `{__name__=~"traffic_.*"}`.
    pub async fn export_matching(&self, selector: &str) -> anyhow::Result<Vec<VmSeries>> {
        self.flush().await?;
        let request = self
            .http
            .get(format!("{}/api/v1/export", self.base_url))
            .query(&[("match[]", selector)]);
        let body = send_ok(request, "VictoriaMetrics export")
            .await?
            .text()
            .await
            .context("reading the export")?;
        parse_export(&body)
    }
}

/// Parses `/api/v1/export` output, merging the lines of one series (the export
/// gives one line per stored block).
fn parse_export(body: &str) -> anyhow::Result<Vec<VmSeries>> {
    type Key = (String, BTreeMap<String, String>);
    let mut merged: BTreeMap<Key, Vec<(i64, f64)>> = BTreeMap::new();
    for line in body.lines().filter(|line| !line.trim().is_empty()) {
        let parsed: ExportLine = serde_json::from_str(line)
            .with_context(|| format!("parsing the export line {line}"))?;
        anyhow::ensure!(
            parsed.values.len() == parsed.timestamps.len(),
            "values and timestamps differ in length in {line}"
        );
        let mut labels = parsed.metric;
        let name = labels.remove("__name__").unwrap_or_default();
        let samples = merged.entry((name, labels)).or_default();
        for (value, timestamp) in parsed.values.iter().zip(parsed.timestamps) {
            let value = match value {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.parse::<f64>().ok(),
                _ => None,
            }
            .with_context(|| format!("a value that is not a number in {line}"))?;
            samples.push((timestamp, value));
        }
    }
    Ok(merged
        .into_iter()
        .map(|((name, labels), mut samples)| {
            // Stable: samples at one timestamp keep their stored order.
            samples.sort_by_key(|&(timestamp, _)| timestamp);
            VmSeries {
                name,
                labels,
                timestamps: samples.iter().map(|&(t, _)| t).collect(),
                values: samples.iter().map(|&(_, v)| v).collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_of_one_series_are_merged_and_sorted() {
        let body = concat!(
            r#"{"metric":{"__name__":"traffic_speed","lane":"1"},"values":[3,4],"timestamps":[30,40]}"#,
            "\n",
            r#"{"metric":{"__name__":"traffic_speed","lane":"1"},"values":[1,"NaN"],"timestamps":[10,20]}"#,
            "\n",
            r#"{"metric":{"__name__":"lighting_on"},"values":[1],"timestamps":[5]}"#,
            "\n",
        );
        let series = parse_export(body).expect("valid export");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].name, "lighting_on");
        assert_eq!(series[1].label("lane"), Some("1"));
        assert_eq!(series[1].timestamps, [10, 20, 30, 40]);
        assert_eq!(series[1].values[0], 1.0);
        assert!(series[1].values[1].is_nan());
        assert_eq!(series[1].last(), Some((40, 4.0)));
    }
}
