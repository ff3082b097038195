//! The loss oracle: after a load test, which of its messages the database
//! holds, which it lost, which it holds twice, and how long each took to
//! become queryable.
//!
//! The input is the [`Manifest`] of a load test — read from the file
//! `simulate load --manifest FILE` writes, or kept in memory by
//! [`load_and_verify`] — and a [`Database`]. A message is identified by
//! the point it becomes, `(domain, commune, device, lane, event time)` (see
//! [`crate::stream`]):
//!
//! - **expected**: points of valid messages that the broker acknowledged
//!   (or any valid message at QoS 0). Messages sharing a point (a cycled
//!   pool, a duplicate copy) are one point, counted as repeats. Valid
//!   messages not acknowledged at QoS 1 are counted apart: their points may
//!   or may not be stored.
//! - **found / missing**: expected points the database holds, or not, when
//!   polling stops.
//! - **duplicated**: points of the manifest's series and time range stored
//!   more than once (VictoriaMetrics keeps every write unless it
//!   deduplicates), or that no message accounts for (no message has their
//!   identity, or only messages the service must reject).
//! - **latency**: from a point's first publication to the first poll that
//!   saw it, p50/p90/p99/max; the poll interval is its resolution.
//!
//! [`verify`] polls the raw measurements (never the windows) of the
//! manifest's communes and time range until every expected point is found,
//! then for `settle` more (to see late duplicates), or until `timeout`. A
//! missing point can only be declared at the timeout, so the timeout should
//! cover how long the service may take to write what it was sent.
//!
//! `simulate load --drop N` records N messages in the manifest without
//! publishing them: the oracle must report exactly those missing, which
//! checks the oracle itself.

mod database;
mod manifest;
mod report;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use database::{
    parse_flux_csv, parse_influxql, parse_victoria_export, AnswerError, Database, QueryError,
    Sample, Scope, Secret,
};
pub use manifest::{Identity, Manifest, ManifestError, Sent, Series};
pub use report::{percentile, Latency, PointReport, VerifyReport};

use crate::publish::{LoadConfig, LoadReport};
use manifest::{Expectation, Role};

/// How the oracle polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Where the service writes.
    pub database: Database,
    /// How long to wait for missing points, from the first poll.
    pub timeout: Duration,
    /// The pause between the starts of two polls: the latency's resolution.
    pub interval: Duration,
    /// How long to keep polling once everything is found, to see
    /// duplicates written late.
    pub settle: Duration,
    /// How many missing and duplicated points the report lists.
    pub examples: usize,
}

impl VerifyConfig {
    /// Polls `database` every 500 ms for up to 60 s; lists 20 points.
    pub fn new(database: Database) -> Self {
        Self {
            database,
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(500),
            settle: Duration::ZERO,
            examples: 20,
        }
    }
}

/// Why the oracle could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The manifest has no message.
    #[error("the manifest lists no message")]
    EmptyManifest,
    /// The HTTP client cannot be built.
    #[error("building the HTTP client: {0}")]
    Client(String),
    /// No poll succeeded before the timeout.
    #[error("{database}: no poll succeeded within {timeout:?}; the last one: {last}")]
    NoAnswer {
        /// The database.
        database: String,
        /// The timeout.
        timeout: Duration,
        /// The last error.
        last: QueryError,
    },
    /// The database refused the query: asking again cannot help.
    #[error("{database} refused the query: {error}")]
    Refused {
        /// The database.
        database: String,
        /// Its answer.
        error: QueryError,
    },
    /// Stopped by a signal before any poll succeeded.
    #[error("interrupted before the database answered")]
    Interrupted,
}

/// What one poll saw of a point: the fields it has (a bit per field) and
/// how many values were returned for it.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    fields: u64,
    values: u32,
}

impl Seen {
    /// Whether a field came back more than once: the point is stored twice.
    fn repeated(self) -> bool {
        self.values > self.fields.count_ones()
    }

    /// How many times the point seems stored.
    fn copies(self) -> u32 {
        self.values.div_ceil(self.fields.count_ones().max(1))
    }
}

/// The points of the manifest's series and time range that one poll saw.
#[derive(Debug, Default)]
struct Observed {
    points: HashMap<Identity, Seen>,
}

/// Reads answers into [`Observed`]: keeps the samples of the manifest's
/// series within its time range.
#[derive(Debug)]
struct Reader<'m> {
    manifest: &'m Manifest,
    range: (i64, i64),
    fields: HashMap<String, u8>,
    key: String,
}

