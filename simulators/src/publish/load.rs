//! `load`: the broker's intake under a target rate.
//!
//! Before the timed part, a pool of the fleet's messages is rendered: those
//! of the period that ends now, so that every message has its own identity
//! and recent event times the service accepts. Then one producer task per
//! connection queues its share — message `k` goes to connection
//! `k mod N` — paced to `rate / N` per second (or as fast as the event
//! loop takes them), cycling through the pool if it runs out, until the
//! count or the duration is reached.
//!
//! With `drop`, a few messages chosen with a seed are recorded in the
//! manifest as published and acknowledged but never sent: the loss oracle
//! ([`crate::verify`]) must report exactly those missing.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use rumqttc::QoS;
use schemas::Domain;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{Broker, Closed, Connection, Counters, Trace};
use super::report::{self, LoadReport};
use super::{client_id, DRAIN_TIMEOUT};
use crate::verify::Manifest;
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
    /// Messages of the pool to record in the manifest as published without
    /// publishing them (every time the pool comes round to them), to check
    /// the loss oracle; 0 drops none.
    pub drop: u64,
    /// The seed that chooses the dropped messages.
    pub drop_seed: u64,
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

/// What identifies the point a message becomes.
type PointId<'a> = (Domain, &'a str, &'a str, Option<u32>, DateTime<Utc>);

impl PoolMessage {
    /// What identifies the point it becomes: series and timestamp.
    pub fn identity(&self) -> PointId<'_> {
        (
            self.domain,
            &self.commune,
            &self.device,
            self.lane,
            self.event_time,
        )
    }
}

/// Chooses, with `seed`, the `n` pool messages that `drop` skips: among the
/// first `planned` messages of the pool, valid ones whose identity no other
/// message of the pool has, so that each drop is a point missing from the
/// database. Returns pool indices, ascending.
pub fn choose_drops(
    pool: &[PoolMessage],
    planned: u64,
    n: u64,
    seed: u64,
) -> anyhow::Result<Vec<usize>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut counts: HashMap<PointId<'_>, u32> = HashMap::with_capacity(pool.len());
    for m in pool {
        *counts.entry(m.identity()).or_default() += 1;
    }
    let limit = usize::try_from(planned)
        .unwrap_or(usize::MAX)
        .min(pool.len());
    let eligible: Vec<usize> = (0..limit)
        .filter(|&i| pool[i].valid && counts.get(&pool[i].identity()) == Some(&1))
        .collect();
    let wanted = usize::try_from(n).unwrap_or(usize::MAX);
    anyhow::ensure!(
        wanted <= eligible.len(),
        "--drop {n}: only {} of the messages to send can be dropped (valid, and the only \
         message of the pool with their identity)",
        eligible.len()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen: Vec<usize> = rand::seq::index::sample(&mut rng, eligible.len(), wanted)
        .into_iter()
        .map(|i| eligible[i])
        .collect();
    chosen.sort_unstable();
    Ok(chosen)
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
    Ok(run(config, shutdown, false).await?.0)
}

/// Runs a load test and returns its manifest too, in memory (it is also
/// written to `config.manifest` if set).
pub async fn load_with_manifest(
    config: LoadConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<(LoadReport, Manifest)> {
    let (report, manifest) = run(config, shutdown, true).await?;
    Ok((report, manifest.unwrap_or_default()))
}

/// Merges the messages a connection dropped on purpose (its `n`-th
/// message, and when) into what its event loop traced, as if written and
/// acknowledged. The merge stops at the first message neither written nor
/// dropped: the manifest has no line for it, nor for any after it.
fn merge_drops(trace: Trace, drops: &[(u64, i64)]) -> Trace {
    if drops.is_empty() {
        return trace;
    }
    let mut merged = Trace::default();
    let mut written = trace.written_at.into_iter().zip(trace.acked);
    let mut drops = drops.iter().peekable();
    loop {
        let nth = merged.written_at.len() as u64;
        let (at, acked) = match drops.peek() {
            Some(&&(d, at)) if d == nth => {
                drops.next();
                (at, true)
            }
            _ => match written.next() {
                Some(w) => w,
                None => break,
            },
        };
        merged.written_at.push(at);
        merged.acked.push(acked);
    }
    merged
}

async fn run(
    config: LoadConfig,
    shutdown: CancellationToken,
    keep_manifest: bool,
) -> anyhow::Result<(LoadReport, Option<Manifest>)> {
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
    let traced = config.manifest.is_some() || keep_manifest;
    if config.drop > 0 && !traced {
        tracing::warn!("dropping messages without a manifest: nothing will know they were due");
    }
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let id = client_id("simulate-load");
        let trace = traced;
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
    let planned = match config.bound {
        Bound::Count(count) => count,
        Bound::Duration(d) if config.rate > 0.0 => (config.rate * d.as_secs_f64()).ceil() as u64,
        Bound::Duration(_) => pool.len() as u64,
    };
    let drops: Arc<HashSet<usize>> = Arc::new(
        choose_drops(&pool, planned, config.drop, config.drop_seed)?
            .into_iter()
            .collect(),
    );
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
                drops: drops.clone(),
                shutdown: shutdown.clone(),
            };
            tokio::spawn(producer.run(connection))
        })
        .collect();
    let mut queued = 0;
    let mut traces = Vec::with_capacity(n);
    let mut unfinished = 0;
    let mut dropped = Vec::new();
    for (c, producer) in producers.into_iter().enumerate() {
        let done = producer.await.context("a producer task failed")??;
        queued += done.queued;
        unfinished += usize::from(!done.closed.finished);
        let trace = if traced {
            merge_drops(done.closed.trace, &done.dropped)
        } else {
            done.closed.trace
        };
        // With a manifest, the drops it lists (see `merge_drops`).
        let lines = trace.written_at.len() as u64;
        dropped.extend(
            done.dropped
                .iter()
                .filter(|(nth, _)| !traced || *nth < lines)
                .map(|(nth, _)| c as u64 + nth * n as u64),
        );
        traces.push(trace);
    }
    dropped.sort_unstable();
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        report::end_progress_line();
    }
    let (sent, acked, errors) = counters.snapshot();
    let resent = counters.resent.load(std::sync::atomic::Ordering::Relaxed);
    let report = LoadReport::new(
        &config,
        report::Counts {
            pool: pool.len(),
            queued,
            sent,
            resent,
            acked,
            errors,
            unfinished,
            elapsed,
            started_at,
        },
        dropped,
    );
    if let Some(path) = &config.manifest {
        report::write_manifest(path, &pool, &traces, config.qos)
            .with_context(|| format!("writing the manifest {}", path.display()))?;
    }
    if let Some(path) = &config.report {
        report.write(path)?;
    }
    let manifest = keep_manifest.then(|| {
        let mut manifest = Manifest::new();
        report::for_each_sent(&pool, &traces, config.qos, |sent| {
            manifest.push(sent);
            Ok(())
        })
        .map(|()| manifest)
    });
    Ok((report, manifest.transpose()?))
}

