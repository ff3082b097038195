//! `run` and `backfill`: the fleet's messages over a period, published when
//! the simulated clock reaches their publication time ([`Pace`]), or as fast
//! as the broker takes them.
//!
//! A thread renders the messages (pure, CPU-bound) into a bounded channel;
//! the publisher waits for each message's time and queues it on the
//! connection of its device, so that a device's messages stay in order.
//! The messages are those of `Fleet::messages(from, to)`, all of them: the
//! late copies of the last ticks, due after `to`, are published at once
//! when the period ends.

use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rumqttc::QoS;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{Broker, Connection, Counters};
use super::pace::Pace;
use super::{client_id, DRAIN_TIMEOUT};
use crate::{Fleet, FleetSpec};

/// Messages rendered per batch sent to the publisher.
const BATCH: usize = 256;
/// Batches rendered ahead of the publisher.
const AHEAD: usize = 16;
/// Requests that may wait for each connection's event loop.
const CAPACITY: usize = 1024;
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How far behind its schedule the publisher may fall before it warns.
const LAG_WARNING: Duration = Duration::from_secs(5);
/// The end of an unbounded run: far enough never to be reached.
const FOREVER_DAYS: i64 = 36_525;

/// What to replay, and how fast.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Where to publish.
    pub broker: Broker,
    /// The fleet.
    pub spec: FleetSpec,
    /// Start of the simulated period.
    pub from: DateTime<Utc>,
    /// End of the simulated period (excluded); `None` runs until shutdown.
    pub to: Option<DateTime<Utc>>,
    /// Simulated seconds per wall-clock second; `None` publishes as fast as
    /// possible.
    pub speed: Option<f64>,
    /// With a `speed`: once the simulated clock reaches the wall clock,
    /// keep to it (real time) rather than run ahead, so that event times
    /// never lie in the future ([`Pace::catching_up`]). Logged once.
    pub catch_up: bool,
    /// QoS of the publications.
    pub qos: QoS,
    /// Connections to publish over.
    pub connections: u16,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// Messages queued for publication.
    pub queued: u64,
    /// Messages written to the broker.
    pub sent: u64,
    /// Messages the broker acknowledged (QoS 1 only).
    pub acked: Option<u64>,
    /// Connection errors.
    pub errors: u64,
    /// Whether a shutdown signal ended the replay before its end.
    pub interrupted: bool,
    /// Publication time of the last message queued (RFC 3339).
    pub last_publish_at: Option<String>,
    /// Wall-clock seconds the replay took.
    pub wall_s: f64,
}

/// A message ready to be published.
#[derive(Debug)]
struct Prepared {
    connection: usize,
    topic: String,
    payload: Bytes,
    publish_at: DateTime<Utc>,
}