impl<'m> Reader<'m> {
    fn new(manifest: &'m Manifest, range: (i64, i64)) -> Self {
        Self {
            manifest,
            range,
            fields: HashMap::new(),
            key: String::new(),
        }
    }

    fn read(&mut self, database: &Database, body: &str) -> Result<Observed, AnswerError> {
        let mut observed = Observed::default();
        database.parse(body, &mut |s: Sample<'_>| {
            if s.time_ms < self.range.0 || s.time_ms > self.range.1 {
                return;
            }
            let Some(series) = self.manifest.find_series(
                &mut self.key,
                s.measurement,
                s.commune,
                s.device,
                s.lane,
            ) else {
                return;
            };
            let next = self.fields.len() as u8;
            let field = if let Some(&f) = self.fields.get(s.field) {
                f
            } else {
                self.fields.insert(s.field.to_owned(), next);
                next
            };
            let seen = observed.points.entry((series, s.time_ms)).or_default();
            seen.fields |= 1 << (field % 64);
            seen.values += 1;
        })?;
        Ok(observed)
    }
}

fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn http_client() -> Result<reqwest::Client, VerifyError> {
    // reqwest is built with rustls but no crypto provider; installing fails
    // only when one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| VerifyError::Client(e.to_string()))
}

/// Polls the database until every expected point of `manifest` is found
/// (and `settle` has passed), the timeout passes, or `shutdown` is
/// cancelled; then reports. See the module's doc.
pub async fn verify(
    manifest: &Manifest,
    config: &VerifyConfig,
    shutdown: &CancellationToken,
) -> Result<VerifyReport, VerifyError> {
    let range = manifest.time_range().ok_or(VerifyError::EmptyManifest)?;
    let expectation = manifest.expectation();
    let scope = Scope {
        from_ms: range.0,
        to_ms: range.1,
        communes: manifest.communes().into_iter().map(str::to_owned).collect(),
    };
    let http = http_client()?;
    let database = &config.database;
    let mut reader = Reader::new(manifest, range);
    tracing::info!(
        %database,
        lines = manifest.len(),
        expected = expectation.counts.expected,
        from = %rfc3339_ms(range.0),
        to = %rfc3339_ms(range.1),
        "verifying"
    );

    let start = Instant::now();
    let deadline = start + config.timeout;
    // When each expected point was first seen (Unix ns of the poll's start).
    let mut first_seen: HashMap<Identity, (i64, u32)> = HashMap::new();
    let mut first_poll_ns = None;
    let mut last: Option<Observed> = None;
    let (mut polls, mut failed) = (0_u32, 0_u32);
    let mut last_error = None;
    let mut complete_at: Option<Instant> = None;
    let mut interrupted = false;
    loop {
        let poll_start = Instant::now();
        let poll_ns = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        let answer = tokio::select! {
            () = shutdown.cancelled() => { interrupted = true; break; }
            a = database.query(&http, &scope) => a,
        };
        let observed = answer.and_then(|body| {
            reader
                .read(database, &body)
                .map_err(|error| QueryError::Answer {
                    what: database.to_string(),
                    error,
                })
        });
        match observed {
            Ok(observed) => {
                polls += 1;
                first_poll_ns.get_or_insert(poll_ns);
                for identity in observed.points.keys() {
                    if expectation
                        .points
                        .get(identity)
                        .is_some_and(|p| p.role == Role::Expected)
                    {
                        first_seen.entry(*identity).or_insert((poll_ns, polls));
                    }
                }
                let found = expectation
                    .points
                    .iter()
                    .filter(|(id, p)| p.role == Role::Expected && observed.points.contains_key(id))
                    .count() as u64;
                tracing::debug!(polls, found, "poll");
                if found == expectation.counts.expected {
                    complete_at.get_or_insert(poll_start);
                }
                last = Some(observed);
            }
            Err(error) if error.is_permanent() => {
                return Err(VerifyError::Refused {
                    database: database.to_string(),
                    error,
                });
            }
            Err(error) => {
                failed += 1;
                tracing::warn!(%error, "poll failed");
                last_error = Some(error);
            }
        }
        let now = Instant::now();
        if complete_at.is_some_and(|at| now >= at + config.settle) || now >= deadline {
            break;
        }
        let next = (poll_start + config.interval).min(deadline);
        tokio::select! {
            () = shutdown.cancelled() => { interrupted = true; break; }
            () = tokio::time::sleep_until(next) => {}
        }
    }
    let waited = start.elapsed();
    let Some(observed) = last else {
        return Err(match last_error {
            Some(last) => VerifyError::NoAnswer {
                database: database.to_string(),
                timeout: config.timeout,
                last,
            },
            None => VerifyError::Interrupted,
        });
    };
    let report = Findings {
        manifest,
        expectation: &expectation,
        observed: &observed,
        first_seen: &first_seen,
        examples: config.examples,
    }
    .report(Polling {
        database: database.to_string(),
        range,
        interval: config.interval,
        first_poll_ns: first_poll_ns.unwrap_or_default(),
        polls,
        failed,
        waited,
        complete: complete_at.is_some(),
        interrupted,
    });
    tracing::info!(
        found = report.found,
        missing = report.missing,
        duplicated = report.duplicated,
        "verified"
    );
    Ok(report)
}

