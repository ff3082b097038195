//! The async shell of the simulator: publishing a fleet to an MQTT broker
//! with tokio and rumqttc. Everything that waits lives here; the fleet and
//! its messages stay pure.
//!
//! - [`cli`]: the `simulate` command line (`run`, `backfill`, `load`,
//!   `verify`).
//! - [`connection`]: an MQTT connection whose event-loop task counts what
//!   is written and acknowledged.
//! - [`pace`]: the simulated clock of a replay (pure).
//! - [`replay`](mod@replay): `run` (real time or accelerated) and `backfill`.
//! - [`load`](mod@load): the load test; [`report`] its progress, report and manifest.

pub mod cli;
pub mod connection;
pub mod load;
pub mod pace;
pub mod replay;
pub mod report;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use connection::Broker;
pub use load::{load, load_with_manifest, Bound, LoadConfig};
pub use replay::{replay, ReplayConfig, ReplaySummary};
pub use report::LoadReport;

/// How long closing connections may take once everything is queued: the
/// writing of what waits in the queues and, at QoS 1, the last
/// acknowledgements.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A client id no other connection of this process uses.
pub fn client_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}
