//! Reading raw points back: one query per poll, restricted to the raw
//! measurements (`lighting`, `waste`, `traffic`; never the `_1m` or
//! `_commune_15m` windows), the manifest's communes and its time range.
//! Every answer is reduced to [`Sample`]s — measurement, tags, field and
//! millisecond timestamp — by a pure parser per database:
//!
//! - VictoriaMetrics: `/api/v1/export`, JSON lines, one per series
//!   `{measurement}_{field}` with the tags as labels, millisecond
//!   timestamps; a sample written twice at one timestamp without
//!   deduplication is exported twice.
//! - InfluxDB v1 API: InfluxQL on `/query`, chunked JSON, one row per point.
//! - InfluxDB v2 API: Flux on `/api/v2/query`, CSV, one row per field.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemas::{Attribute, Domain};
use serde::Deserialize;

/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// Rows per chunk of an InfluxQL answer.
const CHUNK_SIZE: &str = "10000";
/// Fields the service derives for traffic intervals (see
/// `processors::normalize`).
const DERIVED_TRAFFIC_FIELDS: [&str; 2] = ["period_s", "flow_vph"];

/// A secret that `Debug` does not show.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The database the service writes to, and how to query it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// VictoriaMetrics, queried through `/api/v1/export`.
    VictoriaMetrics {
        /// Base URL, e.g. `http://127.0.0.1:8428`.
        url: String,
        /// Calls `/internal/force_flush` before each poll, so that recent
        /// writes are searchable at once (at the cost of latency figures
        /// that leave out VictoriaMetrics's own indexing delay).
        force_flush: bool,
    },
    /// InfluxDB 2.x (or Cloud) through the v2 API: Flux on `/api/v2/query`.
    InfluxV2 {
        /// Base URL.
        url: String,
        /// Organization name.
        org: String,
        /// Bucket.
        bucket: String,
        /// API token.
        token: Option<Secret>,
    },
    /// InfluxDB 1.x through the v1 API: InfluxQL on `/query`.
    InfluxV1 {
        /// Base URL.
        url: String,
        /// Database.
        database: String,
        /// Retention policy; the database's default when `None`.
        retention_policy: Option<String>,
        /// User name for basic authentication.
        username: Option<String>,
        /// Password for basic authentication.
        password: Option<Secret>,
    },
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VictoriaMetrics { url, .. } => write!(f, "VictoriaMetrics at {url}"),
            Self::InfluxV2 {
                url, org, bucket, ..
            } => write!(f, "InfluxDB v2 API at {url} (org {org}, bucket {bucket})"),
            Self::InfluxV1 {
                url,
                database,
                retention_policy,
                ..
            } => {
                write!(f, "InfluxDB v1 API at {url} (database {database}")?;
                if let Some(rp) = retention_policy {
                    write!(f, ", retention policy {rp}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// What a poll asks for: raw points of these communes with timestamps in
/// `[from_ms, to_ms]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// First timestamp, milliseconds since the epoch.
    pub from_ms: i64,
    /// Last timestamp (included).
    pub to_ms: i64,
    /// Values of the `commune` tag.
    pub communes: Vec<String>,
}

/// One stored value as a database returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The measurement.
    pub measurement: &'a str,
    /// The `commune` tag.
    pub commune: &'a str,
    /// The `device` tag.
    pub device: &'a str,
    /// The `lane` tag; `None` when absent or empty.
    pub lane: Option<&'a str>,
    /// The field; `*` where a row is a whole point (InfluxQL).
    pub field: &'a str,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
}

/// A query that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// No answer, or the answer could not be read.
    #[error("{what}: {message}")]
    Transport {
        /// The request.
        what: String,
        /// What went wrong.
        message: String,
    },
    /// The database answered with an error status.
    #[error("{what}: {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The body of the answer, trimmed.
        body: String,
    },
    /// The answer is not what the API documents, or reports an error.
    #[error("{what}: {error}")]
    Answer {
        /// The request.
        what: String,
        /// Where and what.
        error: AnswerError,
    },
}

