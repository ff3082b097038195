//! The log as a pipeline stage, between the source and the processor.
//!
//! It first replays the records after the last checkpoint, then takes
//! batches from the source: every batch waiting is appended and the lot is
//! synced once (group commit, in a blocking thread), then each batch's
//! acknowledgements go back to the source and the batch goes on to the
//! processor. Checkpoints come back from the sink and are written between
//! commits. At its byte limit the stage takes nothing from the source until
//! checkpoints make room, so the source stops reading and the broker keeps
//! the backlog.

use std::time::Instant;

use tokio::sync::mpsc;

use super::log::{Checkpoint, Log, Recovery, WalError};
use crate::health::Health;
use crate::message::{Message, MessageBatch};
use crate::metrics::Metrics;
use crate::mqtt::Acks;

/// Records per replayed batch.
const REPLAY_BATCH: usize = 512;
/// Most messages in one group commit.
const GROUP_MESSAGES: usize = 16_384;
/// Most bytes in one group commit.
const GROUP_BYTES: u64 = 4 * 1024 * 1024;

/// The channels of the stage.
#[derive(Debug)]
pub struct Links {
    /// Batches from the source.
    pub input: mpsc::Receiver<MessageBatch>,
    /// Durable batches to the processor.
    pub output: mpsc::Sender<MessageBatch>,
    /// Acknowledgements back to the source, once durable.
    pub acks: mpsc::UnboundedSender<Acks>,
    /// Checkpoints from the sink, once the database has what precedes them.
    pub checkpoints: mpsc::UnboundedReceiver<Checkpoint>,
}

/// The bytes a batch takes in the log.
fn batch_bytes(batch: &MessageBatch) -> u64 {
    batch
        .messages
        .iter()
        .map(|m| super::record::encoded_len(&m.topic, &m.payload) as u64)
        .sum()
}

/// The log stage, ready to run.
#[derive(Debug)]
pub struct WalStage {
    log: Option<Box<Log>>,
    max_bytes: u64,
    metrics: Metrics,
    health: Health,
    full: bool,
}

impl WalStage {
    /// A stage over an opened log; reports what recovery found.
    pub fn new(
        log: Log,
        recovery: &Recovery,
        max_bytes: u64,
        metrics: Metrics,
        health: Health,
    ) -> Self {
        let dir = log.dir().display().to_string();
        if let Some(t) = &recovery.truncated {
            metrics.wal_truncations.inc();
            tracing::warn!(
                wal = %dir,
                segment = %t.segment.display(),
                offset = t.offset,
                dropped_bytes = t.dropped_bytes,
                removed_segments = t.removed_segments,
                reason = %t.reason,
                "cut the write-ahead log at a torn or corrupt record (a crash during a write); what precedes it is kept"
            );
        }
        if let Some(problem) = &recovery.checkpoint_problem {
            tracing::warn!(wal = %dir, %problem, "the checkpoint file is unreadable; replaying every record left in the log");
        }
        tracing::info!(
            wal = %dir,
            replay = recovery.replay_to - recovery.replay_from,
            from = recovery.replay_from,
            segments = log.segments(),
            bytes = log.bytes(),
            "write-ahead log opened"
        );
        let stage = Self {
            log: Some(Box::new(log)),
            max_bytes,
            metrics,
            health,
            full: false,
        };
        stage.publish();
        stage
    }

    fn log(&self) -> &Log {
        // Only `None` while a blocking call holds it.
        self.log
            .as_deref()
            .expect("the log is back from its blocking call")
    }

    /// Runs until the input closes and the sink has handed back its last
    /// checkpoint. An error (an fsync that failed) stops the service.
    pub async fn run(mut self, links: Links) -> Result<(), WalError> {
        let Links {
            mut input,
            output,
            acks,
            mut checkpoints,
        } = links;
        let mut output = Some(output);
        if let Some(out) = output.as_ref() {
            if !self.replay(out).await? {
                output = None;
            }
        }
        let mut checkpoints_open = true;
        let mut input_open = output.is_some();
        loop {
            self.update_full();
            if !input_open && output.is_some() {
                // Let the processor drain; its last checkpoint still comes back.
                output = None;
            }
            if !checkpoints_open && !input_open {
                break;
            }
            tokio::select! {
                biased;
                cp = checkpoints.recv(), if checkpoints_open => match cp {
                    Some(mut cp) => {
                        while let Ok(later) = checkpoints.try_recv() {
                            cp = later;
                        }
                        self.checkpoint(cp).await?;
                    }
                    None => checkpoints_open = false,
                },
                first = input.recv(), if input_open && !self.full => match first {
                    Some(first) => {
                        // Everything waiting goes into one commit, up to the
                        // room left under the limit (the first batch always).
                        let room = self
                            .max_bytes
                            .saturating_sub(self.log().bytes())
                            .min(GROUP_BYTES);
                        let mut bytes = batch_bytes(&first);
                        let mut count = first.messages.len();
                        let mut batches = vec![first];
                        while count < GROUP_MESSAGES && bytes < room {
                            let Ok(more) = input.try_recv() else { break };
                            count += more.messages.len();
                            bytes += batch_bytes(&more);
                            batches.push(more);
                        }
                        let batches = self.commit(batches).await?;
                        let Some(out) = output.as_ref() else { continue };
                        for mut batch in batches {
                            // The source may be gone at shutdown: the broker redelivers.
                            let _ = acks.send(std::mem::take(&mut batch.acks));
                            if out.send(batch).await.is_err() {
                                tracing::error!("the processor stopped before the write-ahead log");
                                input_open = false;
                                break;
                            }
                        }
                    }
                    None => input_open = false,
                },
            }
        }
        drop(acks);
        self.publish();
        tracing::info!(
            bytes = self.log().bytes(),
            pending = self.log().next_lsn() - self.log().checkpoint_lsn(),
            "write-ahead log closed"
        );
        Ok(())
    }

