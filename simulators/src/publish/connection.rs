//! MQTT connections to publish over: each has its own client id and one task
//! that owns its event loop and only records what happens there.
//!
//! A publisher queues messages on a connection's client, then
//! [`Connection::close`] queues a barrier behind them: an UNSUBSCRIBE from
//! a topic nobody uses. The event loop takes requests in order, so once the
//! barrier is written every message queued before it is written too; once
//! they are all acknowledged as well (QoS 1), the event loop sends a
//! DISCONNECT and ends. (A DISCONNECT sent earlier would make the broker
//! close the connection before its last acknowledgements go out.)
//!
//! # Connection losses
//!
//! On a connection error, rumqttc 0.25 (`EventLoop::clean`) moves the
//! publications written and not acknowledged, with their packet ids, and
//! every request still in the client's channel to `EventLoop::pending`; on
//! reconnecting it clears that list unless the broker resumed the session,
//! which with a clean session it never does. Those messages would be lost
//! without a trace, and with them the count of what is unacknowledged. So
//! the task takes the list as soon as the error is reported and, after the
//! next CONNACK, sends it again itself:
//!
//! - the publications that have a packet id first, under the same ids (the
//!   session's state is empty after the error: they cannot collide). Their
//!   `Outgoing::Publish(pkid)` finds the id still standing for an
//!   unacknowledged publication: a retransmission, not a new message;
//! - then the other requests (publications taken from the channel, the
//!   barrier), in their order and before anything still in the channel: one
//!   at a time through `pending`, which the event loop serves before the
//!   channel, and only while its flow control would let a request of the
//!   channel through. (It serves `pending` without flow control, and a new
//!   packet id colliding with an unacknowledged one while an earlier
//!   collision waits overwrites that one: a message lost.)
//!
//! So publications are first written in the order they were queued — the
//! n-th first write is the n-th message queued — and a packet id stands for
//! one publication from its first write to its PUBACK.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use chrono::Utc;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS, Request};
use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{timeout, timeout_at, Instant};

/// The bound on connecting to the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the event loop reconnects after an error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(200);
/// The largest packet sent.
const MAX_PACKET: usize = 1 << 20;
/// Publications a connection may have unacknowledged at QoS 1; rumqttc's
/// packet ids go from 1 to this.
const INFLIGHT: u16 = 1000;
/// The topic of the barrier that closes a connection; nobody subscribes to it.
const BARRIER: &str = "simulate/none";
/// How long the event-loop task may take to hand over its trace once told
/// to give up.
const GIVE_UP_WAIT: Duration = Duration::from_secs(5);
/// A packet id that stands for no publication.
const FREE: usize = usize::MAX;

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
    /// Publications written to the socket, each counted once.
    pub sent: AtomicU64,
    /// PUBACKs received (QoS 1): one per publication acknowledged.
    pub acked: AtomicU64,
    /// Publications written again after a connection loss.
    pub resent: AtomicU64,
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
/// (Unix nanoseconds) at which each publication was first written, in the
/// order they were queued, and whether the broker acknowledged it.
#[derive(Debug, Default)]
pub struct Trace {
    /// Unix nanoseconds at which the n-th publication was first written.
    pub written_at: Vec<i64>,
    /// Whether the n-th publication was acknowledged (QoS 1).
    pub acked: Vec<bool>,
}

/// How a connection ended.
#[derive(Debug, Default)]
pub struct Closed {
    /// What its event loop traced (empty unless asked for), up to the end:
    /// publications never acknowledged are in it, as such.
    pub trace: Trace,
    /// Whether it finished: every publication written and, at QoS 1,
    /// acknowledged, within the time allowed.
    pub finished: bool,
}

