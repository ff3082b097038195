//! Event-time tumbling windows with a watermark and allowed lateness.
//!
//! Two kinds of window, aligned to the epoch, are kept side by side in
//! [`Windows`]:
//!
//! - per device (default 1 min), keyed by domain, commune, device and lane,
//!   written as `{domain}_{label}` (e.g. `traffic_1m`): mean, min, max and last
//!   of every field, and `count` ([`device`]);
//! - per commune (default 15 min), keyed by domain and commune, written as
//!   `{domain}_commune_{label}` (e.g. `waste_commune_15m`): lamps on, off and
//!   failed, bins full and in alarm, vehicles and mean speed ([`rollup`]).
//!
//! Time is the highest event time seen (`max_seen`); the watermark is
//! `max_seen − allowed_lateness` and never goes back. A window `[start, end)` is
//! emitted once `max_seen` reaches `end`, then again after each reading that
//! corrects it, until the watermark reaches `end` and it is forgotten. Every
//! emission carries the window's start as its time, so a correction overwrites
//! the point written before. A reading whose window the watermark has passed is
//! too late: counted, never merged.
//!
//! A reading looks its device up once: each table numbers the keys it holds
//! ([`keys`]), a commune member refers to its device by that number, and the
//! fields of a device window are numbered too ([`slots`]). Memory stays bounded
//! by `max_open_windows`: a key is forgotten with the last window (or commune
//! member) that holds it.
//!
//! Pure: no I/O, no clock; the shell calls [`Windows::record`] per reading,
//! [`Windows::drain`] per batch, [`Windows::advance`] when the stream is idle
//! and [`Windows::flush_all`] at shutdown. [`Windows::drain_encoded`] and
//! [`Windows::flush_all_encoded`] write the same points as lines of line
//! protocol, without making a [`Point`] each: the cheap way to emit.
//!
//! For the checkpoint of the write-ahead log, [`Windows::snapshot`] appends a
//! self-contained, versioned image of the whole state, and
//! [`Windows::restore`] rebuilds windows from it ([`snapshot`] has the
//! format): the configuration it was made with, the highest event time seen,
//! the counters of [`WindowStats`] (so metrics stay monotone across a
//! restart), and every window held with its figures, the members of every
//! rollup, whether it was emitted and whether it changed since, and the order
//! the changed ones will be emitted in. The image is logical: keys as text,
//! fields by name; the tables are rebuilt as readings would build them, so
//! restored windows, fed the rest of the stream, emit exactly the points (in
//! the same order) that windows never stopped would have, and write the same
//! image. The same state gives the same bytes. Restoring with another window
//! width, lateness or threshold is refused naming the key
//! ([`SnapshotError::ConfigMismatch`]); `max_open_windows` may change (an
//! image holding more windows than it allows opens no more until the
//! watermark closes some). A damaged image is refused
//! ([`SnapshotError`] says where), never half restored, never a panic.

mod chain;
mod device;
mod emit;
mod figures;
mod key;
mod keys;
mod member;
mod rollup;
mod slab;
mod slots;
mod snapshot;
mod table;
#[cfg(test)]
mod tests;

use schemas::{Reading, Timestamp};

use self::device::DeviceWindow;
use self::emit::{Emit, Lines};
use self::rollup::CommuneRollup;
pub use self::snapshot::{SnapshotError, SNAPSHOT_VERSION};
use self::table::{KeyRef, Table};
use crate::encode::EncodeError;
use crate::point::Point;

/// How windows are cut and bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// Width of per-device windows, in seconds (60: measurement `{domain}_1m`).
    pub device_window_s: u32,
    /// Width of commune rollups, in seconds (900: `{domain}_commune_15m`).
    pub rollup_window_s: u32,
    /// How far behind the highest event time seen a reading may be and still be
    /// merged, in seconds. Default 300: LoRaWAN retries and network-server queues
    /// deliver within this. It also absorbs devices whose clocks run ahead (up to
    /// the decoders' `TimeLimits::max_future`), which push the highest event time.
    pub allowed_lateness_s: u32,
    /// Most windows (per-device and rollups together) held at once; a reading
    /// that would open one more is not aggregated and is counted.
    pub max_open_windows: usize,
    /// Fill ratio (0..1) at or above which a bin counts as full.
    pub full_threshold: f64,
    /// Temperature in °C at or above which a bin counts as in alarm (fire).
    pub fire_temperature_c: f64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            device_window_s: 60,
            rollup_window_s: 900,
            allowed_lateness_s: 300,
            max_open_windows: 100_000,
            full_threshold: 0.8,
            fire_temperature_c: 70.0,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WindowConfigError {
    /// A window width of zero.
    #[error("`{key}` must be at least 1 second")]
    ZeroWidth {
        /// The configuration key.
        key: &'static str,
    },
    /// A threshold that is not a finite number in its range.
    #[error("`{key}` must be a finite number in {range}, got {value}")]
    Threshold {
        /// The configuration key.
        key: &'static str,
        /// The accepted range, as text.
        range: &'static str,
        /// The value given.
        value: f64,
    },
}