/// How polling went.
#[derive(Debug)]
struct Polling {
    database: String,
    range: (i64, i64),
    interval: Duration,
    first_poll_ns: i64,
    polls: u32,
    failed: u32,
    waited: Duration,
    complete: bool,
    interrupted: bool,
}

/// The last poll against the manifest.
#[derive(Debug)]
struct Findings<'a> {
    manifest: &'a Manifest,
    expectation: &'a Expectation,
    observed: &'a Observed,
    first_seen: &'a HashMap<Identity, (i64, u32)>,
    examples: usize,
}

impl Findings<'_> {
    fn point(&self, (series, time_ms): Identity, note: String) -> PointReport {
        let s = &self.manifest.series()[series as usize];
        PointReport {
            domain: s.domain,
            commune: s.commune.clone(),
            device: s.device.clone(),
            lane: s.lane,
            event_time: rfc3339_ms(time_ms),
            seqs: Vec::new(),
            note,
        }
    }

    /// Fills in the manifest lines of the listed points.
    fn with_seqs(&self, mut points: Vec<(Identity, PointReport)>) -> Vec<PointReport> {
        let wanted: HashMap<Identity, usize> = points
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        for e in self.manifest.entries() {
            if let Some(&i) = wanted.get(&(e.series, e.time_ms)) {
                points[i].1.seqs.push(e.seq);
            }
        }
        points.into_iter().map(|(_, p)| p).collect()
    }

    fn report(&self, polling: Polling) -> VerifyReport {
        let x = self.expectation;
        let held = |id: &Identity| self.observed.points.contains_key(id);

        // Missing, in manifest order.
        let mut missing = 0_u64;
        let mut listed: Vec<(Identity, PointReport)> = Vec::new();
        let mut seen_missing = std::collections::HashSet::new();
        for e in self.manifest.entries() {
            let id = (e.series, e.time_ms);
            if !e.expected() || held(&id) || !seen_missing.insert(id) {
                continue;
            }
            missing += 1;
            if listed.len() < self.examples {
                listed.push((id, self.point(id, String::new())));
            }
        }
        let missing_points = self.with_seqs(listed);

        // Stored more than once, or unaccounted for, in time order.
        let mut odd: Vec<(&Identity, &Seen)> = self
            .observed
            .points
            .iter()
            .filter(|(id, seen)| {
                seen.repeated() || x.points.get(id).is_none_or(|p| p.role == Role::Invalid)
            })
            .collect();
        odd.sort_by_key(|(id, _)| (id.1, id.0));
        let (mut twice, mut unaccounted) = (0_u64, 0_u64);
        let mut listed = Vec::new();
        for (id, seen) in odd {
            let role = x.points.get(id).map(|p| p.role);
            let mut notes = Vec::new();
            if seen.repeated() {
                twice += 1;
                notes.push(format!("stored {} times", seen.copies()));
            }
            match role {
                None => {
                    unaccounted += 1;
                    notes.push("no message of the manifest has this identity".to_owned());
                }
                Some(Role::Invalid) => {
                    unaccounted += 1;
                    notes.push(
                        "only messages the service must reject have this identity".to_owned(),
                    );
                }
                Some(_) => {}
            }
            if listed.len() < self.examples {
                listed.push((*id, self.point(*id, notes.join("; "))));
            }
        }
        let duplicated_points = self.with_seqs(listed);

        let found = x
            .points
            .iter()
            .filter(|(id, p)| p.role == Role::Expected && held(id))
            .count() as u64;
        let unacknowledged_found = x
            .points
            .iter()
            .filter(|(id, p)| p.role == Role::Unacknowledged && held(id))
            .count() as u64;

        let mut seconds = Vec::with_capacity(self.first_seen.len());
        let mut by_first_poll = 0;
        for (id, &(seen_ns, poll)) in self.first_seen {
            if let Some(p) = x.points.get(id) {
                seconds.push(seen_ns.saturating_sub(p.published_ns).max(0) as f64 / 1e9);
                by_first_poll += u64::from(poll == 1);
            }
        }
        let last_published = self.manifest.last_published_ns().unwrap_or_default();
        let latency = Latency::of(
            seconds,
            polling.interval.as_secs_f64(),
            polling.first_poll_ns.saturating_sub(last_published) as f64 / 1e9,
            by_first_poll,
        );

        VerifyReport {
            database: polling.database,
            from: rfc3339_ms(polling.range.0),
            to: rfc3339_ms(polling.range.1),
            lines: self.manifest.len() as u64,
            series: self.manifest.series().len() as u64,
            expected: x.counts.expected,
            repeats: x.counts.expected_lines - x.counts.expected,
            invalid: x.counts.invalid,
            unacknowledged: x.counts.unacknowledged,
            unacknowledged_found,
            found,
            missing,
            missing_points,
            duplicated: twice + unaccounted,
            stored_more_than_once: twice,
            unaccounted,
            duplicated_points,
            latency,
            polls: polling.polls,
            failed_polls: polling.failed,
            waited_s: polling.waited.as_secs_f64(),
            timed_out: !polling.complete && !polling.interrupted,
            interrupted: polling.interrupted,
        }
    }
}

