//! The processor stage: decode, window and encode. The logic is the pure
//! [`Processor`]; [`run`] is the thin async loop around it.

use std::time::Duration;

use processors::encode::encode_reading;
use processors::window::{WindowStats, Windows};
use schemas::decode::Decoder;
use schemas::{Applications, Reading, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::{LiveState, SharedLive};
use crate::message::{DeadLetter, LineBatch, Message, MessageBatch};
use crate::metrics::Metrics;
use crate::wal::Checkpoint;

/// Decodes messages, aggregates readings and encodes lines.
#[derive(Debug)]
pub struct Processor {
    decoder: Decoder,
    windows: Option<Windows>,
    metrics: Metrics,
    readings: Vec<Reading>,
    stats: WindowStats,
    observer: Option<SharedLive>,
    /// Capacity for the next checkpoint's window image.
    image_hint: usize,
    /// Held by every checkpoint in flight.
    alive: std::sync::Arc<()>,
}

impl Processor {
    /// A processor for a configuration (already validated).
    pub fn new(cfg: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        let applications = Applications::new(&cfg.applications)?;
        Ok(Self {
            decoder: Decoder::new(cfg.time_limits(), applications),
            windows: cfg
                .windows
                .enabled
                .then(|| Windows::new(cfg.windows.to_processor())),
            readings: Vec::with_capacity(16),
            stats: WindowStats::default(),
            observer: None,
            image_hint: 0,
            alive: std::sync::Arc::new(()),
            metrics,
        })
    }

    /// Takes up the window state saved in a checkpoint. On an error (an
    /// image from another version or window configuration) the windows
    /// stay empty, and the caller says so.
    pub fn restore_windows(&mut self, image: &[u8]) -> Result<(), WindowRestoreError> {
        let Some(w) = self.windows.as_mut() else {
            return Ok(());
        };
        if image.is_empty() {
            return Err(WindowRestoreError(
                "the checkpoint holds no window state".to_owned(),
            ));
        }
        *w = Windows::restore(w.config().clone(), image)
            .map_err(|e| WindowRestoreError(e.to_string()))?;
        self.stats = w.stats();
        self.publish_window_stats();
        Ok(())
    }

    /// A checkpoint at log position `next`: the window state now, which is
    /// after every message before `next`.
    pub fn checkpoint(&mut self, next: u64) -> Checkpoint {
        // Sized like the last image: no doubling of a large buffer.
        let mut windows = Vec::with_capacity(self.image_hint);
        if let Some(w) = self.windows.as_ref() {
            w.snapshot(&mut windows);
        }
        self.image_hint = windows.len() + windows.len() / 8;
        let mut cp = Checkpoint::new(next, windows);
        cp.alive = Some(std::sync::Arc::clone(&self.alive));
        cp
    }

    /// Checkpoints made and not yet written or superseded.
    pub fn checkpoints_in_flight(&self) -> usize {
        std::sync::Arc::strong_count(&self.alive) - 1
    }

    /// Also records every decoded reading and every rejection in `live`
    /// (one lock per message).
    #[must_use]
    pub fn with_observer(mut self, live: SharedLive) -> Self {
        self.observer = Some(live);
        self
    }

    /// Handles one message: its readings become lines in `out`; a rejected
    /// message becomes a dead letter.
    pub fn message(&mut self, m: &Message, out: &mut LineBatch, dead: &mut Vec<DeadLetter>) {
        // `messages_received` is counted by the MQTT source, on receipt.
        let mut live = self.observer.as_ref().map(LiveState::lock);
        match self
            .decoder
            .decode(&m.topic, &m.payload, m.received_at, &mut self.readings)
        {
            Ok(decoded) => {
                if let Some(live) = live.as_mut() {
                    live.decoded();
                }
                self.metrics.decoded(decoded.format).inc();
                if decoded.unknown_keys > 0 {
                    self.metrics
                        .unknown_keys
                        .inc_by(u64::from(decoded.unknown_keys));
                }
            }
            Err(rejection) => {
                if let Some(live) = live.as_mut() {
                    live.rejected(rejection.reason);
                }
                self.metrics.rejected(rejection.reason).inc();
                tracing::debug!(
                    topic = %rejection.topic,
                    reason = rejection.reason.as_str(),
                    message = %rejection.message,
                    "message rejected"
                );
                dead.push(DeadLetter::Message {
                    topic: m.topic.clone(),
                    payload: m.payload.clone(),
                    reason: rejection.reason.as_str(),
                    message: rejection.message,
                    received_at: m.received_at,
                });
                return;
            }
        }
        for reading in self.readings.drain(..) {
            self.metrics.domain_readings(reading.domain).inc();
            if let Some(live) = live.as_mut() {
                live.reading(&reading);
            }
            if let Some(w) = self.windows.as_mut() {
                w.record(&reading);
            }
            match encode_reading(&reading, &mut out.buf) {
                Ok(()) => out.raw += 1,
                Err(e) => {
                    tracing::error!(topic = %m.topic, error = %e, "a validated reading cannot be encoded");
                    dead.push(DeadLetter::Message {
                        topic: m.topic.clone(),
                        payload: m.payload.clone(),
                        reason: "unencodable",
                        message: e.to_string(),
                        received_at: m.received_at,
                    });
                }
            }
        }
    }

    /// Emits the windows that are due.
    pub fn drain_windows(&mut self, out: &mut LineBatch) {
        self.emit(out, Windows::drain_encoded);
    }

    /// Emits every window with changes not yet written (at shutdown).
    pub fn flush_windows(&mut self, out: &mut LineBatch) {
        self.emit(out, Windows::flush_all_encoded);
    }

    /// Writes windows straight into the batch as lines.
    fn emit(
        &mut self,
        out: &mut LineBatch,
        write: fn(&mut Windows, &mut Vec<u8>) -> Vec<processors::encode::EncodeError>,
    ) {
        let Some(w) = self.windows.as_mut() else {
            return;
        };
        let start = out.buf.len();
        let before = w.stats().points_emitted;
        let errors = write(w, &mut out.buf);
        for e in &errors {
            tracing::error!(error = %e, "a window point cannot be encoded");
        }
        // Every point emitted is one line, unless it could not be encoded.
        let lines =
            usize::try_from(w.stats().points_emitted - before).unwrap_or(usize::MAX) - errors.len();
        #[allow(clippy::naive_bytecount)]
        {
            debug_assert_eq!(
                lines,
                out.buf[start..].iter().filter(|b| **b == b'\n').count()
            );
        }
        out.windows += lines;
        self.publish_window_stats();
    }

    /// Moves event time forward by `by` while no input arrives, so that the
    /// windows of a quiet stream still close.
    pub fn advance_idle(&mut self, by: Duration, out: &mut LineBatch) {
        if let Some(w) = self.windows.as_mut() {
            if let Some(max) = w.max_event_time() {
                w.advance(max.add_nanos(i64::try_from(by.as_nanos()).unwrap_or(i64::MAX)));
            }
        }
        self.drain_windows(out);
    }

    fn publish_window_stats(&mut self) {
        let Some(w) = self.windows.as_ref() else {
            return;
        };
        let now = w.stats();
        let before = std::mem::replace(&mut self.stats, now);
        let m = &self.metrics;
        m.windows_open
            .set(i64::try_from(now.open_windows).unwrap_or(i64::MAX));
        m.window_corrections
            .inc_by(now.corrections.saturating_sub(before.corrections));
        m.window_too_late
            .inc_by(now.too_late.saturating_sub(before.too_late));
        m.window_capacity_exceeded.inc_by(
            now.capacity_exceeded
                .saturating_sub(before.capacity_exceeded),
        );
    }
}

/// Why saved window state was not taken up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WindowRestoreError(String);

/// When the processor makes checkpoints: after the messages of the log
/// position it has reached, at most every `every`.
#[derive(Debug, Clone, Copy)]
struct Checkpoints {
    every: Duration,
    /// The log position after the last message processed.
    position: Option<u64>,
    /// The position of the last checkpoint made.
    made: Option<u64>,
    last: tokio::time::Instant,
}

impl Checkpoints {
    fn due(&self) -> Option<u64> {
        let position = self.position?;
        (self.made != Some(position) && self.last.elapsed() >= self.every).then_some(position)
    }
}

/// The wall clock as a timestamp.
pub fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now()).unwrap_or_default()
}

