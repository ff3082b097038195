//! InfluxDB 1.x (the Debian build, 1.6): the database that keeps exact field types.
//!
//! What tests should know:
//! - A field's type is fixed by its first write into a shard; a later point
//!   with another type for it is refused (`400`, "field type conflict", the rest
//!   of the batch is written: a partial write).
//! - 1.6 has no unsigned integers: a `7u` field makes the whole line unparsable.
//! - A point with the same measurement, tags and timestamp as an earlier one
//!   overwrites its fields (a field not given keeps its old value).
//! - A write is visible to the next query; no delay.
//! - 1.6 has only the v1 write API, `/write?db=`; `/api/v2/write` answers 404.
//! - The JSON of a query loses the float/integer distinction (a float `3.0`
//!   comes back as `3`); [`Influx1::points`] uses `SHOW FIELD KEYS` to type values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::http::{client, send_ok};
use crate::influxql::{quote_ident, typed_point, FieldType, InfluxSeries, Point, QueryAnswer};
use crate::process::{free_ports, process_controls, Readiness, ServerProcess, Spec};
use crate::require::{require, INFLUXD};

/// The database created at start, and the one queries and writes use.
const DATABASE: &str = "telemetry";

/// An InfluxDB 1.x server on free ports of 127.0.0.1, with one database.
/// Acknowledged writes survive a kill (a crash): they are in its WAL.
#[derive(Debug)]
pub struct Influx1 {
    process: ServerProcess,
    port: u16,
    base_url: String,
    http: reqwest::Client,
}

impl Influx1 {
    /// Starts a server, or returns `None` (after saying why) when `influxd` is not
    /// installed and `CI` is not set; see [`crate::require`].
    ///
    /// # Panics
    /// When `influxd` is missing and `CI` is set, or when it does not start.
    pub async fn start_or_skip() -> Option<Self> {
        let program = require(&INFLUXD)?;
        Some(
            Self::launch_at(&program)
                .await
                .expect("InfluxDB 1.x starts"),
        )
    }

    /// Starts a server and creates its database.
    pub async fn launch() -> anyhow::Result<Self> {
        let program = INFLUXD.locate().context("influxd is not installed")?;
        Self::launch_at(&program).await
    }

    async fn launch_at(program: &Path) -> anyhow::Result<Self> {
        let http = client()?;
        let (process, port) = ServerProcess::launch("influxd", program, |dir| {
            let [port, rpc_port] = free_ports()?;
            let config = dir.join("influxdb.conf");
            std::fs::write(&config, config_file(dir, port, rpc_port))
                .context("writing influxdb.conf")?;
            Ok(Spec {
                args: vec!["-config".into(), config.into_os_string()],
                ready: Readiness::Http {
                    url: format!("http://127.0.0.1:{port}/ping"),
                    client: http.clone(),
                },
                chosen: port,
            })
        })
        .await?;
        let server = Self {
            process,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            http,
        };
        server.create_database(DATABASE).await?;
        Ok(server)
    }

    /// The HTTP port; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The database created at start: `telemetry`.
    pub fn database(&self) -> &'static str {
        DATABASE
    }

    /// The v1 write endpoint for the database, nanosecond precision:
    /// `{base_url}/write?db=telemetry`.
    pub fn write_url(&self) -> String {
        format!("{}/write?db={DATABASE}", self.base_url)
    }

    process_controls!();

    /// Creates a database (nothing happens if it exists).
    pub async fn create_database(&self, name: &str) -> anyhow::Result<()> {
        self.run(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
            .with_context(|| format!("creating the database {name}"))?;
        Ok(())
    }

    /// Writes line protocol (nanosecond timestamps) into the database.
    pub async fn write_lines(&self, lines: &str) -> anyhow::Result<()> {
        let request = self.http.post(self.write_url()).body(lines.to_owned());
        send_ok(request, "InfluxDB write").await?;
        Ok(())
    }

    /// Runs InfluxQL in the database, times in nanoseconds since the epoch, and
    /// returns the series of every statement; fails if a statement fails.
    pub async fn query(&self, influxql: &str) -> anyhow::Result<Vec<InfluxSeries>> {
        self.run(influxql)
            .await
            .with_context(|| format!("query {influxql}"))
    }

    async fn run(&self, influxql: &str) -> anyhow::Result<Vec<InfluxSeries>> {
        // POST, since InfluxDB refuses statements other than SELECT and SHOW in a GET.
        let request = self.http.post(format!("{}/query", self.base_url)).query(&[
            ("db", DATABASE),
            ("epoch", "ns"),
            ("q", influxql),
        ]);
        let body = send_ok(request, "InfluxDB query")
            .await?
            .text()
            .await
            .context("reading the answer")?;
        let answer: QueryAnswer =
            serde_json::from_str(&body).with_context(|| format!("parsing the answer {body}"))?;
        if let Some(error) = answer.error {
            anyhow::bail!("{error}");
        }
        let mut series = Vec::new();
        for statement in answer.results {
            if let Some(error) = statement.error {
                anyhow::bail!("{error}");
            }
            series.extend(statement.series);
        }
        Ok(series)
    }

    /// The measurements of the database, sorted.
    pub async fn measurements(&self) -> anyhow::Result<Vec<String>> {
        let series = self.query("SHOW MEASUREMENTS").await?;
        Ok(series
            .iter()
            .flat_map(|s| &s.values)
            .filter_map(|row| row.first()?.as_str().map(str::to_owned))
            .collect())
    }

    /// The field names of a measurement with their exact types.
    pub async fn field_types(
        &self,
        measurement: &str,
    ) -> anyhow::Result<BTreeMap<String, FieldType>> {
        let series = self
            .query(&format!(
                "SHOW FIELD KEYS FROM {}",
                quote_ident(measurement)
            ))
            .await?;
        let mut types = BTreeMap::new();
        for row in series.iter().flat_map(|s| &s.values) {
            let (Some(name), Some(kind)) = (
                row.first().and_then(serde_json::Value::as_str),
                row.get(1).and_then(serde_json::Value::as_str),
            ) else {
                anyhow::bail!("unexpected SHOW FIELD KEYS row {row:?}");
            };
            types.insert(name.to_owned(), FieldType::parse(kind)?);
        }
        Ok(types)
    }

    /// Every point of a measurement, typed, sorted by time then tags. Empty if
    /// the measurement does not exist.
    pub async fn points(&self, measurement: &str) -> anyhow::Result<Vec<Point>> {
        let types = self.field_types(measurement).await?;
        let series = self
            .query(&format!(
                "SELECT * FROM {} GROUP BY *",
                quote_ident(measurement)
            ))
            .await?;
        let mut points = Vec::new();
        for s in series {
            // GROUP BY * gives a tag the point lacks as an empty value.
            let tags: BTreeMap<String, String> =
                s.tags.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            for row in &s.values {
                points.push(typed_point(measurement, &tags, &s.columns, row, &types)?);
            }
        }
        points.sort_by(|a, b| (a.time_ns, &a.tags).cmp(&(b.time_ns, &b.tags)));
        Ok(points)
    }
}

fn config_file(dir: &Path, port: u16, rpc_port: u16) -> String {
    let dir = dir.display();
    let mut config = String::new();
    // Write-to-String cannot fail.
    let _ = write!(
        config,
        r#"# Upstream's key, and the one of the Debian build.
reporting-disabled = true
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false

[continuous_queries]
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"#
    );
    config
}
