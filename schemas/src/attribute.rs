//! The attributes of the data contract: their wire names (FIWARE Smart Data
//! Models), the field each is written as, its type, range and canonical unit.
//!
//! Every decoder goes through this one table, so a name, a range or a unit is
//! defined in exactly one place.

use crate::domain::Domain;
use crate::unit::Unit;

/// What values an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A finite number within `min..=max`, in the attribute's canonical unit.
    Number {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// One string out of a fixed set.
    Symbol(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
}

/// A validated attribute value. Symbols point into the attribute's own set,
/// so a value never owns memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A finite number in the canonical unit.
    Number(f64),
    /// One of the attribute's allowed strings.
    Symbol(&'static str),
    /// A boolean.
    Bool(bool),
}

/// Why a value does not fit its attribute (the caller adds key and topic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// JSON type differs from the attribute's type.
    WrongType,
    /// NaN or infinity.
    NotFinite,
    /// A number outside the attribute's range.
    OutOfRange,
    /// A string that is not one of the attribute's values.
    InvalidSymbol,
}

const POWER_STATES: &[&str] = &["on", "off", "low", "bootingUp"];
const LAMP_STATUSES: &[&str] = &["ok", "defectiveLamp", "columnIssue", "brokenLantern"];
const WASTE_STATUSES: &[&str] = &[
    "ok",
    "lidOpen",
    "dropped",
    "moved",
    "vandalized",
    "burning",
    "unknown",
];

