//! What a load test reports: a progress line every second on stderr, a
//! final [`LoadReport`] (JSON on request), and the manifest — one JSON line
//! per message handed to the broker, with the identity of the point it
//! becomes, which the oracle ([`crate::verify`]) reads.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use rumqttc::QoS;
use serde::Serialize;

use super::connection::{Counters, Trace};
use super::load::{Bound, LoadConfig, PoolMessage};
use crate::verify::Sent;

/// The outcome of a load test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// The broker, HOST:PORT.
    pub broker: String,
    /// Connections used.
    pub connections: u16,
    /// QoS of the publications.
    pub qos: u8,
    /// Target messages per second; 0 is as fast as possible.
    pub target_rate: f64,
    /// The bound asked for: a count of messages.
    pub count: Option<u64>,
    /// The bound asked for: seconds.
    pub duration_limit_s: Option<f64>,
    /// Distinct messages in the pool.
    pub pool: usize,
    /// Messages handed to the MQTT clients.
    pub queued: u64,
    /// Messages written to the broker's socket, each counted once.
    pub sent: u64,
    /// Messages written again after a connection loss, under the same
    /// packet id (QoS 1): not acknowledged before the connection was lost.
    pub resent: u64,
    /// Messages the broker acknowledged; `None` at QoS 0.
    pub acked: Option<u64>,
    /// Connection errors.
    pub errors: u64,
    /// Connections that did not finish within the drain timeout.
    pub unfinished_connections: usize,
    /// Seconds from the first message to the last one sent (QoS 0) or
    /// acknowledged (QoS 1).
    pub duration_s: f64,
    /// Messages per second achieved: sent (QoS 0) or acknowledged (QoS 1)
    /// over `duration_s`.
    pub rate: f64,
    /// When the timed part started (RFC 3339).
    pub started_at: String,
    /// The manifest written, if any.
    pub manifest: Option<PathBuf>,
    /// Messages recorded in the manifest as published but never sent
    /// (`--drop`), by `seq`.
    pub dropped: Vec<u64>,
}

/// What the load test counted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    pub pool: usize,
    pub queued: u64,
    pub sent: u64,
    pub resent: u64,
    pub acked: u64,
    pub errors: u64,
    pub unfinished: usize,
    pub elapsed: Duration,
    pub started_at: DateTime<Utc>,
}

impl LoadReport {
    pub(super) fn new(config: &LoadConfig, counts: Counts, dropped: Vec<u64>) -> Self {
        let at_least_once = config.qos != QoS::AtMostOnce;
        let done = if at_least_once {
            counts.acked
        } else {
            counts.sent
        };
        let seconds = counts.elapsed.as_secs_f64();
        Self {
            broker: config.broker.to_string(),
            connections: config.connections,
            qos: u8::from(at_least_once),
            target_rate: config.rate,
            count: match config.bound {
                Bound::Count(n) => Some(n),
                Bound::Duration(_) => None,
            },
            duration_limit_s: match config.bound {
                Bound::Duration(d) => Some(d.as_secs_f64()),
                Bound::Count(_) => None,
            },
            pool: counts.pool,
            queued: counts.queued,
            sent: counts.sent,
            resent: counts.resent,
            acked: at_least_once.then_some(counts.acked),
            errors: counts.errors,
            unfinished_connections: counts.unfinished,
            duration_s: seconds,
            rate: if seconds > 0.0 {
                done as f64 / seconds
            } else {
                0.0
            },
            started_at: counts
                .started_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            manifest: config.manifest.clone(),
            dropped,
        }
    }

    /// Writes the report as pretty JSON.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("serialising the report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report {}", path.display()))
    }

    /// Whether everything queued reached the broker (and, at QoS 1, was
    /// acknowledged), and a `count` bound was met in full (messages dropped
    /// on purpose included).
    pub fn complete(&self) -> bool {
        let done = self.acked.unwrap_or(self.sent);
        self.unfinished_connections == 0
            && self.sent == self.queued
            && done == self.sent
            && self
                .count
                .is_none_or(|n| self.queued + self.dropped.len() as u64 == n)
    }

    /// The report for a person, one line.
    pub fn summary(&self) -> String {
        let acked = self.acked.map_or_else(|| "-".to_owned(), |a| a.to_string());
        let resent = if self.resent == 0 {
            String::new()
        } else {
            format!(" ({} resent)", self.resent)
        };
        let dropped = if self.dropped.is_empty() {
            String::new()
        } else {
            format!(", {} dropped on purpose", self.dropped.len())
        };
        format!(
            "sent {}{resent} acked {} errors {} in {:.2} s: {:.0} msgs/s (qos {}, {} connections){dropped}",
            self.sent, acked, self.errors, self.duration_s, self.rate, self.qos, self.connections
        )
    }
}

/// Prints rate, sent, acknowledged and errors on stderr every second: over
/// one line on a terminal, a line each otherwise.
pub(super) async fn progress(counters: Arc<Counters>, qos: QoS) {
    let terminal = std::io::stderr().is_terminal();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    let mut before = counters.snapshot();
    loop {
        every.tick().await;
        let now = counters.snapshot();
        let (sent, acked, errors) = now;
        let done = if qos == QoS::AtMostOnce {
            now.0 - before.0
        } else {
            now.1 - before.1
        };
        before = now;
        let line =
            format!("rate {done:>8} msgs/s  sent {sent:>10}  acked {acked:>10}  errors {errors}");
        let mut err = std::io::stderr().lock();
        // A failed write to stderr has nowhere to be reported.
        let _ = if terminal {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
    }
}

/// Ends the progress line on a terminal.
pub(super) fn end_progress_line() {
    if std::io::stderr().is_terminal() {
        let _ = writeln!(std::io::stderr());
    }
}

/// Calls `f` with each message of the manifest: message `k` was the
/// `k / N`-th first written on connection `k mod N` (dropped ones included,
/// see `load::merge_drops`; a connection writes its messages first in the
/// order they were queued, connection losses and retransmissions
/// notwithstanding: see [`super::connection`]), and is the pool's message
/// `k mod len`. Messages come in the order of `k`, each once; a message
/// never written has none.
pub(super) fn for_each_sent(
    pool: &[PoolMessage],
    traces: &[Trace],
    qos: QoS,
    mut f: impl FnMut(&Sent<'_>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let connections = traces.len().max(1);
    let total: usize = traces.iter().map(|t| t.written_at.len()).sum();
    let (mut seq, mut written) = (0_usize, 0_usize);
    while written < total {
        let trace = &traces[seq % connections];
        let nth = seq / connections;
        if let Some(&at) = trace.written_at.get(nth) {
            let message = &pool[seq % pool.len()];
            f(&Sent {
                seq: seq as u64,
                domain: message.domain,
                commune: &message.commune,
                device: &message.device,
                lane: message.lane,
                event_time: message.event_time,
                topic: &message.topic,
                published_at: DateTime::from_timestamp_nanos(at),
                acked: (qos != QoS::AtMostOnce)
                    .then(|| trace.acked.get(nth).copied().unwrap_or(false)),
                fault: message.fault,
                valid: message.valid,
            })?;
            written += 1;
        }
        seq += 1;
    }
    Ok(())
}

/// Writes the manifest, a JSON line per message (see [`for_each_sent`]).
pub(super) fn write_manifest(
    path: &Path,
    pool: &[PoolMessage],
    traces: &[Trace],
    qos: QoS,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    for_each_sent(pool, traces, qos, |sent| {
        out.write_all(sent.to_json().as_bytes())?;
        out.write_all(b"\n")
    })?;
    out.flush()?;
    Ok(())
}
