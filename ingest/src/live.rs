//! What the service has decoded so far, device by device: the latest state of
//! every lamp, bin and traffic lane, and counts of messages taken in and
//! rejected. The processor updates it when one is attached
//! ([`Processor::with_observer`](crate::process::Processor::with_observer));
//! `ingest demo` reads it for its live summary.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use schemas::{Attribute, Domain, Reading, Reason};

/// Power states in which a lamp gives light (as the commune rollups count them).
const LIT: &[&str] = &["on", "low", "bootingUp"];

/// A [`LiveState`] shared between the processor and its readers.
pub type SharedLive = Arc<Mutex<LiveState>>;

/// A value and the event time (ns) it was observed at.
#[derive(Debug, Clone, Copy, Default)]
struct Latest<T> {
    at: i64,
    value: Option<T>,
}

impl<T: Copy> Latest<T> {
    /// Keeps `value` unless a later one is already held.
    fn offer(&mut self, at: i64, value: Option<T>) {
        if let Some(v) = value {
            if self.value.is_none() || at >= self.at {
                self.at = at;
                self.value = Some(v);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Lamp {
    power_state: Latest<&'static str>,
    status: Latest<&'static str>,
    power_w: Latest<f64>,
}

impl Lamp {
    fn on(&self) -> bool {
        self.power_state.value.is_some_and(|s| LIT.contains(&s))
    }

    /// A status other than `ok`, or switched on and drawing nothing.
    fn failed(&self) -> bool {
        let bad_status = self.status.value.is_some_and(|s| s != "ok");
        let dark_while_on = self.power_state.value == Some("on") && self.power_w.value == Some(0.0);
        bad_status || dark_while_on
    }
}

/// The latest state of one commune's devices.
#[derive(Debug, Clone, Default)]
struct Commune {
    lamps: HashMap<String, Lamp>,
    bins: HashMap<String, Latest<f64>>,
    /// By device and lane.
    lanes: HashMap<(String, u32), Latest<bool>>,
}

/// One commune's figures, from the latest state of each device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommuneFigures {
    /// The commune id.
    pub commune: String,
    /// Lamps heard from.
    pub lamps: usize,
    /// Lamps giving light.
    pub lamps_on: usize,
    /// Lamps failed.
    pub lamps_failed: usize,
    /// Bins heard from.
    pub bins: usize,
    /// Bins at or above the full threshold.
    pub bins_full: usize,
    /// Lanes heard from.
    pub lanes: usize,
    /// Lanes whose latest period was congested.
    pub lanes_congested: usize,
}

/// Counts and the latest state of every device, as decoded.
#[derive(Debug, Clone)]
pub struct LiveState {
    full_threshold: f64,
    messages: u64,
    readings: u64,
    rejected: BTreeMap<&'static str, u64>,
    communes: HashMap<String, Commune>,
}

impl LiveState {
    /// An empty state; a bin counts as full at `full_threshold` and above.
    pub fn new(full_threshold: f64) -> Self {
        Self {
            full_threshold,
            messages: 0,
            readings: 0,
            rejected: BTreeMap::new(),
            communes: HashMap::new(),
        }
    }

    /// An empty state, shared.
    pub fn shared(full_threshold: f64) -> SharedLive {
        Arc::new(Mutex::new(Self::new(full_threshold)))
    }

    /// Locks a shared state; a panic elsewhere while it was held does not
    /// make it unreadable.
    pub fn lock(shared: &SharedLive) -> MutexGuard<'_, LiveState> {
        shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a message that decoded.
    pub fn decoded(&mut self) {
        self.messages += 1;
    }

    /// Counts a rejected message.
    pub fn rejected(&mut self, reason: Reason) {
        self.messages += 1;
        *self.rejected.entry(reason.as_str()).or_default() += 1;
    }

    /// Takes in one reading.
    pub fn reading(&mut self, r: &Reading) {
        self.readings += 1;
        let at = r.time.as_nanos();
        let v = &r.values;
        let commune = self.communes.entry(r.commune.clone()).or_default();
        match r.domain {
            Domain::Lighting => {
                let lamp = commune.lamps.entry(r.device.clone()).or_default();
                lamp.power_state.offer(at, v.symbol(Attribute::PowerState));
                lamp.status.offer(at, v.symbol(Attribute::LampStatus));
                lamp.power_w
                    .offer(at, v.number(Attribute::PowerConsumption));
            }
            Domain::Waste => {
                commune
                    .bins
                    .entry(r.device.clone())
                    .or_default()
                    .offer(at, v.number(Attribute::FillingLevel));
            }
            Domain::Traffic => {
                let key = (r.device.clone(), r.lane.unwrap_or(0));
                commune
                    .lanes
                    .entry(key)
                    .or_default()
                    .offer(at, v.boolean(Attribute::Congested));
            }
        }
    }

    /// Messages taken in (decoded or rejected).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Readings taken in.
    pub fn readings(&self) -> u64 {
        self.readings
    }

    /// Rejected messages by reason, only the reasons seen.
    pub fn rejections(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.rejected.iter().map(|(r, n)| (*r, *n))
    }

    /// The figures of every commune heard from, by commune id.
    pub fn figures(&self) -> Vec<CommuneFigures> {
        let mut out: Vec<CommuneFigures> = self
            .communes
            .iter()
            .map(|(id, c)| CommuneFigures {
                commune: id.clone(),
                lamps: c.lamps.len(),
                lamps_on: c.lamps.values().filter(|l| l.on()).count(),
                lamps_failed: c.lamps.values().filter(|l| l.failed()).count(),
                bins: c.bins.len(),
                bins_full: c
                    .bins
                    .values()
                    .filter(|b| b.value.is_some_and(|f| f >= self.full_threshold))
                    .count(),
                lanes: c.lanes.len(),
                lanes_congested: c.lanes.values().filter(|l| l.value == Some(true)).count(),
            })
            .collect();
        out.sort_by(|a, b| a.commune.cmp(&b.commune));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::{Timestamp, Value};

    fn reading(domain: Domain, device: &str, at: i64, values: &[(Attribute, Value)]) -> Reading {
        let mut r = Reading::new(domain, "rabat", device, Timestamp::from_secs(at));
        for (a, v) in values {
            r.values.set(*a, *v);
        }
        r
    }

    #[test]
    fn figures_follow_the_latest_state_of_each_device() {
        use Attribute::{Congested, FillingLevel, LampStatus, PowerConsumption, PowerState};
        let mut live = LiveState::new(0.8);
        let on = Value::Symbol("on");
        live.reading(&reading(Domain::Lighting, "l-1", 10, &[(PowerState, on)]));
        live.reading(&reading(
            Domain::Lighting,
            "l-2",
            10,
            &[(PowerState, on), (PowerConsumption, Value::Number(0.0))],
        ));
        live.reading(&reading(
            Domain::Lighting,
            "l-3",
            10,
            &[
                (PowerState, Value::Symbol("off")),
                (LampStatus, Value::Symbol("defectiveLamp")),
            ],
        ));
        // An older reading does not undo a newer one.
        live.reading(&reading(
            Domain::Lighting,
            "l-1",
            5,
            &[(PowerState, Value::Symbol("off"))],
        ));
        live.reading(&reading(
            Domain::Waste,
            "b-1",
            10,
            &[(FillingLevel, Value::Number(0.8))],
        ));
        live.reading(&reading(
            Domain::Waste,
            "b-2",
            10,
            &[(FillingLevel, Value::Number(0.9))],
        ));
        live.reading(&reading(
            Domain::Waste,
            "b-2",
            20,
            &[(FillingLevel, Value::Number(0.1))],
        ));
        let mut lane = reading(
            Domain::Traffic,
            "c-1",
            10,
            &[(Congested, Value::Bool(true))],
        );
        lane.lane = Some(1);
        live.reading(&lane);
        lane.lane = Some(2);
        lane.values.set(Congested, Value::Bool(false));
        live.reading(&lane);
        live.decoded();
        live.rejected(Reason::InvalidJson);
        assert_eq!(
            live.figures(),
            vec![CommuneFigures {
                commune: "rabat".to_owned(),
                lamps: 3,
                lamps_on: 2,
                lamps_failed: 2,
                bins: 2,
                bins_full: 1,
                lanes: 2,
                lanes_congested: 1,
            }]
        );
        assert_eq!(live.messages(), 2);
        assert_eq!(live.readings(), 9);
        assert_eq!(
            live.rejections().collect::<Vec<_>>(),
            vec![("invalid_json", 1)]
        );
    }
}
