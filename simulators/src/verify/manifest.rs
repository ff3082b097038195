//! The manifest of a load test: one record per message handed to the
//! broker, and what the database must hold because of it.
//!
//! On disk it is JSON lines, as `simulate load --manifest FILE` writes them:
//!
//! ```json
//! {"seq":0,"domain":"lighting","commune":"rabat","device":"lamp-rabat-0001","lane":null,
//!  "event_time":"2026-03-04T11:58:00Z","topic":"city/rabat/lighting/lamp-rabat-0001/telemetry",
//!  "published_at":"2026-03-04T12:00:00.123456789Z","acked":true,"fault":null,"valid":true}
//! ```
//!
//! In memory it is a [`Manifest`]: the series are interned and each line
//! keeps only what the oracle needs, so that a run of a million messages
//! fits in a few tens of megabytes.
//!
//! A message becomes the point `(domain, commune, device, lane, event
//! time)` (see [`crate::stream`]); event times are compared at millisecond
//! resolution, VictoriaMetrics's.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use schemas::Domain;
use serde::{Deserialize, Serialize};

use crate::MessageFault;

/// One message handed to the broker, as a manifest records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sent<'a> {
    /// The message's index in the load test, from 0.
    pub seq: u64,
    /// Measurement of the point it becomes.
    pub domain: Domain,
    /// Commune tag.
    pub commune: &'a str,
    /// Device tag.
    pub device: &'a str,
    /// Lane tag, for traffic counters.
    pub lane: Option<u32>,
    /// Timestamp of the point it becomes.
    pub event_time: DateTime<Utc>,
    /// MQTT topic.
    pub topic: &'a str,
    /// When the client wrote it to the broker's socket.
    pub published_at: DateTime<Utc>,
    /// Whether the broker acknowledged it; `None` at QoS 0.
    pub acked: Option<bool>,
    /// A fault applied on purpose.
    pub fault: Option<MessageFault>,
    /// Whether the service must accept it.
    pub valid: bool,
}

/// A manifest line as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Line<T> {
    seq: u64,
    domain: Domain,
    commune: T,
    device: T,
    lane: Option<u32>,
    event_time: T,
    #[serde(default)]
    topic: Option<T>,
    published_at: T,
    acked: Option<bool>,
    fault: Option<MessageFault>,
    valid: bool,
}

impl Sent<'_> {
    /// The manifest line, JSON without the newline.
    pub fn to_json(&self) -> String {
        let event_time = self.event_time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let published_at = self
            .published_at
            .to_rfc3339_opts(SecondsFormat::Nanos, true);
        let line = Line {
            seq: self.seq,
            domain: self.domain,
            commune: self.commune,
            device: self.device,
            lane: self.lane,
            event_time: event_time.as_str(),
            topic: Some(self.topic),
            published_at: published_at.as_str(),
            acked: self.acked,
            fault: self.fault,
            valid: self.valid,
        };
        // Serialising strings, numbers and enums into a String cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// A manifest that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("{}{error}", at(.path))]
    Io {
        /// The manifest file; empty when read from elsewhere.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// A line is not a manifest record.
    #[error("{}line {line}: {message}", at(.path))]
    Line {
        /// The manifest file; empty when read from elsewhere.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the key at fault.
        message: String,
    },
}

/// `{path}: `, or nothing without a path.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// A series: measurement and tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series {
    /// The measurement.
    pub domain: Domain,
    /// The `commune` tag.
    pub commune: String,
    /// The `device` tag.
    pub device: String,
    /// The `lane` tag.
    pub lane: Option<u32>,
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.domain, self.commune, self.device)?;
        if let Some(lane) = self.lane {
            write!(f, " lane {lane}")?;
        }
        Ok(())
    }
}

/// The key a series is found by, built from tag values as a database
/// returns them (the lane as text).
pub(crate) fn series_key(
    out: &mut String,
    measurement: &str,
    commune: &str,
    device: &str,
    lane: &str,
) {
    out.clear();
    for part in [measurement, commune, device] {
        out.push_str(part);
        out.push('\u{1f}');
    }
    out.push_str(lane);
}

