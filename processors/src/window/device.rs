//! Per-device windows: for every field of a device's readings, mean, min, max
//! and last (by event time), plus how many readings fell in the window.

#[cfg(test)]
use schemas::Attribute;
use schemas::{Domain, Reading};

use super::emit::{Out, Write};
use super::figures::{FieldState, Fields, Figures};
use super::slots::{self, Key, Suffix};
use super::snapshot::{corrupt, Reader, SlotMap, SnapshotError, Writer};
use super::table::{Aggregate, WindowKey};
use super::WindowConfig;
use crate::normalize::Field;
#[cfg(test)]
use crate::point::{FieldValue, Point};

// Slots are stored as `u8`.
const _: () = assert!(slots::SLOTS <= 256);

/// One device's window. A cleared window keeps its memory for the next.
#[derive(Debug, Default)]
pub(crate) struct DeviceWindow {
    count: u64,
    /// The district of the latest reading (by event time) that named one,
    /// when `has_district`.
    district: String,
    has_district: bool,
    district_at: i64,
    /// In output order; a field appears once it first appears in a reading.
    fields: Fields,
}

/// Where the field in `slot` goes among those of a `domain` window.
fn order(domain: Domain, slot: u8) -> (usize, &'static str) {
    slots::order(domain, usize::from(slot))
}

/// The fields of a reading of a `domain` device at `at` being folded into
/// a window's `fields`; the reading's next field is looked for from `next`.
struct Folding<'a> {
    fields: &'a mut Fields,
    domain: Domain,
    at: i64,
    next: usize,
}

impl slots::FieldSink for Folding<'_> {
    // Called from three places: without `always` here and on `fold` it
    // stays a call per field, about 140 more instructions a reading
    // (callgrind, native stream).
    #[allow(clippy::inline_always, reason = "measured: a call per field")]
    #[inline(always)]
    fn field(&mut self, slot: usize, field: Field) {
        self.next = fold(
            self.fields,
            self.domain,
            slot as u8,
            field,
            self.at,
            self.next,
        );
    }
}

/// Folds `field` (in `slot`, of a reading of a `domain` device at `at`) into
/// `fields`, looking for it from `next` on; returns where to look for the
/// reading's next field.
#[allow(clippy::inline_always, reason = "measured: see `Folding::field`")]
#[inline(always)]
fn fold(
    fields: &mut Fields,
    domain: Domain,
    slot: u8,
    field: Field,
    at: i64,
    next: usize,
) -> usize {
    if let Some(i) = fields.position(slot, next) {
        if let Some(state) = fields.get_mut(i) {
            state.update(field, at);
        }
        return i + 1;
    }
    let len = fields.len();
    let rank = order(domain, slot);
    // Fields mostly come in output order: after the last one.
    let after_last = fields
        .slot(len.wrapping_sub(1))
        .is_none_or(|last| order(domain, last) < rank);
    if after_last {
        fields.push(slot, FieldState::new(field, at));
        return len + 1;
    }
    let position = (0..len)
        .find(|&i| fields.slot(i).is_some_and(|s| order(domain, s) > rank))
        .unwrap_or(len);
    fields.insert(position, slot, FieldState::new(field, at));
    position + 1
}

impl Aggregate for DeviceWindow {
    fn update(&mut self, reading: &Reading) {
        let at = reading.time.as_nanos();
        self.count += 1;
        if let Some(district) = &reading.district {
            if !self.has_district || at >= self.district_at {
                if !self.has_district || self.district != *district {
                    self.district.clear();
                    self.district.push_str(district);
                    self.has_district = true;
                }
                self.district_at = at;
            }
        }
        let mut folding = Folding {
            fields: &mut self.fields,
            domain: reading.domain,
            at,
            next: 0,
        };
        slots::for_each_field(reading, &mut folding);
    }

    fn clear(&mut self) {
        self.count = 0;
        self.district.clear();
        self.has_district = false;
        self.district_at = 0;
        self.fields.clear();
    }
}

impl DeviceWindow {
    /// Writes the count, the district and every field with its slot, in
    /// order; times as distances from the window's `start`, and each field's
    /// from the one before.
    pub(crate) fn save(&self, w: &mut Writer<'_>, start: i64) {
        w.var(self.count);
        w.bool(self.has_district);
        if self.has_district {
            w.time(self.district_at, start);
            w.str(&self.district);
        }
        w.u8(self.fields.len() as u8);
        let mut base = start;
        for (slot, state) in self.fields.iter() {
            w.u8(slot);
            state.save(w, base);
            base = state.last_at;
        }
    }

    /// Reads what [`DeviceWindow::save`] wrote into this empty window of a
    /// `domain` device starting at `start`; `slots` gives the slot of each
    /// slot of the image.
    pub(crate) fn load(
        &mut self,
        r: &mut Reader<'_>,
        domain: Domain,
        start: i64,
        slots: &SlotMap,
    ) -> Result<(), SnapshotError> {
        const FIELD: &str = "device window field";
        self.count = r.var("device window count")?;
        self.has_district = r.bool("device window district")?;
        if self.has_district {
            self.district_at = r.time("device window district time", start)?;
            self.district.push_str(r.str("device window district")?);
        }
        let offset = r.offset();
        let n = r.u8("device window fields")?;
        if usize::from(n) > slots::SLOTS {
            return Err(corrupt(
                offset,
                "device window fields",
                "more fields than there are",
            ));
        }
        let mut previous = None;
        let mut base = start;
        for i in 0..usize::from(n) {
            let offset = r.offset();
            let Some(slot) = slots[usize::from(r.u8(FIELD)?)] else {
                return Err(corrupt(offset, FIELD, "not in the image's table of fields"));
            };
            let rank = order(domain, slot);
            if previous.is_some_and(|p| p >= rank) {
                return Err(corrupt(
                    offset,
                    FIELD,
                    "not after the field before in output order",
                ));
            }
            previous = Some(rank);
            let state = FieldState::load(r, usize::from(slot), base)?;
            base = state.last_at;
            self.fields.insert(i, slot, state);
        }
        Ok(())
    }
}

impl Write for DeviceWindow {
    fn write<O: Out>(&self, key: &WindowKey, _: &WindowConfig, out: &mut O) {
        if key.plain {
            out.plain_tag(slots::key(Key::Commune), &key.commune);
            out.plain_tag(slots::key(Key::Device), &key.device);
        } else {
            out.tag(slots::key(Key::Commune), &key.commune);
            out.tag(slots::key(Key::Device), &key.device);
        }
        if self.has_district {
            out.tag(slots::key(Key::District), &self.district);
        }
        if let Some(lane) = key.lane {
            out.tag(slots::key(Key::Lane), itoa::Buffer::new().format(lane));
        }
        for (slot, field) in self.fields.iter() {
            let slot = usize::from(slot);
            let name = |suffix| slots::suffixed_key(slot, suffix);
            match field.figures {
                Figures::Number {
                    sum,
                    n,
                    min,
                    max,
                    last,
                } => {
                    let mean = sum / n.max(1) as f64;
                    // In `Suffix` order.
                    out.floats(slots::figure_keys(slot), [mean, min, max, last]);
                }
                Figures::Text(s) => out.string(name(Suffix::Last), s),
                Figures::Flag(b) => out.boolean(name(Suffix::Last), b),
            }
        }
        out.integer(
            slots::key(Key::Count),
            i64::try_from(self.count).unwrap_or(i64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use schemas::{Timestamp, Value};

    fn key(domain: Domain, lane: Option<u32>) -> WindowKey {
        WindowKey::new(domain, "rabat", "d-1", lane)
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
