//! Commune rollups: the figures a city engineer asks for, per commune and domain,
//! from each device's latest state in the window.
//!
//! "Latest" is per attribute and by event time (ties: later arrival): a lamp's
//! power state is the one of its latest reading that carried a power state.
//! Traffic counts each (device, lane) as one lane.

use std::collections::HashMap;

use schemas::{Attribute, Domain, Reading};

use super::table::{Aggregate, WindowKey};
use super::WindowConfig;
use crate::point::{FieldValue, Point};

/// Power states that count as a lit lamp.
const LIT: &[&str] = &["on", "low", "bootingUp"];
/// Container states that raise an alarm.
const BIN_ALARMS: &[&str] = &["burning", "lidOpen", "dropped", "moved", "vandalized"];

/// The latest value by event time; ties go to the later arrival.
#[derive(Debug, Clone, Copy, Default)]
struct Latest<T> {
    at: i64,
    value: Option<T>,
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

/// What one device (or traffic lane) contributed to the window.
#[derive(Debug, Clone, Copy, Default)]
struct Member {
    power_state: Latest<&'static str>,
    lamp_status: Latest<&'static str>,
    power_last: Latest<f64>,
    power_sum: f64,
    power_n: u32,
    fill: Latest<f64>,
    temperature: Latest<f64>,
    bin_status: Latest<&'static str>,
    congested: bool,
    vehicles: f64,
    /// Σ speed · count and Σ count over readings that carry both.
    speed_by_count: f64,
    speed_count: f64,
}

impl Member {
    fn update(&mut self, r: &Reading) {
        let at = r.time.as_nanos();
        let v = &r.values;
        self.power_state.offer(at, v.symbol(Attribute::PowerState));
        self.lamp_status.offer(at, v.symbol(Attribute::LampStatus));
        let power = v.number(Attribute::PowerConsumption);
        self.power_last.offer(at, power);
        if let Some(p) = power {
            self.power_sum += p;
            self.power_n += 1;
        }
        self.fill.offer(at, v.number(Attribute::FillingLevel));
        self.temperature.offer(at, v.number(Attribute::Temperature));
        self.bin_status.offer(at, v.symbol(Attribute::WasteStatus));
        self.congested |= v.boolean(Attribute::Congested) == Some(true);
        let count = v.number(Attribute::Intensity);
        if let Some(c) = count {
            self.vehicles += c;
        }
        if let (Some(c), Some(s)) = (count, v.number(Attribute::AverageVehicleSpeed)) {
            self.speed_by_count += s * c;
            self.speed_count += c;
        }
    }

    fn lamp_failed(&self) -> bool {
        let bad_status = self.lamp_status.value.is_some_and(|s| s != "ok");
        let dark_while_on =
            self.power_state.value == Some("on") && self.power_last.value == Some(0.0);
        bad_status || dark_while_on
    }

    fn bin_alarm(&self, config: &WindowConfig) -> bool {
        self.bin_status
            .value
            .is_some_and(|s| BIN_ALARMS.contains(&s))
            || self
                .temperature
                .value
                .is_some_and(|t| t >= config.fire_temperature_c)
    }
}

/// One commune's window for one domain.
#[derive(Debug, Default)]
pub(crate) struct CommuneRollup {
    /// Per device, then per lane (usually one entry).
    members: HashMap<Box<str>, Vec<(Option<u32>, Member)>>,
}

impl CommuneRollup {
    fn members(&self) -> impl Iterator<Item = &Member> + '_ {
        self.members.values().flatten().map(|(_, m)| m)
    }
}

