//! Every metric the service exports, named in this one place.
//!
//! Labels are bounded: reasons, formats, domains, stages and causes, never a
//! device or a topic (cardinality).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use schemas::{Domain, Format, Reason};

/// Label: a rejection reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `Reason::as_str`.
    pub reason: &'static str,
}

/// Label: a wire format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FormatLabel {
    /// `Format::as_str`.
    pub format: &'static str,
}

/// Label: a domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DomainLabel {
    /// `Domain::as_str`.
    pub domain: &'static str,
}

/// What kind of point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PointKind {
    /// A raw reading.
    raw,
    /// A per-device window or a commune rollup.
    window,
}

/// Label: a point kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: PointKind,
}

/// Label: a free-form but bounded cause (an enum's `as_str` elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CauseLabel {
    /// The cause.
    pub cause: &'static str,
}

/// Label: a pipeline stage.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StageLabel {
    /// The stage.
    pub stage: &'static str,
}

/// The service's metrics. Cheap to clone: every handle is shared.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// MQTT messages received.
    pub messages_received: Counter,
    /// Messages decoded, by format.
    pub messages_decoded: Family<FormatLabel, Counter>,
    /// Messages rejected, by reason.
    pub messages_rejected: Family<ReasonLabel, Counter>,
    /// Keys and SenML names that were not understood (ignored).
    pub unknown_keys: Counter,
    /// Readings decoded, by domain.
    pub readings: Family<DomainLabel, Counter>,
    /// Points acknowledged by the sink, by kind.
    pub points_written: Family<KindLabel, Counter>,
    /// Lines the database refused as malformed and that went to the dead-letter topic.
    pub lines_rejected: Counter,
    /// Dead-letter publications, by outcome (`published`, `failed`).
    pub dead_letters: Family<CauseLabel, Counter>,
    /// Duration of a successful write, in seconds.
    pub write_seconds: Histogram,
    /// Lines per written batch.
    pub batch_lines: Histogram,
    /// Bytes per written batch (before compression).
    pub batch_bytes: Histogram,
    /// Write retries, by cause (`status_429`, `status_5xx`, `connection`, `io`).
    pub write_retries: Family<CauseLabel, Counter>,
    /// Batches waiting in each stage's input channel.
    pub queue_depth: Family<StageLabel, Gauge>,
    /// Windows open now.
    pub windows_open: Gauge,
    /// Readings that corrected a window already emitted.
    pub window_corrections: Counter,
    /// Readings past the allowed lateness: written raw, not aggregated.
    pub window_too_late: Counter,
    /// Readings not aggregated because the cap on open windows was reached.
    pub window_capacity_exceeded: Counter,
    /// MQTT disconnections, by cause.
    pub mqtt_disconnects: Family<CauseLabel, Counter>,
    /// 1 while connected to the broker.
    pub mqtt_connected: Gauge,
    /// 1 while the sink's last write succeeded.
    pub sink_healthy: Gauge,
    /// Bytes of the write-ahead log on disk.
    pub wal_bytes: Gauge,
    /// Segment files of the write-ahead log.
    pub wal_segments: Gauge,
    /// Records in the log not yet covered by a checkpoint.
    pub wal_pending_records: Gauge,
    /// 1 while the log is at its byte limit: the service stops reading.
    pub wal_full: Gauge,
    /// Records appended to the log.
    pub wal_appended: Counter,
    /// Duration of a group commit (write and fdatasync), in seconds.
    pub wal_commit_seconds: Histogram,
    /// Records per group commit.
    pub wal_commit_records: Histogram,
    /// Records replayed from the log at start.
    pub wal_replayed: Counter,
    /// Checkpoints written.
    pub wal_checkpoints: Counter,
    /// Torn or corrupt tails cut off at start.
    pub wal_truncations: Counter,
    /// The series of `messages_decoded` by format and of `readings` by
    /// domain, looked up once: they are counted on every message.
    decoded_by_format: [Counter; 4],
    readings_by_domain: [Counter; 3],
}

/// Every wire format, in the order of `Metrics::decoded_by_format`.
const FORMATS: [Format; 4] = [
    Format::Native,
    Format::Senml,
    Format::TheThingsStack,
    Format::ChirpStack,
];

