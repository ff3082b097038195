//! Traffic counters: one to four lanes, each reporting the vehicles,
//! occupancy and speeds of a period (`dateObserved` as `start/end`), with
//! morning and evening peaks on weekdays, a later and flatter weekend, and
//! congestion episodes (occupancy up, speed down, `congested` true), most
//! of them at peak hours.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemas::{Attribute, Domain};

use crate::observation::{Observation, ObservedAt};
use crate::random::{normal, round, Episode};
use crate::spec::FaultRates;

/// Mean length of a congestion episode, in seconds.
const CONGESTION_MEAN_S: f64 = 25.0 * 60.0;
/// Off-peak congestion, as a share of the peak-hour rate.
const OFF_PEAK_CONGESTION: f64 = 0.05;
/// Length of the detection zone added to a vehicle's, in metres.
const DETECTOR_M: f64 = 2.0;

fn bump(h: f64, centre: f64, width: f64, height: f64) -> f64 {
    height * (-((h - centre) / width).powi(2)).exp()
}

/// Traffic demand at a local time, as a share of a lane's peak flow:
/// weekday peaks around 08:15 and 18:15 and a midday bump, a flatter
/// weekend (Saturday and Sunday) peaking around noon and in the evening.
pub fn demand(local: NaiveDateTime) -> f64 {
    let h = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
    let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
    let d = if weekend {
        0.05 + bump(h, 12.5, 2.5, 0.5) + bump(h, 19.5, 2.0, 0.55) + bump(h, 23.5, 1.5, 0.15)
    } else {
        0.04 + bump(h, 8.25, 1.0, 0.96)
            + bump(h, 13.0, 1.8, 0.55)
            + bump(h, 18.25, 1.3, 0.9)
            + bump(h, 21.0, 2.0, 0.25)
    };
    d.min(1.0)
}

/// Whether a local time is a weekday peak hour (07:30–09:30, 17:00–19:30).
pub fn peak_hour(local: NaiveDateTime) -> bool {
    let m = local.hour() * 60 + local.minute();
    let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
    !weekend && ((450..570).contains(&m) || (1020..1170).contains(&m))
}

/// Where a counter is and how it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSite {
    /// Commune id.
    pub commune: String,
    /// Device id.
    pub device: String,
    /// Offset of local time from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Length of an observation period, in seconds.
    pub period_s: u32,
}

#[derive(Debug, Clone, Copy)]
struct Lane {
    peak_vph: f64,
    free_kmh: f64,
    length_m: f64,
}

/// One traffic counter and its lanes.
#[derive(Debug, Clone)]
pub struct Counter {
    site: CounterSite,
    lanes: Vec<Lane>,
    congestion: Episode,
    rates: FaultRates,
    rng: ChaCha8Rng,
}

impl Counter {
    /// A counter with its own random stream; its lanes are drawn from it.
    pub fn new(site: CounterSite, rates: FaultRates, mut rng: ChaCha8Rng) -> Self {
        let n = rng.random_range(1..=4);
        let free_kmh = rng.random_range(40.0..70.0);
        let lanes = (0..n)
            .map(|_| Lane {
                peak_vph: rng.random_range(600.0..1400.0),
                free_kmh: free_kmh * rng.random_range(0.9..1.1),
                length_m: rng.random_range(4.2..5.5),
            })
            .collect();
        Self {
            site,
            lanes,
            congestion: Episode::default(),
            rates,
            rng,
        }
    }

    /// How many lanes the counter watches (numbered from 1).
    pub fn lanes(&self) -> u32 {
        self.lanes.len() as u32
    }

    /// Whether the road was congested in the last period observed.
    pub fn congested(&self) -> bool {
        self.congestion.active()
    }

