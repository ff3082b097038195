//! What the MQTT tests share: free ports, configurations, a running
//! source, an independent publisher and a mosquitto child process.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prometheus_client::registry::Registry;
use rumqttc::{AsyncClient, Event as RawEvent, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::Source;
use crate::config::{BrokerConfig, MqttConfig, Protocol, Subscription};
use crate::health::Health;
use crate::message::{Message, MessageBatch};
use crate::metrics::{render, Metrics};

/// Every wait of these tests ends within this.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);
pub(crate) const TOPIC: &str = "city/rabat/lighting/lamp-1/telemetry";

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

pub(crate) fn mqtt(port: u16, client_id: &str, protocol: Protocol) -> MqttConfig {
    MqttConfig {
        port,
        client_id: client_id.to_owned(),
        protocol,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
        subscriptions: vec![Subscription {
            topic: "city/+/+/+/telemetry".to_owned(),
            qos: 1,
        }],
        ..MqttConfig::default()
    }
}

pub(crate) async fn embedded(protocol: Protocol) -> u16 {
    let port = free_port();
    let broker = BrokerConfig {
        enabled: true,
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    timeout(
        LIMIT,
        crate::broker::start(&broker, &mqtt(port, "unused", protocol)),
    )
    .await
    .expect("broker starts in time")
    .expect("broker starts");
    port
}

pub(crate) struct Running {
    pub(crate) rx: mpsc::Receiver<MessageBatch>,
    /// Received, not yet looked at.
    pub(crate) seen: VecDeque<Message>,
    /// Passed over while waiting for another.
    pub(crate) passed: Vec<Message>,
    pub(crate) cancel: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<()>,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) health: Health,
}

pub(crate) fn start_source(cfg: &MqttConfig) -> Running {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let health = Health::default();
    let (tx, rx) = mpsc::channel(4);
    let source = Source::new(cfg, None, 16, tx, metrics.clone(), health.clone()).expect("options");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(source.run(cancel.clone()));
    Running {
        rx,
        seen: VecDeque::new(),
        passed: Vec::new(),
        cancel,
        task,
        registry,
        metrics,
        health,
    }
}

impl Running {
    /// Waits for the message with this payload, passing over others.
    pub(crate) async fn expect(&mut self, payload: &[u8]) -> Message {
        let wait = async {
            loop {
                while let Some(m) = self.seen.pop_front() {
                    if m.payload == payload {
                        return m;
                    }
                    self.passed.push(m);
                }
                let batch = self.rx.recv().await.expect("the source stopped early");
                let batch = batch.messages;
                assert!(
                    !batch.is_empty() && batch.len() <= 16,
                    "batch of {}",
                    batch.len()
                );
                self.seen.extend(batch);
            }
        };
        timeout(LIMIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no message {:?} in time", String::from_utf8_lossy(payload)))
    }

    pub(crate) fn disconnects(&self) -> u64 {
        render(&self.registry)
            .lines()
            .filter(|l| l.starts_with("ingest_mqtt_disconnects_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Cancels and checks that the channel closes: the next stage can drain.
    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        timeout(LIMIT, async { while self.rx.recv().await.is_some() {} })
            .await
            .expect("the source drops its sender on cancel");
        timeout(LIMIT, self.task)
            .await
            .expect("stops in time")
            .expect("no panic");
        assert!(!self.health.broker_connected());
        assert_eq!(self.metrics.mqtt_connected.get(), 0);
    }
}

/// Publishes once with QoS 1 from a client of its own and waits for the PUBACK.
pub(crate) async fn publish(port: u16, protocol: Protocol, payload: &[u8], retain: bool) {
    let id = format!("test-publisher-{}", free_port());
    let done = async {
        match protocol {
            Protocol::V4 => {
                let (client, mut events) =
                    AsyncClient::new(MqttOptions::new(id, "127.0.0.1", port), 10);
                client
                    .publish(TOPIC, QoS::AtLeastOnce, retain, payload.to_vec())
                    .await
                    .expect("queued");
                while !matches!(
                    events.poll().await.expect("publisher connection"),
                    RawEvent::Incoming(Packet::PubAck(_))
                ) {}
                client.disconnect().await.expect("queued");
                // Until the broker closes: see `Connection::close`.
                while events.poll().await.is_ok() {}
            }
            Protocol::V5 => {
                use rumqttc::v5::{
                    mqttbytes::v5::Packet as P5, mqttbytes::QoS as Q5, AsyncClient as C5,
                    Event as E5,
                };
                let (client, mut events) =
                    C5::new(rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port), 10);
                client
                    .publish(TOPIC, Q5::AtLeastOnce, retain, payload.to_vec())
                    .await
                    .expect("queued");
                while !matches!(
                    events.poll().await.expect("publisher connection"),
                    E5::Incoming(P5::PubAck(_))
                ) {}
                client.disconnect().await.expect("queued");
                // Until the broker closes: see `Connection::close`.
                while events.poll().await.is_ok() {}
            }
        }
    };
    timeout(LIMIT, done).await.expect("published in time");
}

/// A mosquitto broker on a port of its own, killed on drop.
pub(crate) struct Mosquitto {
    child: Child,
}

impl Mosquitto {
    fn binary() -> Option<PathBuf> {
        let candidates = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        candidates
            .into_iter()
            .chain([PathBuf::from("/usr/sbin")])
            .map(|d| d.join("mosquitto"))
            .find(|p| p.is_file())
    }

    /// Starts it and waits until it says it runs.
    pub(crate) async fn start(binary: &Path, port: u16) -> Self {
        let mut child = Command::new(binary)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            // Keep reading to the end, so mosquitto never blocks on a full pipe.
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("mosquitto version") && line.ends_with(" running") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        timeout(LIMIT, ready_rx)
            .await
            .expect("mosquitto runs in time")
            .expect("mosquitto exited before it ran");
        Self { child }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mosquitto binary; without one, fails under CI and skips loudly elsewhere.
pub(crate) fn mosquitto_or_skip(test: &str) -> Option<PathBuf> {
    let found = Mosquitto::binary();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: mosquitto is missing and CI is set: install the `mosquitto` package"
        );
        eprintln!("\n!!! SKIPPED {test}: mosquitto is not installed (apt-get install mosquitto)\n");
    }
    found
}
