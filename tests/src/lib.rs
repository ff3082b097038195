//! The harness that integration tests use to start real servers.
//!
//! Every server is a child process of the test, listening on a free port of
//! 127.0.0.1, keeping its data in its own temporary folder, and killed (and reaped)
//! when its handle is dropped. `stop()` and `start()` take it down and bring it back
//! on the same port with the same data, for fault tests.
//!
//! - [`Mosquitto`]: the MQTT broker, with persistence.
//! - [`VictoriaMetrics`]: accepts InfluxDB line protocol on `/write` and
//!   `/api/v2/write`; [`VictoriaMetrics::export`] reads back every series.
//! - [`Influx1`]: InfluxDB 1.x, which keeps exact field types;
//!   [`Influx1::points`] and [`Influx1::field_types`] read them back.
//! - [`mqtt`]: an MQTT client independent of the service under test.
//! - [`wait_until`]: the bounded poll that replaces every sleep.
//! - [`require`]: what happens when a server binary is missing: with `CI` set the
//!   test fails; elsewhere it says `SKIPPED` on stderr and returns early.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let Some(vm) = harness::VictoriaMetrics::start_or_skip().await else { return Ok(()) };
//! vm.write_lines("lighting,commune=c1 power=12.5").await?;
//! # Ok(()) }
//! ```
//!
//! Layout: `process.rs` owns a child process and its log; one file per server
//! (`mosquitto.rs`, `victoria.rs`, `influx1.rs`), with `influxql.rs` for the typed
//! answers of InfluxDB 1.x; `require.rs` finds binaries; `http.rs` builds the HTTP
//! client; `wait.rs` polls.

mod http;
mod influx1;
mod influxql;
mod mosquitto;
pub mod mqtt;
mod process;
mod require;
mod victoria;
mod wait;

pub use influx1::Influx1;
pub use influxql::{FieldType, FieldValue, InfluxSeries, Point};
pub use mosquitto::Mosquitto;
pub use require::{require, Binary, INFLUXD, MOSQUITTO, VICTORIA_METRICS};
pub use victoria::{VictoriaMetrics, VmSeries};
pub use wait::wait_until;
