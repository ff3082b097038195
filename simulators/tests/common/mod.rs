//! A small fleet for the tests.

use chrono::{DateTime, Utc};
use simulators::spec::{CommuneSpec, Day, FaultRates, FormatWeights, Intervals};
use simulators::{Fleet, FleetSpec, Message};

/// Two communes, every domain, every format equally likely.
pub fn small(seed: u64, faults: FaultRates) -> FleetSpec {
    let commune = |id: &str, lat: f64, lon: f64, n: [u32; 3]| CommuneSpec {
        id: id.to_owned(),
        name: id.to_owned(),
        lat,
        lon,
        radius_km: 3.0,
        lighting: n[0],
        waste: n[1],
        traffic: n[2],
        market_day: Some(Day::Sunday),
    };
    FleetSpec {
        seed,
        timezone: "Africa/Casablanca".to_owned(),
        utc_offset_minutes: None,
        formats: FormatWeights {
            native: 1.0,
            senml: 1.0,
            the_things_stack: 1.0,
            chirpstack: 1.0,
        },
        intervals: Intervals {
            lighting_s: 120,
            waste_s: 300,
            traffic_s: 300,
        },
        communes: vec![
            commune("rabat", 34.0209, -6.8416, [12, 12, 8]),
            commune("chefchaouen", 35.1688, -5.2636, [12, 12, 8]),
        ],
        faults,
    }
}

pub fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339")
}

/// Every message of a fleet over a range.
pub fn run(spec: &FleetSpec, from: &str, to: &str) -> Vec<Message> {
    let mut fleet = Fleet::new(spec).expect("valid spec");
    fleet.messages(at(from), at(to)).collect()
}
