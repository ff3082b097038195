//! MQTT connections to publish over: each has its own client id and one task
//! that owns its event loop and only counts what happens there.
//!
//! A publisher queues messages on a connection's client, then
//! [`Connection::close`] queues a barrier behind them: an UNSUBSCRIBE from
//! a topic nobody uses. The event loop takes requests in order, so once the
//! barrier is written every message queued before it is written too; once
//! they are all acknowledged as well (QoS 1), the event loop sends a
//! DISCONNECT and ends. (A DISCONNECT sent earlier would make the broker
//! close the connection before its last acknowledgements go out.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::Utc;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The bound on connecting to the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the event loop reconnects after an error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// The largest packet sent.
const MAX_PACKET: usize = 1 << 20;
/// Publications a connection may have unacknowledged at QoS 1.
const INFLIGHT: u16 = 1000;
/// The topic of the barrier that closes a connection; nobody subscribes to it.
const BARRIER: &str = "simulate/none";

/// Where the broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What every connection has done so far; read by progress reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publications written to the socket.
    pub sent: AtomicU64,
    /// Publications the broker acknowledged (QoS 1).
    pub acked: AtomicU64,
    /// Connection errors (each followed by a reconnection).
    pub errors: AtomicU64,
}

impl Counters {
    /// (sent, acked, errors) now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// What one connection's event loop saw, for a manifest: the wall-clock time
/// (Unix nanoseconds) of each publication written, in the order they were
/// queued, and whether the broker acknowledged it.
#[derive(Debug, Default)]
pub struct Trace {
    /// Unix nanoseconds at which the n-th publication was written.
    pub written_at: Vec<i64>,
    /// Whether the n-th publication was acknowledged (QoS 1).
    pub acked: Vec<bool>,
}

/// One MQTT connection and the task that drives it.
#[derive(Debug)]
pub struct Connection {
    client: AsyncClient,
    task: JoinHandle<Trace>,
}

impl Connection {
    /// Connects as `client_id` and waits for the broker's CONNACK. `capacity`
    /// is the number of requests that may wait for the event loop; `trace`
    /// keeps the time of every publication for a manifest.
    pub async fn open(
        broker: &Broker,
        client_id: &str,
        qos: QoS,
        capacity: usize,
        counters: Arc<Counters>,
        trace: bool,
    ) -> anyhow::Result<Self> {
        let mut options = MqttOptions::new(client_id, &broker.host, broker.port);
        options
            .set_clean_session(true)
            .set_keep_alive(Duration::from_secs(30))
            .set_inflight(INFLIGHT)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        let (client, eventloop) = AsyncClient::new(options, capacity);
        let (connected_tx, connected) = oneshot::channel();
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            qos,
            counters,
            trace,
            connected_tx,
        ));
        timeout(CONNECT_TIMEOUT, connected)
            .await
            .with_context(|| format!("no CONNACK within {CONNECT_TIMEOUT:?}"))?
            .context("the MQTT event loop ended")?
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("connecting {client_id} to {broker}"))?;
        Ok(Self { client, task })
    }

    /// Queues a publication; waits while the request queue is full.
    pub async fn publish(&self, topic: &str, qos: QoS, payload: Bytes) -> anyhow::Result<()> {
        self.client
            .publish_bytes(topic, qos, false, payload)
            .await
            .context("the MQTT event loop ended")
    }

    /// Queues the barrier behind every publication and waits, at most
    /// `wait`, for the connection to finish (see the module's doc). Returns
    /// what the event loop traced, or `None` if it did not finish in time.
    pub async fn close(mut self, wait: Duration) -> Option<Trace> {
        // An error means the event loop has already ended.
        let _ = self.client.unsubscribe(BARRIER).await;
        let trace = timeout(wait, &mut self.task).await.ok()?.ok();
        if trace.is_none() {
            tracing::warn!("an MQTT event-loop task failed");
        }
        trace
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the event loop: counts publications written and acknowledged and
/// connection errors, and reconnects after an error. Once the barrier is
/// written and, at QoS 1, everything written is acknowledged, it sends the
/// DISCONNECT and ends.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    qos: QoS,
    counters: Arc<Counters>,
    tracing_on: bool,
    connected: oneshot::Sender<Result<(), String>>,
) -> Trace {
    let mut connected = Some(connected);
    let mut trace = Trace::default();
    // Which publication each packet id stands for, while unacknowledged.
    let mut inflight = if tracing_on {
        vec![usize::MAX; usize::from(u16::MAX) + 1]
    } else {
        Vec::new()
    };
    let (mut sent, mut acked) = (0_u64, 0_u64);
    let (mut draining, mut disconnecting) = (false, false);
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                if tracing_on {
                    inflight[usize::from(pkid)] = trace.written_at.len();
                    trace
                        .written_at
                        .push(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
                    trace.acked.push(false);
                }
                sent += 1;
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                counters.acked.fetch_add(1, Ordering::Relaxed);
                if tracing_on {
                    let n = std::mem::replace(&mut inflight[usize::from(ack.pkid)], usize::MAX);
                    if let Some(flag) = trace.acked.get_mut(n) {
                        *flag = true;
                    }
                }
                acked += 1;
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Some(tx) = connected.take() {
                    let _ = tx.send(Ok(()));
                }
            }
            Ok(Event::Outgoing(Outgoing::Unsubscribe(_))) => draining = true,
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return trace,
            Ok(_) => {}
            Err(error) => {
                if disconnecting {
                    // The broker closed the connection after the DISCONNECT.
                    return trace;
                }
                if let Some(tx) = connected.take() {
                    let _ = tx.send(Err(format!("cannot connect: {error}")));
                    return trace;
                }
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "MQTT connection lost; reconnecting");
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        }
        if draining && !disconnecting && (qos == QoS::AtMostOnce || acked >= sent) {
            disconnecting = true;
            if client.try_disconnect().is_err() {
                return trace;
            }
        }
    }
}
