//! Commune rollups: the figures a city engineer asks for, per commune and domain,
//! from each device's latest state in the window.
//!
//! "Latest" is per attribute and by event time (ties: later arrival): a lamp's
//! power state is the one of its latest reading that carried a power state.
//! Traffic counts each (device, lane) as one lane.

#[cfg(test)]
use schemas::Attribute;
use schemas::{Domain, Reading};

use super::device::DeviceWindow;
use super::emit::{Out, Write};
use super::key::FastMap;
use super::keys::KeyId;
use super::member::{Bin, Lamp, Lane, Member};
use super::snapshot::{corrupt, Reader, SnapshotError, Writer};
use super::table::{Aggregate, KeyRef, Table, WindowKey};
use super::WindowConfig;
#[cfg(test)]
use crate::point::{FieldValue, Point};

/// Power states that count as a lit lamp.
const LIT: &[&str] = &["on", "low", "bootingUp"];

/// One commune's window for one domain.
///
/// Its members are the device series of the commune, by the id the device
/// table gives them ([`CommuneRollup::update_member`]). A rollup fed readings
/// by [`Aggregate::update`] alone numbers devices and lanes itself.
#[derive(Debug, Default)]
pub(crate) struct CommuneRollup {
    /// In the order they joined.
    members: Vec<(KeyId, Member)>,
    /// Position in `members` by id.
    index: FastMap<KeyId, usize>,
    /// Ids given by [`Aggregate::update`], by device and lane.
    names: FastMap<(Box<str>, Option<u32>), KeyId>,
}

impl CommuneRollup {
    fn lamps(&self) -> impl Iterator<Item = &Lamp> + '_ {
        self.members.iter().filter_map(|(_, m)| match m {
            Member::Lamp(lamp) => Some(lamp),
            _ => None,
        })
    }

    fn bins(&self) -> impl Iterator<Item = &Bin> + '_ {
        self.members.iter().filter_map(|(_, m)| match m {
            Member::Bin(bin) => Some(bin),
            _ => None,
        })
    }

    fn lanes(&self) -> impl Iterator<Item = &Lane> + '_ {
        self.members.iter().filter_map(|(_, m)| match m {
            Member::Lane(lane) => Some(lane),
            _ => None,
        })
    }

    /// Folds a reading into the member `id`, looking first at `hint` (where it
    /// may be among the members). Returns where it is, and whether it joined
    /// with this reading.
    pub(crate) fn update_member(
        &mut self,
        id: KeyId,
        hint: Option<usize>,
        reading: &Reading,
    ) -> (usize, bool) {
        let at_hint = hint.filter(|&i| self.members.get(i).is_some_and(|m| m.0 == id));
        if let Some(i) = at_hint.or_else(|| self.index.get(&id).copied()) {
            if let Some((_, member)) = self.members.get_mut(i) {
                member.update(reading);
                return (i, false);
            }
        }
        let mut member = Member::new(reading.domain);
        member.update(reading);
        let position = self.members.len();
        self.index.insert(id, position);
        self.members.push((id, member));
        (position, true)
    }

    /// The ids of the members.
    pub(crate) fn member_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.members.iter().map(|&(id, _)| id)
    }
}

impl CommuneRollup {
    /// Writes the members in the order they joined, each as the number
    /// `number` gives its device key, then its figures.
    pub(crate) fn save(&self, w: &mut Writer<'_>, start: i64, number: impl Fn(KeyId) -> u32) {
        w.len(self.members.len());
        for (id, member) in &self.members {
            w.len(number(*id) as usize);
            member.save(w, start);
        }
    }

