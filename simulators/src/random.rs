//! Random streams and the small distributions the models draw from.

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which of a device's independent streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// What the device observes.
    Model = 0,
    /// How its messages travel (format, radio, delivery faults).
    Transport = 1,
}

/// The stream of one device: seeded by the fleet seed, keyed by the device's
/// index, so that one device's values never depend on another's.
pub(crate) fn device_rng(seed: u64, index: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index.wrapping_mul(2).wrapping_add(stream as u64));
    rng
}

/// A normal deviate (Box–Muller).
pub(crate) fn normal(rng: &mut impl Rng, mean: f64, sd: f64) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `v` rounded to `decimals` places.
pub(crate) fn round(v: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (v * scale).round() / scale + 0.0
}

/// A 64-bit FNV-1a hash, for identifiers derived from names.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A condition that comes and goes: episodes start at random and last a
/// random time (exponential, with a given mean), so that at any moment the
/// condition holds for about `share` of the devices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Episode {
    until: Option<DateTime<Utc>>,
    started: bool,
}

impl Episode {
    /// Whether the condition holds at `at`, `dt` seconds after the previous step.
    pub(crate) fn step(
        &mut self,
        rng: &mut impl Rng,
        at: DateTime<Utc>,
        dt: f64,
        share: f64,
        mean_s: f64,
    ) -> bool {
        if self.until.is_some_and(|u| at >= u) {
            self.until = None;
        }
        if self.until.is_none() && share > 0.0 {
            // The first step starts in the steady state; later ones by hazard.
            let p = if self.started {
                (share / (1.0 - share) * dt / mean_s).min(1.0)
            } else {
                share
            };
            if rng.random_bool(p.clamp(0.0, 1.0)) {
                let length = -mean_s * (1.0 - rng.random::<f64>()).ln();
                self.until = Some(at + TimeDelta::seconds(length.max(1.0) as i64));
            }
        }
        self.started = true;
        self.until.is_some()
    }

    /// Whether the condition holds now.
    pub(crate) fn active(&self) -> bool {
        self.until.is_some()
    }
}