impl Metrics {
    /// Creates every metric and registers it.
    pub fn new(registry: &mut Registry) -> Self {
        let seconds = || Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        let sizes = || Histogram::new(exponential_buckets(1.0, 4.0, 12));
        let m = Self {
            messages_received: Counter::default(),
            messages_decoded: Family::default(),
            messages_rejected: Family::default(),
            unknown_keys: Counter::default(),
            readings: Family::default(),
            points_written: Family::default(),
            lines_rejected: Counter::default(),
            dead_letters: Family::default(),
            write_seconds: seconds(),
            batch_lines: sizes(),
            batch_bytes: sizes(),
            write_retries: Family::default(),
            queue_depth: Family::default(),
            windows_open: Gauge::default(),
            window_corrections: Counter::default(),
            window_too_late: Counter::default(),
            window_capacity_exceeded: Counter::default(),
            mqtt_disconnects: Family::default(),
            mqtt_connected: Gauge::default(),
            sink_healthy: Gauge::default(),
            wal_bytes: Gauge::default(),
            wal_segments: Gauge::default(),
            wal_pending_records: Gauge::default(),
            wal_full: Gauge::default(),
            wal_appended: Counter::default(),
            wal_commit_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            wal_commit_records: sizes(),
            wal_replayed: Counter::default(),
            wal_checkpoints: Counter::default(),
            wal_truncations: Counter::default(),
            decoded_by_format: Default::default(),
            readings_by_domain: Default::default(),
        };
        let r = registry.sub_registry_with_prefix("ingest");
        r.register(
            "messages_received",
            "MQTT messages received",
            m.messages_received.clone(),
        );
        r.register(
            "messages_decoded",
            "Messages decoded, by wire format",
            m.messages_decoded.clone(),
        );
        r.register(
            "messages_rejected",
            "Messages rejected, by reason",
            m.messages_rejected.clone(),
        );
        r.register(
            "unknown_keys",
            "Keys or SenML names not understood and ignored",
            m.unknown_keys.clone(),
        );
        r.register(
            "readings",
            "Readings decoded, by domain",
            m.readings.clone(),
        );
        r.register(
            "points_written",
            "Points acknowledged by the sink, by kind",
            m.points_written.clone(),
        );
        r.register(
            "lines_rejected",
            "Lines the database refused as malformed (dead-lettered)",
            m.lines_rejected.clone(),
        );
        r.register(
            "dead_letters",
            "Dead-letter publications, by outcome",
            m.dead_letters.clone(),
        );
        r.register(
            "write_seconds",
            "Duration of successful writes",
            m.write_seconds.clone(),
        );
        r.register(
            "batch_lines",
            "Lines per written batch",
            m.batch_lines.clone(),
        );
        r.register(
            "batch_bytes",
            "Bytes per written batch, before compression",
            m.batch_bytes.clone(),
        );
        r.register(
            "write_retries",
            "Write retries, by cause",
            m.write_retries.clone(),
        );
        r.register(
            "queue_depth",
            "Batches waiting in a stage's input channel",
            m.queue_depth.clone(),
        );
        r.register(
            "windows_open",
            "Event-time windows open",
            m.windows_open.clone(),
        );
        r.register(
            "window_corrections",
            "Late readings that corrected an emitted window",
            m.window_corrections.clone(),
        );
        r.register(
            "window_too_late",
            "Readings past the allowed lateness, not aggregated",
            m.window_too_late.clone(),
        );
        r.register(
            "window_capacity_exceeded",
            "Readings not aggregated because the window cap was reached",
            m.window_capacity_exceeded.clone(),
        );
        r.register(
            "mqtt_disconnects",
            "MQTT disconnections, by cause",
            m.mqtt_disconnects.clone(),
        );
        r.register(
            "mqtt_connected",
            "1 while connected to the MQTT broker",
            m.mqtt_connected.clone(),
        );
        r.register(
            "sink_healthy",
            "1 while the sink's last write succeeded",
            m.sink_healthy.clone(),
        );
        r.register(
            "wal_bytes",
            "Bytes of the write-ahead log on disk",
            m.wal_bytes.clone(),
        );
        r.register(
            "wal_segments",
            "Segment files of the write-ahead log",
            m.wal_segments.clone(),
        );
        r.register(
            "wal_pending_records",
            "Log records not yet covered by a checkpoint (not yet all in the database)",
            m.wal_pending_records.clone(),
        );
        r.register(
            "wal_full",
            "1 while the write-ahead log is at its byte limit and the service stops reading",
            m.wal_full.clone(),
        );
        r.register(
            "wal_appended",
            "Records appended to the write-ahead log",
            m.wal_appended.clone(),
        );
        r.register(
            "wal_commit_seconds",
            "Duration of a group commit (write and fdatasync)",
            m.wal_commit_seconds.clone(),
        );
        r.register(
            "wal_commit_records",
            "Records per group commit",
            m.wal_commit_records.clone(),
        );
        r.register(
            "wal_replayed",
            "Records replayed from the write-ahead log at start",
            m.wal_replayed.clone(),
        );
        r.register(
            "wal_checkpoints",
            "Checkpoints written to the write-ahead log",
            m.wal_checkpoints.clone(),
        );
        r.register(
            "wal_truncations",
            "Torn or corrupt log tails cut off at start",
            m.wal_truncations.clone(),
        );
        // Series that dashboards expect to exist before the first event.
        for reason in Reason::ALL {
            m.rejected(*reason);
        }
        let mut m = m;
        m.decoded_by_format = FORMATS.map(|format| {
            m.messages_decoded
                .get_or_create(&FormatLabel {
                    format: format.as_str(),
                })
                .clone()
        });
        m.readings_by_domain = Domain::ALL.map(|domain| {
            m.readings
                .get_or_create(&DomainLabel {
                    domain: domain.as_str(),
                })
                .clone()
        });
        m
    }

