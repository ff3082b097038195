//! The embedded MQTT broker (rumqttd) of the default setup: one server on
//! `broker.listen`, speaking the protocol version of `mqtt.protocol`, no
//! authentication, loopback by default.
//!
//! rumqttd runs on threads of its own for the rest of the process; it has no
//! way to stop. It logs every client disconnect, even at `error`, so the
//! default `log.level` turns its log off (`rumqttd=off`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::config::{BrokerConfig, MqttConfig, Protocol};
use crate::mqtt::client::{self, Event};
use crate::mqtt::options::{self, Role};

/// How long the broker may take to accept its first connection.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Another process listens on the address.
    #[error("embedded broker: {addr} is already in use; stop the other broker or set broker.listen / broker.enabled = false")]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The address cannot be listened on for another reason.
    #[error("embedded broker: cannot listen on {addr} (broker.listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A value of the configuration that the broker cannot use.
    #[error("embedded broker: {key}: {message}")]
    Invalid {
        /// The configuration key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The broker did not accept an MQTT connection in time.
    #[error(
        "embedded broker: not accepting MQTT connections on {addr} after {waited:?}: {last_error}"
    )]
    NotReady {
        /// The address.
        addr: SocketAddr,
        /// How long it was given.
        waited: Duration,
        /// The last connection error.
        last_error: String,
    },
}

/// A running embedded broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the broker on `broker.listen` and returns once it accepts MQTT
/// connections. `mqtt` gives the protocol version and packet size limit.
pub async fn start(
    broker: &BrokerConfig,
    mqtt: &MqttConfig,
) -> Result<EmbeddedBroker, BrokerError> {
    let addr = broker.listen;
    if addr.port() == 0 {
        return Err(BrokerError::Invalid {
            key: "broker.listen",
            message: "needs a port: the service connects to it by address".to_owned(),
        });
    }
    // rumqttd only logs a failed bind: find out here, with an error that says what to do.
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => drop(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(BrokerError::InUse { addr })
        }
        Err(source) => return Err(BrokerError::Bind { addr, source }),
    }
    let config = rumqttd_config(addr, mqtt.protocol, options::outgoing_limit(mqtt));
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(%addr, error = %e, "embedded broker stopped");
            }
        })
        .map_err(|source| BrokerError::Bind { addr, source })?;
    wait_ready(addr, mqtt.protocol).await?;
    tracing::info!(%addr, protocol = ?mqtt.protocol, "embedded MQTT broker listening");
    Ok(EmbeddedBroker { addr })
}

/// The rumqttd configuration: one server, generous limits, no authentication.
fn rumqttd_config(addr: SocketAddr, protocol: Protocol, max_payload: usize) -> rumqttd::Config {
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: max_payload,
        max_inflight_count: 1000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: format!("embedded-{protocol:?}").to_lowercase(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let servers = Some(HashMap::from([("1".to_owned(), server)]));
    let router = rumqttd::RouterConfig {
        max_connections: 10_010,
        max_outgoing_packet_count: 1000,
        max_segment_size: 16 * 1024 * 1024,
        max_segment_count: 4,
        ..rumqttd::RouterConfig::default()
    };
    let (v4, v5) = match protocol {
        Protocol::V4 => (servers, None),
        Protocol::V5 => (None, servers),
    };
    rumqttd::Config {
        id: 0,
        router,
        v4,
        v5,
        ..rumqttd::Config::default()
    }
}

/// Connects with MQTT until the broker answers, or the time is up.
async fn wait_ready(addr: SocketAddr, protocol: Protocol) -> Result<(), BrokerError> {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let probe = MqttConfig {
        host: host.to_string(),
        port: addr.port(),
        client_id: "medina-broker-probe".to_owned(),
        protocol,
        keep_alive_s: 5,
        ..MqttConfig::default()
    };
    let options = options::build(&probe, None, Role::Probe).map_err(|e| BrokerError::Invalid {
        key: "broker.listen",
        message: e.to_string(),
    })?;
    let (client, mut conn) = client::new(options, &probe);
    let mut last_error = String::from("no answer");
    let connect = async {
        loop {
            match conn.poll().await {
                Ok(Event::Connected { .. }) => return,
                Ok(_) => {}
                Err(e) => {
                    last_error = e.detail;
                    // The server thread may not have bound yet: try again shortly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    if tokio::time::timeout(READY_TIMEOUT, connect).await.is_err() {
        return Err(BrokerError::NotReady {
            addr,
            waited: READY_TIMEOUT,
            last_error,
        });
    }
    if client.try_disconnect().is_ok() {
        let bye = async {
            while let Ok(event) = conn.poll().await {
                if event == Event::DisconnectSent {
                    conn.close().await;
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port that was free a moment ago.
    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        l.local_addr().expect("local addr").port()
    }

    #[tokio::test]
    async fn starts_on_a_free_port_and_refuses_a_taken_one() {
        let port = free_port();
        let broker = BrokerConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let mqtt = MqttConfig {
            port,
            ..MqttConfig::default()
        };
        let started = tokio::time::timeout(Duration::from_secs(20), start(&broker, &mqtt))
            .await
            .expect("in time")
            .expect("starts");
        assert_eq!(started.addr(), broker.listen);

        let again = tokio::time::timeout(Duration::from_secs(20), start(&broker, &mqtt))
            .await
            .expect("in time")
            .expect_err("the port is taken");
        assert_eq!(
            again.to_string(),
            format!("embedded broker: 127.0.0.1:{port} is already in use; stop the other broker or set broker.listen / broker.enabled = false")
        );
    }

    #[tokio::test]
    async fn port_zero_is_refused() {
        let broker = BrokerConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let e = start(&broker, &MqttConfig::default())
            .await
            .expect_err("port 0");
        assert!(e.to_string().contains("broker.listen"), "{e}");
    }
}
