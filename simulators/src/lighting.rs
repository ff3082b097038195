//! Street lights: on around sunset and off around sunrise (each lamp's
//! photocell a few minutes early or late), dimmed to half from 00:00 to
//! 05:00 local time, drawing power in proportion to the dimming level, with
//! an energy meter that only goes up. Some lamps fail (on but drawing
//! nothing, or reporting `defectiveLamp`) and some burn by day.

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemas::{Attribute, Domain};

use crate::observation::{Observation, ObservedAt};
use crate::random::{normal, round, Episode};
use crate::spec::FaultRates;
use crate::sun::{sun_times, SunTimes};

/// Mean time a failed lamp waits for repair, in seconds.
const FAILURE_MEAN_S: f64 = 12.0 * 3600.0;
/// Mean length of a day-burning episode, in seconds.
const DAY_BURNING_MEAN_S: f64 = 6.0 * 3600.0;
/// Power factor of an LED driver.
const POWER_FACTOR: f64 = 0.95;

/// The dimming level the schedule asks for at a local time of day: full
/// power in the evening and before dawn, half from 00:00 to 05:00.
pub fn scheduled_level(local_hour: u32) -> f64 {
    if local_hour < 5 {
        0.5
    } else {
        1.0
    }
}

/// Where a lamp is and how it is wired.
#[derive(Debug, Clone, PartialEq)]
pub struct LampSite {
    /// Commune id.
    pub commune: String,
    /// Device id.
    pub device: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Offset of local time from UTC, in minutes.
    pub utc_offset_minutes: i32,
}

/// One street light.
#[derive(Debug, Clone)]
pub struct Lamp {
    site: LampSite,
    rated_w: f64,
    on_shift: TimeDelta,
    off_shift: TimeDelta,
    voltage_v: f64,
    energy_kwh: f64,
    reports_defect: bool,
    failure: Episode,
    day_burning: Episode,
    rates: FaultRates,
    last: Option<DateTime<Utc>>,
    sun: Option<(NaiveDate, SunTimes)>,
    rng: ChaCha8Rng,
}

impl Lamp {
    /// A lamp with its own random stream.
    pub fn new(site: LampSite, rates: FaultRates, mut rng: ChaCha8Rng) -> Self {
        Self {
            rated_w: f64::from(rng.random_range(3_u32..=15)) * 10.0,
            on_shift: TimeDelta::seconds(rng.random_range(-300..=300)),
            off_shift: TimeDelta::seconds(rng.random_range(-300..=300)),
            voltage_v: normal(&mut rng, 230.0, 2.0),
            energy_kwh: rng.random_range(50.0..5000.0),
            reports_defect: rng.random_bool(0.5),
            failure: Episode::default(),
            day_burning: Episode::default(),
            rates,
            last: None,
            sun: None,
            site,
            rng,
        }
    }

    /// Rated power in W.
    pub fn rated_w(&self) -> f64 {
        self.rated_w
    }

    fn local(&self, at: DateTime<Utc>) -> chrono::NaiveDateTime {
        at.naive_utc() + TimeDelta::minutes(i64::from(self.site.utc_offset_minutes))
    }

    fn sun(&mut self, date: NaiveDate) -> SunTimes {
        if let Some((d, s)) = self.sun {
            if d == date {
                return s;
            }
        }
        let s = sun_times(self.site.lat, self.site.lon, date).unwrap_or_else(|| {
            // Only beyond the polar circles, which the spec excludes.
            let at = |h| date.and_hms_opt(h, 0, 0).unwrap_or_default().and_utc();
            SunTimes {
                sunrise: at(6),
                sunset: at(18),
            }
        });
        self.sun = Some((date, s));
        s
    }

    /// When this lamp's photocell switches it on, on a local date.
    pub fn switch_on(&mut self, date: NaiveDate) -> DateTime<Utc> {
        self.sun(date).sunset + self.on_shift
    }

    /// Whether the schedule has the lamp on at `at` (no fault).
    pub fn dark(&mut self, at: DateTime<Utc>) -> bool {
        let date = self.local(at).date();
        let sun = self.sun(date);
        at < sun.sunrise + self.off_shift || at >= sun.sunset + self.on_shift
    }