/// Checkpoints the processor lets travel at once.
const MAX_CHECKPOINTS_IN_FLIGHT: usize = 2;

/// How the processor loop is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// With no input, event time moves with the wall clock after this long
    /// (zero: never).
    pub idle_advance: Duration,
    /// With a write-ahead log: how often to make a checkpoint.
    pub checkpoint_every: Option<Duration>,
}

/// Runs the processor until its input closes, then flushes the windows and
/// closes its output, so the sink drains in turn. With a write-ahead log,
/// a checkpoint follows the lines of the messages it covers.
pub async fn run(
    mut processor: Processor,
    mut input: mpsc::Receiver<MessageBatch>,
    output: mpsc::Sender<LineBatch>,
    dead_letters: mpsc::Sender<DeadLetter>,
    pace: Pace,
    shutdown: CancellationToken,
) {
    const TICK: Duration = Duration::from_secs(1);
    let idle_advance = pace.idle_advance;
    let mut tick = tokio::time::interval(pace.checkpoint_every.unwrap_or(TICK).min(TICK));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Event time last moved (by input or by the idle clock).
    let mut last_input = tokio::time::Instant::now();
    let mut last_moved = last_input;
    let mut dead = Vec::new();
    let depth = processor.metrics.queue("processor");
    let mut checkpoints = pace.checkpoint_every.map(|every| Checkpoints {
        every,
        position: None,
        made: None,
        last: tokio::time::Instant::now(),
    });
    loop {
        let mut out = LineBatch::default();
        tokio::select! {
            batch = input.recv() => {
                let Some(batch) = batch else { break };
                last_input = tokio::time::Instant::now();
                last_moved = last_input;
                for m in &batch.messages {
                    processor.message(m, &mut out, &mut dead);
                }
                processor.drain_windows(&mut out);
                if let (Some(c), Some(end)) = (checkpoints.as_mut(), batch.end) {
                    c.position = Some(end);
                }
            }
            _ = tick.tick() => {
                if !idle_advance.is_zero() && last_input.elapsed() >= idle_advance {
                    processor.advance_idle(last_moved.elapsed(), &mut out);
                    last_moved = tokio::time::Instant::now();
                }
            }
        }
        if let Some(c) = checkpoints.as_mut() {
            // While the sink lags, at most two checkpoints (and their
            // window images) are in flight; the next one waits.
            let room = processor.checkpoints_in_flight() < MAX_CHECKPOINTS_IN_FLIGHT;
            if let Some(next) = c.due().filter(|_| room) {
                out.checkpoint = Some(processor.checkpoint(next));
                c.made = Some(next);
                c.last = tokio::time::Instant::now();
            }
        }
        depth.set(i64::try_from(input.len()).unwrap_or(i64::MAX));
        for d in dead.drain(..) {
            if dead_letters.send(d).await.is_err() {
                processor.metrics.dead_letter("failed").inc();
            }
        }
        if !out.is_void() && output.send(out).await.is_err() {
            tracing::error!("the sink stopped before the processor; lines are not written");
            shutdown.cancel();
            return;
        }
    }
    let mut out = LineBatch::default();
    processor.flush_windows(&mut out);
    if let Some(next) = checkpoints.and_then(|c| c.position) {
        out.checkpoint = Some(processor.checkpoint(next));
    }
    tracing::info!(
        window_points = out.windows,
        "processor drained; windows flushed"
    );
    if !out.is_void() && output.send(out).await.is_err() {
        tracing::error!("the sink stopped before the final windows were handed over");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prometheus_client::registry::Registry;

    fn processor() -> (Processor, Registry) {
        let mut registry = Registry::default();
        let metrics = Metrics::new(&mut registry);
        (
            Processor::new(&Config::default(), metrics).expect("valid"),
            registry,
        )
    }

    fn msg(topic: &str, payload: &str, at: i64) -> Message {
        Message {
            topic: topic.to_owned(),
            payload: Bytes::copy_from_slice(payload.as_bytes()),
            received_at: Timestamp::from_secs(at),
        }
    }

    const T0: i64 = 1_795_896_000;

    #[test]
    fn good_messages_become_lines_and_bad_ones_dead_letters() {
        let (mut p, registry) = processor();
        let mut out = LineBatch::default();
        let mut dead = Vec::new();
        let topic = "city/rabat/lighting/lamp-1/telemetry";
        p.message(
            &msg(
                topic,
                r#"{"dateObserved": 1795896000, "powerConsumption": 40}"#,
                T0,
            ),
            &mut out,
            &mut dead,
        );
        p.message(
            &msg(topic, r#"{"powerConsumption": -5}"#, T0),
            &mut out,
            &mut dead,
        );
        p.message(
            &msg(
                topic,
                r#"{"dateObserved": 1795896010, "powerConsumption": 42}"#,
                T0 + 10,
            ),
            &mut out,
            &mut dead,
        );
        assert_eq!(out.raw, 2);
        let text = String::from_utf8(out.buf.clone()).expect("UTF-8");
        assert_eq!(
            text,
            "lighting,commune=rabat,device=lamp-1 power_w=40.0 1795896000000000000\n\
             lighting,commune=rabat,device=lamp-1 power_w=42.0 1795896010000000000\n"
        );
        assert_eq!(dead.len(), 1);
        assert!(
            matches!(&dead[0], DeadLetter::Message { reason: "out_of_range", topic: t, .. } if t == topic)
        );
        let metrics = crate::metrics::render(&registry);
        assert!(
            metrics.contains("ingest_messages_rejected_total{reason=\"out_of_range\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("ingest_messages_decoded_total{format=\"native\"} 2"),
            "{metrics}"
        );
        assert!(
            metrics.contains("ingest_readings_total{domain=\"lighting\"} 2"),
            "{metrics}"
        );
    }

    #[test]
    fn windows_close_on_event_time_and_flush_at_the_end() {
        let (mut p, _registry) = processor();
        let mut out = LineBatch::default();
        let mut dead = Vec::new();
        let topic = "city/rabat/waste/bin-1/telemetry";
        p.message(
            &msg(
                topic,
                r#"{"dateObserved": 1795896000, "fillingLevel": 0.5}"#,
                T0,
            ),
            &mut out,
            &mut dead,
        );
        p.drain_windows(&mut out);
        assert_eq!(out.windows, 0, "nothing is due yet");
        p.message(
            &msg(
                topic,
                r#"{"dateObserved": 1795896070, "fillingLevel": 0.6}"#,
                T0 + 70,
            ),
            &mut out,
            &mut dead,
        );
        p.drain_windows(&mut out);
        let text = String::from_utf8(out.buf.clone()).expect("UTF-8");
        assert!(
            text.contains("waste_1m,commune=rabat,device=bin-1 "),
            "{text}"
        );
        assert!(text.contains("fill_ratio_mean=0.5"), "{text}");
        let mut last = LineBatch::default();
        p.flush_windows(&mut last);
        let text = String::from_utf8(last.buf).expect("UTF-8");
        assert!(text.contains("fill_ratio_last=0.6"), "{text}");
        assert!(text.contains("waste_commune_15m,commune=rabat "), "{text}");
    }

    #[test]
    fn an_idle_stream_still_closes_its_windows() {
        let (mut p, _registry) = processor();
        let mut out = LineBatch::default();
        let mut dead = Vec::new();
        p.message(
            &msg(
                "city/rabat/traffic/c-1/telemetry",
                r#"{"dateObserved": 1795896000, "intensity": 3}"#,
                T0,
            ),
            &mut out,
            &mut dead,
        );
        for _ in 0..59 {
            p.advance_idle(Duration::from_secs(1), &mut out);
        }
        assert_eq!(out.windows, 0);
        p.advance_idle(Duration::from_secs(1), &mut out);
        assert_eq!(out.windows, 1, "{}", String::from_utf8_lossy(&out.buf));
    }
}
