//! Waste containers: fill curves per kind of waste (household fastest,
//! glass slowest; faster in the evening and on market days), emptied by
//! collection rounds on a weekly schedule, with a temperature that follows
//! the day, a battery that runs down, and now and then an open lid, a bin
//! tipped over or moved, or a fire.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Utc, Weekday,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemas::{Attribute, Domain};

use crate::observation::{Observation, ObservedAt};
use crate::random::{normal, round, Episode};
use crate::spec::FaultRates;

/// Mean length of a fire, in seconds.
const FIRE_MEAN_S: f64 = 40.0 * 60.0;
/// Mean time before a tipped or moved bin is put back, in seconds.
const TILT_MEAN_S: f64 = 3.0 * 3600.0;
/// Share of bins with the lid left open, and mean length of that.
const LID_SHARE: f64 = 0.01;
const LID_MEAN_S: f64 = 20.0 * 60.0;
/// Battery used per hour (about two years from full).
const BATTERY_PER_HOUR: f64 = 0.000_05;
/// Communes with at least this many bins collect household waste daily.
pub const DAILY_COLLECTION_FROM: u32 = 100;

/// What a container takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasteKind {
    /// Mixed household waste.
    Household,
    /// Packaging and paper.
    Recycling,
    /// Glass.
    Glass,
}

impl WasteKind {
    /// Fill per hour on an ordinary day, before the time-of-day shape.
    fn fill_per_hour(self, rng: &mut impl Rng) -> f64 {
        match self {
            WasteKind::Household => rng.random_range(0.02..0.05),
            WasteKind::Recycling => rng.random_range(0.006..0.012),
            WasteKind::Glass => rng.random_range(0.002..0.005),
        }
    }

    /// Weight of a full container, in kg.
    const fn full_kg(self) -> f64 {
        match self {
            WasteKind::Household => 250.0,
            WasteKind::Recycling => 90.0,
            WasteKind::Glass => 400.0,
        }
    }

    /// The local time of collection on a weekday, if it is a collection day.
    pub fn collection(self, day: Weekday, daily: bool) -> Option<NaiveTime> {
        use Weekday as W;
        let (days, hour): (&[Weekday], u32) = match self {
            WasteKind::Household if daily => {
                (&[W::Mon, W::Tue, W::Wed, W::Thu, W::Fri, W::Sat, W::Sun], 6)
            }
            WasteKind::Household => (&[W::Mon, W::Wed, W::Fri, W::Sun], 6),
            WasteKind::Recycling => (&[W::Tue, W::Fri], 7),
            WasteKind::Glass => (&[W::Wed], 8),
        };
        days.contains(&day)
            .then(|| NaiveTime::from_hms_opt(hour, 0, 0))
            .flatten()
    }
}

/// Where a container is and how its commune runs collections.
#[derive(Debug, Clone, PartialEq)]
pub struct BinSite {
    /// Commune id.
    pub commune: String,
    /// Device id.
    pub device: String,
    /// Offset of local time from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Whether household waste is collected every day.
    pub daily_collection: bool,
    /// The weekly market day.
    pub market_day: Option<Weekday>,
}

/// One waste container.
#[derive(Debug, Clone)]
pub struct Bin {
    site: BinSite,
    kind: WasteKind,
    fill_per_hour: f64,
    /// How long after the round's start the crew reaches this bin.
    round_delay: TimeDelta,
    fill: f64,
    battery: f64,
    temperature_bias: f64,
    tilt_status: &'static str,
    fire: Episode,
    tilted: Episode,
    lid: Episode,
    rates: FaultRates,
    last: Option<DateTime<Utc>>,
    last_collection: Option<DateTime<Utc>>,
    rng: ChaCha8Rng,
}

impl Bin {
    /// A container with its own random stream; the kind is drawn from it.
    pub fn new(site: BinSite, rates: FaultRates, mut rng: ChaCha8Rng) -> Self {
        let kind = match rng.random_range(0..20) {
            0..12 => WasteKind::Household,
            12..17 => WasteKind::Recycling,
            _ => WasteKind::Glass,
        };
        Self {
            fill_per_hour: kind.fill_per_hour(&mut rng),
            round_delay: TimeDelta::minutes(rng.random_range(0..150)),
            fill: rng.random_range(0.0..0.6),
            battery: rng.random_range(0.3..1.0),
            temperature_bias: normal(&mut rng, 0.0, 1.0),
            tilt_status: "dropped",
            fire: Episode::default(),
            tilted: Episode::default(),
            lid: Episode::default(),
            rates,
            last: None,
            last_collection: None,
            kind,
            site,
            rng,
        }
    }

    /// What the container takes.
    pub fn kind(&self) -> WasteKind {
        self.kind
    }

    /// The last collection before the last observation.
    pub fn last_collection(&self) -> Option<DateTime<Utc>> {
        self.last_collection
    }

