//! Configuration: built-in defaults, then a TOML file, then environment
//! variables (`INGEST__MQTT__HOST=...`). Unknown keys are errors, and every
//! error names the key at fault.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use schemas::ApplicationConfig;

/// The prefix of environment overrides: `INGEST__SECTION__KEY`.
pub const ENV_PREFIX: &str = "INGEST";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The embedded MQTT broker started inside the service.
    pub broker: BrokerConfig,
    /// The MQTT connection the service subscribes on.
    pub mqtt: MqttConfig,
    /// Where points are written.
    pub sink: SinkConfig,
    /// Limits on event times of incoming readings.
    pub decode: DecodeConfig,
    /// Event-time windows and commune rollups.
    pub windows: WindowsConfig,
    /// Dead-letter publishing of rejected messages.
    pub dead_letter: DeadLetterConfig,
    /// Channels between the stages.
    pub pipeline: PipelineConfig,
    /// The write-ahead log: durability before acknowledgement.
    pub wal: WalConfig,
    /// Health, readiness and metrics endpoints.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// LoRaWAN applications by id: commune, domain and field map.
    pub applications: HashMap<String, ApplicationConfig>,
}

/// The embedded MQTT broker (rumqttd).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Start it. With it on, `mqtt.host` and `mqtt.port` must point at `listen`.
    pub enabled: bool,
    /// Address it listens on.
    pub listen: SocketAddr,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
        }
    }
}

/// MQTT protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MQTT 3.1.1.
    V4,
    /// MQTT 5.
    V5,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Topic filter, wildcards allowed.
    pub topic: String,
    /// Quality of service: 0 or 1 (2 is accepted and treated as 1).
    #[serde(default = "default_qos")]
    pub qos: u8,
}

fn default_qos() -> u8 {
    1
}

/// TLS towards the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Use TLS.
    pub enabled: bool,
    /// PEM file of the certificate authorities to trust; empty means the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

/// The MQTT connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; it names the persistent session, so keep it stable.
    pub client_id: String,
    /// Keep-alive interval in seconds.
    pub keep_alive_s: u16,
    /// `v4` (MQTT 3.1.1) or `v5`.
    pub protocol: Protocol,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (secret); prefer `password_file` or `INGEST__MQTT__PASSWORD`.
    pub password: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
    /// Start a clean session (3.1.1) or a session that expires at once (5).
    /// Off, the broker keeps QoS 1 messages for the service while it is away.
    pub clean_session: bool,
    /// MQTT 5 session expiry in seconds when `clean_session` is off.
    pub session_expiry_s: u32,
    /// Largest incoming packet accepted, in bytes.
    pub max_packet_bytes: usize,
    /// How many QoS 1 messages may be in flight.
    pub inflight: u16,
    /// First reconnection delay in milliseconds.
    pub reconnect_min_ms: u64,
    /// Longest reconnection delay in milliseconds.
    pub reconnect_max_ms: u64,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Topic filters to subscribe to.
    pub subscriptions: Vec<Subscription>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        let sub = |topic: &str| Subscription {
            topic: topic.to_owned(),
            qos: 1,
        };
        Self {
            host: "127.0.0.1".to_owned(),
            port: 1883,
            client_id: "medina-ingest".to_owned(),
            keep_alive_s: 30,
            protocol: Protocol::V4,
            username: None,
            password: None,
            password_file: None,
            clean_session: false,
            session_expiry_s: 7 * 86_400,
            max_packet_bytes: 256 * 1024,
            inflight: 1000,
            reconnect_min_ms: 250,
            reconnect_max_ms: 30_000,
            tls: TlsConfig::default(),
            subscriptions: vec![
                sub("city/+/+/+/telemetry"),
                sub("v3/+/devices/+/up"),
                sub("application/+/device/+/event/up"),
            ],
        }
    }
}

/// Which sink points go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Rotated line-protocol files.
    File,
    /// InfluxDB 2.x / 3.x and compatible (`/api/v2/write`).
    InfluxdbV2,
    /// InfluxDB 1.x (`/write?db=&rp=`).
    InfluxdbV1,
}

