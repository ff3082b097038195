//! The three municipal services a device can belong to.

use std::fmt;

/// A municipal service; it is the measurement name of raw points.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Street lights (FIWARE `Streetlight`).
    Lighting,
    /// Waste containers (FIWARE `WasteContainer`).
    Waste,
    /// Traffic counters (FIWARE `TrafficFlowObserved`).
    Traffic,
}

impl Domain {
    /// Every domain, in a stable order.
    pub const ALL: [Domain; 3] = [Domain::Lighting, Domain::Waste, Domain::Traffic];

    /// The name used in topics and as the measurement.
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Lighting => "lighting",
            Domain::Waste => "waste",
            Domain::Traffic => "traffic",
        }
    }

    /// Parses a topic level or configuration value.
    pub fn parse(s: &str) -> Option<Domain> {
        match s {
            "lighting" => Some(Domain::Lighting),
            "waste" => Some(Domain::Waste),
            "traffic" => Some(Domain::Traffic),
            _ => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
