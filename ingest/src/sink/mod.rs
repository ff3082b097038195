//! The sink stage: batches of line protocol in, the database (or files) out.
//!
//! - [`batch`]: the outgoing buffer and its limits (lines, bytes, age).
//! - [`http`]: the InfluxDB v2 and v1 write calls.
//! - [`answer`]: what the database's answers mean.
//! - [`file`]: rotated line-protocol files.
//! - [`retry`]: the outage log.
//! - [`split`]: isolating the lines a database refuses.
//!
//! [`run`] reads incoming batches only while the outgoing buffer is below its
//! limits; while a write is failing it reads nothing, so the input channel
//! fills and the stages before it wait. Nothing is dropped because the
//! database is down or misconfigured: such writes are retried until they
//! land. Only lines the database refuses as malformed leave the sink
//! unwritten, and they go to the dead-letter channel.

pub mod answer;
pub mod batch;
pub mod file;
pub mod http;
pub mod retry;
pub mod split;

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::{BatchConfig, RetryConfig, SinkConfig, SinkKind};
use crate::health::Health;
use crate::message::{DeadLetter, LineBatch};
use crate::metrics::{Metrics, PointKind};
use crate::wal::Checkpoint;
use batch::{Chunk, Pending};
use file::FileWriter;
use http::HttpWriter;
use retry::Outage;
use split::{Split, Verdict};

/// Why the sink cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The database URL does not parse.
    #[error("sink.influxdb.url: {url:?} is not a valid URL: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client cannot be built (e.g. a bad CA file).
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A file or folder cannot be read or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What became of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written (or flushed, for files).
    Written,
    /// Refused for its content (400, 422) or size (413): split and send again.
    Refused {
        /// HTTP status.
        status: u16,
        /// The database's error text.
        error: String,
    },
    /// Not written; to be retried.
    Retry(Failure),
}

/// A failed write that will be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Metric label: `status_429`, `status_5xx`, `connection`, `misconfigured`, `io`.
    pub cause: &'static str,
    /// What happened, for logs and readiness.
    pub problem: String,
    /// How long the database asked to wait (`Retry-After`).
    pub after: Option<Duration>,
    /// The configuration key likely at fault: wait the longest delay.
    pub misconfigured: Option<&'static str>,
}

impl Failure {
    /// A failure with a cause and a description.
    pub fn new(cause: &'static str, problem: impl Into<String>) -> Self {
        Self {
            cause,
            problem: problem.into(),
            after: None,
            misconfigured: None,
        }
    }
}

/// Runs the sink until `rx` closes, then writes what is left and returns.
///
/// `token` is the InfluxDB API token ([`crate::config::Config::influx_token`]).
/// The checkpoints that arrive with the lines go to `checkpoints` once
/// every line before them is written (files synced first).
/// The future returns only once every line is written or dead-lettered: while
/// the database stays down at shutdown it keeps retrying, so bound the
/// shutdown from outside if needed.
pub async fn run(
    cfg: SinkConfig,
    token: Option<String>,
    rx: mpsc::Receiver<LineBatch>,
    dead_letters: mpsc::Sender<DeadLetter>,
    checkpoints: Option<mpsc::UnboundedSender<Checkpoint>>,
    metrics: Metrics,
    health: Health,
) -> anyhow::Result<()> {
    let target = match cfg.kind {
        SinkKind::File => Target::File(
            FileWriter::new(&cfg.file)
                .await
                .context("the file sink cannot start")?,
        ),
        SinkKind::InfluxdbV2 | SinkKind::InfluxdbV1 => {
            Target::Http(HttpWriter::new(&cfg, token).context("the InfluxDB sink cannot start")?)
        }
    };
    let mut stage = Stage::new(target, &cfg.retry, rx, dead_letters, metrics, health);
    stage.checkpoints = checkpoints;
    stage.run(&cfg.batch).await.context("the sink cannot close")
}

/// Where lines go.
#[derive(Debug)]
enum Target {
    Http(HttpWriter),
    File(FileWriter),
    #[cfg(test)]
    Script(tests::Script),
}

impl Target {
    async fn write(&mut self, body: Bytes) -> Outcome {
        match self {
            Target::Http(w) => w.write(body).await,
            Target::File(w) => w.write(&body).await,
            #[cfg(test)]
            Target::Script(s) => s.write(body).await,
        }
    }