macro_rules! attributes {
    ($( $(#[$doc:meta])* $variant:ident => $key:literal, $field:literal, $domain:expr, $kind:expr, $unit:expr; )+) => {
        /// An attribute of the data contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Attribute {
            $( $(#[$doc])* $variant, )+
        }

        impl Attribute {
            /// Every attribute, in declaration order (the order fields are written in).
            pub const ALL: &'static [Attribute] = &[$(Attribute::$variant),+];
            /// How many attributes there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The Smart Data Models name used on the wire.
            pub const fn key(self) -> &'static str {
                match self { $(Attribute::$variant => $key,)+ }
            }

            /// The field name written to the database.
            pub const fn field(self) -> &'static str {
                match self { $(Attribute::$variant => $field,)+ }
            }

            /// The domain it belongs to; `None` for attributes every device may send.
            pub const fn domain(self) -> Option<Domain> {
                match self { $(Attribute::$variant => $domain,)+ }
            }

            /// The values it takes.
            #[inline]
            pub const fn kind(self) -> Kind {
                match self { $(Attribute::$variant => $kind,)+ }
            }

            /// The canonical unit of a numeric attribute.
            pub const fn unit(self) -> Option<Unit> {
                match self { $(Attribute::$variant => $unit,)+ }
            }
        }
    };
}

const fn num(min: f64, max: f64) -> Kind {
    Kind::Number { min, max }
}

const ANY: Option<Domain> = None;
const L: Option<Domain> = Some(Domain::Lighting);
const W: Option<Domain> = Some(Domain::Waste);
const T: Option<Domain> = Some(Domain::Traffic);

attributes! {
    /// Battery charge, 0..1.
    BatteryLevel => "batteryLevel", "battery_ratio", ANY, num(0.0, 1.0), Some(Unit::Ratio);
    /// Received signal strength of the best gateway (LoRaWAN metadata).
    Rssi => "rssi", "rssi_dbm", ANY, num(-200.0, 50.0), Some(Unit::DecibelMilliwatt);
    /// Signal to noise ratio of the best gateway (LoRaWAN metadata).
    Snr => "snr", "snr_db", ANY, num(-50.0, 50.0), Some(Unit::Decibel);
    /// Lamp power state.
    PowerState => "powerState", "power_state", L, Kind::Symbol(POWER_STATES), None;
    /// Dimming level, 0..1 (not lux).
    IlluminanceLevel => "illuminanceLevel", "illuminance_level", L, num(0.0, 1.0), Some(Unit::Ratio);
    /// Instant power draw in W.
    PowerConsumption => "powerConsumption", "power_w", L, num(0.0, 10_000.0), Some(Unit::Watt);
    /// Energy meter reading in kWh.
    EnergyConsumed => "energyConsumed", "energy_kwh", L, num(0.0, f64::MAX), Some(Unit::KilowattHour);
    /// Supply voltage in V.
    Voltage => "voltage", "voltage_v", L, num(0.0, 1000.0), Some(Unit::Volt);
    /// Current in A.
    Current => "current", "current_a", L, num(0.0, 100.0), Some(Unit::Ampere);
    /// Lamp health.
    LampStatus => "status", "status", L, Kind::Symbol(LAMP_STATUSES), None;
    /// Fill level of a container, 0..1.
    FillingLevel => "fillingLevel", "fill_ratio", W, num(0.0, 1.0), Some(Unit::Ratio);
    /// Temperature inside a container in °C.
    Temperature => "temperature", "temperature_c", W, num(-40.0, 120.0), Some(Unit::Celsius);
    /// Methane concentration in µg/m³.
    MethaneConcentration => "methaneConcentration", "methane_ugm3", W, num(0.0, f64::MAX), Some(Unit::MicrogramPerCubicMetre);
    /// Weight of the load in kg.
    CargoWeight => "cargoWeight", "weight_kg", W, num(0.0, f64::MAX), Some(Unit::Kilogram);
    /// Container state.
    WasteStatus => "status", "status", W, Kind::Symbol(WASTE_STATUSES), None;
    /// Vehicles counted in the observation period.
    Intensity => "intensity", "vehicle_count", T, num(0.0, f64::MAX), Some(Unit::Count);
    /// Share of time the detector was occupied, 0..1.
    Occupancy => "occupancy", "occupancy_ratio", T, num(0.0, 1.0), Some(Unit::Ratio);
    /// Mean speed in km/h.
    AverageVehicleSpeed => "averageVehicleSpeed", "speed_kmh", T, num(0.0, 300.0), Some(Unit::KilometrePerHour);
    /// Mean vehicle length in m.
    AverageVehicleLength => "averageVehicleLength", "vehicle_length_m", T, num(0.0, 30.0), Some(Unit::Metre);
    /// Whether the lane is congested.
    Congested => "congested", "congested", T, Kind::Bool, None;
}

impl Attribute {
    /// Looks an attribute up by its wire name, as the given domain understands it
    /// (`status` means a different set of values for lamps and bins).
    #[inline]
    pub fn from_key(domain: Domain, key: &str) -> Option<Attribute> {
        let attribute = match key {
            "batteryLevel" => Attribute::BatteryLevel,
            "rssi" => Attribute::Rssi,
            "snr" => Attribute::Snr,
            "powerState" => Attribute::PowerState,
            "illuminanceLevel" => Attribute::IlluminanceLevel,
            "powerConsumption" => Attribute::PowerConsumption,
            "energyConsumed" => Attribute::EnergyConsumed,
            "voltage" => Attribute::Voltage,
            "current" => Attribute::Current,
            "status" => match domain {
                Domain::Lighting => Attribute::LampStatus,
                Domain::Waste => Attribute::WasteStatus,
                Domain::Traffic => return None,
            },
            "fillingLevel" => Attribute::FillingLevel,
            "temperature" => Attribute::Temperature,
            "methaneConcentration" => Attribute::MethaneConcentration,
            "cargoWeight" => Attribute::CargoWeight,
            "intensity" => Attribute::Intensity,
            "occupancy" => Attribute::Occupancy,
            "averageVehicleSpeed" => Attribute::AverageVehicleSpeed,
            "averageVehicleLength" => Attribute::AverageVehicleLength,
            "congested" => Attribute::Congested,
            _ => return None,
        };
        match attribute.domain() {
            Some(d) if d != domain => None,
            _ => Some(attribute),
        }
    }

    /// Position in [`Attribute::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Checks a number already in the canonical unit.
    #[inline]
    pub fn number(self, v: f64) -> Result<Value, ValueError> {
        match self.kind() {
            Kind::Number { min, max } => {
                if !v.is_finite() {
                    Err(ValueError::NotFinite)
                } else if v < min || v > max {
                    Err(ValueError::OutOfRange)
                } else {
                    // Normalise -0.0 so that a value's text never depends on its sign bit.
                    Ok(Value::Number(v + 0.0))
                }
            }
            _ => Err(ValueError::WrongType),
        }
    }

    /// Checks a string value.
    #[inline]
    pub fn symbol(self, s: &str) -> Result<Value, ValueError> {
        match self.kind() {
            Kind::Symbol(set) => set
                .iter()
                .find(|allowed| **allowed == s)
                .map(|allowed| Value::Symbol(allowed))
                .ok_or(ValueError::InvalidSymbol),
            _ => Err(ValueError::WrongType),
        }
    }

    /// Checks a boolean value.
    #[inline]
    pub fn boolean(self, b: bool) -> Result<Value, ValueError> {
        match self.kind() {
            Kind::Bool => Ok(Value::Bool(b)),
            _ => Err(ValueError::WrongType),
        }
    }

    /// The range of a numeric attribute as text, for messages.
    pub fn describe_kind(self) -> String {
        match self.kind() {
            Kind::Number { min, max } if max == f64::MAX => format!("a number ≥ {min}"),
            Kind::Number { min, max } => format!("a number in {min}..={max}"),
            Kind::Symbol(set) => format!("one of {}", set.join(", ")),
            Kind::Bool => "a boolean".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_per_domain() {
        assert_eq!(
            Attribute::from_key(Domain::Lighting, "status"),
            Some(Attribute::LampStatus)
        );
        assert_eq!(
            Attribute::from_key(Domain::Waste, "status"),
            Some(Attribute::WasteStatus)
        );
        assert_eq!(Attribute::from_key(Domain::Traffic, "status"), None);
        assert_eq!(Attribute::from_key(Domain::Waste, "powerConsumption"), None);
        assert_eq!(
            Attribute::from_key(Domain::Traffic, "batteryLevel"),
            Some(Attribute::BatteryLevel)
        );
    }

    #[test]
    fn every_attribute_round_trips_through_its_key() {
        for &a in Attribute::ALL {
            let domain = a.domain().unwrap_or(Domain::Lighting);
            assert_eq!(Attribute::from_key(domain, a.key()), Some(a), "{a:?}");
            assert_eq!(Attribute::ALL[a.index()], a);
        }
    }

    #[test]
    fn validation_reports_the_failure() {
        let p = Attribute::PowerConsumption;
        assert_eq!(p.number(40.0), Ok(Value::Number(40.0)));
        assert_eq!(p.number(-5.0), Err(ValueError::OutOfRange));
        assert_eq!(p.number(f64::INFINITY), Err(ValueError::NotFinite));
        assert_eq!(p.number(f64::NAN), Err(ValueError::NotFinite));
        assert_eq!(p.symbol("on"), Err(ValueError::WrongType));
        assert_eq!(Attribute::PowerState.symbol("on"), Ok(Value::Symbol("on")));
        assert_eq!(
            Attribute::PowerState.symbol("ON"),
            Err(ValueError::InvalidSymbol)
        );
        assert_eq!(Attribute::Congested.boolean(true), Ok(Value::Bool(true)));
    }
}