impl QueryError {
    /// Whether asking again cannot help: the database refused the request
    /// itself (a 4xx status but 408 and 429: a wrong URL, database, bucket
    /// or token).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
    }
}

/// An error and its causes, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let _ = write!(text, ": {c}");
        cause = c.source();
    }
    text
}

/// An answer that cannot be read, naming its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the answer: {message}")]
pub struct AnswerError {
    /// 1-based line of the answer.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn answer_error(line: usize, message: impl Into<String>) -> AnswerError {
    AnswerError {
        line,
        message: message.into(),
    }
}

/// The raw fields of a domain: its attributes, those any device may send,
/// and for traffic the derived ones.
pub fn raw_fields(domain: Domain) -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = Attribute::ALL
        .iter()
        .filter(|a| a.domain().is_none_or(|d| d == domain))
        .map(|a| a.field())
        .collect();
    if domain == Domain::Traffic {
        fields.extend(DERIVED_TRAFFIC_FIELDS);
    }
    fields.sort_unstable();
    fields.dedup();
    fields
}

/// A regular expression that matches `text` literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A PromQL / MetricsQL double-quoted string.
fn promql_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', r"\\").replace('"', "\\\""))
}

/// The series selector of the raw points of `scope` in VictoriaMetrics.
pub fn victoria_selector(scope: &Scope) -> String {
    let names: Vec<String> = Domain::ALL
        .iter()
        .map(|d| format!("{}_({})", d.as_str(), raw_fields(*d).join("|")))
        .collect();
    let communes: Vec<String> = scope.communes.iter().map(|c| regex_escape(c)).collect();
    format!(
        "{{__name__=~{},commune=~{}}}",
        promql_string(&names.join("|")),
        promql_string(&communes.join("|"))
    )
}

/// Unix seconds with milliseconds, as VictoriaMetrics takes `start` and `end`.
fn unix_seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// An InfluxQL identifier, quoted.
fn influxql_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', r"\\").replace('"', "\\\""))
}

/// An InfluxQL string literal.
fn influxql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', "\\'"))
}

/// The InfluxQL statement for the raw points of `scope`.
pub fn influxql(scope: &Scope, database: &str, retention_policy: Option<&str>) -> String {
    let from: Vec<String> = Domain::ALL
        .iter()
        .map(|d| match retention_policy {
            Some(rp) => format!(
                "{}.{}.{}",
                influxql_ident(database),
                influxql_ident(rp),
                influxql_ident(d.as_str())
            ),
            None => influxql_ident(d.as_str()),
        })
        .collect();
    let communes: Vec<String> = scope
        .communes
        .iter()
        .map(|c| format!("\"commune\" = {}", influxql_string(c)))
        .collect();
    format!(
        "SELECT * FROM {} WHERE time >= {} AND time <= {} AND ({}) GROUP BY *",
        from.join(","),
        i128::from(scope.from_ms) * 1_000_000,
        i128::from(scope.to_ms) * 1_000_000,
        communes.join(" OR ")
    )
}

/// A Flux string literal (`${` would start an interpolation).
fn flux_string(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', r"\\")
            .replace('"', "\\\"")
            .replace("${", "\\${")
    )
}

fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The Flux query for the raw points of `scope`: a row per field, with
/// only the columns that identify it.
pub fn flux(scope: &Scope, bucket: &str) -> String {
    let measurements: Vec<String> = Domain::ALL
        .iter()
        .map(|d| format!("r._measurement == {}", flux_string(d.as_str())))
        .collect();
    let communes: Vec<String> = scope
        .communes
        .iter()
        .map(|c| format!("r.commune == {}", flux_string(c)))
        .collect();
    let mut q = String::new();
    let _ = writeln!(q, "from(bucket: {})", flux_string(bucket));
    let _ = writeln!(
        q,
        "  |> range(start: time(v: {}), stop: time(v: {}))",
        flux_string(&rfc3339_ms(scope.from_ms)),
        // `stop` is excluded.
        flux_string(&rfc3339_ms(scope.to_ms.saturating_add(1)))
    );
    let _ = writeln!(
        q,
        "  |> filter(fn: (r) => ({}) and ({}))",
        measurements.join(" or "),
        communes.join(" or ")
    );
    q.push_str(
        "  |> keep(columns: [\"_time\", \"_measurement\", \"_field\", \"commune\", \"device\", \"lane\"])\n",
    );
    q
}