fn integer(n: usize) -> FieldValue {
    FieldValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Aggregate for CommuneRollup {
    fn update(&mut self, reading: &Reading) {
        let lanes = if let Some(lanes) = self.members.get_mut(reading.device.as_str()) {
            lanes
        } else {
            // Only a device new to the window allocates its key.
            self.members
                .entry(reading.device.as_str().into())
                .or_default()
        };
        if let Some((_, member)) = lanes.iter_mut().find(|(lane, _)| *lane == reading.lane) {
            member.update(reading);
        } else {
            let mut member = Member::default();
            member.update(reading);
            lanes.push((reading.lane, member));
        }
    }

    fn write(&self, key: &WindowKey, config: &WindowConfig, point: &mut Point) {
        point.tags.push(("commune".into(), key.commune.to_string()));
        let reporting = self.members().count();
        let fields = &mut point.fields;
        match key.domain {
            Domain::Lighting => {
                let state = |m: &Member| m.power_state.value;
                let on = self
                    .members()
                    .filter(|m| state(m).is_some_and(|s| LIT.contains(&s)))
                    .count();
                let off = self.members().filter(|m| state(m) == Some("off")).count();
                let failed = self.members().filter(|m| m.lamp_failed()).count();
                let load: f64 = self
                    .members()
                    .filter(|m| m.power_n > 0)
                    .map(|m| m.power_sum / f64::from(m.power_n))
                    .sum();
                fields.extend([
                    ("lamps_reporting".into(), integer(reporting)),
                    ("lamps_on".into(), integer(on)),
                    ("lamps_off".into(), integer(off)),
                    ("lamps_failed".into(), integer(failed)),
                    ("load_w".into(), FieldValue::Float(load)),
                ]);
            }
            Domain::Waste => {
                let full = self
                    .members()
                    .filter(|m| m.fill.value.is_some_and(|f| f >= config.full_threshold))
                    .count();
                let alarm = self.members().filter(|m| m.bin_alarm(config)).count();
                fields.extend([
                    ("bins_reporting".into(), integer(reporting)),
                    ("bins_full".into(), integer(full)),
                    ("bins_alarm".into(), integer(alarm)),
                ]);
                let (sum, n) = self
                    .members()
                    .filter_map(|m| m.fill.value)
                    .fold((0.0, 0_u32), |(s, n), f| (s + f, n + 1));
                if n > 0 {
                    fields.push(("fill_mean".into(), FieldValue::Float(sum / f64::from(n))));
                }
            }
            Domain::Traffic => {
                let congested = self.members().filter(|m| m.congested).count();
                let vehicles: f64 = self.members().map(|m| m.vehicles).sum();
                let weighted: f64 = self.members().map(|m| m.speed_by_count).sum();
                let weight: f64 = self.members().map(|m| m.speed_count).sum();
                fields.extend([
                    ("lanes_reporting".into(), integer(reporting)),
                    ("lanes_congested".into(), integer(congested)),
                    ("vehicles".into(), FieldValue::Float(vehicles)),
                ]);
                if weight > 0.0 {
                    let mean = weighted / weight;
                    fields.push(("speed_mean_kmh".into(), FieldValue::Float(mean)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use schemas::{Timestamp, Value};

    fn reading(domain: Domain, device: &str, secs: i64, values: &[(Attribute, Value)]) -> Reading {
        let mut r = Reading::new(domain, "rabat", device, Timestamp::from_secs(secs));
        for &(a, v) in values {
            r.values.set(a, v);
        }
        r
    }

    fn rollup(domain: Domain, readings: &[Reading]) -> Point {
        let mut w = CommuneRollup::default();
        for r in readings {
            w.update(r);
        }
        let key = WindowKey {
            domain,
            commune: "rabat".into(),
            device: "".into(),
            lane: None,
        };
        let mut p = Point::new("m", Timestamp::from_secs(0));
        w.write(&key, &WindowConfig::default(), &mut p);
        p
    }

    fn names(p: &Point) -> Vec<&str> {
        p.fields.iter().map(|(k, _)| k.as_ref()).collect()
    }

    use Attribute::{
        AverageVehicleSpeed as Speed, Congested, FillingLevel as Fill, Intensity, LampStatus,
        PowerConsumption as Power, PowerState, Temperature, WasteStatus,
    };
    use Value::{Bool, Number as N, Symbol as S};

    #[test]
    fn lighting_counts_lamps_by_latest_state() {
        let p = rollup(
            Domain::Lighting,
            &[
                // l-1: on at first, later off: off; load is its mean power.
                reading(
                    Domain::Lighting,
                    "l-1",
                    10,
                    &[(PowerState, S("off")), (Power, N(0.0))],
                ),
                reading(
                    Domain::Lighting,
                    "l-1",
                    5,
                    &[(PowerState, S("on")), (Power, N(40.0))],
                ),
                // l-2: on but drawing nothing: on and failed.
                reading(
                    Domain::Lighting,
                    "l-2",
                    5,
                    &[(PowerState, S("on")), (Power, N(0.0))],
                ),
                // l-3: dimmed, defective.
                reading(
                    Domain::Lighting,
                    "l-3",
                    5,
                    &[(PowerState, S("low")), (Power, N(30.0))],
                ),
                reading(
                    Domain::Lighting,
                    "l-3",
                    6,
                    &[(LampStatus, S("defectiveLamp"))],
                ),
                // l-4: reports energy only.
                reading(Domain::Lighting, "l-4", 5, &[]),
            ],
        );
        assert_eq!(
            names(&p),
            [
                "lamps_reporting",
                "lamps_on",
                "lamps_off",
                "lamps_failed",
                "load_w"
            ]
        );
        assert_eq!(p.get("lamps_reporting"), Some(&FieldValue::Integer(4)));
        assert_eq!(p.get("lamps_on"), Some(&FieldValue::Integer(2)));
        assert_eq!(p.get("lamps_off"), Some(&FieldValue::Integer(1)));
        assert_eq!(p.get("lamps_failed"), Some(&FieldValue::Integer(2)));
        assert_eq!(p.get("load_w"), Some(&FieldValue::Float(50.0)));
        assert_eq!(p.tags, vec![("commune".into(), "rabat".to_owned())]);
    }

    #[rstest]
    #[case::status_burning(&[(WasteStatus, S("burning"))], 0, 1)]
    #[case::hot(&[(Temperature, N(70.0))], 0, 1)]
    #[case::warm(&[(Temperature, N(69.9))], 0, 0)]
    #[case::full(&[(Fill, N(0.8))], 1, 0)]
    #[case::nearly_full(&[(Fill, N(0.79))], 0, 0)]
    fn waste_thresholds(
        #[case] values: &[(Attribute, Value)],
        #[case] full: i64,
        #[case] alarm: i64,
    ) {
        let p = rollup(Domain::Waste, &[reading(Domain::Waste, "b-1", 0, values)]);
        assert_eq!(p.get("bins_full"), Some(&FieldValue::Integer(full)));
        assert_eq!(p.get("bins_alarm"), Some(&FieldValue::Integer(alarm)));
    }

    #[test]
    fn waste_mean_fill_uses_each_bins_latest_fill() {
        let p = rollup(
            Domain::Waste,
            &[
                reading(Domain::Waste, "b-1", 9, &[(Fill, N(0.9))]),
                reading(Domain::Waste, "b-1", 1, &[(Fill, N(0.1))]),
                reading(
                    Domain::Waste,
                    "b-2",
                    1,
                    &[(Fill, N(0.5)), (WasteStatus, S("ok"))],
                ),
                reading(Domain::Waste, "b-3", 1, &[(Temperature, N(20.0))]),
            ],
        );
        assert_eq!(
            names(&p),
            ["bins_reporting", "bins_full", "bins_alarm", "fill_mean"]
        );
        assert_eq!(p.get("bins_reporting"), Some(&FieldValue::Integer(3)));
        assert_eq!(p.get("bins_full"), Some(&FieldValue::Integer(1)));
        assert_eq!(p.get("fill_mean"), Some(&FieldValue::Float(0.7)));
        let none = rollup(Domain::Waste, &[reading(Domain::Waste, "b-1", 0, &[])]);
        assert_eq!(none.get("fill_mean"), None);
    }

    #[test]
    fn traffic_weights_speed_by_count_per_lane() {
        let mut lane2 = reading(
            Domain::Traffic,
            "c-1",
            0,
            &[(Intensity, N(30.0)), (Speed, N(20.0))],
        );
        lane2.lane = Some(2);
        let p = rollup(
            Domain::Traffic,
            &[
                reading(
                    Domain::Traffic,
                    "c-1",
                    0,
                    &[(Intensity, N(10.0)), (Speed, N(60.0))],
                ),
                reading(Domain::Traffic, "c-1", 60, &[(Congested, Bool(true))]),
                reading(Domain::Traffic, "c-1", 90, &[(Congested, Bool(false))]),
                lane2,
                reading(Domain::Traffic, "c-2", 0, &[(Intensity, N(5.0))]),
            ],
        );
        assert_eq!(
            names(&p),
            [
                "lanes_reporting",
                "lanes_congested",
                "vehicles",
                "speed_mean_kmh"
            ]
        );
        assert_eq!(p.get("lanes_reporting"), Some(&FieldValue::Integer(3)));
        assert_eq!(p.get("lanes_congested"), Some(&FieldValue::Integer(1)));
        assert_eq!(p.get("vehicles"), Some(&FieldValue::Float(45.0)));
        assert_eq!(p.get("speed_mean_kmh"), Some(&FieldValue::Float(30.0)));
        let idle = rollup(
            Domain::Traffic,
            &[reading(
                Domain::Traffic,
                "c-1",
                0,
                &[(Intensity, N(0.0)), (Speed, N(0.0))],
            )],
        );
        assert_eq!(idle.get("speed_mean_kmh"), None);
        assert_eq!(idle.get("vehicles"), Some(&FieldValue::Float(0.0)));
    }
}