impl WindowConfig {
    /// Checks every value, naming the first bad key.
    pub fn validate(&self) -> Result<(), WindowConfigError> {
        if self.device_window_s == 0 {
            return Err(WindowConfigError::ZeroWidth {
                key: "device_window_s",
            });
        }
        if self.rollup_window_s == 0 {
            return Err(WindowConfigError::ZeroWidth {
                key: "rollup_window_s",
            });
        }
        if !(0.0..=1.0).contains(&self.full_threshold) {
            return Err(WindowConfigError::Threshold {
                key: "full_threshold",
                range: "0..=1",
                value: self.full_threshold,
            });
        }
        if !self.fire_temperature_c.is_finite() {
            return Err(WindowConfigError::Threshold {
                key: "fire_temperature_c",
                range: "finite numbers",
                value: self.fire_temperature_c,
            });
        }
        Ok(())
    }
}

/// The label of a window width in measurement names: the largest whole unit,
/// `30s`, `1m`, `15m`, `1h`, `1d`, `90s`.
pub fn label(width_s: u32) -> String {
    match width_s {
        0 => "0s".to_owned(),
        w if w.is_multiple_of(86_400) => format!("{}d", w / 86_400),
        w if w.is_multiple_of(3_600) => format!("{}h", w / 3_600),
        w if w.is_multiple_of(60) => format!("{}m", w / 60),
        w => format!("{w}s"),
    }
}

/// What became of a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Merged into its device window and its commune rollup.
    Accepted,
    /// One of its windows was already closed by the watermark; not merged.
    TooLate,
    /// It would have opened a window past `max_open_windows`; not merged.
    CapacityExceeded,
}

/// Counters since start, and the windows held now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Windows held now (per-device and rollups).
    pub open_windows: usize,
    /// Readings merged.
    pub accepted: u64,
    /// Readings not merged because a window of theirs was closed.
    pub too_late: u64,
    /// Readings not merged because of `max_open_windows`.
    pub capacity_exceeded: u64,
    /// Emissions of a window that had been emitted before.
    pub corrections: u64,
    /// Points emitted, corrections included.
    pub points_emitted: u64,
}

/// Highest event time seen, and the watermark that trails it.
#[derive(Debug, Clone, Copy)]
struct Clock {
    max_seen: Option<i64>,
    lateness_ns: i64,
}

impl Clock {
    fn observe(&mut self, t: i64) {
        self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
    }

    fn watermark(&self) -> Option<i64> {
        self.max_seen.map(|m| m.saturating_sub(self.lateness_ns))
    }

    /// Whether a window ending at `end` is closed to new readings.
    fn closed(&self, end: i64) -> bool {
        self.watermark().is_some_and(|w| end <= w)
    }
}

/// Per-device windows and commune rollups over one stream of readings.
#[derive(Debug)]
pub struct Windows {
    config: WindowConfig,
    clock: Clock,
    devices: Table<DeviceWindow>,
    rollups: Table<CommuneRollup>,
    stats: WindowStats,
}