    /// Reads what [`CommuneRollup::save`] wrote into this empty rollup of
    /// `key` starting at `start`. Each member refers to one of `keys`, which
    /// it holds in `devices`; `ids` keeps the id each was given there.
    pub(crate) fn load<'a>(
        &mut self,
        r: &mut Reader<'a>,
        key: KeyRef<'_>,
        start: i64,
        keys: &[KeyRef<'a>],
        ids: &mut [Option<KeyId>],
        devices: &mut Table<DeviceWindow>,
    ) -> Result<(), SnapshotError> {
        const FIELD: &str = "rollup member";
        // A key and a bin that reported nothing: four bytes at least.
        let n = r.count("rollup members", 4)?;
        self.members.reserve(n);
        self.index.reserve(n);
        for _ in 0..n {
            let offset = r.offset();
            let k = r.index(FIELD, keys.len())?;
            let device = keys[k];
            if device.domain != key.domain || device.commune != key.commune {
                return Err(corrupt(
                    offset,
                    FIELD,
                    "a device of another domain or commune",
                ));
            }
            let member = Member::load(r, key.domain, start)?;
            let id = *ids[k].get_or_insert_with(|| devices.intern_key(device));
            if self.index.insert(id, self.members.len()).is_some() {
                return Err(corrupt(offset, FIELD, "the same device twice"));
            }
            devices.hold(id);
            self.members.push((id, member));
        }
        Ok(())
    }
}

fn integer(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Aggregate for CommuneRollup {
    fn update(&mut self, reading: &Reading) {
        let next = self.names.len();
        let name = (reading.device.as_str().into(), reading.lane);
        let id = *self.names.entry(name).or_insert(next);
        self.update_member(id, None, reading);
    }

    fn clear(&mut self) {
        self.members.clear();
        self.index.clear();
        self.names.clear();
    }
}

impl Write for CommuneRollup {
    fn write<O: Out>(&self, key: &WindowKey, config: &WindowConfig, out: &mut O) {
        out.tag("commune", &key.commune);
        let reporting = self.members.len();
        match key.domain {
            Domain::Lighting => {
                let state = |m: &Lamp| m.power_state.value;
                let on = self
                    .lamps()
                    .filter(|m| state(m).is_some_and(|s| LIT.contains(&s)))
                    .count();
                let off = self.lamps().filter(|m| state(m) == Some("off")).count();
                let failed = self.lamps().filter(|m| m.failed()).count();
                let load: f64 = self
                    .lamps()
                    .filter(|m| m.power_n > 0)
                    .map(|m| m.power_sum / f64::from(m.power_n))
                    .sum();
                out.integer("lamps_reporting", integer(reporting));
                out.integer("lamps_on", integer(on));
                out.integer("lamps_off", integer(off));
                out.integer("lamps_failed", integer(failed));
                out.float("load_w", load);
            }
            Domain::Waste => {
                let full = self
                    .bins()
                    .filter(|m| m.fill.value.is_some_and(|f| f >= config.full_threshold))
                    .count();
                let alarm = self.bins().filter(|m| m.alarm(config)).count();
                out.integer("bins_reporting", integer(reporting));
                out.integer("bins_full", integer(full));
                out.integer("bins_alarm", integer(alarm));
                let (sum, n) = self
                    .bins()
                    .filter_map(|m| m.fill.value)
                    .fold((0.0, 0_u32), |(s, n), f| (s + f, n + 1));
                if n > 0 {
                    out.float("fill_mean", sum / f64::from(n));
                }
            }
            Domain::Traffic => {
                let congested = self.lanes().filter(|m| m.congested).count();
                let vehicles: f64 = self.lanes().map(|m| m.vehicles).sum();
                let weighted: f64 = self.lanes().map(|m| m.speed_by_count).sum();
                let weight: f64 = self.lanes().map(|m| m.speed_count).sum();
                out.integer("lanes_reporting", integer(reporting));
                out.integer("lanes_congested", integer(congested));
                out.float("vehicles", vehicles);
                if weight > 0.0 {
                    out.float("speed_mean_kmh", weighted / weight);
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
        let key = WindowKey::new(domain, "rabat", "", None);
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