/// Where points go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// `file`, `influxdb_v2` or `influxdb_v1`.
    pub kind: SinkKind,
    /// The file sink.
    pub file: FileSinkConfig,
    /// The InfluxDB sinks.
    pub influxdb: InfluxConfig,
    /// When a batch is written.
    pub batch: BatchConfig,
    /// Retries of failed writes.
    pub retry: RetryConfig,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            kind: SinkKind::File,
            file: FileSinkConfig::default(),
            influxdb: InfluxConfig::default(),
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
        }
    }
}

/// Rotated line-protocol files, loadable later with `influx write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSinkConfig {
    /// Folder of the files.
    pub dir: PathBuf,
    /// Start a new file past this size, in bytes.
    pub rotate_bytes: u64,
    /// Start a new file past this age, in seconds.
    pub rotate_s: u64,
    /// Keep at most this many files (0: keep all).
    pub keep_files: usize,
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data"),
            rotate_bytes: 64 * 1024 * 1024,
            rotate_s: 3600,
            keep_files: 0,
        }
    }
}

/// An InfluxDB server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InfluxConfig {
    /// Base URL, e.g. `http://127.0.0.1:8086`.
    pub url: String,
    /// Organization (v2 API).
    pub org: String,
    /// Bucket (v2 API).
    pub bucket: String,
    /// API token (secret; v2 API); prefer `token_file` or `INGEST__SINK__INFLUXDB__TOKEN`.
    pub token: Option<String>,
    /// File holding the API token.
    pub token_file: Option<PathBuf>,
    /// Database (v1 API).
    pub database: String,
    /// Retention policy (v1 API); empty means the database's default.
    pub retention_policy: Option<String>,
    /// User name (v1 API).
    pub username: Option<String>,
    /// Password (secret; v1 API).
    pub password: Option<String>,
    /// PEM file of certificate authorities to trust for `https` URLs.
    pub ca_file: Option<PathBuf>,
    /// Request timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for InfluxConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8086".to_owned(),
            org: "city".to_owned(),
            bucket: "telemetry".to_owned(),
            token: None,
            token_file: None,
            database: "telemetry".to_owned(),
            retention_policy: None,
            username: None,
            password: None,
            ca_file: None,
            timeout_ms: 10_000,
        }
    }
}

/// When a batch closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most lines in one write.
    pub max_lines: usize,
    /// Most bytes in one write (before compression).
    pub max_bytes: usize,
    /// Longest a line waits before its batch is written, in milliseconds.
    pub max_age_ms: u64,
    /// Compress request bodies with gzip.
    pub gzip: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_lines: 5000,
            max_bytes: 1024 * 1024,
            max_age_ms: 1000,
            gzip: false,
        }
    }
}

/// Retries of failed writes: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First delay in milliseconds.
    pub initial_ms: u64,
    /// Longest delay in milliseconds.
    pub max_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_ms: 200,
            max_ms: 30_000,
        }
    }
}

/// Limits on event times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Most an event time may lie ahead of receipt, in seconds.
    pub max_future_s: u32,
    /// Most an event time may lie behind receipt, in seconds.
    pub max_age_s: u32,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            max_future_s: 300,
            max_age_s: 30 * 86_400,
        }
    }
}

/// Event-time windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowsConfig {
    /// Compute windows at all.
    pub enabled: bool,
    /// Width of per-device windows, in seconds.
    pub device_window_s: u32,
    /// Width of commune rollups, in seconds.
    pub rollup_window_s: u32,
    /// How late a reading may arrive and still correct its window, in seconds.
    pub allowed_lateness_s: u32,
    /// Most windows open at once; past it, readings are not aggregated (counted).
    /// A device holds about `allowed_lateness_s / device_window_s + 2` windows.
    pub max_open_windows: usize,
    /// Fill ratio at or above which a bin counts as full.
    pub full_threshold: f64,
    /// Temperature at or above which a bin counts as in alarm, in °C.
    pub fire_temperature_c: f64,
    /// With no input, advance event time with the wall clock after this many seconds.
    pub idle_advance_s: u32,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        let w = processors::window::WindowConfig::default();
        Self {
            enabled: true,
            device_window_s: w.device_window_s,
            rollup_window_s: w.rollup_window_s,
            allowed_lateness_s: w.allowed_lateness_s,
            max_open_windows: w.max_open_windows,
            full_threshold: w.full_threshold,
            fire_temperature_c: w.fire_temperature_c,
            idle_advance_s: 10,
        }
    }
}

