//! One face over the MQTT 3.1.1 and MQTT 5 clients of rumqttc: the rest of
//! the crate sees a [`Client`] (requests), a [`Connection`] (the event loop)
//! and the few [`Event`]s it acts on.

use bytes::Bytes;
use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as p5;

use super::options::{request_capacity, Options};
use crate::config::{MqttConfig, Subscription};

/// The request side of a connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Client {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

/// The event loop of a connection; only its owner polls it.
pub(crate) enum Connection {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::V4(_) => "Connection::V4",
            Connection::V5(_) => "Connection::V5",
        })
    }
}

/// Creates a client and its event loop. Nothing connects until the event
/// loop is polled.
pub(crate) fn new(options: Options, mqtt: &MqttConfig) -> (Client, Connection) {
    let cap = request_capacity(mqtt);
    match options {
        Options::V4(o) => {
            let (c, e) = rumqttc::AsyncClient::new(*o, cap);
            (Client::V4(c), Connection::V4(Box::new(e)))
        }
        Options::V5(o) => {
            let (c, e) = v5::AsyncClient::new(*o, cap);
            (Client::V5(c), Connection::V5(Box::new(e)))
        }
    }
}

/// What acknowledging an incoming publication takes: its QoS and packet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckId {
    pub qos: u8,
    pub pkid: u16,
}

/// What the owner of a connection acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The broker accepted the connection.
    Connected { session_present: bool },
    /// A publication arrived; `ack` is `None` for QoS 0.
    Publish {
        topic: String,
        payload: Bytes,
        ack: Option<AckId>,
    },
    /// The broker answered a subscription; `refused` filters were not granted.
    Subscribed { refused: usize },
    /// The broker confirmed one of our QoS 1 publications.
    PublishAcked,
    /// One of our QoS 0 publications was written.
    PublishSentQos0,
    /// Our disconnect request was written.
    DisconnectSent,
    /// Anything else (pings, acknowledgements written, ...).
    Other,
}

/// A lost or failed connection, with a bounded cause for metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnError {
    /// `refused`, `io`, `tls`, `protocol`, `timeout` or `closed`.
    pub cause: &'static str,
    /// The client's own words.
    pub detail: String,
}

/// The request could not be queued: the request channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

