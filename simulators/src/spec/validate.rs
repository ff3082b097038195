//! Validation of a fleet spec: the first bad key, named.

use super::{invalid, known_offset, FleetSpec, SpecError};

impl FleetSpec {
    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self.utc_offset_minutes {
            Some(m) if !(-14 * 60..=14 * 60).contains(&m) => {
                return Err(invalid("utc_offset_minutes", "must be within ±840"));
            }
            None if known_offset(&self.timezone).is_none() => {
                return Err(invalid(
                    "timezone",
                    format!(
                        "{:?} is not a zone the simulator knows; give `utc_offset_minutes`",
                        self.timezone
                    ),
                ));
            }
            _ => {}
        }
        let f = &self.formats;
        let weights = [
            ("formats.native", f.native),
            ("formats.senml", f.senml),
            ("formats.the_things_stack", f.the_things_stack),
            ("formats.chirpstack", f.chirpstack),
        ];
        for (key, w) in weights {
            if !w.is_finite() || w < 0.0 {
                return Err(invalid(key, "must be a finite number ≥ 0"));
            }
        }
        if weights.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
            return Err(invalid("formats", "at least one weight must be above 0"));
        }
        let i = &self.intervals;
        for (key, s, max) in [
            ("intervals.lighting_s", i.lighting_s, 86_400),
            ("intervals.waste_s", i.waste_s, 86_400),
            ("intervals.traffic_s", i.traffic_s, 3600),
        ] {
            if s == 0 || s > max {
                return Err(invalid(key, format!("must be within 1..={max} seconds")));
            }
        }
        self.validate_communes()?;
        self.validate_faults()
    }

    fn validate_communes(&self) -> Result<(), SpecError> {
        if self.communes.is_empty() {
            return Err(invalid("communes", "at least one commune is needed"));
        }
        for (n, c) in self.communes.iter().enumerate() {
            let key = |k: &str| format!("communes[{n}].{k}");
            let valid_id = (1..=32).contains(&c.id.len())
                && c.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid_id {
                return Err(invalid(
                    key("id"),
                    format!("{:?} must match [a-z0-9_-]{{1,32}}", c.id),
                ));
            }
            if self.communes[..n].iter().any(|o| o.id == c.id) {
                return Err(invalid(key("id"), format!("{:?} is given twice", c.id)));
            }
            if !(-66.0..=66.0).contains(&c.lat) {
                return Err(invalid(
                    key("lat"),
                    "must be within -66..=66 (no polar day or night)",
                ));
            }
            if !(-180.0..=180.0).contains(&c.lon) {
                return Err(invalid(key("lon"), "must be within -180..=180"));
            }
            if !(c.radius_km.is_finite() && (0.0..=100.0).contains(&c.radius_km)) {
                return Err(invalid(key("radius_km"), "must be within 0..=100"));
            }
            for (k, count) in [
                ("lighting", c.lighting),
                ("waste", c.waste),
                ("traffic", c.traffic),
            ] {
                if count > 99_999 {
                    return Err(invalid(key(k), "at most 99999 devices per domain"));
                }
            }
        }
        Ok(())
    }

    fn validate_faults(&self) -> Result<(), SpecError> {
        let f = &self.faults;
        for (key, rate) in [
            ("faults.lamp_failure", f.lamp_failure),
            ("faults.day_burning", f.day_burning),
            ("faults.bin_fire", f.bin_fire),
            ("faults.bin_tilted", f.bin_tilted),
            ("faults.congestion_peak", f.congestion_peak),
            ("faults.silent", f.silent),
            ("faults.late", f.late),
            ("faults.duplicate", f.duplicate),
            ("faults.malformed", f.malformed),
            ("faults.out_of_range", f.out_of_range),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(invalid(key, "must be a share within 0..1"));
            }
        }
        if !(f.clock_skew_s.is_finite() && (0.0..=3600.0).contains(&f.clock_skew_s)) {
            return Err(invalid(
                "faults.clock_skew_s",
                "must be within 0..=3600 seconds",
            ));
        }
        Ok(())
    }
}