/// What a producer did.
#[derive(Debug)]
struct Produced {
    /// Messages queued for publication.
    queued: u64,
    /// How its connection ended, and what its event loop traced.
    closed: Closed,
    /// The messages dropped on purpose: the producer's `n`-th, and when.
    dropped: Vec<(u64, i64)>,
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
    /// Pool indices never published.
    drops: Arc<HashSet<usize>>,
    shutdown: CancellationToken,
}

impl Producer {
    /// Queues this connection's share, then closes the connection.
    async fn run(self, connection: Connection) -> anyhow::Result<Produced> {
        let deadline = match self.bound {
            Bound::Duration(d) => Some(self.start + d),
            Bound::Count(_) => None,
        };
        let len = self.pool.len() as u64;
        // Messages handled: queued or dropped.
        let mut handled = 0_u64;
        let mut queued = 0_u64;
        let mut dropped = Vec::new();
        loop {
            let k = self.first + handled * self.step;
            if matches!(self.bound, Bound::Count(count) if k >= count) {
                break;
            }
            if self.rate > 0.0 {
                let due = self.start + Duration::from_secs_f64(handled as f64 / self.rate);
                let due = deadline.map_or(due, |d| due.min(d));
                if due > Instant::now() {
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            let look = handled.is_multiple_of(CHECK_EVERY) || self.rate > 0.0;
            if look
                && (self.shutdown.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d))
            {
                break;
            }
            let index = (k % len) as usize;
            if self.drops.contains(&index) {
                let now = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
                dropped.push((handled, now));
                handled += 1;
                continue;
            }
            let m = &self.pool[index];
            if let Err(error) = connection
                .publish(&m.topic, self.qos, m.payload.clone())
                .await
            {
                tracing::warn!(%error, "stopping a producer");
                break;
            }
            queued += 1;
            handled += 1;
        }
        Ok(Produced {
            queued,
            closed: connection.close(DRAIN_TIMEOUT).await,
            dropped,
        })
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
        let identities: HashSet<_> = pool
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

    fn message(device: &str, event: &str, valid: bool) -> PoolMessage {
        PoolMessage {
            topic: format!("city/rabat/lighting/{device}/telemetry"),
            payload: Bytes::new(),
            domain: Domain::Lighting,
            commune: "rabat".into(),
            device: device.into(),
            lane: None,
            event_time: event.parse().expect("RFC 3339"),
            fault: None,
            valid,
        }
    }

    #[test]
    fn drops_are_seeded_valid_and_unique_points_among_those_sent() {
        let mut pool: Vec<PoolMessage> = (0..100)
            .map(|i| message(&format!("lamp-{i}"), "2026-03-04T12:00:00Z", i % 10 != 3))
            .collect();
        // lamp-0's point twice: neither copy can be dropped.
        pool.push(message("lamp-0", "2026-03-04T12:00:00Z", true));
        let chosen = choose_drops(&pool, 50, 5, 7).expect("enough candidates");
        assert_eq!(chosen.len(), 5);
        assert!(chosen.windows(2).all(|w| w[0] < w[1]), "{chosen:?}");
        assert!(
            chosen.iter().all(|&i| i < 50 && i != 0 && i % 10 != 3),
            "{chosen:?}"
        );
        assert_eq!(choose_drops(&pool, 50, 5, 7).expect("again"), chosen);
        assert_ne!(choose_drops(&pool, 50, 5, 8).expect("another seed"), chosen);
        assert!(choose_drops(&pool, 50, 0, 7).expect("none").is_empty());
        // 50 candidates less lamp-0 and the five invalid ones.
        let err = choose_drops(&pool, 50, 45, 7).expect_err("too many");
        assert!(err.to_string().contains("only 44"), "{err}");
    }

    #[test]
    fn drops_are_merged_into_the_trace_in_order() {
        let trace = Trace {
            written_at: vec![10, 20, 30],
            acked: vec![true, false, true],
        };
        // The producer's messages 0 and 2 were dropped, at 5 and 15.
        let merged = merge_drops(trace, &[(0, 5), (2, 15), (9, 99)]);
        assert_eq!(merged.written_at, [5, 10, 15, 20, 30]);
        assert_eq!(merged.acked, [true, true, true, false, true]);
        let untouched = merge_drops(
            Trace {
                written_at: vec![1],
                acked: vec![true],
            },
            &[],
        );
        assert_eq!(untouched.written_at, [1]);
    }
}