/// One MQTT connection and the task that drives it.
#[derive(Debug)]
pub struct Connection {
    client: AsyncClient,
    task: JoinHandle<Trace>,
    /// Tells the task to stop and hand over its trace.
    give_up: Option<oneshot::Sender<()>>,
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
        let (give_up, given_up) = oneshot::channel();
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            Driver::new(qos, counters, trace),
            connected_tx,
            given_up,
        ));
        timeout(CONNECT_TIMEOUT, connected)
            .await
            .with_context(|| format!("no CONNACK within {CONNECT_TIMEOUT:?}"))?
            .context("the MQTT event loop ended")?
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("connecting {client_id} to {broker}"))?;
        Ok(Self {
            client,
            task,
            give_up: Some(give_up),
        })
    }

    /// Queues a publication; waits while the request queue is full.
    pub async fn publish(&self, topic: &str, qos: QoS, payload: Bytes) -> anyhow::Result<()> {
        self.client
            .publish_bytes(topic, qos, false, payload)
            .await
            .context("the MQTT event loop ended")
    }

    /// Queues the barrier behind every publication and waits, at most
    /// `wait`, for the connection to finish (see the module's doc). If it
    /// does not, the event loop is stopped where it is; either way what it
    /// traced is returned.
    pub async fn close(mut self, wait: Duration) -> Closed {
        let deadline = Instant::now() + wait;
        // An error means the event loop has already ended.
        let _ = timeout_at(deadline, self.client.unsubscribe(BARRIER)).await;
        if let Ok(joined) = timeout_at(deadline, &mut self.task).await {
            return closed(joined, true);
        }
        if let Some(give_up) = self.give_up.take() {
            let _ = give_up.send(());
        }
        if let Ok(joined) = timeout(GIVE_UP_WAIT, &mut self.task).await {
            closed(joined, false)
        } else {
            tracing::warn!("an MQTT event-loop task did not stop");
            Closed::default()
        }
    }
}

fn closed(joined: Result<Trace, JoinError>, finished: bool) -> Closed {
    match joined {
        Ok(trace) => Closed { trace, finished },
        Err(error) => {
            tracing::warn!(%error, "an MQTT event-loop task failed");
            Closed::default()
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the event loop until it ends or is told to give up, and returns
/// what it traced.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    mut driver: Driver,
    connected: oneshot::Sender<Result<(), String>>,
    give_up: oneshot::Receiver<()>,
) -> Trace {
    tokio::select! {
        biased;
        () = driver.run(&mut eventloop, &client, connected) => {}
        // Told to, or the connection is gone.
        _ = give_up => {}
    }
    driver.trace
}

/// The state of one event loop: counts and traces publications written and
/// acknowledged, tells retransmissions apart, and sends again what a
/// connection loss left behind (see the module's doc).
#[derive(Debug)]
struct Driver {
    qos: QoS,
    counters: Arc<Counters>,
    tracing: bool,
    trace: Trace,
    /// Publications first written so far.
    written: usize,
    /// For each packet id, the publication (its rank among first writes)
    /// it stands for until acknowledged, or [`FREE`].
    ids: Vec<usize>,
    /// Publications written and not acknowledged yet (QoS 1).
    unacked: usize,
    /// Whether the barrier is written.
    draining: bool,
    /// Whether the DISCONNECT is queued.
    disconnecting: bool,
    recovery: Recovery,
}

impl Driver {
    fn new(qos: QoS, counters: Arc<Counters>, tracing: bool) -> Self {
        Self {
            qos,
            counters,
            tracing,
            trace: Trace::default(),
            written: 0,
            ids: vec![FREE; usize::from(INFLIGHT) + 1],
            unacked: 0,
            draining: false,
            disconnecting: false,
            recovery: Recovery::default(),
        }
    }

    /// Polls the event loop and reconnects after errors. Ends once the
    /// barrier is written and, at QoS 1, everything written is
    /// acknowledged: after the DISCONNECT.
    async fn run(
        &mut self,
        eventloop: &mut EventLoop,
        client: &AsyncClient,
        connected: oneshot::Sender<Result<(), String>>,
    ) {
        let mut connected = Some(connected);
        let mut online = false;
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => self.written(pkid),
                Ok(Event::Incoming(Packet::PubAck(ack))) => self.acked(ack.pkid),
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    online = true;
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Ok(()));
                    }
                    self.recovery.resume(eventloop);
                }
                Ok(Event::Outgoing(Outgoing::Unsubscribe(_))) => self.draining = true,
                Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(error) => {
                    if self.disconnecting {
                        // The broker closed the connection after the DISCONNECT.
                        return;
                    }
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(Err(format!("cannot connect: {error}")));
                        return;
                    }
                    online = false;
                    self.recovery.take(eventloop);
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "MQTT connection lost; reconnecting");
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
            if online && self.recovery.feeding() {
                self.recovery.feed(eventloop);
            }
            if self.draining
                && !self.disconnecting
                && (self.qos == QoS::AtMostOnce || self.unacked == 0)
            {
                self.disconnecting = true;
                if client.try_disconnect().is_err() {
                    return;
                }
            }
        }
    }

    /// A publication written: the next one queued, or a retransmission if
    /// its packet id still stands for an unacknowledged one.
    fn written(&mut self, pkid: u16) {
        // QoS 0 publications have no packet id (0), and are never resent.
        let id = if pkid == 0 {
            None
        } else {
            self.ids.get_mut(usize::from(pkid))
        };
        if let Some(id) = id {
            if *id != FREE {
                self.counters.resent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *id = self.written;
            self.unacked += 1;
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        if self.tracing {
            self.trace
                .written_at
                .push(Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX));
            self.trace.acked.push(false);
        }
        self.written += 1;
    }

    /// A PUBACK: the publication its packet id stands for is acknowledged.
    fn acked(&mut self, pkid: u16) {
        self.counters.acked.fetch_add(1, Ordering::Relaxed);
        let Some(id) = self.ids.get_mut(usize::from(pkid)) else {
            return;
        };
        let n = std::mem::replace(id, FREE);
        if n == FREE {
            tracing::warn!(pkid, "a PUBACK for no publication");
            return;
        }
        self.unacked -= 1;
        if let Some(flag) = self.trace.acked.get_mut(n) {
            *flag = true;
        }
    }
}

