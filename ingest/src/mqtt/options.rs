//! Connection options for rumqttc, built from [`MqttConfig`]: address,
//! session, limits, credentials and TLS (rustls with the `ring` provider).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::tls::tls_client_config;
use crate::config::{MqttConfig, Protocol};

/// Options of one connection, in the protocol version the configuration asks for.
#[derive(Clone)]
pub enum Options {
    /// MQTT 3.1.1.
    V4(Box<rumqttc::MqttOptions>),
    /// MQTT 5.
    V5(Box<rumqttc::v5::MqttOptions>),
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rumqttc options print credentials; show only what is harmless.
        let (version, id, (host, port)) = match self {
            Options::V4(o) => ("v4", o.client_id(), o.broker_address()),
            Options::V5(o) => ("v5", o.client_id(), o.broker_address()),
        };
        f.debug_struct("Options")
            .field("protocol", &version)
            .field("client_id", &id)
            .field("broker", &format_args!("{host}:{port}"))
            .finish_non_exhaustive()
    }
}

/// Which connection the options are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The subscribing connection: the configured client id and session,
    /// manual acknowledgements.
    Source,
    /// The dead-letter publisher: client id `{client_id}-dlq`, clean session,
    /// automatic acknowledgements.
    DeadLetter,
    /// A short-lived check that a broker takes connections: the client id
    /// as configured, clean session.
    Probe,
}

/// Why options could not be built; every variant names the configuration key.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A file named by the configuration cannot be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        /// The configuration key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the expected kind.
    #[error("{key}: {} is not a usable PEM {what}: {detail}", path.display())]
    Pem {
        /// The configuration key.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What was expected (`certificate`, `private key`).
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A value that cannot be used.
    #[error("{key}: {message}")]
    Invalid {
        /// The configuration key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn invalid(key: &'static str, message: impl Into<String>) -> OptionsError {
    OptionsError::Invalid {
        key,
        message: message.into(),
    }
}

/// Room in the client's request channel: acknowledgements and publications
/// wait there until the event loop writes them.
pub(crate) fn request_capacity(mqtt: &MqttConfig) -> usize {
    usize::from(mqtt.inflight).max(64) + 64
}

/// Builds the options of one connection. `password` is the one resolved by
/// [`crate::config::Config::mqtt_password`].
pub fn build(
    mqtt: &MqttConfig,
    password: Option<&str>,
    role: Role,
) -> Result<Options, OptionsError> {
    if mqtt.inflight == 0 {
        return Err(invalid("mqtt.inflight", "must be at least 1"));
    }
    if mqtt.client_id.is_empty() {
        return Err(invalid("mqtt.client_id", "must not be empty"));
    }
    let credentials = match (&mqtt.username, password) {
        (Some(user), pass) => Some((user.clone(), pass.unwrap_or_default().to_owned())),
        (None, Some(_)) => return Err(invalid("mqtt.username", "a password needs a user name")),
        (None, None) => None,
    };
    let transport = if mqtt.tls.enabled {
        rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::new(
            tls_client_config(&mqtt.tls)?,
        )))
    } else {
        rumqttc::Transport::tcp()
    };
    let (client_id, clean, manual_acks) = match role {
        Role::Source => (mqtt.client_id.clone(), mqtt.clean_session, true),
        Role::DeadLetter => (format!("{}-dlq", mqtt.client_id), true, false),
        Role::Probe => (mqtt.client_id.clone(), true, false),
    };
    let keep_alive = Duration::from_secs(u64::from(mqtt.keep_alive_s));
    let capacity = request_capacity(mqtt);
    let options = match mqtt.protocol {
        Protocol::V4 => {
            let mut o = rumqttc::MqttOptions::new(client_id, mqtt.host.clone(), mqtt.port);
            o.set_keep_alive(keep_alive)
                .set_clean_session(clean)
                .set_manual_acks(manual_acks)
                .set_inflight(mqtt.inflight)
                .set_request_channel_capacity(capacity)
                .set_transport(transport);
            // Outgoing: dead letters carry a rejected payload plus its JSON envelope.
            o.set_max_packet_size(mqtt.max_packet_bytes, outgoing_limit(mqtt));
            if let Some((user, pass)) = credentials {
                o.set_credentials(user, pass);
            }
            Options::V4(Box::new(o))
        }
        Protocol::V5 => {
            let mut o = rumqttc::v5::MqttOptions::new(client_id, mqtt.host.clone(), mqtt.port);
            let max_packet = u32::try_from(mqtt.max_packet_bytes)
                .map_err(|_| invalid("mqtt.max_packet_bytes", "must fit in 32 bits for MQTT 5"))?;
            o.set_keep_alive(keep_alive)
                .set_clean_start(clean)
                .set_session_expiry_interval((!clean).then_some(mqtt.session_expiry_s))
                .set_manual_acks(manual_acks)
                .set_receive_maximum(Some(mqtt.inflight))
                .set_outgoing_inflight_upper_limit(mqtt.inflight)
                .set_max_packet_size(Some(max_packet))
                .set_request_channel_capacity(capacity)
                .set_transport(transport);
            if let Some((user, pass)) = credentials {
                o.set_credentials(user, pass);
            }
            Options::V5(Box::new(o))
        }
    };
    Ok(options)
}