/// Publishes the fleet's messages of `[from, to)`; see the module's doc.
/// Returns when they are all published and acknowledged, or, after a
/// shutdown, once what was queued is flushed.
pub async fn replay(
    config: ReplayConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<ReplaySummary> {
    let fleet = Fleet::new(&config.spec).context("building the fleet")?;
    let connections_n = usize::from(config.connections.max(1));
    let counters = Arc::new(Counters::default());
    let mut connections = Vec::with_capacity(connections_n);
    for _ in 0..connections_n {
        let id = client_id("simulate-run");
        let c = Connection::open(
            &config.broker,
            &id,
            config.qos,
            CAPACITY,
            counters.clone(),
            false,
        )
        .await?;
        connections.push(c);
    }
    let end = config
        .to
        .unwrap_or(config.from + TimeDelta::days(FOREVER_DAYS));
    tracing::info!(
        broker = %config.broker,
        devices = fleet.len(),
        from = %config.from,
        to = ?config.to,
        speed = ?config.speed,
        connections = connections_n,
        "publishing the fleet"
    );
    let (tx, mut rx) = mpsc::channel(AHEAD);
    let from = config.from;
    std::thread::Builder::new()
        .name("simulate-render".into())
        .spawn(move || render(fleet, from, end, connections_n, &tx))
        .context("starting the rendering thread")?;

    let start = Instant::now();
    let last = Arc::new(AtomicI64::new(i64::MIN));
    let progress = tokio::spawn(log_progress(counters.clone(), last.clone()));
    let pace = config.speed.map(|speed| {
        if config.catch_up {
            Pace::catching_up(config.from, speed, Utc::now())
        } else {
            Pace::new(config.from, speed)
        }
    });
    let announce = pace
        .and_then(|p| Some((p, p.catches_up_after()?)))
        .map(|(pace, after)| tokio::spawn(announce_real_time(pace, start, after)));
    let mut queued = 0_u64;
    let mut lag_warned: Option<Instant> = None;
    let mut interrupted = false;
    'batches: loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => { interrupted = true; break 'batches; }
            batch = rx.recv() => match batch { Some(b) => b, None => break 'batches },
        };
        for m in batch {
            if let Some(pace) = pace.filter(|_| m.publish_at < end) {
                let due = start + pace.due(m.publish_at);
                let now = Instant::now();
                if due > now {
                    tokio::select! {
                        () = shutdown.cancelled() => { interrupted = true; break 'batches; }
                        () = tokio::time::sleep_until(due) => {}
                    }
                } else if now - due > LAG_WARNING
                    && lag_warned.is_none_or(|w| w.elapsed() > PROGRESS_EVERY)
                {
                    lag_warned = Some(now);
                    tracing::warn!(behind_s = (now - due).as_secs_f64(), "publishing behind schedule: the broker or the rendering is too slow for this speed");
                }
            }
            let connection = &connections[m.connection];
            tokio::select! {
                () = shutdown.cancelled() => { interrupted = true; break 'batches; }
                published = connection.publish(&m.topic, config.qos, m.payload) => published?,
            }
            queued += 1;
            last.store(m.publish_at.timestamp(), Ordering::Relaxed);
        }
    }
    drop(rx);
    for c in connections {
        if !c.close(DRAIN_TIMEOUT).await.finished {
            tracing::warn!("a connection did not finish within {DRAIN_TIMEOUT:?}");
        }
    }
    progress.abort();
    if let Some(announce) = announce {
        announce.abort();
    }
    let (sent, acked, errors) = counters.snapshot();
    let summary = ReplaySummary {
        queued,
        sent,
        acked: (config.qos != QoS::AtMostOnce).then_some(acked),
        errors,
        interrupted,
        last_publish_at: DateTime::from_timestamp(last.load(Ordering::Relaxed), 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        wall_s: start.elapsed().as_secs_f64(),
    };
    tracing::info!(?summary, "replay finished");
    Ok(summary)
}

/// Renders the messages in batches until the period ends or the publisher
/// goes away.
fn render(
    mut fleet: Fleet,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    connections: usize,
    tx: &mpsc::Sender<Vec<Prepared>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    for m in fleet.messages(from, to) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        m.device.hash(&mut hasher);
        batch.push(Prepared {
            connection: (hasher.finish() % connections as u64) as usize,
            topic: m.topic,
            payload: Bytes::from(m.payload),
            publish_at: m.publish_at,
        });
        if batch.len() == BATCH
            && tx
                .blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .is_err()
        {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

/// Says, once, that the simulated clock has caught up with the wall clock.
async fn announce_real_time(pace: Pace, start: Instant, after: Duration) {
    tokio::time::sleep_until(start + after).await;
    tracing::info!(
        simulated = %pace.simulated(after).to_rfc3339_opts(SecondsFormat::Secs, true),
        "the simulated clock has caught up with the wall clock: publishing in real time from now on"
    );
}

async fn log_progress(counters: Arc<Counters>, last: Arc<AtomicI64>) {
    let mut every = tokio::time::interval(PROGRESS_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let (sent, acked, errors) = counters.snapshot();
        let simulated = DateTime::from_timestamp(last.load(Ordering::Relaxed), 0);
        tracing::info!(sent, acked, errors, simulated = ?simulated, "progress");
    }
}