/// Runs a load test, keeping its manifest in memory (and writing it too
/// if `load.manifest` says where), then verifies it against the database
/// as soon as publishing ends.
pub async fn load_and_verify(
    load: LoadConfig,
    verify_config: &VerifyConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<(LoadReport, VerifyReport)> {
    let (load_report, manifest) =
        crate::publish::load::load_with_manifest(load, shutdown.clone()).await?;
    let report = verify(&manifest, verify_config, &shutdown).await?;
    Ok((load_report, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageFault;
    use schemas::Domain;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn sent<'a>(seq: u64, device: &'a str, lane: Option<u32>, event: &str) -> Sent<'a> {
        Sent {
            seq,
            domain: if lane.is_some() {
                Domain::Traffic
            } else {
                Domain::Lighting
            },
            commune: "rabat",
            device,
            lane,
            event_time: at(event),
            topic: "t",
            published_at: at("2026-03-04T12:00:00Z"),
            acked: Some(true),
            fault: None,
            valid: true,
        }
    }

    fn line(name: &str, device: &str, lane: Option<&str>, times_ms: &[i64]) -> String {
        let lane = lane
            .map(|l| format!(",\"lane\":\"{l}\""))
            .unwrap_or_default();
        format!(
            "{{\"metric\":{{\"__name__\":\"{name}\",\"commune\":\"rabat\",\"device\":\"{device}\"{lane}}},\"values\":{:?},\"timestamps\":{times_ms:?}}}\n",
            vec![1; times_ms.len()]
        )
    }

    /// A manifest of five points and a VictoriaMetrics answer that holds
    /// all but one, one twice, one that no message accounts for, one of a
    /// rejected message and one of another series.
    #[test]
    fn identities_are_matched_against_the_answer() {
        let t = |s: &str| at(s).timestamp_millis();
        let mut m = Manifest::new();
        m.push(&sent(0, "lamp-1", None, "2026-03-04T11:00:00Z"));
        m.push(&sent(1, "lamp-1", None, "2026-03-04T11:01:00Z"));
        m.push(&sent(2, "counter-1", Some(2), "2026-03-04T11:00:00Z"));
        m.push(&sent(3, "counter-1", Some(3), "2026-03-04T11:00:00Z"));
        let mut bad = sent(4, "lamp-1", None, "2026-03-04T11:02:00Z");
        bad.valid = false;
        bad.fault = Some(MessageFault::Malformed);
        m.push(&bad);
        // A repeat of seq 0.
        m.push(&sent(5, "lamp-1", None, "2026-03-04T11:00:00Z"));
        m.push(&sent(6, "lamp-1", None, "2026-03-04T11:03:00Z"));

        let body = [
            // lamp-1 at 11:00 (two fields), at 11:01 with power_w twice.
            line(
                "lighting_power_w",
                "lamp-1",
                None,
                &[
                    t("2026-03-04T11:00:00Z"),
                    t("2026-03-04T11:01:00Z"),
                    t("2026-03-04T11:01:00Z"),
                ],
            ),
            line(
                "lighting_power_state",
                "lamp-1",
                None,
                &[t("2026-03-04T11:00:00Z"), t("2026-03-04T11:01:00Z")],
            ),
            // The rejected message's point, and one nobody sent.
            line(
                "lighting_power_w",
                "lamp-1",
                None,
                &[t("2026-03-04T11:02:00Z"), t("2026-03-04T11:02:30Z")],
            ),
            // Lane 2 is there, lane 3 is not.
            line(
                "traffic_vehicle_count",
                "counter-1",
                Some("2"),
                &[t("2026-03-04T11:00:00Z")],
            ),
            // lamp-1 at 11:03 is there; another device, and a time out of range, are ignored.
            line(
                "lighting_power_w",
                "lamp-1",
                None,
                &[t("2026-03-04T11:03:00Z"), t("2026-03-04T12:00:00Z")],
            ),
            line(
                "lighting_power_w",
                "lamp-9",
                None,
                &[t("2026-03-04T11:00:00Z")],
            ),
        ]
        .concat();
        let database = Database::VictoriaMetrics {
            url: "http://vm".into(),
            force_flush: false,
        };
        let range = m.time_range().expect("not empty");
        let observed = Reader::new(&m, range)
            .read(&database, &body)
            .expect("parses");
        assert_eq!(observed.points.len(), 6, "{observed:?}");

        let expectation = m.expectation();
        let first_seen: HashMap<Identity, (i64, u32)> = observed
            .points
            .keys()
            .filter(|id| {
                expectation
                    .points
                    .get(id)
                    .is_some_and(|p| p.role == Role::Expected)
            })
            .map(|id| {
                (
                    *id,
                    (
                        at("2026-03-04T12:00:02Z")
                            .timestamp_nanos_opt()
                            .unwrap_or_default(),
                        1,
                    ),
                )
            })
            .collect();
        let report = Findings {
            manifest: &m,
            expectation: &expectation,
            observed: &observed,
            first_seen: &first_seen,
            examples: 10,
        }
        .report(Polling {
            database: database.to_string(),
            range,
            interval: Duration::from_millis(500),
            first_poll_ns: at("2026-03-04T12:00:01Z")
                .timestamp_nanos_opt()
                .unwrap_or_default(),
            polls: 1,
            failed: 0,
            waited: Duration::from_secs(1),
            complete: false,
            interrupted: false,
        });
        assert_eq!((report.lines, report.series), (7, 3));
        assert_eq!((report.expected, report.repeats, report.invalid), (5, 1, 1));
        assert_eq!((report.found, report.missing), (4, 1));
        assert_eq!(report.missing_points.len(), 1);
        let lost = &report.missing_points[0];
        assert_eq!(
            (lost.device.as_str(), lost.lane, lost.seqs.as_slice()),
            ("counter-1", Some(3), &[3][..])
        );
        assert_eq!(
            (
                report.stored_more_than_once,
                report.unaccounted,
                report.duplicated
            ),
            (1, 2, 3)
        );
        let notes: Vec<(&str, &str, &[u64])> = report
            .duplicated_points
            .iter()
            .map(|p| (p.event_time.as_str(), p.note.as_str(), p.seqs.as_slice()))
            .collect();
        assert_eq!(
            notes,
            [
                ("2026-03-04T11:01:00.000Z", "stored 2 times", &[1][..]),
                (
                    "2026-03-04T11:02:00.000Z",
                    "only messages the service must reject have this identity",
                    &[4][..]
                ),
                (
                    "2026-03-04T11:02:30.000Z",
                    "no message of the manifest has this identity",
                    &[][..]
                ),
            ]
        );
        let latency = report.latency.as_ref().expect("points were found");
        assert_eq!(
            (latency.points, latency.p50_s, latency.max_s),
            (4, 2.0, 2.0)
        );
        assert_eq!(latency.first_poll_after_last_publication_s, 1.0);
        assert_eq!(latency.seen_by_the_first_poll, 4);
        assert!(report.timed_out && !report.passed());
    }

    #[test]
    fn a_field_seen_twice_is_a_second_copy() {
        let one = Seen {
            fields: 0b111,
            values: 3,
        };
        assert!(!one.repeated());
        assert_eq!(one.copies(), 1);
        let two = Seen {
            fields: 0b111,
            values: 6,
        };
        assert!(two.repeated());
        assert_eq!(two.copies(), 2);
        let partly = Seen {
            fields: 0b11,
            values: 3,
        };
        assert!(partly.repeated());
        assert_eq!(partly.copies(), 2);
    }
}