impl WindowsConfig {
    /// The processors' configuration.
    pub fn to_processor(&self) -> processors::window::WindowConfig {
        processors::window::WindowConfig {
            device_window_s: self.device_window_s,
            rollup_window_s: self.rollup_window_s,
            allowed_lateness_s: self.allowed_lateness_s,
            max_open_windows: self.max_open_windows,
            full_threshold: self.full_threshold,
            fire_temperature_c: self.fire_temperature_c,
        }
    }
}

/// Dead-letter publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadLetterConfig {
    /// Publish rejected messages.
    pub enabled: bool,
    /// Topic prefix: a message rejected on `T` is published on `{prefix}T`.
    pub prefix: String,
    /// QoS of dead-letter publications.
    pub qos: u8,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: "dlq/".to_owned(),
            qos: 1,
        }
    }
}

/// Channels between stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Batches each channel holds before its sender waits. The broker or the
    /// write-ahead log holds any backlog; these channels only keep the
    /// stages busy, and what they hold is memory: in `scripts/bench-e2e.sh`,
    /// 64 batches took 55 MB more peak memory than 16, for no throughput.
    pub channel_batches: usize,
    /// Most messages the source puts in one batch.
    pub source_batch: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            channel_batches: 16,
            source_batch: 512,
        }
    }
}

/// The write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Append every message to the log, and acknowledge it to the broker only
    /// once it is synced there. Off: messages are acknowledged when the
    /// pipeline takes them, and a crash loses what was not yet written.
    pub enabled: bool,
    /// Folder of the log (segments, checkpoint, lock).
    pub dir: PathBuf,
    /// Most bytes the log may hold; past it the service stops reading from
    /// the broker until the database catches up.
    pub max_bytes: u64,
    /// Size of one segment file; at most half of `max_bytes`.
    pub segment_bytes: u64,
    /// How often the position and window state are checkpointed, in
    /// milliseconds; a restart replays at most about this much (plus what
    /// the database had not yet acknowledged).
    pub checkpoint_interval_ms: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("data/wal"),
            max_bytes: 1024 * 1024 * 1024,
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_interval_ms: 1000,
        }
    }
}

/// The HTTP endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve `/healthz`, `/readyz` and `/metrics`.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `ingest=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info,rumqttd=off".to_owned(),
        }
    }
}

/// A configuration error, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Dotted path of the key, e.g. `mqtt.port`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        message: message.into(),
    }
}

const MASK: &str = "********";

