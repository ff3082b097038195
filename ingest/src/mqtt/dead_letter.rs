//! The dead-letter publisher: rejected messages and refused lines go to
//! `{dead_letter.prefix}…` on a connection of its own (client id
//! `{client_id}-dlq`, clean session).
//!
//! A connection of its own keeps the source free: the source waits on the
//! pipeline, the pipeline on this channel, and this task on nothing the
//! source holds. It never makes the pipeline wait either: records wait in a
//! bounded backlog while the connection is down (at start, during an
//! outage), and past it they are counted as `failed`.

use std::collections::VecDeque;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use super::client::{self, Client, ConnError, Connection, Event};
use super::options::{self, OptionsError, Role};
use crate::backoff::Backoff;
use crate::config::{DeadLetterConfig, MqttConfig};
use crate::message::DeadLetter;
use crate::metrics::Metrics;

/// How long publications still in flight may take once the input has closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Publishes dead letters; see the module documentation.
#[derive(Debug)]
pub struct DeadLetterPublisher {
    metrics: Metrics,
    link: Option<Link>,
}

#[derive(Debug)]
struct Link {
    client: Client,
    conn: Connection,
    broker: String,
    settings: Settings,
}

#[derive(Debug)]
struct Settings {
    prefix: String,
    qos: u8,
    backoff: Backoff,
    max_bytes: usize,
    /// Publications queued and not yet confirmed; bounded below the request channel.
    limit: usize,
}

impl DeadLetterPublisher {
    /// Builds the publisher; with `dead_letter.enabled` off it only counts
    /// what it is given as `dropped_disabled`.
    pub fn new(
        mqtt: &MqttConfig,
        password: Option<&str>,
        dead_letter: &DeadLetterConfig,
        metrics: Metrics,
    ) -> Result<Self, OptionsError> {
        let link = if dead_letter.enabled {
            let (client, conn) =
                client::new(options::build(mqtt, password, Role::DeadLetter)?, mqtt);
            Some(Link {
                client,
                conn,
                broker: format!("{}:{}", mqtt.host, mqtt.port),
                settings: Settings {
                    prefix: dead_letter.prefix.clone(),
                    qos: dead_letter.qos.min(1),
                    backoff: Backoff::new(mqtt.reconnect_min_ms, mqtt.reconnect_max_ms),
                    max_bytes: options::outgoing_limit(mqtt),
                    limit: options::request_capacity(mqtt) / 2,
                },
            })
        } else {
            None
        };
        Ok(Self { metrics, link })
    }