    /// Sends the records after the checkpoint to the processor; `false` if
    /// the processor is gone.
    async fn replay(&mut self, out: &mpsc::Sender<MessageBatch>) -> Result<bool, WalError> {
        let mut replay = self.log().replay();
        let total = self.log().next_lsn() - self.log().checkpoint_lsn();
        if total == 0 {
            return Ok(true);
        }
        tracing::info!(records = total, "replaying the write-ahead log");
        let started = Instant::now();
        let mut done = 0_u64;
        loop {
            let (back, records) = blocking(self.log().dir(), move || {
                let records = replay.next_batch(REPLAY_BATCH);
                (replay, records)
            })
            .await?;
            replay = back;
            let records = records?;
            let Some(last) = records.last() else { break };
            let end = last.lsn + 1;
            done += records.len() as u64;
            self.metrics.wal_replayed.inc_by(records.len() as u64);
            let messages = records
                .into_iter()
                .map(|r| Message {
                    topic: r.topic,
                    payload: r.payload,
                    received_at: r.received_at,
                })
                .collect();
            let batch = MessageBatch {
                messages,
                acks: Acks::default(),
                end: Some(end),
            };
            if out.send(batch).await.is_err() {
                return Ok(false);
            }
        }
        tracing::info!(
            records = done,
            ms = started.elapsed().as_millis() as u64,
            "write-ahead log replayed"
        );
        Ok(true)
    }

    /// Runs `f` on the log in a blocking thread (file I/O and fsync must not
    /// hold up the runtime).
    async fn with_log<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Log) -> T + Send + 'static,
    ) -> Result<T, WalError> {
        let mut log = self.log.take().expect("the log is here");
        let dir = log.dir().to_owned();
        let (log, out) = blocking(&dir, move || {
            let out = f(&mut log);
            (log, out)
        })
        .await?;
        self.log = Some(log);
        Ok(out)
    }

    /// Appends the batches and syncs them once; they come back with their
    /// end positions set.
    async fn commit(
        &mut self,
        mut batches: Vec<MessageBatch>,
    ) -> Result<Vec<MessageBatch>, WalError> {
        let started = Instant::now();
        let (batches, result) = self
            .with_log(move |log| {
                let result = (|| {
                    for batch in &mut batches {
                        for m in &batch.messages {
                            log.append(m.received_at, &m.topic, &m.payload)?;
                        }
                        batch.end = Some(log.next_lsn());
                    }
                    log.commit()
                })();
                (batches, result)
            })
            .await?;
        result?;
        let records: usize = batches.iter().map(|b| b.messages.len()).sum();
        self.metrics
            .wal_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics.wal_commit_records.observe(records as f64);
        self.metrics.wal_appended.inc_by(records as u64);
        self.publish();
        Ok(batches)
    }

    async fn checkpoint(&mut self, cp: Checkpoint) -> Result<(), WalError> {
        let removed = self.with_log(move |log| log.checkpoint(&cp)).await??;
        self.metrics.wal_checkpoints.inc();
        tracing::debug!(
            next = self.log().checkpoint_lsn(),
            removed,
            "checkpoint written"
        );
        self.publish();
        Ok(())
    }

    /// Enters or leaves the full state at the byte limit.
    fn update_full(&mut self) {
        let bytes = self.log().bytes();
        let full = bytes >= self.max_bytes;
        if full == self.full {
            return;
        }
        self.full = full;
        self.metrics.wal_full.set(i64::from(full));
        if full {
            let problem = format!(
                "write-ahead log full ({bytes} of {} bytes, wal.max_bytes): not reading from the broker until the database catches up",
                self.max_bytes
            );
            tracing::warn!(
                bytes,
                max_bytes = self.max_bytes,
                "write-ahead log full; not reading from the broker until the database catches up"
            );
            self.health.set_wal(Some(problem));
        } else {
            tracing::info!(
                bytes,
                "write-ahead log has room again; reading from the broker"
            );
            self.health.set_wal(None);
        }
    }

    fn publish(&self) {
        let log = self.log();
        let m = &self.metrics;
        m.wal_bytes
            .set(i64::try_from(log.bytes()).unwrap_or(i64::MAX));
        m.wal_segments.set(log.segments() as i64);
        m.wal_pending_records
            .set(i64::try_from(log.next_lsn() - log.checkpoint_lsn()).unwrap_or(i64::MAX));
    }
}

/// Runs `f` on the blocking pool; a task that panicked or was cancelled is
/// an I/O error of the log in `dir`.
async fn blocking<T: Send + 'static>(
    dir: &std::path::Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WalError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WalError::Io {
            path: dir.to_owned(),
            source: std::io::Error::other(e),
        })
}