impl Config {
    /// Loads defaults, then `file` (if any), then `INGEST__*` environment
    /// variables, and validates the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Config::load`], with the environment given (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("configuration file {} does not exist", path.display());
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let raw = builder.build().context("cannot read the configuration")?;
        let cfg: Config = raw
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))
            .context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that types alone cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_mqtt()?;
        self.validate_sink()?;
        self.windows
            .to_processor()
            .validate()
            .map_err(|e| err("windows", e.to_string()))?;
        if self.dead_letter.qos > 1 {
            return Err(err("dead_letter.qos", "must be 0 or 1"));
        }
        if self.dead_letter.enabled && self.dead_letter.prefix.contains(['+', '#']) {
            return Err(err("dead_letter.prefix", "must not hold MQTT wildcards"));
        }
        if self.pipeline.channel_batches == 0 || self.pipeline.source_batch == 0 {
            return Err(err(
                "pipeline",
                "channel_batches and source_batch must be at least 1",
            ));
        }
        self.validate_wal()?;
        schemas::Applications::new(&self.applications)
            .map_err(|e| err(&format!("applications.{}", e.path), e.message))?;
        if self.log.level.is_empty() {
            return Err(err("log.level", "must not be empty"));
        }
        Ok(())
    }

    fn validate_mqtt(&self) -> Result<(), ConfigError> {
        let mqtt = &self.mqtt;
        if mqtt.host.is_empty() {
            return Err(err("mqtt.host", "must not be empty"));
        }
        if mqtt.client_id.is_empty() || mqtt.client_id.len() > 92 {
            return Err(err("mqtt.client_id", "must hold 1 to 92 characters"));
        }
        if mqtt.subscriptions.is_empty() {
            return Err(err(
                "mqtt.subscriptions",
                "at least one subscription is needed",
            ));
        }
        for (i, sub) in mqtt.subscriptions.iter().enumerate() {
            if sub.topic.is_empty() {
                return Err(err(
                    &format!("mqtt.subscriptions[{i}].topic"),
                    "must not be empty",
                ));
            }
            if sub.qos > 2 {
                return Err(err(
                    &format!("mqtt.subscriptions[{i}].qos"),
                    "must be 0, 1 or 2",
                ));
            }
        }
        if mqtt.reconnect_min_ms == 0 || mqtt.reconnect_min_ms > mqtt.reconnect_max_ms {
            return Err(err(
                "mqtt.reconnect_min_ms",
                "must be above 0 and at most mqtt.reconnect_max_ms",
            ));
        }
        if mqtt.inflight == 0 {
            return Err(err("mqtt.inflight", "must be at least 1"));
        }
        if (mqtt.password.is_some() || mqtt.password_file.is_some()) && mqtt.username.is_none() {
            return Err(err("mqtt.username", "a password needs a user name"));
        }
        if mqtt.password.is_some() && mqtt.password_file.is_some() {
            return Err(err(
                "mqtt.password_file",
                "give a password or a password file, not both",
            ));
        }
        if mqtt.tls.client_cert_file.is_some() != mqtt.tls.client_key_file.is_some() {
            return Err(err(
                "mqtt.tls.client_key_file",
                "a client certificate and its key go together",
            ));
        }
        if self.broker.enabled {
            let embedded = self.broker.listen;
            let host_ok = mqtt.host.parse::<std::net::IpAddr>().map_or_else(
                |_| mqtt.host == "localhost",
                |ip| ip.is_loopback() || ip == embedded.ip(),
            );
            if !host_ok || mqtt.port != embedded.port() {
                return Err(err(
                    "mqtt.host",
                    format!(
                        "{}:{} is not the embedded broker's address {embedded}; \
                         set broker.enabled = false to use an external broker",
                        mqtt.host, mqtt.port
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_wal(&self) -> Result<(), ConfigError> {
        let wal = &self.wal;
        if !wal.enabled {
            return Ok(());
        }
        if wal.dir.as_os_str().is_empty() {
            return Err(err("wal.dir", "must not be empty"));
        }
        if wal.segment_bytes < 4096 {
            return Err(err("wal.segment_bytes", "must be at least 4096"));
        }
        if wal.segment_bytes > wal.max_bytes / 2 {
            return Err(err(
                "wal.segment_bytes",
                format!(
                    "must be at most half of wal.max_bytes ({}), so that a checkpoint can free room",
                    wal.max_bytes
                ),
            ));
        }
        if wal.checkpoint_interval_ms == 0 {
            return Err(err("wal.checkpoint_interval_ms", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_sink(&self) -> Result<(), ConfigError> {
        let batch = &self.sink.batch;
        if batch.max_lines == 0 {
            return Err(err("sink.batch.max_lines", "must be at least 1"));
        }
        if batch.max_bytes < 1024 {
            return Err(err("sink.batch.max_bytes", "must be at least 1024"));
        }
        if batch.max_age_ms == 0 {
            return Err(err("sink.batch.max_age_ms", "must be at least 1"));
        }
        let retry = &self.sink.retry;
        if retry.initial_ms == 0 || retry.initial_ms > retry.max_ms {
            return Err(err(
                "sink.retry.initial_ms",
                "must be above 0 and at most sink.retry.max_ms",
            ));
        }
        let influx = &self.sink.influxdb;
        match self.sink.kind {
            SinkKind::File => {
                if self.sink.file.rotate_bytes == 0 || self.sink.file.rotate_s == 0 {
                    return Err(err(
                        "sink.file",
                        "rotate_bytes and rotate_s must be above 0",
                    ));
                }
            }
            SinkKind::InfluxdbV2 | SinkKind::InfluxdbV1 => {
                if !(influx.url.starts_with("http://") || influx.url.starts_with("https://")) {
                    return Err(err(
                        "sink.influxdb.url",
                        format!("{:?} is not an http(s) URL", influx.url),
                    ));
                }
                if influx.token.is_some() && influx.token_file.is_some() {
                    return Err(err(
                        "sink.influxdb.token_file",
                        "give a token or a token file, not both",
                    ));
                }
            }
        }
        if self.sink.kind == SinkKind::InfluxdbV2
            && (influx.org.is_empty() || influx.bucket.is_empty())
        {
            return Err(err(
                "sink.influxdb.bucket",
                "org and bucket are needed for the v2 API",
            ));
        }
        if self.sink.kind == SinkKind::InfluxdbV1 && influx.database.is_empty() {
            return Err(err(
                "sink.influxdb.database",
                "a database is needed for the v1 API",
            ));
        }
        Ok(())
    }

    /// The configuration with every secret replaced by a mask, as TOML.
    pub fn masked_toml(&self) -> String {
        let mut c = self.clone();
        let mask = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some(MASK.to_owned());
            }
        };
        mask(&mut c.mqtt.password);
        mask(&mut c.sink.influxdb.token);
        mask(&mut c.sink.influxdb.password);
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The MQTT password, from the configuration or its file.
    pub fn mqtt_password(&self) -> anyhow::Result<Option<String>> {
        secret(
            self.mqtt.password.as_ref(),
            self.mqtt.password_file.as_deref(),
            "mqtt.password_file",
        )
    }

    /// The InfluxDB token, from the configuration or its file.
    pub fn influx_token(&self) -> anyhow::Result<Option<String>> {
        secret(
            self.sink.influxdb.token.as_ref(),
            self.sink.influxdb.token_file.as_deref(),
            "sink.influxdb.token_file",
        )
    }

    /// Time limits for the decoder.
    pub fn time_limits(&self) -> schemas::TimeLimits {
        schemas::TimeLimits {
            max_future: chrono::TimeDelta::seconds(i64::from(self.decode.max_future_s)),
            max_age: chrono::TimeDelta::seconds(i64::from(self.decode.max_age_s)),
        }
    }
}

fn secret(
    value: Option<&String>,
    file: Option<&Path>,
    key: &str,
) -> anyhow::Result<Option<String>> {
    match (value, file) {
        (Some(v), _) => Ok(Some(v.clone())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{key}: cannot read {}", path.display()))?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// The `config` crate's error, reworded so that the key's dotted path comes
/// first: "unknown field `hots`, expected one of … for key `mqtt`" becomes
/// "mqtt.hots: unknown key; expected one of …".
fn describe(e: &config::ConfigError) -> String {
    let text = e.to_string();
    let Some((message, rest)) = text.split_once(" for key `") else {
        return text;
    };
    let Some((path, origin)) = rest.split_once('`') else {
        return text;
    };
    if let Some(unknown) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = unknown.split_once('`') {
            let expected = expected.trim_start_matches(", ");
            return format!("{path}.{field}: unknown key; {expected}{origin}");
        }
    }
    format!("{path}: {message}{origin}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest.example.toml")
    }

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let cfg = Config::load_from(Some(&example()), env(&[])).expect("example parses");
        let expected = Config {
            applications: cfg.applications.clone(),
            ..Config::default()
        };
        assert_eq!(cfg, expected, "the example documents the defaults");
        let app = &cfg.applications["rabat-bins"];
        assert_eq!(app.fields[0].scale, 0.01);
    }

    #[test]
    fn the_example_names_every_key() {
        let text = std::fs::read_to_string(example()).expect("example");
        let full = Config::default().masked_toml();
        for line in full.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(
                    text.contains(&format!("{key} = ")) || text.contains(&format!("# {key} = ")),
                    "ingest.example.toml does not document `{key}`"
                );
            }
        }
        for optional in [
            "username",
            "password",
            "password_file",
            "ca_file",
            "token",
            "token_file",
            "retention_policy",
            "client_cert_file",
            "client_key_file",
        ] {
            assert!(text.contains(&format!("# {optional} = ")), "{optional}");
        }
    }

    #[test]
    fn no_file_gives_the_embedded_default() {
        let cfg = Config::load_from(None, env(&[])).expect("defaults are valid");
        assert!(cfg.broker.enabled);
        assert_eq!(cfg.sink.kind, SinkKind::File);
        assert_eq!(cfg.mqtt.subscriptions.len(), 3);
    }

    #[test]
    fn environment_overrides_file() {
        let cfg = Config::load_from(
            Some(&example()),
            env(&[
                ("INGEST__BROKER__ENABLED", "false"),
                ("INGEST__MQTT__HOST", "broker.city.example"),
                ("INGEST__MQTT__PORT", "8883"),
                ("INGEST__SINK__KIND", "influxdb_v2"),
                ("INGEST__SINK__INFLUXDB__TOKEN", "s3cret"),
                ("OTHER__MQTT__PORT", "1"),
            ]),
        )
        .expect("valid");
        assert_eq!(
            (cfg.mqtt.host.as_str(), cfg.mqtt.port),
            ("broker.city.example", 8883)
        );
        assert_eq!(cfg.sink.kind, SinkKind::InfluxdbV2);
        assert_eq!(
            cfg.influx_token().expect("token").as_deref(),
            Some("s3cret")
        );
        let shown = cfg.masked_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(MASK));
    }

    fn load_err(toml: &str, vars: &[(&str, &str)]) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).expect("write");
        format!(
            "{:#}",
            Config::load_from(Some(&path), env(vars)).expect_err(toml)
        )
    }

    #[rstest::rstest]
    #[case::unknown_key("[mqtt]\nhots = \"x\"\n", "mqtt.hots: unknown key")]
    #[case::unknown_nested("[sink.batch]\nmax_line = 1\n", "sink.batch.max_line: unknown key")]
    #[case::bad_type("[mqtt]\nport = \"abc\"\n", "mqtt.port:")]
    #[case::bad_enum("[sink]\nkind = \"influxdb_v3\"\n", "sink.kind:")]
    #[case::zero_batch(
        "[sink.batch]\nmax_lines = 0\n",
        "sink.batch.max_lines: must be at least 1"
    )]
    #[case::external_with_embedded("[mqtt]\nhost = \"10.0.0.5\"\n", "mqtt.host:")]
    #[case::bad_qos(
        "[[mqtt.subscriptions]]\ntopic = \"a\"\nqos = 3\n",
        "mqtt.subscriptions[0].qos"
    )]
    #[case::bad_url(
        "[sink]\nkind = \"influxdb_v1\"\n[sink.influxdb]\nurl = \"127.0.0.1:8086\"\n",
        "sink.influxdb.url"
    )]
    #[case::bad_app(
        "[applications.x]\ncommune = \"rabat\"\ndomain = \"waste\"\n[[applications.x.fields]]\nsource = \"a\"\nattribute = \"powerConsumption\"\n",
        "applications.x.fields[0].attribute"
    )]
    #[case::bad_window("[windows]\ndevice_window_s = 0\n", "windows")]
    fn errors_name_the_key(#[case] toml: &str, #[case] needle: &str) {
        let e = load_err(toml, &[]);
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").expect("write");
        let mut cfg = Config::default();
        cfg.sink.influxdb.token_file = Some(path);
        assert_eq!(
            cfg.influx_token().expect("read").as_deref(),
            Some("from-file")
        );
        cfg.sink.influxdb.token_file = Some(dir.path().join("missing"));
        let e = format!("{:#}", cfg.influx_token().expect_err("missing"));
        assert!(e.contains("sink.influxdb.token_file"), "{e}");
    }
}
