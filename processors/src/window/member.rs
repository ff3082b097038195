//! What one device (or traffic lane) contributes to a commune rollup: the
//! latest state of its domain's attributes in the window, and its sums.

use schemas::{Attribute, Domain, Reading};

use super::WindowConfig;

/// Container states that raise an alarm.
const BIN_ALARMS: &[&str] = &["burning", "lidOpen", "dropped", "moved", "vandalized"];

/// The latest value by event time; ties go to the later arrival.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latest<T> {
    at: i64,
    pub(crate) value: Option<T>,
}

impl<T: Copy> Latest<T> {
    fn offer(&mut self, at: i64, value: Option<T>) {
        if let Some(v) = value {
            if self.value.is_none() || at >= self.at {
                self.at = at;
                self.value = Some(v);
            }
        }
    }
}

/// What one lamp contributed to the window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lamp {
    pub(crate) power_state: Latest<&'static str>,
    pub(crate) status: Latest<&'static str>,
    pub(crate) power_last: Latest<f64>,
    pub(crate) power_sum: f64,
    pub(crate) power_n: u32,
}

/// What one bin contributed to the window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bin {
    pub(crate) fill: Latest<f64>,
    pub(crate) temperature: Latest<f64>,
    pub(crate) status: Latest<&'static str>,
}

/// What one traffic lane contributed to the window.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lane {
    pub(crate) congested: bool,
    pub(crate) vehicles: f64,
    /// Σ speed · count and Σ count over readings that carry both.
    pub(crate) speed_by_count: f64,
    pub(crate) speed_count: f64,
}

/// What one device (or traffic lane) contributed to the window: the figures of
/// its domain, the domain of the window.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Member {
    Lamp(Lamp),
    Bin(Bin),
    Lane(Lane),
}

impl Member {
    pub(crate) fn new(domain: Domain) -> Self {
        match domain {
            Domain::Lighting => Member::Lamp(Lamp::default()),
            Domain::Waste => Member::Bin(Bin::default()),
            Domain::Traffic => Member::Lane(Lane::default()),
        }
    }

    pub(crate) fn update(&mut self, r: &Reading) {
        let at = r.time.as_nanos();
        let v = &r.values;
        match self {
            Member::Lamp(m) => {
                m.power_state.offer(at, v.symbol(Attribute::PowerState));
                m.status.offer(at, v.symbol(Attribute::LampStatus));
                let power = v.number(Attribute::PowerConsumption);
                m.power_last.offer(at, power);
                if let Some(p) = power {
                    m.power_sum += p;
                    m.power_n += 1;
                }
            }
            Member::Bin(m) => {
                m.fill.offer(at, v.number(Attribute::FillingLevel));
                m.temperature.offer(at, v.number(Attribute::Temperature));
                m.status.offer(at, v.symbol(Attribute::WasteStatus));
            }
            Member::Lane(m) => {
                m.congested |= v.boolean(Attribute::Congested) == Some(true);
                let count = v.number(Attribute::Intensity);
                if let Some(c) = count {
                    m.vehicles += c;
                }
                if let (Some(c), Some(s)) = (count, v.number(Attribute::AverageVehicleSpeed)) {
                    m.speed_by_count += s * c;
                    m.speed_count += c;
                }
            }
        }
    }
}

impl Lamp {
    pub(crate) fn failed(&self) -> bool {
        let bad_status = self.status.value.is_some_and(|s| s != "ok");
        let dark_while_on =
            self.power_state.value == Some("on") && self.power_last.value == Some(0.0);
        bad_status || dark_while_on
    }
}

impl Bin {
    pub(crate) fn alarm(&self, config: &WindowConfig) -> bool {
        self.status.value.is_some_and(|s| BIN_ALARMS.contains(&s))
            || self
                .temperature
                .value
                .is_some_and(|t| t >= config.fire_temperature_c)
    }
}
