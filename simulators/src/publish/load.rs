//! `load`: the broker's intake under a target rate.
//!
//! Before the timed part, a pool of the fleet's messages is rendered: those
//! of the period that ends now, so that every message has its own identity
//! and recent event times the service accepts. Then one producer task per
//! connection queues its share — message `k` goes to connection
//! `k mod N` — paced to `rate / N` per second (or as fast as the event
//! loop takes them), cycling through the pool if it runs out, until the
//! count or the duration is reached.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use rumqttc::QoS;
use schemas::Domain;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{Broker, Connection, Counters, Trace};
use super::report::{self, LoadReport};
use super::{client_id, DRAIN_TIMEOUT};
use crate::{Fleet, FleetSpec, MessageFault};

/// Requests that may wait for each connection's event loop.
const CAPACITY: usize = 4096;
/// The pool when neither the count nor the rate tells its size.
const DEFAULT_POOL: usize = 1_000_000;
/// How often a producer running flat out looks at the clock.
const CHECK_EVERY: u64 = 64;
/// The longest period the pool's messages come from: the service rejects
/// readings older than 30 days.
const MAX_SPAN_S: i64 = 29 * 86_400;

/// When a load test stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// After this many messages.
    Count(u64),
    /// After this long.
    Duration(Duration),
}

/// A load test.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where to publish.
    pub broker: Broker,
    /// The fleet whose messages are sent.
    pub spec: FleetSpec,
    /// Target messages per second over all connections; 0 is flat out.
    pub rate: f64,
    /// Connections, each with its own client id and event-loop task.
    pub connections: u16,
    /// QoS of the publications.
    pub qos: QoS,
    /// When to stop.
    pub bound: Bound,
    /// Distinct messages to render; by default as many as will be sent, up
    /// to 1,000,000.
    pub pool: Option<usize>,
    /// Where to write the report as JSON.
    pub report: Option<PathBuf>,
    /// Where to write one JSON line per message handed to the broker.
    pub manifest: Option<PathBuf>,
    /// Whether to print a progress line on stderr every second.
    pub progress: bool,
}

/// One message of the pool.
#[derive(Debug, Clone)]
pub struct PoolMessage {
    /// MQTT topic.
    pub topic: String,
    /// MQTT payload.
    pub payload: Bytes,
    /// Domain of the point it becomes.
    pub domain: Domain,
    /// Commune id.
    pub commune: String,
    /// Device id.
    pub device: String,
    /// Lane of a traffic counter.
    pub lane: Option<u32>,
    /// Timestamp of the point it becomes.
    pub event_time: DateTime<Utc>,
    /// A fault applied on purpose.
    pub fault: Option<MessageFault>,
    /// Whether the service must accept it.
    pub valid: bool,
}

/// Messages per simulated second the fleet publishes, roughly (a counter
/// has 2.5 lanes on average).
fn nominal_rate(spec: &FleetSpec) -> f64 {
    let i = spec.intervals;
    spec.communes
        .iter()
        .map(|c| {
            f64::from(c.lighting) / f64::from(i.lighting_s.max(1))
                + f64::from(c.waste) / f64::from(i.waste_s.max(1))
                + f64::from(c.traffic) * 2.5 / f64::from(i.traffic_s.max(1))
        })
        .sum()
}

/// Renders `size` messages of the fleet from the period that ends at `now`
/// (fewer if the fleet publishes fewer in 29 days).
pub fn pool(spec: &FleetSpec, size: usize, now: DateTime<Utc>) -> anyhow::Result<Vec<PoolMessage>> {
    let mut fleet = Fleet::new(spec).context("building the fleet")?;
    let i = spec.intervals;
    let longest = i64::from(i.lighting_s.max(i.waste_s).max(i.traffic_s));
    let wanted = size as f64 / nominal_rate(spec).max(1e-9) * 1.25;
    let span_s = (wanted.ceil() as i64).clamp(0, MAX_SPAN_S) + longest;
    let from = now - TimeDelta::seconds(span_s.min(MAX_SPAN_S));
    Ok(fleet
        .messages(from, now)
        .take(size)
        .map(|m| PoolMessage {
            valid: m.valid(),
            payload: Bytes::from(m.payload),
            domain: m.observation.domain,
            lane: m.observation.lane,
            fault: m.fault,
            event_time: m.event_time,
            commune: m.observation.commune,
            device: m.device,
            topic: m.topic,
        })
        .collect())
}

