//! The MQTT source: one task owns the event loop and does nothing but poll
//! it, turn publications into [`Message`]s, hand them to the pipeline in
//! batches and acknowledge them.
//!
//! Flow control: publications are held until the pipeline channel takes
//! them, and acknowledged only then — or, with the write-ahead log, only
//! once the log reports them durable ([`Source::with_durable_acks`]) — so
//! with QoS 1 the broker's in-flight window bounds what the service holds
//! and the broker keeps the backlog.
//! The event loop keeps being polled while the channel is full (pings go
//! out) until `source_batch + inflight` messages are held; past that the
//! task waits on the channel alone.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::{self, AckId, Client, ConnError, Connection, Event};
use super::options::{self, OptionsError, Role};
use crate::backoff::Backoff;
use crate::config::{MqttConfig, Subscription};
use crate::health::Health;
use crate::message::{Message, MessageBatch};
use crate::metrics::Metrics;

/// How long a clean disconnect may take at shutdown.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The queue-depth stage whose input channel the source feeds.
pub const QUEUE_STAGE: &str = "processor";

/// The MQTT source, ready to run.
#[derive(Debug)]
pub struct Source {
    conn: Connection,
    state: State,
    tx: mpsc::Sender<MessageBatch>,
    durable: Option<mpsc::UnboundedReceiver<Acks>>,
}

/// An acknowledgement owed to the broker, tagged with the connection the
/// publication came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingAck {
    epoch: u64,
    id: AckId,
}

/// The acknowledgements owed for a batch of messages, in receive order.
/// Opaque outside the source: the write-ahead log hands them back once the
/// messages are durable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acks(Vec<PendingAck>);

impl Acks {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is owed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
struct State {
    client: Client,
    broker: String,
    subscriptions: Vec<Subscription>,
    backoff: Backoff,
    batch_size: usize,
    hold_limit: usize,
    metrics: Metrics,
    health: Health,
    /// Counts connection losses: acknowledgements of an earlier connection are never sent.
    epoch: u64,
    connected: bool,
    /// Failed attempts since the last successful connection.
    attempt: u32,
    need_subscribe: bool,
    /// Received, not yet handed to the pipeline.
    held: VecDeque<(Message, Option<PendingAck>)>,
    /// Acknowledgements due on the current connection that found the request channel full.
    unsent_acks: VecDeque<AckId>,
    /// Acknowledgements travel with the batch and come back once durable.
    deferred: bool,
}

impl Source {
    /// Builds the source from `mqtt` (with the password resolved by
    /// [`crate::config::Config::mqtt_password`]); `batch_size` is
    /// `pipeline.source_batch`. Nothing connects until [`Source::run`].
    pub fn new(
        mqtt: &MqttConfig,
        password: Option<&str>,
        batch_size: usize,
        tx: mpsc::Sender<MessageBatch>,
        metrics: Metrics,
        health: Health,
    ) -> Result<Self, OptionsError> {
        let (client, conn) = client::new(options::build(mqtt, password, Role::Source)?, mqtt);
        let batch_size = batch_size.max(1);
        Ok(Self {
            conn,
            tx,
            durable: None,
            state: State {
                client,
                broker: format!("{}:{}", mqtt.host, mqtt.port),
                subscriptions: mqtt.subscriptions.clone(),
                backoff: Backoff::new(mqtt.reconnect_min_ms, mqtt.reconnect_max_ms),
                batch_size,
                hold_limit: batch_size + usize::from(mqtt.inflight),
                metrics,
                health,
                epoch: 0,
                connected: false,
                attempt: 0,
                need_subscribe: false,
                held: VecDeque::new(),
                unsent_acks: VecDeque::new(),
                deferred: false,
            },
        })
    }

    /// Acknowledges a message only once the write-ahead log hands its
    /// [`Acks`] back on `durable` (they travel in [`MessageBatch::acks`]),
    /// rather than when the pipeline takes it.
    #[must_use]
    pub fn with_durable_acks(mut self, durable: mpsc::UnboundedReceiver<Acks>) -> Self {
        self.durable = Some(durable);
        self
    }

    /// Runs until `cancel` fires: then stops reading, hands over what it
    /// holds, drops the channel's sender (the next stage drains), sends the
    /// acknowledgements that become due meanwhile and disconnects cleanly.
    pub async fn run(self, cancel: CancellationToken) {
        let Source {
            conn,
            mut state,
            tx,
            mut durable,
        } = self;
        state.deferred = durable.is_some();
        let queue = state.metrics.queue(QUEUE_STAGE);
        let mut next = Box::pin(step(conn, None));
        loop {
            let n = state.held.len();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                permit = tx.reserve(), if n >= state.batch_size => match permit {
                    Ok(permit) => state.hand_over(permit),
                    Err(_) => break receiver_gone(),
                },
                Some(acks) = recv(&mut durable) => state.acknowledge(acks.0),
                (conn, result) = &mut next, if n < state.hold_limit => {
                    let delay = state.on_poll(result);
                    next.set(step(conn, delay));
                }
                // Nothing more is ready: flush the partial batch now.
                permit = tx.reserve(), if n > 0 && n < state.batch_size => match permit {
                    Ok(permit) => state.hand_over(permit),
                    Err(_) => break receiver_gone(),
                },
            }
            queue.set((tx.max_capacity() - tx.capacity()) as i64);
        }