/// What a connection loss left to send again.
#[derive(Debug, Default)]
struct Recovery {
    /// Publications written and not acknowledged, to retransmit under their
    /// packet ids after the next CONNACK.
    retransmit: Vec<Request>,
    /// Requests never written, to write in order before the channel's.
    deferred: VecDeque<Request>,
    /// The request of `deferred` put in the event loop's `pending`, while
    /// it may still be there.
    fed: Option<Request>,
}

impl Recovery {
    /// Whether requests of `deferred` wait or one of them was just fed.
    fn feeding(&self) -> bool {
        self.fed.is_some() || !self.deferred.is_empty()
    }

    /// Right after a connection error: takes what the event loop would
    /// drop on reconnecting (see the module's doc). Its `pending` is then,
    /// in order: what was left of it (retransmissions, or the request fed),
    /// the publications it had written and not seen acknowledged, and the
    /// requests drained from the channel.
    fn take(&mut self, eventloop: &mut EventLoop) {
        // Whether the request fed is still in `pending`. Had the failed
        // poll taken it, the event of its handling would be buffered: only
        // that request makes these events while it waits, and the event
        // loop returns buffered events before it polls anything.
        let fed = self.fed.take().filter(|_| {
            !eventloop.state.events.iter().any(|e| {
                matches!(
                    e,
                    Event::Outgoing(
                        Outgoing::Publish(_)
                            | Outgoing::AwaitAck(_)
                            | Outgoing::Unsubscribe(_)
                            | Outgoing::Disconnect
                    )
                )
            })
        });
        let mut pending = std::mem::take(&mut eventloop.pending)
            .into_iter()
            .peekable();
        let mut deferred = VecDeque::new();
        if fed.is_some() && pending.peek() == fed.as_ref() {
            deferred.extend(pending.next());
        }
        deferred.append(&mut self.deferred);
        for request in pending {
            match request {
                Request::Publish(ref p) if p.pkid != 0 => self.retransmit.push(request),
                Request::PubRel(_) => self.retransmit.push(request),
                // Acknowledgements of incoming publications (there are none).
                Request::PubAck(_) | Request::PubRec(_) | Request::PubComp(_) => {}
                _ => deferred.push_back(request),
            }
        }
        self.deferred = deferred;
    }

    /// After a CONNACK: queues the retransmissions first.
    fn resume(&mut self, eventloop: &mut EventLoop) {
        eventloop.pending.extend(self.retransmit.drain(..));
    }