/// Runs a load test; see the module's doc.
pub async fn load(config: LoadConfig, shutdown: CancellationToken) -> anyhow::Result<LoadReport> {
    let n = usize::from(config.connections.max(1));
    let size = config.pool.unwrap_or(match config.bound {
        Bound::Count(count) => usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(DEFAULT_POOL),
        Bound::Duration(d) if config.rate > 0.0 => {
            ((config.rate * d.as_secs_f64()).ceil() as usize).min(DEFAULT_POOL)
        }
        Bound::Duration(_) => DEFAULT_POOL,
    });
    let counters = Arc::new(Counters::default());
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let id = client_id("simulate-load");
        let trace = config.manifest.is_some();
        let c = Connection::open(
            &config.broker,
            &id,
            config.qos,
            CAPACITY,
            counters.clone(),
            trace,
        )
        .await?;
        connections.push(c);
    }

    let rendering = Instant::now();
    let spec = config.spec.clone();
    let pool = tokio::task::spawn_blocking(move || pool(&spec, size.max(1), Utc::now()))
        .await
        .context("the rendering task failed")??;
    anyhow::ensure!(!pool.is_empty(), "the fleet publishes no message");
    let pool = Arc::new(pool);
    tracing::info!(
        messages = pool.len(),
        seconds = rendering.elapsed().as_secs_f64(),
        "pool rendered"
    );

    let started_at = Utc::now();
    let start = Instant::now();
    let progress = config
        .progress
        .then(|| tokio::spawn(report::progress(counters.clone(), config.qos)));
    let producers: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(c, connection)| {
            let producer = Producer {
                first: c as u64,
                step: n as u64,
                rate: config.rate / n as f64,
                bound: config.bound,
                qos: config.qos,
                start,
                pool: pool.clone(),
                shutdown: shutdown.clone(),
            };
            tokio::spawn(producer.run(connection))
        })
        .collect();
    let mut queued = 0;
    let mut traces = Vec::with_capacity(n);
    let mut unfinished = 0;
    for producer in producers {
        let (count, trace) = producer.await.context("a producer task failed")??;
        queued += count;
        unfinished += usize::from(trace.is_none());
        traces.push(trace.unwrap_or_default());
    }
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        report::end_progress_line();
    }
    let (sent, acked, errors) = counters.snapshot();
    let report = LoadReport::new(
        &config,
        report::Counts {
            pool: pool.len(),
            queued,
            sent,
            acked,
            errors,
            unfinished,
            elapsed,
            started_at,
        },
    );
    if let Some(path) = &config.manifest {
        report::write_manifest(path, &pool, &traces, config.qos)
            .with_context(|| format!("writing the manifest {}", path.display()))?;
    }
    if let Some(path) = &config.report {
        report.write(path)?;
    }
    Ok(report)
}

/// The producer of one connection.
#[derive(Debug)]
struct Producer {
    /// Index of its first message; it then takes every `step`-th.
    first: u64,
    step: u64,
    /// Messages per second; 0 is flat out.
    rate: f64,
    bound: Bound,
    qos: QoS,
    start: Instant,
    pool: Arc<Vec<PoolMessage>>,
    shutdown: CancellationToken,
}

impl Producer {
    /// Queues this connection's share, then closes the connection. Returns
    /// how many messages it queued and what the event loop traced.
    async fn run(self, connection: Connection) -> anyhow::Result<(u64, Option<Trace>)> {
        let deadline = match self.bound {
            Bound::Duration(d) => Some(self.start + d),
            Bound::Count(_) => None,
        };
        let len = self.pool.len() as u64;
        let mut queued = 0_u64;
        loop {
            let k = self.first + queued * self.step;
            if matches!(self.bound, Bound::Count(count) if k >= count) {
                break;
            }
            if self.rate > 0.0 {
                let due = self.start + Duration::from_secs_f64(queued as f64 / self.rate);
                let due = deadline.map_or(due, |d| due.min(d));
                if due > Instant::now() {
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            let look = queued % CHECK_EVERY == 0 || self.rate > 0.0;
            if look
                && (self.shutdown.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d))
            {
                break;
            }
            let m = &self.pool[(k % len) as usize];
            if let Err(error) = connection
                .publish(&m.topic, self.qos, m.payload.clone())
                .await
            {
                tracing::warn!(%error, "stopping a producer");
                break;
            }
            queued += 1;
        }
        Ok((queued, connection.close(DRAIN_TIMEOUT).await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_recent_and_distinct() {
        let spec = FleetSpec::default();
        let now: DateTime<Utc> = "2026-03-04T12:00:00Z".parse().expect("RFC 3339");
        let pool = pool(&spec, 20_000, now).expect("renders");
        assert_eq!(pool.len(), 20_000);
        let identities: std::collections::HashSet<_> = pool
            .iter()
            .filter(|m| m.fault != Some(MessageFault::Duplicate))
            .map(|m| (m.domain, &m.device, m.lane, m.event_time))
            .collect();
        let copies = pool.len() - identities.len();
        assert!(copies < pool.len() / 50, "{copies} repeated identities");
        let oldest = pool.iter().map(|m| m.event_time).min().expect("not empty");
        assert!(now - oldest < TimeDelta::hours(6), "oldest {oldest}");
        assert!(pool
            .iter()
            .all(|m| m.event_time < now + TimeDelta::minutes(5)));
    }
}