/// Where a point is: its series (an index in [`Manifest::series`]) and
/// timestamp in milliseconds.
pub type Identity = (u32, i64);

/// One line, compact.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub seq: u64,
    pub series: u32,
    pub time_ms: i64,
    pub published_ns: i64,
    pub acked: Option<bool>,
    pub valid: bool,
}

impl Entry {
    /// Whether the database must hold its point: the service must accept
    /// it and, at QoS 1, the broker took it.
    pub fn expected(&self) -> bool {
        self.valid && self.acked != Some(false)
    }
}

/// The messages of a load test, compact: interned series and one entry per
/// message, in manifest order.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    series: Vec<Series>,
    index: HashMap<String, u32>,
    entries: Vec<Entry>,
    key: String,
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|error| ManifestError::Io {
            path: name.clone(),
            error,
        })?;
        Self::from_reader(std::io::BufReader::new(file)).map_err(|e| match e {
            ManifestError::Io { error, .. } => ManifestError::Io { path: name, error },
            ManifestError::Line { line, message, .. } => ManifestError::Line {
                path: name,
                line,
                message,
            },
        })
    }

    /// Reads manifest lines; blank lines are skipped.
    pub fn from_reader(reader: impl BufRead) -> Result<Self, ManifestError> {
        let mut manifest = Self::new();
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|error| ManifestError::Io {
                path: String::new(),
                error,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            manifest
                .push_json(&line)
                .map_err(|message| ManifestError::Line {
                    path: String::new(),
                    line: n + 1,
                    message,
                })?;
        }
        Ok(manifest)
    }

    fn push_json(&mut self, text: &str) -> Result<(), String> {
        let line: Line<String> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let time = |key: &str, value: &str| {
            value
                .parse::<DateTime<Utc>>()
                .map_err(|e| format!("key `{key}`: {value:?} is not an RFC 3339 time ({e})"))
        };
        let event_time = time("event_time", &line.event_time)?;
        let published_at = time("published_at", &line.published_at)?;
        self.push(&Sent {
            seq: line.seq,
            domain: line.domain,
            commune: &line.commune,
            device: &line.device,
            lane: line.lane,
            event_time,
            topic: line.topic.as_deref().unwrap_or_default(),
            published_at,
            acked: line.acked,
            fault: line.fault,
            valid: line.valid,
        });
        Ok(())
    }

    /// Adds a message.
    pub fn push(&mut self, sent: &Sent<'_>) {
        let lane = sent.lane.map(|l| l.to_string()).unwrap_or_default();
        series_key(
            &mut self.key,
            sent.domain.as_str(),
            sent.commune,
            sent.device,
            &lane,
        );
        let series = if let Some(&i) = self.index.get(&self.key) {
            i
        } else {
            let i = u32::try_from(self.series.len()).unwrap_or(u32::MAX);
            self.series.push(Series {
                domain: sent.domain,
                commune: sent.commune.to_owned(),
                device: sent.device.to_owned(),
                lane: sent.lane,
            });
            self.index.insert(self.key.clone(), i);
            i
        };
        self.entries.push(Entry {
            seq: sent.seq,
            series,
            time_ms: sent.event_time.timestamp_millis(),
            published_ns: sent.published_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            acked: sent.acked,
            valid: sent.valid,
        });
    }

    /// Messages recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no message is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct series, indexed by [`Identity`]'s first member.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The series of tag values as a database returns them, if the
    /// manifest has it.
    pub(crate) fn find_series(
        &self,
        key: &mut String,
        measurement: &str,
        commune: &str,
        device: &str,
        lane: Option<&str>,
    ) -> Option<u32> {
        series_key(key, measurement, commune, device, lane.unwrap_or_default());
        self.index.get(key.as_str()).copied()
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The earliest and latest event times, in milliseconds.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let min = self.entries.iter().map(|e| e.time_ms).min()?;
        let max = self.entries.iter().map(|e| e.time_ms).max()?;
        Some((min, max))
    }

    /// The communes, sorted, without repeats.
    pub fn communes(&self) -> Vec<&str> {
        let mut communes: Vec<&str> = self.series.iter().map(|s| s.commune.as_str()).collect();
        communes.sort_unstable();
        communes.dedup();
        communes
    }

    /// The latest publication time, in nanoseconds.
    pub(crate) fn last_published_ns(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.published_ns).max()
    }

    /// What the database must hold; see [`Expectation`].
    pub(crate) fn expectation(&self) -> Expectation {
        let mut points: HashMap<Identity, Expected> = HashMap::new();
        let mut counts = Counts::default();
        for e in &self.entries {
            let role = if e.expected() {
                counts.expected_lines += 1;
                Role::Expected
            } else if e.valid {
                counts.unacknowledged += 1;
                Role::Unacknowledged
            } else {
                counts.invalid += 1;
                Role::Invalid
            };
            points
                .entry((e.series, e.time_ms))
                .and_modify(|p| {
                    if role < p.role {
                        p.role = role;
                        p.first_seq = e.seq;
                        p.published_ns = e.published_ns;
                    } else if role == p.role {
                        p.published_ns = p.published_ns.min(e.published_ns);
                    }
                })
                .or_insert(Expected {
                    role,
                    first_seq: e.seq,
                    published_ns: e.published_ns,
                });
        }
        counts.expected = points.values().filter(|p| p.role == Role::Expected).count() as u64;
        Expectation { points, counts }
    }
}

