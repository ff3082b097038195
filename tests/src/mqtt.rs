//! An MQTT client for tests, independent of the service under test: publish a
//! list of messages and wait for every acknowledgement; subscribe and collect
//! what arrives.
//!
//! Plain TCP, MQTT 3.1.1. Each [`Subscriber`] has one task that owns its event
//! loop and does nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
pub use rumqttc::QoS;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, SubscribeReasonCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The bound on connecting, subscribing and a disconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The bound on publishing a batch and receiving all its acknowledgements.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest packet sent or received.
const MAX_PACKET: usize = 1 << 20;
/// The pause before the event loop tries to reconnect after an error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Whether the broker sent it as a retained message.
    pub retain: bool,
}

impl Message {
    /// The payload as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A client id no other client of this process uses.
pub fn unique_client_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn options(client_id: &str, host: &str, port: u16, clean_session: bool) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, host, port);
    options
        .set_clean_session(clean_session)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    options
}

/// Publishes `messages` (topic, payload) in order, not retained, with a fresh
/// clean session; returns once the broker acknowledged every one (QoS 1 and 2)
/// or once every one was written (QoS 0), and the client disconnected cleanly.
pub async fn publish_all<T, P>(
    host: &str,
    port: u16,
    qos: QoS,
    messages: impl IntoIterator<Item = (T, P)>,
) -> anyhow::Result<()>
where
    T: Into<String>,
    P: Into<Vec<u8>>,
{
    let messages: Vec<(String, Vec<u8>)> = messages
        .into_iter()
        .map(|(topic, payload)| (topic.into(), payload.into()))
        .collect();
    let count = messages.len();
    let client_id = unique_client_id("harness-pub");
    // Room for every publish and the disconnect, so nothing waits on the loop.
    let (client, mut eventloop) =
        AsyncClient::new(options(&client_id, host, port, true), count + 1);
    for (topic, payload) in messages {
        client
            .try_publish(topic.clone(), qos, false, payload)
            .with_context(|| format!("queueing a publish on {topic:?}"))?;
    }
    let expected_acks = if qos == QoS::AtMostOnce { 0 } else { count };
    let run = async {
        let (mut sent, mut acked) = (0, 0);
        while sent < count || acked < expected_acks {
            match eventloop.poll().await.context("MQTT connection")? {
                Event::Outgoing(Outgoing::Publish(_)) => sent += 1,
                Event::Incoming(Packet::PubAck(_)) if qos == QoS::AtLeastOnce => acked += 1,
                Event::Incoming(Packet::PubComp(_)) if qos == QoS::ExactlyOnce => acked += 1,
                _ => {}
            }
        }
        client.try_disconnect().context("queueing the disconnect")?;
        while !matches!(
            eventloop.poll().await.context("MQTT connection")?,
            Event::Outgoing(Outgoing::Disconnect)
        ) {}
        anyhow::Ok(())
    };
    timeout(PUBLISH_TIMEOUT, run)
        .await
        .with_context(|| {
            format!("publishing {count} messages to {host}:{port} took over {PUBLISH_TIMEOUT:?}")
        })?
        .with_context(|| format!("publishing {count} messages to {host}:{port} as {client_id}"))
}

/// What the event-loop task tells the subscriber.
#[derive(Debug)]
enum Status {
    Connected { session_present: bool },
    Subscribed(Result<(), String>),
    Failed(String),
}

/// A subscription whose messages are collected in the background.
#[derive(Debug)]
pub struct Subscriber {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Message>,
    task: JoinHandle<()>,
    session_present: bool,
}

impl Subscriber {
    /// Connects with a clean session, subscribes to `filter` and waits for the
    /// subscription to be acknowledged.
    pub async fn connect(host: &str, port: u16, filter: &str, qos: QoS) -> anyhow::Result<Self> {
        Self::connect_as(
            host,
            port,
            &unique_client_id("harness-sub"),
            true,
            filter,
            qos,
        )
        .await
    }

    /// Connects with a persistent session (`clean_session = false`) under
    /// `client_id`, subscribes to `filter` and waits for the acknowledgement.
    /// Reconnecting with the same id receives what was queued meanwhile.
    pub async fn connect_persistent(
        host: &str,
        port: u16,
        client_id: &str,
        filter: &str,
        qos: QoS,
    ) -> anyhow::Result<Self> {
        Self::connect_as(host, port, client_id, false, filter, qos).await
    }