    /// Publishes what arrives on `rx` until every sender is dropped, waits
    /// (briefly) for the broker to confirm what is in flight, then
    /// disconnects.
    pub async fn run(self, mut rx: mpsc::Receiver<DeadLetter>) {
        let Some(link) = self.link else {
            let dropped = self.metrics.dead_letter("dropped_disabled");
            while let Some(d) = rx.recv().await {
                dropped.inc();
                tracing::debug!(topic = %d.topic(""), "dead-letter publishing is off (dead_letter.enabled); record dropped");
            }
            return;
        };
        let Link {
            client,
            conn,
            broker,
            settings,
        } = link;
        let mut task = Task {
            published: self.metrics.dead_letter("published"),
            failed: self.metrics.dead_letter("failed"),
            client,
            broker,
            settings,
            connected: false,
            attempt: 0,
            outstanding: 0,
            backlog: VecDeque::new(),
            warned: false,
        };
        let mut next = Box::pin(step(conn, None));
        loop {
            tokio::select! {
                (conn, result) = &mut next => {
                    let delay = task.on_poll(result);
                    next.set(step(conn, delay));
                }
                d = rx.recv() => match d {
                    Some(d) => task.enqueue(&d),
                    None => break,
                },
            }
            task.pump();
        }
        let drain = async {
            while !task.backlog.is_empty() || task.outstanding > 0 {
                let (conn, result) = (&mut next).await;
                let delay = task.on_poll(result);
                task.pump();
                next.set(step(conn, delay));
            }
            if task.connected && task.client.try_disconnect().is_ok() {
                loop {
                    let (mut conn, result) = (&mut next).await;
                    match result {
                        Ok(Event::DisconnectSent) => {
                            conn.close().await;
                            break;
                        }
                        Ok(_) => next.set(step(conn, None)),
                        Err(_) => break,
                    }
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            let lost = task.outstanding + task.backlog.len();
            task.failed.inc_by(lost as u64);
            tracing::warn!(lost, "dead letters not confirmed by the broker at shutdown");
        }
        tracing::debug!(broker = %task.broker, "dead-letter publisher stopped");
    }
}

type Polled = (Connection, Result<Event, ConnError>);

async fn step(mut conn: Connection, delay: Option<Duration>) -> Polled {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let result = conn.poll().await;
    (conn, result)
}

struct Task {
    published: Counter,
    failed: Counter,
    client: Client,
    broker: String,
    settings: Settings,
    connected: bool,
    attempt: u32,
    /// Queued publications not yet written (QoS 0) or acknowledged (QoS 1).
    outstanding: usize,
    /// Records waiting for the connection (at start, during an outage),
    /// at most `settings.limit`.
    backlog: VecDeque<(String, Vec<u8>)>,
    /// Whether dropping records for a full backlog was logged.
    warned: bool,
}

impl Task {
    /// Takes a record without waiting: into the backlog, or counted as
    /// failed when it cannot be published.
    fn enqueue(&mut self, d: &DeadLetter) {
        let topic = d.topic(&self.settings.prefix);
        let payload = d.to_json();
        if payload.len() + topic.len() + 16 > self.settings.max_bytes {
            self.failed.inc();
            tracing::warn!(%topic, bytes = payload.len(), "dead letter larger than the largest packet; dropped");
            return;
        }
        if self.backlog.len() >= self.settings.limit {
            self.failed.inc();
            if !self.warned {
                self.warned = true;
                tracing::warn!(broker = %self.broker, %topic, "dead letters pile up while the MQTT broker is unreachable; dropping them");
            }
            return;
        }
        self.backlog.push_back((topic, payload));
    }

    /// Queues backlog records on the connection while it has room.
    fn pump(&mut self) {
        while self.connected && self.outstanding < self.settings.limit {
            let Some((topic, payload)) = self.backlog.pop_front() else {
                break;
            };
            // `outstanding` stays below half the request channel, so it has room.
            if self
                .client
                .try_publish(topic, self.settings.qos, payload)
                .is_ok()
            {
                self.outstanding += 1;
            } else {
                self.failed.inc();
                tracing::warn!("MQTT request channel full; dead letter dropped");
                break;
            }
        }
    }

    fn on_poll(&mut self, result: Result<Event, ConnError>) -> Option<Duration> {
        match result {
            Ok(Event::Connected { .. }) => {
                tracing::debug!(broker = %self.broker, "dead-letter publisher connected");
                self.connected = true;
                self.attempt = 0;
                self.warned = false;
                None
            }
            Ok(Event::PublishAcked | Event::PublishSentQos0) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.published.inc();
                None
            }
            Ok(_) => None,
            Err(e) => {
                // A clean session: what was queued is gone with the connection.
                if self.outstanding > 0 {
                    self.failed.inc_by(self.outstanding as u64);
                    self.outstanding = 0;
                }
                self.attempt = self.attempt.saturating_add(1);
                if self.connected {
                    self.connected = false;
                    tracing::warn!(broker = %self.broker, cause = e.cause, error = %e.detail, "dead-letter publisher lost its connection; reconnecting");
                } else {
                    tracing::debug!(cause = e.cause, error = %e.detail, attempt = self.attempt, "dead-letter publisher cannot connect");
                }
                Some(self.settings.backoff.delay(self.attempt))
            }
        }
    }
}