impl Windows {
    /// Empty windows. A width of zero is taken as one second
    /// ([`WindowConfig::validate`] reports it).
    pub fn new(config: WindowConfig) -> Self {
        let device_label = label(config.device_window_s.max(1));
        let rollup_label = label(config.rollup_window_s.max(1));
        Self {
            clock: Clock {
                max_seen: None,
                lateness_ns: i64::from(config.allowed_lateness_s) * 1_000_000_000,
            },
            devices: Table::new(config.device_window_s, |d| format!("{d}_{device_label}")),
            rollups: Table::new(config.rollup_window_s, |d| {
                format!("{d}_commune_{rollup_label}")
            }),
            config,
            stats: WindowStats::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// Merges a reading into its device window and its commune rollup, both or
    /// neither, and moves the highest event time seen.
    pub fn record(&mut self, reading: &Reading) -> Recorded {
        let outcome = self.merge(reading);
        self.clock.observe(reading.time.as_nanos());
        match outcome {
            Recorded::Accepted => self.stats.accepted += 1,
            Recorded::TooLate => self.stats.too_late += 1,
            Recorded::CapacityExceeded => self.stats.capacity_exceeded += 1,
        }
        outcome
    }

    fn merge(&mut self, reading: &Reading) -> Recorded {
        let device_start = self.devices.start_of(reading.time);
        let rollup_start = self.rollups.start_of(reading.time);
        if self.clock.closed(self.devices.end_of(device_start))
            || self.clock.closed(self.rollups.end_of(rollup_start))
        {
            return Recorded::TooLate;
        }
        let device_key = KeyRef {
            domain: reading.domain,
            commune: &reading.commune,
            device: &reading.device,
            lane: reading.lane,
        };
        let rollup_key = KeyRef {
            device: "",
            lane: None,
            ..device_key
        };
        let mut device = self.devices.find(device_start, device_key);
        // The device's key remembers its rollup's: found without hashing.
        let rollup_hint = device.rollup_hint();
        let rollup = self
            .rollups
            .find_hinted(rollup_start, rollup_key, rollup_hint);
        let needed = usize::from(!device.exists()) + usize::from(!rollup.exists());
        if needed > 0 && self.open_windows().saturating_add(needed) > self.config.max_open_windows {
            return Recorded::CapacityExceeded;
        }
        // The rollup's members are the device series: a member holds the id of
        // its series until the rollup is forgotten. The member is updated
        // first: where it is does not depend on the device window, so the
        // processor can fetch both at once.
        let series = self.devices.intern(&mut device, device_key);
        let hint = device.member_hint();
        let mut position = hint;
        let devices = &mut self.devices;
        let rollup_id = self.rollups.merge_with(rollup, rollup_key, |rollup| {
            let (at, joined) = rollup.update_member(series, hint, reading);
            if joined {
                devices.hold(series);
            }
            position = Some(at);
        });
        self.devices.merge(device, device_key, reading);
        if let Some(at) = position.filter(|&at| Some(at) != hint) {
            self.devices.set_member_hint(series, at);
        }
        if rollup_hint != Some(rollup_id) {
            self.devices.set_rollup_hint(series, rollup_id);
        }
        Recorded::Accepted
    }

    /// Moves the highest event time seen forward to `t` (never back), as when
    /// the stream is idle and the shell knows time has passed.
    pub fn advance(&mut self, t: Timestamp) {
        self.clock.observe(t.as_nanos());
    }

    /// Appends a point for every window that is due: reached by the highest
    /// event time and not emitted since its last change. Then forgets the
    /// windows the watermark has passed.
    pub fn drain(&mut self, out: &mut Vec<Point>) {
        self.drain_into(out);
    }

    /// As [`Windows::drain`], writing each point straight to `out` as a line
    /// of line protocol, exactly as [`crate::encode::encode_point`] would
    /// write it, without making the point. Returns why any point could not
    /// be written (such a point is left out, as `encode_point` leaves it).
    pub fn drain_encoded(&mut self, out: &mut Vec<u8>) -> Vec<EncodeError> {
        let mut errors = Vec::new();
        let mut lines = Lines::new(out, &mut errors);
        self.drain_into(&mut lines);
        drop(lines);
        errors
    }

    fn drain_into(&mut self, out: &mut impl Emit) {
        let (Some(max_seen), Some(watermark)) = (self.clock.max_seen, self.clock.watermark())
        else {
            return;
        };
        let stats = &mut self.stats;
        let config = &self.config;
        self.devices.drain(max_seen, watermark, config, out, stats);
        let devices = &mut self.devices;
        self.rollups
            .drain_with(max_seen, watermark, config, out, stats, |rollup| {
                for series in rollup.member_ids() {
                    devices.release(series);
                }
            });
    }

    /// Appends a point for every window changed since its last emission, due or
    /// not (at shutdown). Windows are kept, so later readings still correct them.
    pub fn flush_all(&mut self, out: &mut Vec<Point>) {
        self.flush_into(out);
    }

    /// As [`Windows::flush_all`], writing lines as [`Windows::drain_encoded`]
    /// does.
    pub fn flush_all_encoded(&mut self, out: &mut Vec<u8>) -> Vec<EncodeError> {
        let mut errors = Vec::new();
        let mut lines = Lines::new(out, &mut errors);
        self.flush_into(&mut lines);
        drop(lines);
        errors
    }

    fn flush_into(&mut self, out: &mut impl Emit) {
        let stats = &mut self.stats;
        self.devices.flush_all(&self.config, out, stats);
        self.rollups.flush_all(&self.config, out, stats);
    }

    /// The highest event time seen (`None` before any reading or `advance`).
    pub fn max_event_time(&self) -> Option<Timestamp> {
        self.clock.max_seen.map(Timestamp::from_nanos)
    }

    /// The watermark: windows ending at or before it are closed.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.clock.watermark().map(Timestamp::from_nanos)
    }

    fn open_windows(&self) -> usize {
        self.devices.open() + self.rollups.open()
    }

    /// Counters, and the windows held now.
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            open_windows: self.open_windows(),
            ..self.stats
        }
    }
}