        // Stop reading; hand over what is held, then let the next stage drain.
        while !state.held.is_empty() {
            let Ok(permit) = tx.reserve().await else {
                break;
            };
            state.hand_over(permit);
        }
        queue.set((tx.max_capacity() - tx.capacity()) as i64);
        drop(tx);
        // What the log makes durable now is acknowledged with the disconnect;
        // the rest the broker redelivers.
        if let Some(mut durable) = durable {
            let drained = tokio::time::timeout(DISCONNECT_TIMEOUT, async {
                while let Some(acks) = durable.recv().await {
                    state.acknowledge(acks.0);
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!("the write-ahead log did not finish in time; the broker redelivers what was not acknowledged");
            }
        }

        if state.connected {
            let done = tokio::time::timeout(DISCONNECT_TIMEOUT, state.disconnect(next)).await;
            if done.is_err() {
                tracing::warn!(broker = %state.broker, "the MQTT broker did not take the disconnect in time");
            }
        }
        state.metrics.mqtt_connected.set(0);
        state.health.set_broker(false, Some("shut down".to_owned()));
        tracing::info!(broker = %state.broker, "MQTT source stopped");
    }
}

type Polled = (Connection, Result<Event, ConnError>);

/// The next acknowledgements made durable; never ready without a log.
async fn recv(durable: &mut Option<mpsc::UnboundedReceiver<Acks>>) -> Option<Acks> {
    match durable {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The pipeline stopped first: what is held stays unacknowledged, and the
/// broker redelivers it.
fn receiver_gone() {
    tracing::error!("the pipeline stopped before the MQTT source; stopping the source");
}

/// Polls the event loop once, after an optional reconnection delay. The
/// future owns the event loop, so it lives across `select!` rounds and is
/// never cancelled mid-poll.
async fn step(mut conn: Connection, delay: Option<Duration>) -> Polled {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let result = conn.poll().await;
    (conn, result)
}

/// Moves the acknowledgements owed on connection `epoch` into `owed`;
/// returns how many belonged to an earlier connection (and were dropped).
fn owed_now(acks: Vec<PendingAck>, epoch: u64, owed: &mut VecDeque<AckId>) -> usize {
    let mut stale = 0;
    for ack in acks {
        if ack.epoch == epoch {
            owed.push_back(ack.id);
        } else {
            stale += 1;
        }
    }
    stale
}

fn now() -> schemas::Timestamp {
    let now = chrono::Utc::now();
    schemas::Timestamp::from_datetime(now)
        .unwrap_or_else(|| schemas::Timestamp::from_secs(now.timestamp()))
}

impl State {
    /// Acts on one poll of the event loop; returns the delay before the next
    /// poll when the connection failed.
    fn on_poll(&mut self, result: Result<Event, ConnError>) -> Option<Duration> {
        match result {
            Ok(event) => {
                self.on_event(event);
                self.send_acks();
                if self.need_subscribe {
                    self.subscribe();
                }
                None
            }
            Err(e) => Some(self.on_error(&e)),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Publish {
                topic,
                payload,
                ack,
            } => {
                self.metrics.messages_received.inc();
                let ack = ack.map(|id| PendingAck {
                    epoch: self.epoch,
                    id,
                });
                let message = Message {
                    topic,
                    payload,
                    received_at: now(),
                };
                self.held.push_back((message, ack));
            }
            Event::Connected { session_present } => {
                tracing::info!(
                    broker = %self.broker,
                    session_present,
                    failed_attempts = self.attempt,
                    "connected to the MQTT broker"
                );
                self.connected = true;
                self.attempt = 0;
                self.metrics.mqtt_connected.set(1);
                self.health.set_broker(true, None);
                // A session the broker kept still holds the subscriptions.
                self.need_subscribe = !session_present;
            }
            Event::Subscribed { refused } if refused > 0 => {
                let topics: Vec<&str> = self
                    .subscriptions
                    .iter()
                    .map(|s| s.topic.as_str())
                    .collect();
                tracing::warn!(
                    refused,
                    ?topics,
                    "the MQTT broker refused some subscriptions (see mqtt.subscriptions)"
                );
            }
            Event::Subscribed { .. } => {
                tracing::debug!(count = self.subscriptions.len(), "subscribed");
            }
            Event::PublishAcked | Event::PublishSentQos0 | Event::DisconnectSent | Event::Other => {
            }
        }
    }

    fn on_error(&mut self, e: &ConnError) -> Duration {
        // Acknowledgements of the lost connection must not reach the next one:
        // the broker redelivers those publications.
        self.epoch += 1;
        self.unsent_acks.clear();
        self.need_subscribe = false;
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.backoff.delay(self.attempt);
        let retry_ms = delay.as_millis() as u64;
        if self.connected {
            self.connected = false;
            self.metrics.disconnect(e.cause).inc();
            self.metrics.mqtt_connected.set(0);
            tracing::warn!(
                broker = %self.broker,
                cause = e.cause,
                error = %e.detail,
                attempt = self.attempt,
                retry_ms,
                "lost the connection to the MQTT broker; reconnecting"
            );
        } else if self.attempt == 1 {
            tracing::warn!(
                broker = %self.broker,
                cause = e.cause,
                error = %e.detail,
                attempt = self.attempt,
                retry_ms,
                "cannot connect to the MQTT broker; retrying"
            );
        } else {
            tracing::debug!(cause = e.cause, error = %e.detail, attempt = self.attempt, retry_ms, "MQTT reconnection failed");
        }
        self.health
            .set_broker(false, Some(format!("{}: {}", e.cause, e.detail)));
        delay
    }

    fn subscribe(&mut self) {
        if self.client.try_subscribe(&self.subscriptions).is_ok() {
            self.need_subscribe = false;
        } else {
            tracing::debug!("request channel full; subscribing after the next event");
        }
    }

    /// Moves up to one batch of held messages into the pipeline channel and
    /// acknowledges them, or sends their acknowledgements along to come
    /// back once durable.
    fn hand_over(&mut self, permit: mpsc::Permit<'_, MessageBatch>) {
        let n = self.held.len().min(self.batch_size);
        let mut messages = Vec::with_capacity(n);
        let mut acks = Vec::with_capacity(n);
        for (message, ack) in self.held.drain(..n) {
            messages.push(message);
            acks.extend(ack);
        }
        let mut batch = MessageBatch::new(messages);
        if self.deferred {
            batch.acks = Acks(acks);
            permit.send(batch);
        } else {
            permit.send(batch);
            self.acknowledge(acks);
        }
    }

    /// The one point where the broker is told that messages are the
    /// service's: once they are in the pipeline channel, or with the
    /// write-ahead log once they are durable in it. Acknowledgements owed
    /// to an earlier connection are dropped.
    fn acknowledge(&mut self, acks: Vec<PendingAck>) {
        let stale = owed_now(acks, self.epoch, &mut self.unsent_acks);
        if stale > 0 {
            tracing::debug!(
                stale,
                "not acknowledging publications of a lost connection; the broker redelivers them"
            );
        }
        self.send_acks();
    }

    /// Queues owed acknowledgements while the request channel has room; the
    /// rest wait for the next event.
    fn send_acks(&mut self) {
        while let Some(&id) = self.unsent_acks.front() {
            if self.client.try_ack(id).is_err() {
                break;
            }
            self.unsent_acks.pop_front();
        }
    }

    /// Sends the owed acknowledgements and a DISCONNECT, polling until the
    /// DISCONNECT is written or the connection ends. Publications arriving
    /// now are left unacknowledged: the broker redelivers them.
    async fn disconnect(&mut self, next: impl std::future::Future<Output = Polled>) {
        let mut queued = false;
        let mut queue = |state: &mut Self| {
            state.send_acks();
            if !queued && state.unsent_acks.is_empty() {
                queued = state.client.try_disconnect().is_ok();
            }
        };
        queue(self);
        let (mut conn, mut result) = next.await;
        loop {
            match result {
                Ok(Event::DisconnectSent) => {
                    conn.close().await;
                    tracing::debug!("disconnected from the MQTT broker");
                    return;
                }
                Err(e) => {
                    tracing::debug!(cause = e.cause, error = %e.detail, "connection ended during disconnect");
                    return;
                }
                Ok(_) => {}
            }
            queue(self);
            result = conn.poll().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_of_an_earlier_connection_are_dropped() {
        let ack = |epoch, pkid| PendingAck {
            epoch,
            id: AckId { qos: 1, pkid },
        };
        let mut owed = VecDeque::from([AckId { qos: 1, pkid: 9 }]);
        let stale = owed_now(
            vec![ack(3, 1), ack(4, 2), ack(3, 3), ack(4, 4)],
            4,
            &mut owed,
        );
        assert_eq!(stale, 2);
        let pkids: Vec<u16> = owed.iter().map(|a| a.pkid).collect();
        assert_eq!(pkids, [9, 2, 4]);
    }
}
