//! Per-device windows: for every field of a device's readings, mean, min, max
//! and last (by event time), plus how many readings fell in the window.

#[cfg(test)]
use schemas::Attribute;
use schemas::{Domain, Reading};

use super::slots::{self, Suffix};
use super::table::{Aggregate, WindowKey};
use super::WindowConfig;
use crate::normalize::Field;
use crate::point::{FieldValue, Point};

/// The running figures of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Figures {
    Number {
        sum: f64,
        n: u64,
        min: f64,
        max: f64,
        last: f64,
    },
    Text(&'static str),
    Flag(bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct FieldState {
    /// Which field ([`slots`]).
    slot: u8,
    /// Event time of the reading `last` came from.
    last_at: i64,
    figures: Figures,
}

fn figures(field: Field) -> Figures {
    match field {
        Field::Float(_, v) => Figures::Number {
            sum: v,
            n: 1,
            min: v,
            max: v,
            last: v,
        },
        Field::String(_, s) => Figures::Text(s),
        Field::Boolean(_, b) => Figures::Flag(b),
    }
}

impl FieldState {
    fn update(&mut self, field: Field, at: i64) {
        let latest = at >= self.last_at;
        match (&mut self.figures, field) {
            (
                Figures::Number {
                    sum,
                    n,
                    min,
                    max,
                    last,
                },
                Field::Float(_, v),
            ) => {
                *sum += v;
                *n += 1;
                *min = min.min(v);
                *max = max.max(v);
                if latest {
                    *last = v;
                }
            }
            (Figures::Text(last), Field::String(_, s)) => {
                if latest {
                    *last = s;
                }
            }
            (Figures::Flag(last), Field::Boolean(_, b)) => {
                if latest {
                    *last = b;
                }
            }
            // A field keeps the type it first had; a value of another type is
            // left out rather than changing the type written.
            _ => return,
        }
        if latest {
            self.last_at = at;
        }
    }
}

// Slots are stored as `u8`.
const _: () = assert!(slots::SLOTS <= 256);

/// One device's window.
#[derive(Debug, Default)]
pub(crate) struct DeviceWindow {
    count: u64,
    /// The district of the latest reading (by event time) that named one.
    district: Option<String>,
    district_at: i64,
    /// In output order; a field appears once it first appears in a reading.
    fields: Vec<FieldState>,
}

/// Where the field in `slot` goes among those of a `domain` window.
fn order(domain: Domain, slot: u8) -> (usize, &'static str) {
    slots::order(domain, usize::from(slot))
}

impl DeviceWindow {
    /// The position of the field in `slot`, looking from `from` on first:
    /// readings of a device carry their fields in output order, so the next
    /// one is usually right there.
    fn position(&self, slot: u8, from: usize) -> Option<usize> {
        let (before, after) = self.fields.split_at(from.min(self.fields.len()));
        after
            .iter()
            .position(|f| f.slot == slot)
            .map(|i| from + i)
            .or_else(|| before.iter().position(|f| f.slot == slot))
    }
}

impl Aggregate for DeviceWindow {
    fn update(&mut self, reading: &Reading) {
        let at = reading.time.as_nanos();
        self.count += 1;
        if let Some(district) = &reading.district {
            if self.district.is_none() || at >= self.district_at {
                if self.district.as_deref() != Some(district.as_str()) {
                    self.district = Some(district.clone());
                }
                self.district_at = at;
            }
        }
        if self.fields.capacity() == 0 {
            // A device sends much the same fields every time.
            self.fields.reserve_exact(slots::fields(reading).count());
        }
        let mut next = 0;
        for (slot, field) in slots::fields(reading) {
            let slot = slot as u8;
            if let Some(i) = self.position(slot, next) {
                if let Some(state) = self.fields.get_mut(i) {
                    state.update(field, at);
                }
                next = i + 1;
                continue;
            }
            let rank = order(reading.domain, slot);
            let position = self
                .fields
                .iter()
                .position(|f| order(reading.domain, f.slot) > rank)
                .unwrap_or(self.fields.len());
            self.fields.insert(
                position,
                FieldState {
                    slot,
                    last_at: at,
                    figures: figures(field),
                },
            );
            next = position + 1;
        }
    }

    fn write(&self, key: &WindowKey, _: &WindowConfig, point: &mut Point) {
        point.tags.reserve(4);
        point.tags.push(("commune".into(), key.commune.to_string()));
        point.tags.push(("device".into(), key.device.to_string()));
        if let Some(district) = &self.district {
            point.tags.push(("district".into(), district.clone()));
        }
        if let Some(lane) = key.lane {
            point.tags.push(("lane".into(), lane.to_string()));
        }
        point.fields.reserve(4 * self.fields.len() + 1);
        for field in &self.fields {
            let slot = usize::from(field.slot);
            let name = |suffix| slots::suffixed(slot, suffix);
            match field.figures {
                Figures::Number {
                    sum,
                    n,
                    min,
                    max,
                    last,
                } => {
                    let mean = sum / n.max(1) as f64;
                    point.fields.extend([
                        (name(Suffix::Mean), FieldValue::Float(mean)),
                        (name(Suffix::Min), FieldValue::Float(min)),
                        (name(Suffix::Max), FieldValue::Float(max)),
                        (name(Suffix::Last), FieldValue::Float(last)),
                    ]);
                }
                Figures::Text(s) => point
                    .fields
                    .push((name(Suffix::Last), FieldValue::String(s.into()))),
                Figures::Flag(b) => point
                    .fields
                    .push((name(Suffix::Last), FieldValue::Boolean(b))),
            }
        }
        let count = i64::try_from(self.count).unwrap_or(i64::MAX);
        point
            .fields
            .push(("count".into(), FieldValue::Integer(count)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use schemas::{Timestamp, Value};

    fn key(domain: Domain, lane: Option<u32>) -> WindowKey {
        WindowKey {
            domain,
            commune: "rabat".into(),
            device: "d-1".into(),
            lane,
        }
    }

    fn point(window: &DeviceWindow, key: &WindowKey) -> Point {
        let mut p = Point::new("m", Timestamp::from_secs(0));
        window.write(key, &WindowConfig::default(), &mut p);
        p
    }

    fn lamp(secs: i64, power: f64, state: &'static str) -> Reading {
        let mut r = Reading::new(Domain::Lighting, "rabat", "d-1", Timestamp::from_secs(secs));
        r.values
            .set(Attribute::PowerConsumption, Value::Number(power));
        r.values.set(Attribute::PowerState, Value::Symbol(state));
        r
    }

    #[rstest]
    #[case::in_time_order(&[0, 1, 2], 30.0, "low")]
    #[case::last_arrives_first(&[2, 0, 1], 30.0, "low")]
    #[case::all_reversed(&[2, 1, 0], 30.0, "low")]
    fn lighting_figures_follow_event_time(
        #[case] order: &[usize],
        #[case] last_power: f64,
        #[case] last_state: &str,
    ) {
        let readings = [
            lamp(5, 10.0, "on"),
            lamp(20, 50.0, "off"),
            lamp(40, 30.0, "low"),
        ];
        let mut w = DeviceWindow::default();
        for &i in order {
            w.update(&readings[i]);
        }
        let p = point(&w, &key(Domain::Lighting, None));
        assert_eq!(p.get("power_w_mean"), Some(&FieldValue::Float(30.0)));
        assert_eq!(p.get("power_w_min"), Some(&FieldValue::Float(10.0)));
        assert_eq!(p.get("power_w_max"), Some(&FieldValue::Float(50.0)));
        assert_eq!(p.get("power_w_last"), Some(&FieldValue::Float(last_power)));
        assert_eq!(
            p.get("power_state_last"),
            Some(&FieldValue::String(last_state.to_owned().into()))
        );
        assert_eq!(p.get("count"), Some(&FieldValue::Integer(3)));
        let names: Vec<_> = p.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            names,
            [
                "power_state_last",
                "power_w_mean",
                "power_w_min",
                "power_w_max",
                "power_w_last",
                "count"
            ]
        );
    }

    #[test]
    fn same_event_time_later_arrival_wins() {
        let mut w = DeviceWindow::default();
        w.update(&lamp(5, 10.0, "on"));
        w.update(&lamp(5, 20.0, "off"));
        let p = point(&w, &key(Domain::Lighting, None));
        assert_eq!(p.get("power_w_last"), Some(&FieldValue::Float(20.0)));
    }

    #[test]
    fn traffic_window_has_lane_and_derived_fields() {
        let mut r = Reading::new(Domain::Traffic, "rabat", "d-1", Timestamp::from_secs(0));
        r.lane = Some(2);
        r.district = Some("agdal".into());
        r.period_s = Some(60);
        r.values.set(Attribute::Intensity, Value::Number(10.0));
        r.values.set(Attribute::Congested, Value::Bool(true));
        let mut w = DeviceWindow::default();
        w.update(&r);
        let p = point(&w, &key(Domain::Traffic, Some(2)));
        assert_eq!(p.tag_value("lane"), Some("2"));
        assert_eq!(p.tag_value("district"), Some("agdal"));
        assert_eq!(p.get("flow_vph_mean"), Some(&FieldValue::Float(600.0)));
        assert_eq!(p.get("period_s_max"), Some(&FieldValue::Float(60.0)));
        assert_eq!(p.get("congested_last"), Some(&FieldValue::Boolean(true)));
        let tags: Vec<_> = p.tags.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(tags, ["commune", "device", "district", "lane"]);
    }

    #[test]
    fn waste_fields_keep_table_order_whatever_comes_first() {
        let mut late = Reading::new(Domain::Waste, "rabat", "d-1", Timestamp::from_secs(1));
        late.values.set(Attribute::Temperature, Value::Number(21.0));
        let mut early = Reading::new(Domain::Waste, "rabat", "d-1", Timestamp::from_secs(0));
        early
            .values
            .set(Attribute::FillingLevel, Value::Number(0.5));
        early
            .values
            .set(Attribute::WasteStatus, Value::Symbol("ok"));
        let mut w = DeviceWindow::default();
        w.update(&late);
        w.update(&early);
        let p = point(&w, &key(Domain::Waste, None));
        let names: Vec<_> = p.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names[0], "fill_ratio_mean");
        assert_eq!(names[4], "temperature_c_mean");
        assert_eq!(names[8], "status_last");
        assert_eq!(p.get("count"), Some(&FieldValue::Integer(2)));
        assert_eq!(p.tag_value("district"), None);
    }
}