/// Why a point is in the manifest's view of the database, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    /// A message the database must hold.
    Expected,
    /// Only messages the broker did not acknowledge (QoS 1): the point may
    /// or may not be there.
    Unacknowledged,
    /// Only messages the service must reject: the point must not be there.
    Invalid,
}

/// A point of the manifest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub role: Role,
    /// The first message (in manifest order) of the best role.
    pub first_seq: u64,
    /// The earliest publication of a message of the best role (ns).
    pub published_ns: i64,
}

/// Line counts of a manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Distinct points the database must hold.
    pub expected: u64,
    /// Lines of messages the database must hold.
    pub expected_lines: u64,
    /// Lines of valid messages the broker did not acknowledge.
    pub unacknowledged: u64,
    /// Lines of messages the service must reject.
    pub invalid: u64,
}

/// Every point of a manifest with its role, and the counts.
#[derive(Debug)]
pub(crate) struct Expectation {
    pub points: HashMap<Identity, Expected>,
    pub counts: Counts,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn sent(seq: u64, device: &'static str, event: &str) -> Sent<'static> {
        Sent {
            seq,
            domain: Domain::Lighting,
            commune: "rabat",
            device,
            lane: None,
            event_time: at(event),
            topic: "city/rabat/lighting/x/telemetry",
            published_at: at("2026-03-04T12:00:00.5Z") + chrono::TimeDelta::seconds(seq as i64),
            acked: Some(true),
            fault: None,
            valid: true,
        }
    }

    #[test]
    fn a_line_round_trips_through_json() {
        let mut s = sent(7, "lamp-1", "2026-03-04T11:00:00Z");
        s.domain = Domain::Traffic;
        s.lane = Some(2);
        s.fault = Some(MessageFault::OutOfRange);
        s.valid = false;
        s.acked = None;
        let json = s.to_json();
        assert!(
            json.contains(r#""event_time":"2026-03-04T11:00:00Z""#),
            "{json}"
        );
        assert!(json.contains(r#""fault":"out_of_range""#), "{json}");
        assert!(
            json.contains(r#""published_at":"2026-03-04T12:00:07.500000000Z""#),
            "{json}"
        );
        let m = Manifest::from_reader(json.as_bytes()).expect("reads");
        assert_eq!(m.len(), 1);
        let e = m.entries()[0];
        assert_eq!((e.seq, e.acked, e.valid), (7, None, false));
        assert_eq!(e.time_ms, at("2026-03-04T11:00:00Z").timestamp_millis());
        assert_eq!(
            m.series(),
            [Series {
                domain: Domain::Traffic,
                commune: "rabat".into(),
                device: "lamp-1".into(),
                lane: Some(2)
            }]
        );
        assert_eq!(m.series()[0].to_string(), "traffic rabat/lamp-1 lane 2");
    }

    #[test]
    fn reads_what_load_writes_and_names_the_line_at_fault() {
        let text = concat!(
            r#"{"seq":0,"domain":"waste","commune":"berkane","device":"bin-1","lane":null,"event_time":"2026-03-04T11:00:00Z","topic":"t","published_at":"2026-03-04T12:00:00.000000001Z","acked":true,"fault":"late","valid":true}"#,
            "\n\n",
            r#"{"seq":1,"domain":"waste","commune":"berkane","device":"bin-1","lane":null,"event_time":"2026-03-04T11:05:00Z","published_at":"2026-03-04T12:00:00Z","acked":null,"fault":null,"valid":true}"#,
            "\n",
        );
        let m = Manifest::from_reader(text.as_bytes()).expect("reads");
        assert_eq!(m.len(), 2);
        assert_eq!(m.series().len(), 1, "one series, two times");
        assert_eq!(m.communes(), ["berkane"]);
        assert_eq!(
            m.time_range(),
            Some((
                at("2026-03-04T11:00:00Z").timestamp_millis(),
                at("2026-03-04T11:05:00Z").timestamp_millis()
            ))
        );

        let bad_time = text.replace("11:05:00Z", "11:05");
        let err = Manifest::from_reader(bad_time.as_bytes()).expect_err("a bad time");
        let message = err.to_string();
        assert!(
            message.starts_with("line 3: key `event_time`: \"2026-03-04T11:05\""),
            "{message}"
        );
        let bad_domain = text.replace(r#""domain":"waste""#, r#""domain":"parking""#);
        let err = Manifest::from_reader(bad_domain.as_bytes()).expect_err("a bad domain");
        assert!(
            err.to_string()
                .starts_with("line 1: unknown variant `parking`"),
            "{err}"
        );
        let err = Manifest::from_reader("{\"seq\":1}\n".as_bytes()).expect_err("incomplete");
        assert!(err.to_string().contains("missing field `domain`"), "{err}");
    }

    #[test]
    fn repeats_share_a_point_and_roles_are_ranked() {
        let mut m = Manifest::new();
        // Two copies of one point (a cycled pool message), published 1 s apart.
        m.push(&sent(0, "lamp-1", "2026-03-04T11:00:00Z"));
        m.push(&sent(1, "lamp-1", "2026-03-04T11:00:00Z"));
        // A malformed message: must not be stored.
        let mut bad = sent(2, "lamp-2", "2026-03-04T11:00:00Z");
        bad.valid = false;
        bad.fault = Some(MessageFault::Malformed);
        m.push(&bad);
        // Not acknowledged at QoS 1: not expected, not an error if stored.
        let mut lost = sent(3, "lamp-3", "2026-03-04T11:00:00Z");
        lost.acked = Some(false);
        m.push(&lost);
        // An unacknowledged copy of an expected point changes nothing.
        let mut copy = sent(4, "lamp-1", "2026-03-04T11:00:00Z");
        copy.acked = Some(false);
        m.push(&copy);
        // A point of lamp-2 at another time is expected.
        m.push(&sent(5, "lamp-2", "2026-03-04T11:01:00Z"));

        let x = m.expectation();
        assert_eq!(
            x.counts,
            Counts {
                expected: 2,
                expected_lines: 3,
                unacknowledged: 2,
                invalid: 1,
            }
        );
        let t = at("2026-03-04T11:00:00Z").timestamp_millis();
        let lamp1 = x.points[&(0, t)];
        assert_eq!((lamp1.role, lamp1.first_seq), (Role::Expected, 0));
        assert_eq!(
            lamp1.published_ns,
            at("2026-03-04T12:00:00.5Z")
                .timestamp_nanos_opt()
                .unwrap_or_default(),
            "the earliest copy"
        );
        assert_eq!(x.points[&(1, t)].role, Role::Invalid);
        assert_eq!(x.points[&(2, t)].role, Role::Unacknowledged);
        assert_eq!(x.points[&(1, t + 60_000)].role, Role::Expected);
    }
}