impl Database {
    /// The base URL without a trailing slash.
    fn base(&self) -> &str {
        match self {
            Self::VictoriaMetrics { url, .. }
            | Self::InfluxV2 { url, .. }
            | Self::InfluxV1 { url, .. } => url.trim_end_matches('/'),
        }
    }

    /// Runs the query of `scope` and returns the body of the answer.
    pub async fn query(&self, http: &reqwest::Client, scope: &Scope) -> Result<String, QueryError> {
        let base = self.base();
        let (what, request) = match self {
            Self::VictoriaMetrics { force_flush, .. } => {
                if *force_flush {
                    let url = format!("{base}/internal/force_flush");
                    send(&url, http.get(&url)).await?;
                }
                let url = format!("{base}/api/v1/export");
                let form = [
                    ("match[]", victoria_selector(scope)),
                    ("start", unix_seconds(scope.from_ms)),
                    ("end", unix_seconds(scope.to_ms)),
                ];
                (url.clone(), http.post(url).form(&form))
            }
            Self::InfluxV1 {
                database,
                retention_policy,
                username,
                password,
                ..
            } => {
                let url = format!("{base}/query");
                let q = influxql(scope, database, retention_policy.as_deref());
                let form = [
                    ("db", database.as_str()),
                    ("epoch", "ms"),
                    ("chunked", "true"),
                    ("chunk_size", CHUNK_SIZE),
                    ("q", q.as_str()),
                ];
                let mut request = http.post(&url).form(&form);
                if let Some(user) = username {
                    request = request.basic_auth(user, password.as_ref().map(|p| &p.0));
                }
                (url, request)
            }
            Self::InfluxV2 {
                org, bucket, token, ..
            } => {
                let url = format!("{base}/api/v2/query");
                let body = serde_json::json!({
                    "query": flux(scope, bucket),
                    "type": "flux",
                    "dialect": {
                        "header": true,
                        "delimiter": ",",
                        "annotations": [],
                        "dateTimeFormat": "RFC3339Nano",
                    },
                });
                let mut request = http
                    .post(&url)
                    .query(&[("org", org)])
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/csv")
                    .body(body.to_string());
                if let Some(token) = token {
                    request = request
                        .header(reqwest::header::AUTHORIZATION, format!("Token {}", token.0));
                }
                (url, request)
            }
        };
        send(&what, request.timeout(QUERY_TIMEOUT)).await
    }