    /// Makes what was written durable before a checkpoint depends on it.
    async fn sync(&mut self) -> Result<(), SinkError> {
        match self {
            Target::File(w) => w.sync().await,
            Target::Http(_) => Ok(()),
            #[cfg(test)]
            Target::Script(_) => Ok(()),
        }
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        match self {
            Target::File(w) => w.close().await,
            Target::Http(_) => Ok(()),
            #[cfg(test)]
            Target::Script(_) => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Target::Http(w) => w.url().to_string(),
            Target::File(_) => "line-protocol files".to_owned(),
            #[cfg(test)]
            Target::Script(_) => "script".to_owned(),
        }
    }
}

/// The stage's state between batches.
#[derive(Debug)]
struct Stage {
    target: Target,
    name: String,
    backoff: Backoff,
    /// Failed attempts since the last success.
    attempt: u32,
    outage: Outage,
    dead_letters: mpsc::Sender<DeadLetter>,
    metrics: Metrics,
    health: Health,
    queue: Gauge,
    rx: mpsc::Receiver<LineBatch>,
    /// Refused lines not yet taken off the written counts.
    refused_uncounted: usize,
    /// Where checkpoints go once what precedes them is written.
    checkpoints: Option<mpsc::UnboundedSender<Checkpoint>>,
}

impl Stage {
    fn new(
        target: Target,
        retry: &RetryConfig,
        rx: mpsc::Receiver<LineBatch>,
        dead_letters: mpsc::Sender<DeadLetter>,
        metrics: Metrics,
        health: Health,
    ) -> Self {
        Self {
            name: target.describe(),
            target,
            backoff: Backoff::new(retry.initial_ms, retry.max_ms),
            attempt: 0,
            outage: Outage::default(),
            dead_letters,
            queue: metrics.queue("sink"),
            metrics,
            health,
            rx,
            refused_uncounted: 0,
            checkpoints: None,
        }
    }

    async fn run(mut self, cfg: &BatchConfig) -> Result<(), SinkError> {
        tracing::info!(sink = %self.name, "sink started");
        self.set_healthy(true, None);
        let mut pending = Pending::new(cfg);
        let mut open = true;
        loop {
            let due = pending.is_full() || (!open && !pending.is_empty());
            if !due {
                if !open {
                    break;
                }
                let deadline = pending.deadline();
                tokio::select! {
                    biased;
                    () = sleep_until(deadline), if deadline.is_some() => {}
                    msg = self.rx.recv() => {
                        if let Some(batch) = msg {
                            if let Some(cp) = pending.push(batch) {
                                self.hand_back(cp).await;
                            }
                            self.update_queue();
                        } else {
                            open = false;
                            tracing::info!(sink = %self.name, lines = pending.lines(), "input closed; writing what is left");
                        }
                        continue;
                    }
                }
            }
            if let Some(mut chunk) = pending.take() {
                let checkpoint = chunk.checkpoint.take();
                self.deliver(chunk).await;
                if let Some(cp) = checkpoint {
                    self.hand_back(cp).await;
                }
            }
            self.update_queue();
        }
        self.target.close().await?;
        tracing::info!(sink = %self.name, "sink stopped");
        Ok(())
    }

    /// Hands a checkpoint back to the log: every line before it is written
    /// (and synced, for files). A failed sync keeps the checkpoint back; a
    /// later one covers the same lines.
    async fn hand_back(&mut self, cp: Checkpoint) {
        let Some(tx) = &self.checkpoints else {
            return;
        };
        if let Err(e) = self.target.sync().await {
            tracing::error!(sink = %self.name, error = %e, "cannot sync written lines; the checkpoint waits");
            return;
        }
        if tx.send(cp).is_err() {
            tracing::debug!("the write-ahead log stopped before the sink");
            self.checkpoints = None;
        }
    }