    /// The lamp's state at `at`; calls must come in time order.
    pub fn observe(&mut self, at: DateTime<Utc>) -> Observation {
        let dt = self
            .last
            .map_or(60.0, |l| (at - l).num_milliseconds().max(0) as f64 / 1000.0);
        self.last = Some(at);
        let failed = self.failure.step(
            &mut self.rng,
            at,
            dt,
            self.rates.lamp_failure,
            FAILURE_MEAN_S,
        );
        let burning = self.day_burning.step(
            &mut self.rng,
            at,
            dt,
            self.rates.day_burning,
            DAY_BURNING_MEAN_S,
        );
        let dark = self.dark(at);
        let on = dark || burning;
        let level = if !on {
            0.0
        } else if dark {
            scheduled_level(self.local(at).hour())
        } else {
            1.0
        };
        let voltage = round(normal(&mut self.rng, self.voltage_v, 1.0), 1);
        let power = if on && !failed {
            round(
                self.rated_w * level * normal(&mut self.rng, 1.0, 0.02).max(0.5),
                1,
            )
        } else {
            0.0
        };
        self.energy_kwh += power * dt / 3_600_000.0;
        let current = round(power / (voltage * POWER_FACTOR), 3);

        let mut obs = Observation::new(
            Domain::Lighting,
            &self.site.commune,
            &self.site.device,
            ObservedAt::Instant(at),
        );
        obs.symbol(Attribute::PowerState, if on { "on" } else { "off" });
        obs.number(Attribute::IlluminanceLevel, level);
        obs.number(Attribute::PowerConsumption, power);
        obs.number(Attribute::EnergyConsumed, round(self.energy_kwh, 3));
        obs.number(Attribute::Voltage, voltage);
        obs.number(Attribute::Current, current);
        let status = if failed && self.reports_defect {
            "defectiveLamp"
        } else {
            "ok"
        };
        obs.symbol(Attribute::LampStatus, status);
        obs
    }

    /// Whether the lamp is failed (after the last observation).
    pub fn failed(&self) -> bool {
        self.failure.active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{device_rng, Stream};

    fn rabat(n: u64, rates: FaultRates) -> Lamp {
        let site = LampSite {
            commune: "rabat".into(),
            device: format!("lamp-rabat-{n:05}"),
            lat: 34.0209,
            lon: -6.8416,
            utc_offset_minutes: 60,
        };
        Lamp::new(site, rates, device_rng(7, n, Stream::Model))
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    #[test]
    fn lamps_follow_the_sun_and_the_dimming_schedule() {
        let mut lamp = rabat(1, FaultRates::NONE);
        let power = |o: &Observation| o.values.number(Attribute::PowerConsumption).unwrap_or(-1.0);
        let noon = lamp.observe(at("2026-06-21T12:00:00Z"));
        assert_eq!(noon.values.symbol(Attribute::PowerState), Some("off"));
        assert_eq!(power(&noon), 0.0);
        let evening = lamp.observe(at("2026-06-21T21:00:00Z"));
        assert_eq!(
            evening.values.number(Attribute::IlluminanceLevel),
            Some(1.0)
        );
        let rated = lamp.rated_w();
        assert!((power(&evening) - rated).abs() < rated * 0.1, "{evening:?}");
        let night = lamp.observe(at("2026-06-22T01:30:00Z"));
        assert_eq!(night.values.number(Attribute::IlluminanceLevel), Some(0.5));
        assert!(
            (power(&night) - rated / 2.0).abs() < rated * 0.1,
            "{night:?}"
        );
        let energy = |o: &Observation| o.values.number(Attribute::EnergyConsumed).unwrap_or(0.0);
        assert!(energy(&night) > energy(&evening));
    }

    #[test]
    fn failures_and_day_burning_show() {
        let rates = FaultRates {
            lamp_failure: 0.5,
            day_burning: 0.5,
            ..FaultRates::NONE
        };
        let (mut burning, mut failed) = (0, 0);
        for n in 0..200 {
            let noon = rabat(n, rates).observe(at("2026-06-21T12:00:00Z"));
            burning += usize::from(noon.values.symbol(Attribute::PowerState) == Some("on"));
            let mut lamp = rabat(n + 1000, rates);
            let night = lamp.observe(at("2026-06-21T22:00:00Z"));
            if lamp.failed() {
                failed += 1;
                assert_eq!(night.values.number(Attribute::PowerConsumption), Some(0.0));
            }
        }
        assert!((50..150).contains(&burning), "{burning}");
        assert!((50..150).contains(&failed), "{failed}");
    }
}
