//! The write-ahead log: every message is on disk before the broker is told
//! it is the service's, and stays there until the database holds every
//! point that depends on it.
//!
//! ```text
//! source ─► WAL stage: append, group commit (fdatasync) ─► processor ─► sink ─► database
//!   ▲                 │                                        │           │
//!   └── acks, in ─────┘             checkpoint (position +     └──► after the database
//!       receive order               window state) ──────────────────  acknowledged it
//! ```
//!
//! - [`record`]: the framing of one message (length, CRC, sequence number).
//! - [`log`]: segment files, recovery, checkpoints (sync, no tokio).
//! - [`stage`]: the async stage between the source and the processor.
//!
//! A checkpoint says "replay from record N; the windows were in this state
//! after record N−1". The processor makes one every
//! `wal.checkpoint_interval_ms`, after the lines of the records before N;
//! the sink hands it back once the database acknowledged those lines, and
//! only then is it written and the segments before it removed. A restart
//! restores the windows and replays the records from N: raw points and
//! windows are written again with the same series and timestamps, so the
//! database overwrites them.

pub mod log;
pub mod record;
pub mod stage;

#[cfg(test)]
mod tests;

pub use self::log::{Checkpoint, Limits, Log, Recovery, WalError};
pub use self::stage::WalStage;