    /// Writes a chunk, retrying until every line is written or refused.
    async fn deliver(&mut self, chunk: Chunk) {
        let mut split = Split::new(chunk.lines());
        while let Some(range) = split.next_range() {
            let body = chunk.slice(range.clone());
            let verdict = loop {
                let started = Instant::now();
                match self.target.write(body.clone()).await {
                    Outcome::Written => {
                        self.metrics
                            .write_seconds
                            .observe(started.elapsed().as_secs_f64());
                        self.succeeded();
                        break Verdict::Accepted;
                    }
                    Outcome::Refused { status, error } => {
                        self.succeeded();
                        if range.len() == chunk.lines() {
                            tracing::debug!(sink = %self.name, status, %error, lines = range.len(), "the database refused the batch; isolating the bad lines");
                        }
                        break Verdict::Refused((status, error));
                    }
                    Outcome::Retry(failure) => self.wait_to_retry(failure).await,
                }
            };
            split.record(verdict);
        }
        let refused = split.into_refused();
        let mut closed = false;
        for (n, (i, (status, error))) in refused.iter().enumerate() {
            let line = chunk.slice(*i..*i + 1);
            let line =
                String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line)).into_owned();
            self.metrics.lines_rejected.inc();
            if n == 0 {
                tracing::warn!(
                    sink = %self.name,
                    refused = refused.len(),
                    status,
                    %error,
                    first_line = %line,
                    "lines refused by the database; sent to the dead-letter topic"
                );
            }
            if closed {
                tracing::error!(%line, status, %error, "dead-letter channel closed; refused line only logged");
                continue;
            }
            let letter = DeadLetter::Line {
                line,
                status: *status,
                error: error.clone(),
            };
            if let Err(e) = self.dead_letters.send(letter).await {
                closed = true;
                tracing::error!(letter = ?e.0, "dead-letter channel closed; refused line only logged");
            }
        }
        self.metrics.batch_lines.observe(chunk.lines() as f64);
        self.metrics.batch_bytes.observe(chunk.body.len() as f64);
        self.count_written(chunk.completed.raw, chunk.completed.windows, refused.len());
    }

    /// Counts written points by kind. Refused lines are of unknown kind;
    /// they are taken off the raw count first, then off the window count.
    fn count_written(&mut self, raw: usize, windows: usize, refused: usize) {
        self.refused_uncounted += refused;
        let off_raw = self.refused_uncounted.min(raw);
        let off_windows = (self.refused_uncounted - off_raw).min(windows);
        self.refused_uncounted -= off_raw + off_windows;
        self.metrics
            .written(PointKind::raw)
            .inc_by((raw - off_raw) as u64);
        self.metrics
            .written(PointKind::window)
            .inc_by((windows - off_windows) as u64);
    }

    async fn wait_to_retry(&mut self, failure: Failure) {
        self.metrics.retry(failure.cause).inc();
        if self.outage.failed(failure.cause) {
            if let Some(key) = failure.misconfigured {
                tracing::error!(
                    sink = %self.name,
                    cause = failure.cause,
                    problem = %failure.problem,
                    config_key = key,
                    "writes fail, likely misconfigured: check {key}; retrying at the longest delay, nothing is dropped"
                );
            } else {
                tracing::warn!(
                    sink = %self.name,
                    cause = failure.cause,
                    problem = %failure.problem,
                    "writes fail; retrying with backoff"
                );
            }
        }
        let delay = match (failure.misconfigured, failure.after) {
            (Some(_), _) => self.backoff.max(),
            (None, Some(after)) => after.min(self.backoff.max()),
            (None, None) => {
                self.attempt = self.attempt.saturating_add(1);
                self.backoff.delay(self.attempt)
            }
        };
        tracing::debug!(sink = %self.name, cause = failure.cause, delay_ms = delay.as_millis() as u64, "retrying");
        let problem = match failure.misconfigured {
            Some(key) => format!("{} (check {key})", failure.problem),
            None => failure.problem,
        };
        self.set_healthy(false, Some(problem));
        self.update_queue();
        tokio::time::sleep(delay).await;
    }

    fn update_queue(&self) {
        self.queue.set(self.rx.len() as i64);
    }

    fn succeeded(&mut self) {
        self.attempt = 0;
        if let Some(ended) = self.outage.recovered() {
            tracing::info!(
                sink = %self.name,
                outage_ms = ended.lasted.as_millis() as u64,
                retries = ended.retries,
                "writes succeed again"
            );
            self.set_healthy(true, None);
        }
    }

    fn set_healthy(&self, healthy: bool, problem: Option<String>) {
        self.health.set_sink(healthy, problem);
        self.metrics.sink_healthy.set(i64::from(healthy));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