/// Largest packet the service writes: a dead letter holds a payload of up to
/// `max_packet_bytes`, escaped in JSON, plus its envelope.
pub(crate) fn outgoing_limit(mqtt: &MqttConfig) -> usize {
    mqtt.max_packet_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v5() -> MqttConfig {
        MqttConfig {
            protocol: Protocol::V5,
            ..MqttConfig::default()
        }
    }

    #[test]
    fn a_missing_ca_file_names_its_key() {
        let mut mqtt = MqttConfig::default();
        mqtt.tls.enabled = true;
        mqtt.tls.ca_file = Some(PathBuf::from("/nonexistent/city-ca.pem"));
        let e = build(&mqtt, None, Role::Source)
            .expect_err("missing CA")
            .to_string();
        assert!(
            e.starts_with("mqtt.tls.ca_file: cannot read /nonexistent/city-ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn v5_options_carry_session_expiry_and_receive_maximum() {
        let Options::V5(o) = build(&v5(), None, Role::Source).expect("options") else {
            panic!("v5 asked, other built");
        };
        assert_eq!(o.session_expiry_interval(), Some(7 * 86_400));
        assert_eq!(o.receive_maximum(), Some(1000));
        assert!(!o.clean_start());
        assert!(o.manual_acks());
        assert_eq!(o.max_packet_size(), Some(256 * 1024));
        assert_eq!(o.client_id(), "medina-ingest");
    }

    #[test]
    fn the_dead_letter_connection_has_its_own_clean_session() {
        let Options::V5(o) = build(&v5(), None, Role::DeadLetter).expect("options") else {
            panic!("v5 asked, other built");
        };
        assert_eq!(o.client_id(), "medina-ingest-dlq");
        assert!(o.clean_start());
        assert_eq!(o.session_expiry_interval(), None);
        assert!(!o.manual_acks());
    }

    #[test]
    fn v4_options_follow_the_configuration() {
        let mut mqtt = MqttConfig {
            username: Some("ingest".into()),
            ..MqttConfig::default()
        };
        let Options::V4(o) = build(&mqtt, Some("s3cret"), Role::Source).expect("options") else {
            panic!("v4 asked, other built");
        };
        assert!(!o.clean_session());
        assert!(o.manual_acks());
        assert_eq!(o.inflight(), 1000);
        assert_eq!(o.keep_alive(), Duration::from_secs(30));
        assert_eq!(o.max_packet_size(), 256 * 1024);
        assert_eq!(
            o.credentials().map(|l| l.username),
            Some("ingest".to_owned())
        );
        let shown = format!("{:?}", Options::V4(o));
        assert!(!shown.contains("s3cret"), "{shown}");

        mqtt.inflight = 0;
        let e = build(&mqtt, None, Role::Source)
            .expect_err("zero inflight")
            .to_string();
        assert!(e.starts_with("mqtt.inflight:"), "{e}");
        mqtt.inflight = 10;
        mqtt.username = None;
        let e = build(&mqtt, Some("p"), Role::Source)
            .expect_err("no user")
            .to_string();
        assert!(e.starts_with("mqtt.username:"), "{e}");
    }
}