    /// The rejection counter of a reason.
    pub fn rejected(&self, reason: Reason) -> Counter {
        self.messages_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .clone()
    }

    /// The decoded counter of a format.
    pub fn decoded(&self, format: Format) -> &Counter {
        &self.decoded_by_format[match format {
            Format::Native => 0,
            Format::Senml => 1,
            Format::TheThingsStack => 2,
            Format::ChirpStack => 3,
        }]
    }

    /// The readings counter of a domain.
    pub fn domain_readings(&self, domain: Domain) -> &Counter {
        &self.readings_by_domain[match domain {
            Domain::Lighting => 0,
            Domain::Waste => 1,
            Domain::Traffic => 2,
        }]
    }

    /// The written counter of a point kind.
    pub fn written(&self, kind: PointKind) -> Counter {
        self.points_written
            .get_or_create(&KindLabel { kind })
            .clone()
    }

    /// A retry counter.
    pub fn retry(&self, cause: &'static str) -> Counter {
        self.write_retries
            .get_or_create(&CauseLabel { cause })
            .clone()
    }

    /// A queue-depth gauge.
    pub fn queue(&self, stage: &'static str) -> Gauge {
        self.queue_depth
            .get_or_create(&StageLabel { stage })
            .clone()
    }

    /// A disconnect counter.
    pub fn disconnect(&self, cause: &'static str) -> Counter {
        self.mqtt_disconnects
            .get_or_create(&CauseLabel { cause })
            .clone()
    }

    /// A dead-letter outcome counter.
    pub fn dead_letter(&self, outcome: &'static str) -> Counter {
        self.dead_letters
            .get_or_create(&CauseLabel { cause: outcome })
            .clone()
    }
}

/// The registry in Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_exported_from_the_start() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.rejected(Reason::OutOfRange).inc();
        let text = render(&registry);
        assert!(
            text.contains("ingest_messages_rejected_total{reason=\"out_of_range\"} 1"),
            "{text}"
        );
        assert!(text.contains("ingest_messages_rejected_total{reason=\"invalid_json\"} 0"));
        assert!(text.contains("ingest_messages_decoded_total{format=\"senml\"} 0"));
        assert!(text.contains("# TYPE ingest_write_seconds histogram"));
    }
}