    /// Hands the next deferred request to the event loop once `pending` is
    /// empty, if its flow control would let a request of the channel
    /// through: otherwise the channel stays closed, and the order kept.
    fn feed(&mut self, eventloop: &mut EventLoop) {
        if !eventloop.pending.is_empty() {
            return;
        }
        self.fed = None;
        if eventloop.state.collision.is_some() || eventloop.state.inflight() >= INFLIGHT {
            return;
        }
        if let Some(request) = self.deferred.pop_front() {
            self.fed = Some(request.clone());
            eventloop.pending.push_back(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::Publish;

    fn driver() -> Driver {
        Driver::new(QoS::AtLeastOnce, Arc::new(Counters::default()), true)
    }

    fn publish(topic: &str, pkid: u16) -> Request {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, Vec::new());
        p.pkid = pkid;
        Request::Publish(p)
    }

    fn eventloop() -> EventLoop {
        EventLoop::new(MqttOptions::new("test", "localhost", 1883), 10)
    }

    #[test]
    fn a_retransmission_keeps_the_record_of_the_first_write() {
        let mut d = driver();
        d.written(1);
        d.written(2);
        d.acked(1);
        // After a connection loss: 2 again, then a new publication on 1.
        d.written(2);
        d.written(1);
        d.acked(2);
        assert_eq!(d.trace.written_at.len(), 3);
        assert_eq!(d.trace.acked, [true, true, false]);
        assert_eq!(d.unacked, 1);
        let c = &d.counters;
        assert_eq!(c.snapshot(), (3, 2, 0));
        assert_eq!(c.resent.load(Ordering::Relaxed), 1);
        // A PUBACK for nothing written changes no record.
        d.acked(9);
        assert_eq!(d.trace.acked, [true, true, false]);
        assert_eq!(d.unacked, 1);
    }

    #[test]
    fn qos_0_publications_are_never_retransmissions() {
        let mut d = Driver::new(QoS::AtMostOnce, Arc::new(Counters::default()), true);
        for _ in 0..3 {
            d.written(0);
        }
        assert_eq!(d.trace.written_at.len(), 3);
        assert_eq!(d.unacked, 0);
    }

    #[test]
    fn a_loss_keeps_retransmissions_apart_and_the_rest_in_order() {
        let mut r = Recovery::default();
        let mut e = eventloop();
        // What the event loop left: what was fed and still waits, the
        // publications written, the requests drained from the channel.
        let fed = publish("fed", 0);
        r.fed = Some(fed.clone());
        r.deferred.push_back(publish("older", 0));
        e.pending.extend([
            fed.clone(),
            publish("written", 7),
            publish("queued", 0),
            Request::Unsubscribe(rumqttc::Unsubscribe::new(BARRIER)),
        ]);
        r.take(&mut e);
        assert!(e.pending.is_empty() && r.fed.is_none());
        assert_eq!(r.retransmit, [publish("written", 7)]);
        let topics: Vec<_> = r
            .deferred
            .iter()
            .map(|q| match q {
                Request::Publish(p) => p.topic.as_str(),
                _ => "barrier",
            })
            .collect();
        assert_eq!(topics, ["fed", "older", "queued", "barrier"]);

        // After the CONNACK: retransmissions first, then one request at a
        // time once `pending` is empty.
        r.resume(&mut e);
        assert_eq!(e.pending, [publish("written", 7)]);
        r.feed(&mut e);
        assert_eq!(e.pending.len(), 1);
        e.pending.clear();
        r.feed(&mut e);
        assert_eq!(e.pending, [publish("fed", 0)]);
        assert_eq!(r.fed, Some(publish("fed", 0)));
        // Not while a collision waits.
        e.pending.clear();
        e.state.collision = Some(Publish::new("c", QoS::AtLeastOnce, Vec::new()));
        r.feed(&mut e);
        assert!(e.pending.is_empty() && r.fed.is_none());
        assert_eq!(r.deferred.len(), 3);
    }

    #[test]
    fn a_request_fed_and_taken_before_the_loss_is_not_sent_twice() {
        let mut r = Recovery::default();
        let mut e = eventloop();
        // The failed poll took the request fed: its event is buffered and
        // it is among the publications written, with a packet id.
        r.fed = Some(publish("fed", 0));
        r.deferred.push_back(publish("older", 0));
        e.state
            .events
            .push_back(Event::Outgoing(Outgoing::Publish(3)));
        e.pending.extend([publish("fed", 3), publish("queued", 0)]);
        r.take(&mut e);
        assert_eq!(r.retransmit, [publish("fed", 3)]);
        assert_eq!(r.deferred, [publish("older", 0), publish("queued", 0)]);
    }
}
