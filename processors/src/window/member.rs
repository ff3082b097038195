//! What one device (or traffic lane) contributes to a commune rollup: the
//! latest state of its domain's attributes in the window, and its sums.

use schemas::{Attribute, Domain, Reading};

use super::slots::symbol_of;
use super::snapshot::{corrupt, Reader, SnapshotError, Writer};
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

impl Latest<f64> {
    fn save(&self, w: &mut Writer<'_>, start: i64) {
        w.bool(self.value.is_some());
        if let Some(v) = self.value {
            w.time(self.at, start);
            w.f64(v);
        }
    }

    fn load(r: &mut Reader<'_>, field: &'static str, start: i64) -> Result<Self, SnapshotError> {
        let value = r.option(field, |r| Ok((r.time(field, start)?, r.f64(field)?)))?;
        Ok(value.map_or_else(Self::default, |(at, v)| Self { at, value: Some(v) }))
    }
}

impl Latest<&'static str> {
    fn save(&self, w: &mut Writer<'_>, start: i64) {
        w.bool(self.value.is_some());
        if let Some(v) = self.value {
            w.time(self.at, start);
            w.str(v);
        }
    }

    /// Reads a value of `attribute`.
    fn load(
        r: &mut Reader<'_>,
        field: &'static str,
        attribute: Attribute,
        start: i64,
    ) -> Result<Self, SnapshotError> {
        if !r.bool(field)? {
            return Ok(Self::default());
        }
        let at = r.time(field, start)?;
        let offset = r.offset();
        let text = r.str(field)?;
        let Some(value) = symbol_of(attribute, text) else {
            return Err(corrupt(offset, field, "not a value the attribute takes"));
        };
        Ok(Self {
            at,
            value: Some(value),
        })
    }
}

impl Member {
    /// Writes the figures of the member's domain; times as distances from
    /// the start of its window, `start`.
    pub(crate) fn save(&self, w: &mut Writer<'_>, start: i64) {
        match self {
            Member::Lamp(m) => {
                m.power_state.save(w, start);
                m.status.save(w, start);
                m.power_last.save(w, start);
                w.f64(m.power_sum);
                w.var(u64::from(m.power_n));
            }
            Member::Bin(m) => {
                m.fill.save(w, start);
                m.temperature.save(w, start);
                m.status.save(w, start);
            }
            Member::Lane(m) => {
                w.bool(m.congested);
                w.f64(m.vehicles);
                w.f64(m.speed_by_count);
                w.f64(m.speed_count);
            }
        }
    }

    /// Reads what [`Member::save`] wrote for a member of a `domain` rollup.
    pub(crate) fn load(
        r: &mut Reader<'_>,
        domain: Domain,
        start: i64,
    ) -> Result<Self, SnapshotError> {
        Ok(match domain {
            Domain::Lighting => Member::Lamp(Lamp {
                power_state: Latest::<&str>::load(
                    r,
                    "lamp power state",
                    Attribute::PowerState,
                    start,
                )?,
                status: Latest::<&str>::load(r, "lamp status", Attribute::LampStatus, start)?,
                power_last: Latest::<f64>::load(r, "lamp last power", start)?,
                power_sum: r.f64("lamp power sum")?,
                power_n: {
                    let offset = r.offset();
                    u32::try_from(r.var("lamp power count")?)
                        .map_err(|_| corrupt(offset, "lamp power count", "a number too large"))?
                },
            }),
            Domain::Waste => Member::Bin(Bin {
                fill: Latest::<f64>::load(r, "bin fill", start)?,
                temperature: Latest::<f64>::load(r, "bin temperature", start)?,
                status: Latest::<&str>::load(r, "bin status", Attribute::WasteStatus, start)?,
            }),
            Domain::Traffic => Member::Lane(Lane {
                congested: r.bool("lane congested")?,
                vehicles: r.f64("lane vehicles")?,
                speed_by_count: r.f64("lane speed by count")?,
                speed_count: r.f64("lane speed count")?,
            }),
        })
    }
}
