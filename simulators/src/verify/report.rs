//! What the oracle found: [`VerifyReport`], as text for a person or JSON
//! for a machine, and the latency percentiles.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// A point the report names: its identity, and the manifest lines that
/// carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointReport {
    /// Measurement.
    pub domain: schemas::Domain,
    /// `commune` tag.
    pub commune: String,
    /// `device` tag.
    pub device: String,
    /// `lane` tag.
    pub lane: Option<u32>,
    /// Timestamp (RFC 3339, milliseconds).
    pub event_time: String,
    /// The manifest lines (`seq`) of messages with this identity; empty when
    /// no message has it.
    pub seqs: Vec<u64>,
    /// What is wrong with it.
    pub note: String,
}

impl std::fmt::Display for PointReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seqs.as_slice() {
            [] => f.write_str("no seq")?,
            [one] => write!(f, "seq {one}")?,
            many => {
                let list: Vec<String> = many.iter().take(5).map(u64::to_string).collect();
                let more = if many.len() > 5 { ", ..." } else { "" };
                write!(f, "seqs {}{more}", list.join(", "))?;
            }
        }
        write!(f, ": {} {}/{}", self.domain, self.commune, self.device)?;
        if let Some(lane) = self.lane {
            write!(f, " lane {lane}")?;
        }
        write!(f, " at {}", self.event_time)?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

/// Publish-to-queryable latency: from a point's first publication to the
/// first poll that saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Points measured: every expected point found.
    pub points: u64,
    /// Median, seconds.
    pub p50_s: f64,
    /// 90th percentile, seconds.
    pub p90_s: f64,
    /// 99th percentile, seconds.
    pub p99_s: f64,
    /// Maximum, seconds.
    pub max_s: f64,
    /// The poll interval: a point is seen up to this long after it became
    /// queryable (plus the time a query takes).
    pub resolution_s: f64,
    /// Seconds from the last publication to the first poll. A point already
    /// queryable then counts as appearing at the first poll.
    pub first_poll_after_last_publication_s: f64,
    /// Points the first poll already saw.
    pub seen_by_the_first_poll: u64,
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of ascending values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Latency {
    /// Percentiles of latencies in seconds (any order).
    pub(crate) fn of(
        mut seconds: Vec<f64>,
        resolution_s: f64,
        first_poll_s: f64,
        first: u64,
    ) -> Option<Self> {
        seconds.sort_by(f64::total_cmp);
        Some(Self {
            points: seconds.len() as u64,
            p50_s: percentile(&seconds, 50.0)?,
            p90_s: percentile(&seconds, 90.0)?,
            p99_s: percentile(&seconds, 99.0)?,
            max_s: *seconds.last()?,
            resolution_s,
            first_poll_after_last_publication_s: first_poll_s,
            seen_by_the_first_poll: first,
        })
    }
}

/// What `simulate verify` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The database queried.
    pub database: String,
    /// Event times queried (RFC 3339): the manifest's earliest and latest.
    pub from: String,
    /// See `from`.
    pub to: String,
    /// Manifest lines.
    pub lines: u64,
    /// Distinct series of the manifest.
    pub series: u64,
    /// Distinct points the database must hold: valid messages that, at
    /// QoS 1, the broker acknowledged.
    pub expected: u64,
    /// Lines of such messages that share the point of an earlier one (a
    /// cycled pool, a duplicate copy): the database holds one point for all.
    pub repeats: u64,
    /// Lines of messages the service must reject; their points must not be
    /// stored.
    pub invalid: u64,
    /// Lines of valid messages the broker did not acknowledge (QoS 1): not
    /// expected, and not an error if stored.
    pub unacknowledged: u64,
    /// Points of unacknowledged messages that were stored anyway.
    pub unacknowledged_found: u64,
    /// Expected points found.
    pub found: u64,
    /// Expected points not found.
    pub missing: u64,
    /// The first missing points, in manifest order.
    pub missing_points: Vec<PointReport>,
    /// `stored_more_than_once` + `unaccounted`.
    pub duplicated: u64,
    /// Points of the manifest's series and time range stored more than once
    /// (VictoriaMetrics without deduplication keeps every write).
    pub stored_more_than_once: u64,
    /// Points of the manifest's series and time range that no message
    /// accounts for: no message has their identity, or only messages the
    /// service must reject.
    pub unaccounted: u64,
    /// The first of them.
    pub duplicated_points: Vec<PointReport>,
    /// Publish-to-queryable latency; `None` when nothing was found.
    pub latency: Option<Latency>,
    /// Successful polls.
    pub polls: u32,
    /// Polls that failed (the database unreachable, an error answer).
    pub failed_polls: u32,
    /// Seconds spent polling.
    pub waited_s: f64,
    /// Whether polling stopped at the timeout with points still missing.
    pub timed_out: bool,
    /// Whether a shutdown signal stopped polling.
    pub interrupted: bool,
}