fn qos4(qos: u8) -> rumqttc::QoS {
    match qos {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(qos: u8) -> v5::mqttbytes::QoS {
    match qos {
        0 => v5::mqttbytes::QoS::AtMostOnce,
        1 => v5::mqttbytes::QoS::AtLeastOnce,
        _ => v5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// Subscriptions ask for QoS 1 at most: QoS 2 is treated as 1.
fn sub_qos(s: &Subscription) -> u8 {
    s.qos.min(1)
}

impl Client {
    /// Queues the acknowledgement of an incoming publication.
    pub(crate) fn try_ack(&self, ack: AckId) -> Result<(), Full> {
        let r = match self {
            Client::V4(c) => {
                let mut p = rumqttc::Publish::new("", qos4(ack.qos), Vec::new());
                p.pkid = ack.pkid;
                c.try_ack(&p).map_err(drop)
            }
            Client::V5(c) => {
                let mut p = p5::Publish::new("", qos5(ack.qos), Bytes::new(), None);
                p.pkid = ack.pkid;
                c.try_ack(&p).map_err(drop)
            }
        };
        r.map_err(|()| Full)
    }

    /// Queues one SUBSCRIBE holding every filter.
    pub(crate) fn try_subscribe(&self, subs: &[Subscription]) -> Result<(), Full> {
        let r = match self {
            Client::V4(c) => c
                .try_subscribe_many(
                    subs.iter()
                        .map(|s| rumqttc::SubscribeFilter::new(s.topic.clone(), qos4(sub_qos(s)))),
                )
                .map_err(drop),
            Client::V5(c) => c
                .try_subscribe_many(
                    subs.iter()
                        .map(|s| p5::Filter::new(s.topic.clone(), qos5(sub_qos(s)))),
                )
                .map_err(drop),
        };
        r.map_err(|()| Full)
    }

    /// Queues a publication.
    pub(crate) fn try_publish(&self, topic: String, qos: u8, payload: Vec<u8>) -> Result<(), Full> {
        let r = match self {
            Client::V4(c) => c
                .try_publish(topic, qos4(qos), false, payload)
                .map_err(drop),
            Client::V5(c) => c
                .try_publish(topic, qos5(qos), false, payload)
                .map_err(drop),
        };
        r.map_err(|()| Full)
    }

    /// Queues a clean disconnect.
    pub(crate) fn try_disconnect(&self) -> Result<(), Full> {
        let r = match self {
            Client::V4(c) => c.try_disconnect().map_err(drop),
            Client::V5(c) => c.try_disconnect().map_err(drop),
        };
        r.map_err(|()| Full)
    }
}

impl Connection {
    /// Polls the event loop once: connects when not connected, else reads,
    /// writes queued requests and pings. After an error the next call
    /// reconnects.
    pub(crate) async fn poll(&mut self) -> Result<Event, ConnError> {
        match self {
            Connection::V4(e) => e.poll().await.map(event4).map_err(|e| ConnError {
                cause: cause4(&e),
                detail: e.to_string(),
            }),
            Connection::V5(e) => e.poll().await.map(event5).map_err(|e| ConnError {
                cause: cause5(&e),
                detail: e.to_string(),
            }),
        }
    }
}

impl Connection {
    /// Once our DISCONNECT is written, waits for the broker to close the
    /// connection. A broker that sees the client close first may take the
    /// close for a second disconnect: the embedded broker then drops a newer
    /// client that was given the same connection slot. Callers bound the wait.
    pub(crate) async fn close(&mut self) {
        while self.poll().await.is_ok() {}
    }
}

fn event4(e: rumqttc::Event) -> Event {
    use rumqttc::{Event as E, Outgoing, Packet};
    match e {
        E::Incoming(Packet::ConnAck(c)) => Event::Connected {
            session_present: c.session_present,
        },
        E::Incoming(Packet::Publish(p)) => Event::Publish {
            ack: (p.qos != rumqttc::QoS::AtMostOnce).then_some(AckId {
                qos: p.qos as u8,
                pkid: p.pkid,
            }),
            topic: p.topic,
            payload: p.payload,
        },
        E::Incoming(Packet::SubAck(s)) => Event::Subscribed {
            refused: s
                .return_codes
                .iter()
                .filter(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                .count(),
        },
        E::Incoming(Packet::PubAck(_)) => Event::PublishAcked,
        E::Outgoing(Outgoing::Publish(0)) => Event::PublishSentQos0,
        E::Outgoing(Outgoing::Disconnect) => Event::DisconnectSent,
        _ => Event::Other,
    }
}

fn event5(e: v5::Event) -> Event {
    use p5::Packet;
    use rumqttc::Outgoing;
    match e {
        v5::Event::Incoming(Packet::ConnAck(c)) => Event::Connected {
            session_present: c.session_present,
        },
        v5::Event::Incoming(Packet::Publish(p)) => Event::Publish {
            ack: (p.qos != v5::mqttbytes::QoS::AtMostOnce).then_some(AckId {
                qos: p.qos as u8,
                pkid: p.pkid,
            }),
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            payload: p.payload,
        },
        v5::Event::Incoming(Packet::SubAck(s)) => Event::Subscribed {
            refused: s
                .return_codes
                .iter()
                .filter(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                .count(),
        },
        v5::Event::Incoming(Packet::PubAck(_)) => Event::PublishAcked,
        v5::Event::Outgoing(Outgoing::Publish(0)) => Event::PublishSentQos0,
        v5::Event::Outgoing(Outgoing::Disconnect) => Event::DisconnectSent,
        _ => Event::Other,
    }
}

fn cause4(e: &rumqttc::ConnectionError) -> &'static str {
    use rumqttc::{ConnectionError as C, StateError as S};
    match e {
        C::ConnectionRefused(_) => "refused",
        C::Tls(_) => "tls",
        C::NetworkTimeout
        | C::FlushTimeout
        | C::MqttState(S::AwaitPingResp | S::CollisionTimeout) => "timeout",
        C::Io(_) | C::MqttState(S::Io(_)) => "io",
        C::MqttState(S::ConnectionAborted) | C::RequestsDone => "closed",
        C::MqttState(_) | C::NotConnAck(_) => "protocol",
    }
}

fn cause5(e: &v5::ConnectionError) -> &'static str {
    use v5::{ConnectionError as C, StateError as S};
    match e {
        C::ConnectionRefused(_) | C::MqttState(S::ConnFail { .. }) => "refused",
        C::Tls(_) => "tls",
        C::Timeout(_) | C::MqttState(S::AwaitPingResp | S::CollisionTimeout) => "timeout",
        C::Io(_) | C::MqttState(S::Io(_)) => "io",
        C::MqttState(S::ConnectionAborted | S::ServerDisconnect { .. }) | C::RequestsDone => {
            "closed"
        }
        C::MqttState(_) | C::NotConnAck(_) => "protocol",
    }
}