    fn offset(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.site.utc_offset_minutes))
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.naive_utc() + self.offset()
    }

    /// When the crew empties this bin on a local date, if it does.
    pub fn collected_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let time = self
            .kind
            .collection(date.weekday(), self.site.daily_collection)?;
        Some((date.and_time(time) - self.offset()).and_utc() + self.round_delay)
    }

    /// The latest collection in `(from, to]`.
    fn collection_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first = self.local(from).date().pred_opt()?;
        let last = self.local(to).date();
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter_map(|d| self.collected_on(d))
            .filter(|c| *c > from && *c <= to)
            .last()
    }

    /// How fast waste comes in at a local time, relative to the mean.
    fn shape(&self, local: NaiveDateTime) -> f64 {
        let by_hour = match local.hour() {
            0..6 => 0.2,
            6..11 => 1.1,
            11..18 => 0.9,
            _ => 1.6,
        };
        let market = self.site.market_day == Some(local.weekday()) && self.kind != WasteKind::Glass;
        by_hour * if market { 1.6 } else { 1.0 }
    }

    fn grow(&mut self, hours: f64, local: NaiveDateTime) {
        let noise = self.rng.random_range(0.6..1.4);
        self.fill = (self.fill + self.fill_per_hour * hours * self.shape(local) * noise).min(1.0);
    }

    /// The container's state at `at`; calls must come in time order.
    pub fn observe(&mut self, at: DateTime<Utc>) -> Observation {
        let hours_since = |from: DateTime<Utc>| (at - from).num_seconds().max(0) as f64 / 3600.0;
        let local = self.local(at);
        let dt_h = self.last.map_or(0.0, hours_since);
        match self.last.and_then(|last| self.collection_between(last, at)) {
            Some(c) => {
                self.last_collection = Some(c);
                self.fill = self.rng.random_range(0.0..0.02);
                self.grow(hours_since(c), local);
            }
            None => self.grow(dt_h, local),
        }
        self.last = Some(at);
        self.battery -= BATTERY_PER_HOUR * dt_h;
        if self.battery < 0.05 {
            self.battery = 1.0;
        }
        let dt_s = dt_h * 3600.0;
        let rng = &mut self.rng;
        let fire = self
            .fire
            .step(rng, at, dt_s, self.rates.bin_fire, FIRE_MEAN_S);
        let was_tilted = self.tilted.active();
        let tilted = self
            .tilted
            .step(rng, at, dt_s, self.rates.bin_tilted, TILT_MEAN_S);
        if tilted && !was_tilted {
            self.tilt_status = if rng.random_bool(0.5) {
                "dropped"
            } else {
                "moved"
            };
        }
        let lid = self.lid.step(rng, at, dt_s, LID_SHARE, LID_MEAN_S);

        let hour = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
        let ambient = 19.0 + 6.0 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
        let fermenting = if self.kind == WasteKind::Household {
            3.0 * self.fill
        } else {
            0.0
        };
        let temperature = if fire {
            rng.random_range(70.0..115.0)
        } else {
            ambient + fermenting + self.temperature_bias + normal(rng, 0.0, 0.3)
        };
        let status = if fire {
            "burning"
        } else if tilted {
            self.tilt_status
        } else if lid {
            "lidOpen"
        } else {
            "ok"
        };

        let mut obs = Observation::new(
            Domain::Waste,
            &self.site.commune,
            &self.site.device,
            ObservedAt::Instant(at),
        );
        obs.number(Attribute::FillingLevel, round(self.fill, 3));
        obs.number(
            Attribute::Temperature,
            round(temperature.clamp(-40.0, 119.0), 1),
        );
        obs.number(
            Attribute::CargoWeight,
            round(self.fill * self.kind.full_kg(), 1),
        );
        if self.kind == WasteKind::Household {
            let methane = 300.0 + 4000.0 * self.fill * (1.0 + (temperature - 20.0).max(0.0) / 20.0);
            obs.number(
                Attribute::MethaneConcentration,
                round(methane * normal(rng, 1.0, 0.05).max(0.5), 0),
            );
        }
        obs.number(Attribute::BatteryLevel, round(self.battery, 3));
        obs.symbol(Attribute::WasteStatus, status);
        obs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{device_rng, Stream};

    fn bin(n: u64, rates: FaultRates) -> Bin {
        let site = BinSite {
            commune: "rabat".into(),
            device: format!("bin-rabat-{n:05}"),
            utc_offset_minutes: 60,
            daily_collection: true,
            market_day: Some(Weekday::Sun),
        };
        Bin::new(site, rates, device_rng(3, n, Stream::Model))
    }

    #[test]
    fn fill_only_drops_at_a_collection() {
        let start: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().expect("RFC 3339");
        let mut kinds = Vec::new();
        for n in 0..30 {
            let mut bin = bin(n, FaultRates::default());
            kinds.push(bin.kind());
            let mut previous: Option<(DateTime<Utc>, f64)> = None;
            let mut drops = 0;
            for step in 0..(7 * 288) {
                let at = start + TimeDelta::minutes(5 * step);
                let fill = bin
                    .observe(at)
                    .values
                    .number(Attribute::FillingLevel)
                    .unwrap_or(-1.0);
                assert!((0.0..=1.0).contains(&fill));
                if let Some((then, before)) = previous {
                    if fill < before {
                        drops += 1;
                        let c = bin.last_collection().expect("a drop is a collection");
                        assert!(
                            c > then && c <= at,
                            "{} dropped at {at} without a collection",
                            bin.site.device
                        );
                    }
                }
                previous = Some((at, fill));
            }
            let expected = match bin.kind() {
                WasteKind::Household => 7,
                WasteKind::Recycling => 2,
                WasteKind::Glass => 1,
            };
            assert!(drops <= expected, "{drops} drops for {:?}", bin.kind());
        }
        assert!(kinds.contains(&WasteKind::Household) && kinds.contains(&WasteKind::Glass));
    }

    #[test]
    fn fires_are_hot_and_say_so() {
        let rates = FaultRates {
            bin_fire: 0.5,
            ..FaultRates::NONE
        };
        let at: DateTime<Utc> = "2026-03-02T12:00:00Z".parse().expect("RFC 3339");
        let mut burning = 0;
        for n in 0..100 {
            let obs = bin(n, rates).observe(at);
            let hot = obs.values.number(Attribute::Temperature).unwrap_or(0.0) > 70.0;
            let said = obs.values.symbol(Attribute::WasteStatus) == Some("burning");
            assert_eq!(hot, said, "{obs:?}");
            burning += usize::from(said);
        }
        assert!((25..75).contains(&burning), "{burning}");
    }
}