    /// Connects under `client_id`, subscribes to `filter` and waits for the
    /// subscription to be acknowledged.
    pub async fn connect_as(
        host: &str,
        port: u16,
        client_id: &str,
        clean_session: bool,
        filter: &str,
        qos: QoS,
    ) -> anyhow::Result<Self> {
        let (client, eventloop) =
            AsyncClient::new(options(client_id, host, port, clean_session), 16);
        let (status_tx, mut status_rx) = mpsc::unbounded_channel();
        let (message_tx, messages) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(eventloop, status_tx, message_tx));
        let mut subscriber = Self {
            client,
            messages,
            task,
            session_present: false,
        };
        subscriber
            .client
            .subscribe(filter, qos)
            .await
            .context("queueing the subscription")?;
        let handshake = async {
            loop {
                match status_rx.recv().await {
                    Some(Status::Connected { session_present }) => {
                        subscriber.session_present = session_present;
                    }
                    Some(Status::Subscribed(Ok(()))) => return Ok(()),
                    Some(Status::Subscribed(Err(reason))) => {
                        anyhow::bail!("subscription refused: {reason}")
                    }
                    Some(Status::Failed(error)) => anyhow::bail!("{error}"),
                    None => anyhow::bail!("the MQTT event loop ended"),
                }
            }
        };
        timeout(CONNECT_TIMEOUT, handshake)
            .await
            .with_context(|| format!("no subscription acknowledgement within {CONNECT_TIMEOUT:?}"))?
            .with_context(|| format!("subscribing {client_id} to {filter:?} on {host}:{port}"))?;
        Ok(subscriber)
    }

    /// Whether the broker resumed a stored session on connection.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The next message, or `None` if none arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Message> {
        timeout(wait, self.messages.recv()).await.ok().flatten()
    }

    /// Messages until `count` arrived or `wait` passed, whichever is first.
    pub async fn collect(&mut self, count: usize, wait: Duration) -> Vec<Message> {
        let mut received = Vec::with_capacity(count);
        let deadline = tokio::time::Instant::now() + wait;
        while received.len() < count {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(message)) => received.push(message),
                Ok(None) | Err(_) => break,
            }
        }
        received
    }

    /// Exactly `count` messages within `wait`, or an error that lists what came.
    pub async fn expect(&mut self, count: usize, wait: Duration) -> anyhow::Result<Vec<Message>> {
        let received = self.collect(count, wait).await;
        anyhow::ensure!(
            received.len() == count,
            "expected {count} messages within {wait:?}, received {}: {received:?}",
            received.len()
        );
        Ok(received)
    }

    /// The messages that have arrived and not been taken yet.
    pub fn drain(&mut self) -> Vec<Message> {
        let mut received = Vec::new();
        while let Ok(message) = self.messages.try_recv() {
            received.push(message);
        }
        received
    }

    /// Sends DISCONNECT (so a persistent session is kept as it is) and ends the
    /// event loop.
    pub async fn disconnect(mut self) -> anyhow::Result<()> {
        self.client
            .disconnect()
            .await
            .context("queueing the disconnect")?;
        // Dropping `self` afterwards aborts the task, which has ended or hangs.
        if timeout(CONNECT_TIMEOUT, &mut self.task).await.is_err() {
            anyhow::bail!("the disconnect was not sent within {CONNECT_TIMEOUT:?}");
        }
        Ok(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Owns the event loop: forwards messages and status, reconnects after an
/// error once connected, and ends after sending DISCONNECT.
async fn drive(
    mut eventloop: EventLoop,
    status: mpsc::UnboundedSender<Status>,
    messages: mpsc::UnboundedSender<Message>,
) {
    let mut connected = false;
    loop {
        // A send fails only when the subscriber is gone, and then nobody cares.
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connected = true;
                let _ = status.send(Status::Connected {
                    session_present: ack.session_present,
                });
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .any(|code| matches!(code, SubscribeReasonCode::Failure));
                let _ = status.send(Status::Subscribed(if refused {
                    Err(format!("{:?}", ack.return_codes))
                } else {
                    Ok(())
                }));
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let _ = messages.send(Message {
                    topic: publish.topic,
                    payload: publish.payload,
                    qos: publish.qos,
                    retain: publish.retain,
                });
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(error) => {
                if !connected {
                    let _ = status.send(Status::Failed(format!("cannot connect: {error}")));
                    return;
                }
                // The next poll reconnects.
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}
