//! The ingestion service: MQTT in, InfluxDB out.
//!
//! - [`app`]: the wiring of the stages, and their shutdown in order.
//! - [`config`]: layered configuration (defaults, TOML file, environment).
//! - [`message`]: what travels between the stages.
//! - [`http`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`logging`]: human or JSON log lines.
//! - [`demo`]: `ingest demo`: the service fed by a simulated fleet, with a
//!   live summary.
//! - [`live`]: the latest decoded state of every device, for live views.
//! - [`health`]: readiness as the stages report it.
//! - [`process`]: the processor stage: decode, window, encode.
//! - [`metrics`]: every exported metric, named in one place.
//! - [`mqtt`]: the MQTT source, its options and the dead-letter publisher.
//! - [`broker`]: the embedded MQTT broker of the default setup.
//! - [`sink`]: batching, writing to InfluxDB or files, retries, refused lines.
//! - [`wal`]: the write-ahead log: durability before acknowledgement,
//!   checkpoints after the database, replay after a crash.

pub mod app;
mod backoff;
pub mod broker;
pub mod config;
pub mod demo;
pub mod health;
pub mod http;
pub mod live;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod mqtt;
pub mod process;
pub mod sink;
pub mod wal;
