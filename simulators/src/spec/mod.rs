//! The fleet spec: which communes, how many devices of each domain, how they
//! publish and how often things go wrong. Read from TOML
//! (`deploy/simulate/fleet.toml`); every key has a default.

use serde::{Deserialize, Serialize};

mod defaults;
mod validate;

use defaults::{
    default_bin_fire, default_bin_tilted, default_communes, default_congestion_peak,
    default_day_burning, default_duplicate, default_lamp_failure, default_late, default_lighting_s,
    default_malformed, default_market_day, default_minor_format, default_native, default_radius_km,
    default_seed, default_silent, default_timezone, default_traffic_s, default_waste_s,
};

/// A fleet spec that does not hold together, naming the key at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// The TOML text does not parse into a spec.
    #[error("fleet spec does not parse: {0}")]
    Parse(String),
    /// A key has a value the simulator cannot use.
    #[error("fleet spec key `{key}`: {reason}")]
    Invalid {
        /// The key, as a TOML path (`communes[2].lat`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// Seed of every random choice: the same seed gives the same fleet and
    /// byte-identical messages.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// IANA name of the time zone of the communes' day (dimming schedule,
    /// collection rounds, traffic peaks). Known names: see [`known_offset`].
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Offset from UTC in minutes, overriding the one derived from
    /// `timezone` (needed for a zone the simulator does not know).
    #[serde(default)]
    pub utc_offset_minutes: Option<i32>,
    /// Share of devices publishing in each wire format.
    #[serde(default)]
    pub formats: FormatWeights,
    /// Seconds between two messages of one device, per domain.
    #[serde(default)]
    pub intervals: Intervals,
    /// The communes and their devices.
    #[serde(default = "default_communes")]
    pub communes: Vec<CommuneSpec>,
    /// How often things go wrong.
    #[serde(default)]
    pub faults: FaultRates,
}

/// Weights of the wire formats (they need not add up to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatWeights {
    /// Native JSON objects on `city/{commune}/{domain}/{device}/telemetry`.
    #[serde(default = "default_native")]
    pub native: f64,
    /// SenML packs on the same topic.
    #[serde(default = "default_minor_format")]
    pub senml: f64,
    /// The Things Stack v3 uplinks.
    #[serde(default = "default_minor_format")]
    pub the_things_stack: f64,
    /// ChirpStack v4 uplink events.
    #[serde(default = "default_minor_format")]
    pub chirpstack: f64,
}

/// Reporting intervals, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intervals {
    /// Between two messages of a street light.
    #[serde(default = "default_lighting_s")]
    pub lighting_s: u32,
    /// Between two messages of a waste container.
    #[serde(default = "default_waste_s")]
    pub waste_s: u32,
    /// Length of a traffic counter's observation period, which it reports
    /// at the period's end (at most one hour, the contract's limit).
    #[serde(default = "default_traffic_s")]
    pub traffic_s: u32,
}

/// A weekday, for market days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Day {
    /// The chrono weekday.
    pub const fn weekday(self) -> chrono::Weekday {
        use chrono::Weekday as W;
        match self {
            Day::Monday => W::Mon,
            Day::Tuesday => W::Tue,
            Day::Wednesday => W::Wed,
            Day::Thursday => W::Thu,
            Day::Friday => W::Fri,
            Day::Saturday => W::Sat,
            Day::Sunday => W::Sun,
        }
    }
}

/// One commune and its devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommuneSpec {
    /// Identifier used in topics and device ids (`[a-z0-9_-]`, 1..=32).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Latitude of the centre, WGS 84 degrees.
    pub lat: f64,
    /// Longitude of the centre, WGS 84 degrees (east positive).
    pub lon: f64,
    /// Devices are spread within this distance of the centre, in km.
    #[serde(default = "default_radius_km")]
    pub radius_km: f64,
    /// Number of street lights.
    #[serde(default)]
    pub lighting: u32,
    /// Number of waste containers.
    #[serde(default)]
    pub waste: u32,
    /// Number of traffic counters (each with one to four lanes).
    #[serde(default)]
    pub traffic: u32,
    /// Weekly market (souk) day, when household waste fills faster.
    #[serde(default = "default_market_day")]
    pub market_day: Option<Day>,
}

