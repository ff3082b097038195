//! The MQTT broker: mosquitto, with persistence on, anonymous, plain TCP.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::Context as _;

use crate::process::{free_port, process_controls, Readiness, ServerProcess, Spec};
use crate::require::{require, MOSQUITTO};

/// A mosquitto broker on a free port of 127.0.0.1.
///
/// Sessions of clients that connect with `clean_session = false`, and the QoS 1
/// and 2 messages queued for them, survive [`Mosquitto::stop`] and
/// [`Mosquitto::start`]: the broker saves them on a graceful stop. A
/// [`Mosquitto::kill`] (a crash) loses what was not saved yet.
#[derive(Debug)]
pub struct Mosquitto {
    process: ServerProcess,
    port: u16,
}

impl Mosquitto {
    /// Starts a broker, or returns `None` (after saying why) when mosquitto is not
    /// installed and `CI` is not set; see [`crate::require`].
    ///
    /// # Panics
    /// When mosquitto is missing and `CI` is set, or when it does not start.
    pub async fn start_or_skip() -> Option<Self> {
        let program = require(&MOSQUITTO)?;
        Some(Self::launch_at(&program).await.expect("mosquitto starts"))
    }

    /// Starts a broker.
    pub async fn launch() -> anyhow::Result<Self> {
        let program = MOSQUITTO.locate().context("mosquitto is not installed")?;
        Self::launch_at(&program).await
    }

    async fn launch_at(program: &Path) -> anyhow::Result<Self> {
        let (process, port) = ServerProcess::launch("mosquitto", program, |dir| {
            let port = free_port()?;
            let config = dir.join("mosquitto.conf");
            std::fs::write(&config, config_file(dir, port)?).context("writing mosquitto.conf")?;
            Ok(Spec {
                args: vec!["-c".into(), config.into_os_string()],
                ready: Readiness::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                chosen: port,
            })
        })
        .await?;
        Ok(Self { process, port })
    }

    /// The host to connect to: `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port the broker listens on; the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    process_controls!();
}

fn config_file(dir: &Path, port: u16) -> anyhow::Result<String> {
    let mut config = String::new();
    // Write-to-String cannot fail.
    let _ = writeln!(config, "listener {port} 127.0.0.1");
    let _ = writeln!(config, "allow_anonymous true");
    let _ = writeln!(config, "persistence true");
    // The trailing slash is required: mosquitto appends the file name to it.
    let _ = writeln!(config, "persistence_location {}/", dir.display());
    let _ = writeln!(config, "max_queued_messages 1000000");
    // QoS 1 messages in flight to one subscriber: the service acknowledges
    // after a group commit, so the default of 20 would throttle it.
    let _ = writeln!(config, "max_inflight_messages 1000");
    let _ = writeln!(config, "log_dest stderr");
    let _ = writeln!(config, "log_timestamp_format %H:%M:%S");
    // Started as root, mosquitto switches to the `mosquitto` user, which cannot
    // write our folder; stay the user who owns it.
    let owner = std::fs::metadata(dir)
        .context("reading the folder's owner")?
        .uid();
    if owner == 0 {
        let _ = writeln!(config, "user root");
    }
    Ok(config)
}