    /// One observation per lane of the period that ends at `end`; calls
    /// must come in time order.
    pub fn observe(&mut self, end: DateTime<Utc>) -> Vec<Observation> {
        let period = f64::from(self.site.period_s);
        let start = end - TimeDelta::seconds(i64::from(self.site.period_s));
        let local = start.naive_utc() + TimeDelta::minutes(i64::from(self.site.utc_offset_minutes));
        let share = if peak_hour(local) {
            self.rates.congestion_peak
        } else {
            self.rates.congestion_peak * OFF_PEAK_CONGESTION
        };
        let congested = self
            .congestion
            .step(&mut self.rng, end, period, share, CONGESTION_MEAN_S);
        let demand = demand(local);
        let mut out = Vec::with_capacity(self.lanes.len());
        for (index, lane) in self.lanes.iter().enumerate() {
            let rng = &mut self.rng;
            let mut expected = lane.peak_vph * demand * period / 3600.0;
            if congested {
                expected *= 0.6;
            }
            let count = normal(rng, expected, expected.sqrt()).round().max(0.0);
            let mut obs = Observation::new(
                Domain::Traffic,
                &self.site.commune,
                &self.site.device,
                ObservedAt::Interval { start, end },
            );
            obs.lane = Some(index as u32 + 1);
            obs.number(Attribute::Intensity, count);
            let (occupancy, speed) = if count == 0.0 {
                (0.0, None)
            } else if congested {
                (
                    rng.random_range(0.45..0.85),
                    Some(rng.random_range(5.0..18.0)),
                )
            } else {
                let speed = lane.free_kmh
                    * (1.0 - 0.35 * demand * demand)
                    * normal(rng, 1.0, 0.05).clamp(0.85, 1.15);
                let flow_vph = count * 3600.0 / period;
                let occupancy = flow_vph * (lane.length_m + DETECTOR_M) / 1000.0 / speed;
                (occupancy.min(0.4), Some(speed))
            };
            obs.number(Attribute::Occupancy, round(occupancy, 3));
            if let Some(speed) = speed {
                obs.number(Attribute::AverageVehicleSpeed, round(speed, 1));
                let length = lane.length_m * normal(rng, 1.0, 0.05).clamp(0.8, 1.2);
                obs.number(Attribute::AverageVehicleLength, round(length, 2));
            }
            obs.boolean(Attribute::Congested, congested);
            out.push(obs);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{device_rng, Stream};

    fn counter(n: u64, rates: FaultRates) -> Counter {
        let site = CounterSite {
            commune: "rabat".into(),
            device: format!("counter-rabat-{n:05}"),
            utc_offset_minutes: 60,
            period_s: 300,
        };
        Counter::new(site, rates, device_rng(11, n, Stream::Model))
    }

    fn flow(obs: &[Observation]) -> f64 {
        obs.iter()
            .filter_map(|o| o.values.number(Attribute::Intensity))
            .sum()
    }

    #[test]
    fn weekday_peaks_beat_the_night_and_weekends_are_flatter() {
        let day = |s: &str| -> DateTime<Utc> { s.parse().expect("RFC 3339") };
        for n in 0..20 {
            let mut c = counter(n, FaultRates::NONE);
            // Wednesday 2026-03-04; local = UTC + 1.
            let night = flow(&c.observe(day("2026-03-04T02:05:00Z")));
            let morning = flow(&c.observe(day("2026-03-04T07:20:00Z")));
            let evening = flow(&c.observe(day("2026-03-04T17:20:00Z")));
            assert!(morning > 3.0 * night.max(1.0), "{morning} vs {night}");
            assert!(evening > 3.0 * night.max(1.0), "{evening} vs {night}");
        }
        let at = |s: &str| s.parse::<NaiveDateTime>().expect("local time");
        assert!(demand(at("2026-03-07T08:15:00")) < demand(at("2026-03-04T08:15:00")) / 2.0);
    }

    #[test]
    fn congestion_raises_occupancy_and_slows_traffic() {
        let rates = FaultRates {
            congestion_peak: 0.5,
            ..FaultRates::NONE
        };
        let (mut free, mut jammed) = (Vec::new(), Vec::new());
        let start: DateTime<Utc> = "2026-03-04T06:30:00Z".parse().expect("RFC 3339");
        for n in 0..20 {
            let mut c = counter(n, rates);
            for step in 0..30 {
                for obs in c.observe(start + TimeDelta::minutes(5 * step)) {
                    let speed = obs.values.number(Attribute::AverageVehicleSpeed);
                    let occupancy = obs.values.number(Attribute::Occupancy).unwrap_or(0.0);
                    let target = if obs.values.boolean(Attribute::Congested) == Some(true) {
                        &mut jammed
                    } else {
                        &mut free
                    };
                    if let Some(speed) = speed {
                        target.push((occupancy, speed));
                    }
                }
            }
        }
        assert!(!free.is_empty() && !jammed.is_empty());
        let mean = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| {
            v.iter().map(f).sum::<f64>() / v.len() as f64
        };
        assert!(mean(&jammed, |p| p.0) > mean(&free, |p| p.0) + 0.2);
        assert!(mean(&jammed, |p| p.1) < mean(&free, |p| p.1) / 2.0);
        let max_free_occupancy = free.iter().map(|p| p.0).fold(0.0, f64::max);
        let min_jammed_occupancy = jammed.iter().map(|p| p.0).fold(1.0, f64::min);
        assert!(
            min_jammed_occupancy > max_free_occupancy,
            "{min_jammed_occupancy} vs {max_free_occupancy}"
        );
    }
}