/// Fault rates. Lasting failures are a share of devices at any moment;
/// message faults a share of messages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRates {
    /// Share of lamps failed (on but drawing nothing, or `defectiveLamp`).
    #[serde(default = "default_lamp_failure")]
    pub lamp_failure: f64,
    /// Share of lamps burning in daylight.
    #[serde(default = "default_day_burning")]
    pub day_burning: f64,
    /// Share of containers on fire.
    #[serde(default = "default_bin_fire")]
    pub bin_fire: f64,
    /// Share of containers tipped over or moved.
    #[serde(default = "default_bin_tilted")]
    pub bin_tilted: f64,
    /// Share of peak-hour periods in which a counter's road is congested.
    #[serde(default = "default_congestion_peak")]
    pub congestion_peak: f64,
    /// Share of devices silent at any moment (episodes of about an hour).
    #[serde(default = "default_silent")]
    pub silent: f64,
    /// Share of messages published late (1 to 20 minutes after the event).
    #[serde(default = "default_late")]
    pub late: f64,
    /// Share of messages published twice.
    #[serde(default = "default_duplicate")]
    pub duplicate: f64,
    /// Share of messages whose payload is cut short (invalid JSON).
    #[serde(default = "default_malformed")]
    pub malformed: f64,
    /// Share of messages with one value out of its contract range.
    #[serde(default)]
    pub out_of_range: f64,
    /// Largest device clock error in seconds; each device gets a constant
    /// error drawn within ± this.
    #[serde(default)]
    pub clock_skew_s: f64,
}

/// The UTC offset, in minutes, of a time zone the simulator knows.
///
/// `Africa/Casablanca` (and `Africa/El_Aaiun`) is taken as UTC+1 all year.
/// Morocco keeps UTC+1 except during Ramadan, when it goes back to UTC+0 for
/// about a month; the simulator ignores that switch (it would need the
/// lunar calendar), so during Ramadan its local schedules run an hour late.
pub fn known_offset(timezone: &str) -> Option<i32> {
    match timezone {
        "Africa/Casablanca" | "Africa/El_Aaiun" | "Africa/Algiers" | "Africa/Tunis"
        | "Africa/Lagos" => Some(60),
        "UTC" | "Etc/UTC" | "Etc/GMT" | "GMT" | "Africa/Abidjan" | "Africa/Dakar" => Some(0),
        _ => None,
    }
}

impl FleetSpec {
    /// Parses a TOML fleet spec and validates it.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: FleetSpec = toml::from_str(text).map_err(|e| SpecError::Parse(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// The offset of local time from UTC, in minutes.
    pub fn utc_offset_minutes(&self) -> Option<i32> {
        self.utc_offset_minutes
            .or_else(|| known_offset(&self.timezone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/simulate/fleet.toml"
    ));

    #[test]
    fn the_deployed_fleet_parses() {
        let spec = FleetSpec::from_toml(DEPLOYED).expect("fleet.toml parses");
        assert_eq!(spec.seed, 20_250_611);
        assert_eq!(spec.utc_offset_minutes(), Some(60));
        assert_eq!(spec.intervals.traffic_s, 60);
        let ids: Vec<_> = spec.communes.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["rabat", "casablanca", "chefchaouen", "benguerir", "berkane"]
        );
        assert_eq!(spec.communes[0].lighting, 400);
        assert_eq!(spec.faults.malformed, 0.001);
    }

    #[test]
    fn the_default_is_valid_and_survives_toml() {
        let spec = FleetSpec::default();
        spec.validate().expect("default is valid");
        let text = toml::to_string(&spec).expect("serialises");
        assert_eq!(FleetSpec::from_toml(&text).expect("parses"), spec);
        assert_eq!(FleetSpec::from_toml("").expect("all defaults"), spec);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("seed = 1\nbogus = 2", None),
            ("timezone = \"Mars/Olympus\"", Some("timezone")),
            ("[formats]\nnative = -1.0", Some("formats.native")),
            ("[intervals]\ntraffic_s = 7200", Some("intervals.traffic_s")),
            ("[faults]\nlate = 1.5", Some("faults.late")),
            (
                "[[communes]]\nid = \"Rabat City\"\nname = \"R\"\nlat = 34.0\nlon = -6.8",
                Some("communes[0].id"),
            ),
            (
                "[[communes]]\nid = \"x\"\nname = \"X\"\nlat = 95.0\nlon = 0.0",
                Some("communes[0].lat"),
            ),
        ];
        for (text, want) in cases {
            let err = FleetSpec::from_toml(text).expect_err(text);
            match (want, &err) {
                (Some(want), SpecError::Invalid { key, .. }) => assert_eq!(key, want, "{text}"),
                (None, SpecError::Parse(message)) => {
                    assert!(message.contains("bogus"), "{message}");
                }
                _ => panic!("{text}: unexpected {err}"),
            }
        }
        let spec = FleetSpec::from_toml("timezone = \"Asia/Tokyo\"\nutc_offset_minutes = 540")
            .expect("an override makes any zone usable");
        assert_eq!(spec.utc_offset_minutes(), Some(540));
    }
}
