//! Defaults of every key of the fleet spec.

use super::{CommuneSpec, Day, FaultRates, FleetSpec, FormatWeights, Intervals};

pub(super) fn default_seed() -> u64 {
    20_250_611
}
pub(super) fn default_timezone() -> String {
    "Africa/Casablanca".to_owned()
}
pub(super) fn default_native() -> f64 {
    0.55
}
pub(super) fn default_minor_format() -> f64 {
    0.15
}
pub(super) fn default_lighting_s() -> u32 {
    60
}
pub(super) fn default_waste_s() -> u32 {
    300
}
pub(super) fn default_traffic_s() -> u32 {
    300
}
pub(super) fn default_radius_km() -> f64 {
    3.0
}
#[allow(clippy::unnecessary_wraps)] // serde default of an `Option` field
pub(super) fn default_market_day() -> Option<Day> {
    // Souk el Had, the most common weekly market day.
    Some(Day::Sunday)
}
pub(super) fn default_lamp_failure() -> f64 {
    0.01
}
pub(super) fn default_day_burning() -> f64 {
    0.005
}
pub(super) fn default_bin_fire() -> f64 {
    0.001
}
pub(super) fn default_bin_tilted() -> f64 {
    0.002
}
pub(super) fn default_congestion_peak() -> f64 {
    0.2
}
pub(super) fn default_silent() -> f64 {
    0.005
}
pub(super) fn default_late() -> f64 {
    0.01
}
pub(super) fn default_duplicate() -> f64 {
    0.005
}
pub(super) fn default_malformed() -> f64 {
    0.001
}

pub(super) fn commune(
    id: &str,
    name: &str,
    lat: f64,
    lon: f64,
    radius_km: f64,
    n: [u32; 3],
) -> CommuneSpec {
    CommuneSpec {
        id: id.to_owned(),
        name: name.to_owned(),
        lat,
        lon,
        radius_km,
        lighting: n[0],
        waste: n[1],
        traffic: n[2],
        market_day: default_market_day(),
    }
}

/// Rabat, Casablanca, Chefchaouen, Benguerir and Berkane at their centres.
pub(super) fn default_communes() -> Vec<CommuneSpec> {
    vec![
        commune("rabat", "Rabat", 34.0209, -6.8416, 6.0, [400, 150, 40]),
        commune(
            "casablanca",
            "Casablanca",
            33.5731,
            -7.5898,
            12.0,
            [800, 300, 80],
        ),
        commune(
            "chefchaouen",
            "Chefchaouen",
            35.1688,
            -5.2636,
            2.0,
            [120, 40, 6],
        ),
        commune(
            "benguerir",
            "Benguerir",
            32.2360,
            -7.9540,
            4.0,
            [150, 50, 10],
        ),
        commune("berkane", "Berkane", 34.9200, -2.3200, 4.0, [180, 60, 12]),
    ]
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            seed: default_seed(),
            timezone: default_timezone(),
            utc_offset_minutes: None,
            formats: FormatWeights::default(),
            intervals: Intervals::default(),
            communes: default_communes(),
            faults: FaultRates::default(),
        }
    }
}

impl Default for FormatWeights {
    fn default() -> Self {
        Self {
            native: default_native(),
            senml: default_minor_format(),
            the_things_stack: default_minor_format(),
            chirpstack: default_minor_format(),
        }
    }
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            lighting_s: default_lighting_s(),
            waste_s: default_waste_s(),
            traffic_s: default_traffic_s(),
        }
    }
}

impl Default for FaultRates {
    fn default() -> Self {
        Self {
            lamp_failure: default_lamp_failure(),
            day_burning: default_day_burning(),
            bin_fire: default_bin_fire(),
            bin_tilted: default_bin_tilted(),
            congestion_peak: default_congestion_peak(),
            silent: default_silent(),
            late: default_late(),
            duplicate: default_duplicate(),
            malformed: default_malformed(),
            out_of_range: 0.0,
            clock_skew_s: 0.0,
        }
    }
}

impl FaultRates {
    /// No fault at all: every message is delivered once, on time and valid.
    pub const NONE: FaultRates = FaultRates {
        lamp_failure: 0.0,
        day_burning: 0.0,
        bin_fire: 0.0,
        bin_tilted: 0.0,
        congestion_peak: 0.0,
        silent: 0.0,
        late: 0.0,
        duplicate: 0.0,
        malformed: 0.0,
        out_of_range: 0.0,
        clock_skew_s: 0.0,
    };
}