    /// Reads an answer of [`Database::query`], sample by sample.
    pub fn parse(&self, body: &str, out: &mut impl FnMut(Sample<'_>)) -> Result<(), AnswerError> {
        match self {
            Self::VictoriaMetrics { .. } => parse_victoria_export(body, out),
            Self::InfluxV1 { .. } => parse_influxql(body, out),
            Self::InfluxV2 { .. } => parse_flux_csv(body, out),
        }
    }
}

async fn send(what: &str, request: reqwest::RequestBuilder) -> Result<String, QueryError> {
    let transport = |e: reqwest::Error| QueryError::Transport {
        what: what.to_owned(),
        message: chain(&e),
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.text().await.map_err(transport)?;
    if !status.is_success() {
        let mut body = body.trim().to_owned();
        if body.len() > 500 {
            let cut = (0..=500)
                .rev()
                .find(|&i| body.is_char_boundary(i))
                .unwrap_or(0);
            body.truncate(cut);
            body.push('…');
        }
        return Err(QueryError::Status {
            what: what.to_owned(),
            status: status.as_u16(),
            body,
        });
    }
    Ok(body)
}

/// One line of `/api/v1/export`.
#[derive(Debug, Deserialize)]
struct ExportLine<'a> {
    #[serde(borrow)]
    metric: HashMap<&'a str, Cow<'a, str>>,
    timestamps: Vec<i64>,
}

/// Reads VictoriaMetrics's `/api/v1/export` JSON lines. A metric name is
/// split at its first `_` into measurement and field; a series without a
/// `commune` or `device` label is skipped.
pub fn parse_victoria_export(
    body: &str,
    out: &mut impl FnMut(Sample<'_>),
) -> Result<(), AnswerError> {
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExportLine<'_> =
            serde_json::from_str(line).map_err(|e| answer_error(n + 1, e.to_string()))?;
        let label = |name: &str| parsed.metric.get(name).map(AsRef::as_ref);
        let name = label("__name__").ok_or_else(|| answer_error(n + 1, "no `__name__`"))?;
        let (Some((measurement, field)), Some(commune), Some(device)) =
            (name.split_once('_'), label("commune"), label("device"))
        else {
            continue;
        };
        let lane = label("lane").filter(|l| !l.is_empty());
        for &time_ms in &parsed.timestamps {
            out(Sample {
                measurement,
                commune,
                device,
                lane,
                field,
                time_ms,
            });
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct InfluxAnswer {
    #[serde(default)]
    results: Vec<InfluxStatement>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InfluxStatement {
    #[serde(default)]
    series: Vec<InfluxSeries>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InfluxSeries {
    name: String,
    #[serde(default)]
    tags: HashMap<String, String>,
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// Reads an InfluxQL answer (`epoch=ms`, `GROUP BY *`), chunked (one JSON
/// object per line) or not. Each row is a point: its field is `*`.
pub fn parse_influxql(body: &str, out: &mut impl FnMut(Sample<'_>)) -> Result<(), AnswerError> {
    for (n, line) in body.lines().enumerate() {
        let at = |message: String| answer_error(n + 1, message);
        if line.trim().is_empty() {
            continue;
        }
        let answer: InfluxAnswer = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        if let Some(error) = answer.error {
            return Err(at(format!("the database says: {error}")));
        }
        for statement in answer.results {
            if let Some(error) = statement.error {
                return Err(at(format!("the database says: {error}")));
            }
            for series in statement.series {
                let tag = |name: &str| series.tags.get(name).map(String::as_str);
                let (Some(commune), Some(device)) = (tag("commune"), tag("device")) else {
                    continue;
                };
                let time = series
                    .columns
                    .iter()
                    .position(|c| c == "time")
                    .ok_or_else(|| at(format!("series {} has no `time` column", series.name)))?;
                for row in &series.values {
                    let time_ms = row
                        .get(time)
                        .and_then(serde_json::Value::as_i64)
                        .ok_or_else(|| {
                            at(format!(
                                "series {}: a time that is no integer in {row:?}",
                                series.name
                            ))
                        })?;
                    out(Sample {
                        measurement: &series.name,
                        commune,
                        device,
                        lane: tag("lane").filter(|l| !l.is_empty()),
                        field: "*",
                        time_ms,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Splits a CSV record (RFC 4180 quoting; no line breaks inside a value).
fn csv_cells(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut cells = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err("a quoted value is not closed".to_owned()),
                }
            };
            cells.push(Cow::Owned(value));
            rest = &quoted[end..];
            match rest.strip_prefix(',') {
                Some(r) => rest = r,
                None if rest.is_empty() => return Ok(cells),
                None => return Err("text after a quoted value".to_owned()),
            }
        } else {
            let Some((cell, r)) = rest.split_once(',') else {
                cells.push(Cow::Borrowed(rest));
                return Ok(cells);
            };
            cells.push(Cow::Borrowed(cell));
            rest = r;
        }
    }
}

/// Where the columns a sample needs are in a table.
#[derive(Debug, Clone, Copy)]
enum Header {
    Data {
        time: usize,
        measurement: usize,
        field: usize,
        commune: Option<usize>,
        device: Option<usize>,
        lane: Option<usize>,
    },
    Error {
        error: usize,
    },
}

impl Header {
    fn parse(cells: &[Cow<'_, str>]) -> Result<Self, String> {
        let find = |name: &str| cells.iter().position(|c| c == name);
        if let Some(error) = find("error") {
            return Ok(Self::Error { error });
        }
        let need =
            |name: &str| find(name).ok_or_else(|| format!("a header without `{name}`: {cells:?}"));
        Ok(Self::Data {
            time: need("_time")?,
            measurement: need("_measurement")?,
            field: need("_field")?,
            commune: find("commune"),
            device: find("device"),
            lane: find("lane"),
        })
    }
}

/// Reads the CSV answer of a Flux query (`/api/v2/query`): tables, each
/// with its header row (and annotation rows, if asked for), separated by
/// blank lines; a table with an `error` column is an error.
pub fn parse_flux_csv(body: &str, out: &mut impl FnMut(Sample<'_>)) -> Result<(), AnswerError> {
    let mut header: Option<Header> = None;
    for (n, line) in body.lines().enumerate() {
        let at = |message: String| answer_error(n + 1, message);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            header = None;
            continue;
        }
        if line.starts_with('#') {
            // Annotations come before the header of a new table.
            header = None;
            continue;
        }
        let cells = csv_cells(line).map_err(at)?;
        let Some(current) = header else {
            header = Some(Header::parse(&cells).map_err(at)?);
            continue;
        };
        match current {
            Header::Error { error } => {
                let message = cells.get(error).map_or("", |c| c.as_ref());
                return Err(at(format!("the database says: {message}")));
            }
            Header::Data {
                time,
                measurement,
                field,
                commune,
                device,
                lane,
            } => {
                let cell = |i: usize| cells.get(i).map_or("", |c| c.as_ref());
                let optional = |i: Option<usize>| i.map(cell).filter(|v| !v.is_empty());
                let (Some(commune), Some(device)) = (optional(commune), optional(device)) else {
                    continue;
                };
                let stamp = cell(time);
                let time_ms = stamp
                    .parse::<DateTime<Utc>>()
                    .map_err(|e| {
                        at(format!(
                            "column `_time`: {stamp:?} is not an RFC 3339 time ({e})"
                        ))
                    })?
                    .timestamp_millis();
                out(Sample {
                    measurement: cell(measurement),
                    commune,
                    device,
                    lane: optional(lane),
                    field: cell(field),
                    time_ms,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = (String, String, String, Option<String>, String, i64);

    fn collect(
        parse: impl Fn(&str, &mut dyn FnMut(Sample<'_>)) -> Result<(), AnswerError>,
        body: &str,
    ) -> Result<Vec<Owned>, AnswerError> {
        let mut got = Vec::new();
        parse(body, &mut |s: Sample<'_>| {
            got.push((
                s.measurement.to_owned(),
                s.commune.to_owned(),
                s.device.to_owned(),
                s.lane.map(str::to_owned),
                s.field.to_owned(),
                s.time_ms,
            ));
        })?;
        Ok(got)
    }

    fn sample(
        measurement: &str,
        commune: &str,
        device: &str,
        lane: Option<&str>,
        field: &str,
        time_ms: i64,
    ) -> Owned {
        (
            measurement.into(),
            commune.into(),
            device.into(),
            lane.map(Into::into),
            field.into(),
            time_ms,
        )
    }

    fn victoria(body: &str) -> Result<Vec<Owned>, AnswerError> {
        collect(|b, out| parse_victoria_export(b, &mut |s| out(s)), body)
    }

    fn influxql_answer(body: &str) -> Result<Vec<Owned>, AnswerError> {
        collect(|b, out| parse_influxql(b, &mut |s| out(s)), body)
    }

    fn flux_answer(body: &str) -> Result<Vec<Owned>, AnswerError> {
        collect(|b, out| parse_flux_csv(b, &mut |s| out(s)), body)
    }

    #[test]
    fn refusals_are_permanent_and_outages_are_not() {
        let status = |status| QueryError::Status {
            what: "q".into(),
            status,
            body: String::new(),
        };
        assert!(
            status(400).is_permanent() && status(401).is_permanent() && status(404).is_permanent()
        );
        assert!(!status(429).is_permanent() && !status(408).is_permanent());
        assert!(!status(503).is_permanent());
        let down = QueryError::Transport {
            what: "q".into(),
            message: "connection refused".into(),
        };
        assert!(!down.is_permanent());
    }

    #[test]
    fn raw_fields_exclude_windows_and_include_derived_ones() {
        let traffic = raw_fields(Domain::Traffic);
        for f in [
            "vehicle_count",
            "congested",
            "flow_vph",
            "period_s",
            "rssi_dbm",
        ] {
            assert!(traffic.contains(&f), "{f} in {traffic:?}");
        }
        assert!(!traffic.contains(&"power_w"));
        let lighting = raw_fields(Domain::Lighting);
        assert!(lighting.contains(&"power_state") && lighting.contains(&"status"));
        assert!(!lighting.contains(&"flow_vph"));
    }

    #[test]
    fn the_victoria_selector_quotes_and_escapes() {
        let scope = Scope {
            from_ms: 1_000,
            to_ms: 2_000,
            communes: vec!["rabat".into(), "a.b".into()],
        };
        let selector = victoria_selector(&scope);
        assert!(
            selector.starts_with(r#"{__name__=~"lighting_("#),
            "{selector}"
        );
        assert!(selector.contains("|traffic_("), "{selector}");
        assert!(
            selector.ends_with(r#",commune=~"rabat|a\\.b"}"#),
            "{selector}"
        );
        assert_eq!(unix_seconds(1_772_625_600_042), "1772625600.042");
        assert_eq!(unix_seconds(-1), "-1.999");
    }

    #[test]
    fn the_victoria_export_is_read_sample_by_sample() {
        // As VictoriaMetrics 1.79 exports: one series per line, a series
        // possibly over several lines, samples written twice kept twice
        // without deduplication, values of string fields as 0.
        let body = concat!(
            r#"{"metric":{"__name__":"traffic_speed_kmh","commune":"rabat","device":"counter-1","lane":"2"},"values":[23.5,23.5],"timestamps":[1772625600000,1772625600000]}"#,
            "\n",
            r#"{"metric":{"__name__":"lighting_power_state","commune":"rabat","device":"lamp-1"},"values":[0],"timestamps":[1772625601000]}"#,
            "\n",
            r#"{"metric":{"__name__":"lighting_power_w","commune":"rabat","device":"lamp-1"},"values":["NaN"],"timestamps":[1772625601000]}"#,
            "\n",
            r#"{"metric":{"__name__":"vm_free_disk_space_bytes"},"values":[1],"timestamps":[1]}"#,
            "\n",
        );
        assert_eq!(
            victoria(body).expect("valid"),
            [
                sample(
                    "traffic",
                    "rabat",
                    "counter-1",
                    Some("2"),
                    "speed_kmh",
                    1_772_625_600_000
                ),
                sample(
                    "traffic",
                    "rabat",
                    "counter-1",
                    Some("2"),
                    "speed_kmh",
                    1_772_625_600_000
                ),
                sample(
                    "lighting",
                    "rabat",
                    "lamp-1",
                    None,
                    "power_state",
                    1_772_625_601_000
                ),
                sample(
                    "lighting",
                    "rabat",
                    "lamp-1",
                    None,
                    "power_w",
                    1_772_625_601_000
                ),
            ]
        );
        let err = victoria("{\"metric\":{}}\n\nnot json\n").expect_err("bad");
        assert_eq!(err.line, 1, "{err}");
        assert!(
            err.to_string().contains("missing field `timestamps`"),
            "{err}"
        );
        let err = victoria("\nnot json\n").expect_err("bad");
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn the_influxql_statement_names_measurements_times_and_communes() {
        let scope = Scope {
            from_ms: 1_772_625_600_000,
            to_ms: 1_772_625_660_000,
            communes: vec!["rabat".into(), "o'hare".into()],
        };
        assert_eq!(
            influxql(&scope, "telemetry", None),
            "SELECT * FROM \"lighting\",\"waste\",\"traffic\" WHERE time >= 1772625600000000000 \
             AND time <= 1772625660000000000 AND (\"commune\" = 'rabat' OR \"commune\" = 'o\\'hare') GROUP BY *"
        );
        assert!(influxql(&scope, "telemetry", Some("week"))
            .contains("FROM \"telemetry\".\"week\".\"lighting\",\"telemetry\".\"week\".\"waste\""));
    }

    #[test]
    fn an_influxql_answer_is_read_row_by_row_across_chunks() {
        // As InfluxDB 1.6 answers `SELECT * ... GROUP BY *` with `epoch=ms`
        // and `chunked=true`: a tag a point lacks is an empty string.
        let body = concat!(
            r#"{"results":[{"statement_id":0,"series":[{"name":"lighting","tags":{"commune":"rabat","device":"lamp-1","lane":""},"columns":["time","power_state","power_w"],"values":[[1772625600000,"on",41.5],[1772625660000,"off",null]]}],"partial":true}]}"#,
            "\n",
            r#"{"results":[{"statement_id":0,"series":[{"name":"traffic","tags":{"commune":"rabat","device":"counter-1","lane":"2"},"columns":["time","congested"],"values":[[1772625600000,true]]}]}]}"#,
            "\n",
        );
        assert_eq!(
            influxql_answer(body).expect("valid"),
            [
                sample("lighting", "rabat", "lamp-1", None, "*", 1_772_625_600_000),
                sample("lighting", "rabat", "lamp-1", None, "*", 1_772_625_660_000),
                sample(
                    "traffic",
                    "rabat",
                    "counter-1",
                    Some("2"),
                    "*",
                    1_772_625_600_000
                ),
            ]
        );
        assert_eq!(
            influxql_answer(r#"{"results":[{"statement_id":0}]}"#).expect("empty"),
            []
        );
        let err =
            influxql_answer(r#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#)
                .expect_err("an error");
        assert!(err.to_string().contains("database not found: x"), "{err}");
        let err =
            influxql_answer(r#"{"error":"error parsing query: found EOF"}"#).expect_err("an error");
        assert!(err.to_string().contains("found EOF"), "{err}");
    }

    #[test]
    fn the_flux_query_filters_measurements_communes_and_time() {
        let scope = Scope {
            from_ms: 1_772_625_600_000,
            to_ms: 1_772_625_660_000,
            communes: vec!["rabat".into(), "x${y}".into()],
        };
        let q = flux(&scope, "telemetry");
        assert!(q.starts_with("from(bucket: \"telemetry\")\n"), "{q}");
        assert!(
            q.contains(
                "range(start: time(v: \"2026-03-04T12:00:00.000Z\"), stop: time(v: \"2026-03-04T12:01:00.001Z\"))"
            ),
            "{q}"
        );
        assert!(
            q.contains("r._measurement == \"lighting\" or r._measurement == \"waste\""),
            "{q}"
        );
        assert!(
            q.contains("r.commune == \"rabat\" or r.commune == \"x\\${y}\""),
            "{q}"
        );
    }

    /// An answer of InfluxDB 2.7 to the query of [`flux`] with the dialect
    /// [`Database::query`] sends (header, no annotations, RFC3339Nano):
    /// tables of different columns are separated by a blank line, lines end
    /// in CRLF.
    const FLUX_ANSWER: &str = concat!(
        ",result,table,_time,_field,_measurement,commune,device\r\n",
        ",_result,0,2026-03-04T12:00:00Z,power_state,lighting,rabat,lamp-1\r\n",
        ",_result,1,2026-03-04T12:00:00Z,power_w,lighting,rabat,lamp-1\r\n",
        ",_result,1,2026-03-04T12:01:00.25Z,power_w,lighting,rabat,lamp-1\r\n",
        "\r\n",
        ",result,table,_time,_field,_measurement,commune,device,lane\r\n",
        ",_result,2,2026-03-04T12:00:00Z,congested,traffic,rabat,\"counter,1\",2\r\n",
        "\r\n",
    );

    #[test]
    fn a_flux_csv_answer_is_read_table_by_table() {
        assert_eq!(
            flux_answer(FLUX_ANSWER).expect("valid"),
            [
                sample(
                    "lighting",
                    "rabat",
                    "lamp-1",
                    None,
                    "power_state",
                    1_772_625_600_000
                ),
                sample(
                    "lighting",
                    "rabat",
                    "lamp-1",
                    None,
                    "power_w",
                    1_772_625_600_000
                ),
                sample(
                    "lighting",
                    "rabat",
                    "lamp-1",
                    None,
                    "power_w",
                    1_772_625_660_250
                ),
                sample(
                    "traffic",
                    "rabat",
                    "counter,1",
                    Some("2"),
                    "congested",
                    1_772_625_600_000
                ),
            ]
        );
        // With annotations, as the documentation shows them.
        let annotated = concat!(
            "#group,false,false,false,true,true,true,true\r\n",
            "#datatype,string,long,dateTime:RFC3339Nano,string,string,string,string\r\n",
            "#default,_result,,,,,,\r\n",
            ",result,table,_time,_field,_measurement,commune,device\r\n",
            ",,0,2026-03-04T12:00:00Z,fill_ratio,waste,berkane,bin-1\r\n",
        );
        assert_eq!(
            flux_answer(annotated).expect("valid"),
            [sample(
                "waste",
                "berkane",
                "bin-1",
                None,
                "fill_ratio",
                1_772_625_600_000
            )]
        );
        assert_eq!(flux_answer("").expect("no table"), []);
    }

    #[test]
    fn a_flux_error_table_or_bad_time_is_an_error_naming_the_line() {
        let error = concat!(
            "#datatype,string,long\r\n",
            ",error,reference\r\n",
            ",\"failed to initialize execute state: could not find bucket \"\"telemetry\"\"\",897\r\n",
        );
        let err = flux_answer(error).expect_err("an error table");
        assert_eq!(err.line, 3);
        assert!(
            err.to_string()
                .contains("could not find bucket \"telemetry\""),
            "{err}"
        );
        // Partial results, then the error as the next table.
        let partial = format!("{FLUX_ANSWER},error,reference\r\n,query timeout,\r\n");
        let err = flux_answer(&partial).expect_err("an error after data");
        assert!(err.to_string().contains("query timeout"), "{err}");

        let bad = ",result,table,_time,_field,_measurement,commune,device\n,,0,yesterday,f,lighting,c,d\n";
        let err = flux_answer(bad).expect_err("a bad time");
        assert_eq!(
            err.to_string(),
            "line 2 of the answer: column `_time`: \"yesterday\" is not an RFC 3339 time (input contains invalid characters)"
        );
        let err = flux_answer(",result,table,_value\n").expect_err("no _time");
        assert!(err.to_string().contains("without `_time`"), "{err}");
        assert!(csv_cells("a,\"b").is_err());
        assert_eq!(
            csv_cells("a,\"b\"\"c\",,d").expect("valid"),
            ["a", "b\"c", "", "d"]
        );
    }
}