impl VerifyReport {
    /// Nothing missing, nothing duplicated.
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// The report for a person, several lines.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} manifest lines, {} series, event times {} to {}",
            self.database, self.lines, self.series, self.from, self.to
        );
        let _ = writeln!(
            s,
            "  expected    {} points ({} repeats of an earlier message's point; \
             {} messages the service must reject; {} not acknowledged by the broker, {} of them stored)",
            self.expected, self.repeats, self.invalid, self.unacknowledged, self.unacknowledged_found
        );
        let _ = writeln!(s, "  found       {}", self.found);
        let _ = writeln!(s, "  missing     {}", self.missing);
        for p in &self.missing_points {
            let _ = writeln!(s, "    {p}");
        }
        if self.missing_points.len() as u64 > 0 && (self.missing_points.len() as u64) < self.missing
        {
            let _ = writeln!(
                s,
                "    ... and {} more",
                self.missing - self.missing_points.len() as u64
            );
        }
        let _ = writeln!(
            s,
            "  duplicated  {} ({} stored more than once, {} unaccounted for)",
            self.duplicated, self.stored_more_than_once, self.unaccounted
        );
        for p in &self.duplicated_points {
            let _ = writeln!(s, "    {p}");
        }
        if !self.duplicated_points.is_empty()
            && (self.duplicated_points.len() as u64) < self.duplicated
        {
            let _ = writeln!(
                s,
                "    ... and {} more",
                self.duplicated - self.duplicated_points.len() as u64
            );
        }
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    s,
                    "  latency     p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s over {} points \
                     (publication to first poll that saw it; resolution {:.3} s, the poll interval)",
                    l.p50_s, l.p90_s, l.p99_s, l.max_s, l.points, l.resolution_s
                );
                let _ = writeln!(
                    s,
                    "              the first poll came {:.3} s after the last publication and saw {} of them",
                    l.first_poll_after_last_publication_s, l.seen_by_the_first_poll
                );
            }
            None => {
                let _ = writeln!(s, "  latency     - (nothing found)");
            }
        }
        let why = if self.interrupted {
            " (interrupted)"
        } else if self.timed_out {
            " (timed out waiting for missing points)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  polls       {} in {:.1} s, {} failed{why}",
            self.polls, self.waited_s, self.failed_polls
        );
        if self.passed() {
            let _ = writeln!(s, "PASSED: every expected point stored once");
        } else {
            let _ = writeln!(
                s,
                "FAILED: {} missing, {} duplicated",
                self.missing, self.duplicated
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 90.0), Some(90.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 90.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_sorts_its_samples() {
        let l = Latency::of(vec![3.0, 1.0, 2.0, 10.0], 0.5, 0.2, 1).expect("samples");
        assert_eq!(
            (l.points, l.p50_s, l.p90_s, l.p99_s, l.max_s),
            (4, 2.0, 10.0, 10.0, 10.0)
        );
        assert!(Latency::of(Vec::new(), 0.5, 0.2, 0).is_none());
    }

    #[test]
    fn the_text_names_missing_points_and_the_verdict() {
        let point = PointReport {
            domain: schemas::Domain::Traffic,
            commune: "rabat".into(),
            device: "counter-1".into(),
            lane: Some(2),
            event_time: "2026-03-04T12:00:00.000Z".into(),
            seqs: vec![41, 2541],
            note: String::new(),
        };
        let report = VerifyReport {
            database: "VictoriaMetrics at http://127.0.0.1:8428".into(),
            from: "a".into(),
            to: "b".into(),
            lines: 3000,
            series: 10,
            expected: 2500,
            repeats: 500,
            invalid: 0,
            unacknowledged: 0,
            unacknowledged_found: 0,
            found: 2499,
            missing: 1,
            missing_points: vec![point],
            duplicated: 0,
            stored_more_than_once: 0,
            unaccounted: 0,
            duplicated_points: Vec::new(),
            latency: None,
            polls: 3,
            failed_polls: 0,
            waited_s: 1.0,
            timed_out: true,
            interrupted: false,
        };
        assert!(!report.passed());
        let text = report.text();
        assert!(
            text.contains(
                "    seqs 41, 2541: traffic rabat/counter-1 lane 2 at 2026-03-04T12:00:00.000Z\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("(timed out waiting for missing points)"),
            "{text}"
        );
        assert!(
            text.ends_with("FAILED: 1 missing, 0 duplicated\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).expect("JSON");
        assert_eq!(
            json["missing_points"][0]["seqs"],
            serde_json::json!([41, 2541])
        );
        assert_eq!(json["missing_points"][0]["domain"], "traffic");
    }
}
