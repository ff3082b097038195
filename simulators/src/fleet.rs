//! The fleet: every device of every commune built from a [`FleetSpec`],
//! each with its model, its wire format (drawn by the spec's weights), its
//! reporting phase and, for LoRaWAN devices, its radio neighbourhood.
//! [`Fleet::messages`] turns it into a stream of [`Message`](crate::Message)s.

use chrono::{DateTime, Utc, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemas::{Domain, Format};

use crate::format::{dev_eui, GatewayRx};
use crate::lighting::{Lamp, LampSite};
use crate::observation::Observation;
use crate::random::{device_rng, fnv1a, normal, round, Stream};
use crate::spec::{CommuneSpec, FleetSpec, SpecError};
use crate::stream::Messages;
use crate::traffic::{Counter, CounterSite};
use crate::waste::{Bin, BinSite, DAILY_COLLECTION_FROM};

/// Stream indices at and above this belong to gateways, not devices.
const GATEWAY_STREAMS: u64 = 1 << 40;

/// What a device is.
#[derive(Debug, Clone)]
pub(crate) enum Model {
    Lamp(Lamp),
    Bin(Bin),
    Counter(Counter),
}

/// A LoRaWAN gateway of a commune.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    id: String,
    eui: String,
    location: (f64, f64, i32),
}

/// One device of the fleet.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) index: usize,
    pub(crate) id: String,
    pub(crate) commune: usize,
    pub(crate) domain: Domain,
    pub(crate) format: Format,
    pub(crate) model: Model,
    /// Seconds between two messages (the period, for a counter).
    pub(crate) interval_s: i64,
    /// The device publishes at times ≡ `phase_s` modulo `interval_s`.
    pub(crate) phase_s: i64,
    /// Error of the device's clock, in seconds.
    pub(crate) skew_s: i64,
    pub(crate) dev_eui: String,
    pub(crate) f_cnt: u32,
    /// Gateways that hear the device and their mean RSSI.
    hears: Vec<(usize, f64)>,
    pub(crate) spreading_factor: u8,
    pub(crate) transport: ChaCha8Rng,
    pub(crate) silent: crate::random::Episode,
}

impl Device {
    /// The observations of a tick at `at`, before clock skew.
    pub(crate) fn observe(&mut self, at: DateTime<Utc>) -> Vec<Observation> {
        match &mut self.model {
            Model::Lamp(lamp) => vec![lamp.observe(at)],
            Model::Bin(bin) => vec![bin.observe(at)],
            Model::Counter(counter) => {
                let end = at - chrono::TimeDelta::seconds(self.phase_s.rem_euclid(self.interval_s));
                counter.observe(end)
            }
        }
    }
}

/// A simulated fleet, deterministic for its spec's seed.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub(crate) spec: FleetSpec,
    pub(crate) devices: Vec<Device>,
    gateways: Vec<Vec<Gateway>>,
    pub(crate) next_seq: u64,
}

/// A point within `radius_km` of a centre, uniform over the disc.
fn scatter(rng: &mut impl Rng, lat: f64, lon: f64, radius_km: f64) -> (f64, f64) {
    let r = radius_km * rng.random::<f64>().sqrt();
    let theta = rng.random_range(0.0..std::f64::consts::TAU);
    let dlat = r * theta.sin() / 111.32;
    let dlon = r * theta.cos() / (111.32 * lat.to_radians().cos());
    (round(lat + dlat, 6), round(lon + dlon, 6))
}

fn gateways(seed: u64, index: usize, c: &CommuneSpec) -> Vec<Gateway> {
    let mut rng = device_rng(seed, GATEWAY_STREAMS + index as u64, Stream::Model);
    let n = ((c.radius_km / 2.0).ceil() as usize + 1).clamp(2, 8);
    (1..=n)
        .map(|k| {
            let id = format!("gw-{}-{k:02}", c.id);
            let (lat, lon) = scatter(&mut rng, c.lat, c.lon, c.radius_km);
            Gateway {
                eui: format!("{:016x}", fnv1a(id.as_bytes())),
                location: (lat, lon, rng.random_range(10..120)),
                id,
            }
        })
        .collect()
}

fn weekday(day: Option<crate::spec::Day>) -> Option<Weekday> {
    day.map(crate::spec::Day::weekday)
}

impl Fleet {
    /// Builds the fleet of a spec, which is validated first.
    pub fn new(spec: &FleetSpec) -> Result<Self, SpecError> {
        spec.validate()?;
        let offset = spec.utc_offset_minutes().unwrap_or(0);
        let mut devices = Vec::new();
        let mut all_gateways = Vec::new();
        for (ci, c) in spec.communes.iter().enumerate() {
            let gws = gateways(spec.seed, ci, c);
            for (domain, count) in [
                (Domain::Lighting, c.lighting),
                (Domain::Waste, c.waste),
                (Domain::Traffic, c.traffic),
            ] {
                for n in 1..=count {
                    let device = build(spec, ci, c, domain, n, devices.len(), offset, &gws);
                    devices.push(device);
                }
            }
            all_gateways.push(gws);
        }
        Ok(Self {
            spec: spec.clone(),
            devices,
            gateways: all_gateways,
            next_seq: 0,
        })
    }

    /// The spec the fleet was built from.
    pub fn spec(&self) -> &FleetSpec {
        &self.spec
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether the fleet has no device.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Every device: id, domain and wire format, in fleet order.
    pub fn devices(&self) -> impl Iterator<Item = (&str, Domain, Format)> + '_ {
        self.devices
            .iter()
            .map(|d| (d.id.as_str(), d.domain, d.format))
    }

    /// The stream of messages published in `[from, to)`, in publication
    /// order (see [`Messages`]). Device state carries over from one call to
    /// the next, so consecutive ranges continue each other.
    pub fn messages(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Messages<'_> {
        Messages::new(self, from, to)
    }

    /// The gateways that hear a device, with this uplink's signal.
    pub(crate) fn receptions(&mut self, device: usize) -> Vec<GatewayRx> {
        let d = &mut self.devices[device];
        let gws = &self.gateways[d.commune];
        d.hears
            .iter()
            .filter_map(|&(g, mean)| {
                let gw = gws.get(g)?;
                let rssi = normal(&mut d.transport, mean, 3.0)
                    .round()
                    .clamp(-135.0, -40.0) as i32;
                let snr = ((f64::from(rssi) + 118.0) / 3.0 + normal(&mut d.transport, 0.0, 1.0))
                    .clamp(-20.0, 12.0);
                Some(GatewayRx {
                    id: gw.id.clone(),
                    eui: gw.eui.clone(),
                    rssi,
                    snr: (snr * 4.0).round() / 4.0,
                    location: gw.location,
                    delay_ms: d.transport.random_range(30..400),
                })
            })
            .collect()
    }
}

/// Builds one device; its model and transport streams are its own.
#[allow(clippy::too_many_arguments)]
fn build(
    spec: &FleetSpec,
    commune_index: usize,
    c: &CommuneSpec,
    domain: Domain,
    n: u32,
    index: usize,
    offset: i32,
    gws: &[Gateway],
) -> Device {
    let prefix = match domain {
        Domain::Lighting => "lamp",
        Domain::Waste => "bin",
        Domain::Traffic => "counter",
    };
    let id = format!("{prefix}-{}-{n:05}", c.id);
    let mut rng = device_rng(spec.seed, index as u64, Stream::Model);
    let mut transport = device_rng(spec.seed, index as u64, Stream::Transport);
    let (lat, lon) = scatter(&mut rng, c.lat, c.lon, c.radius_km);
    let rates = spec.faults;
    let (model, interval_s) = match domain {
        Domain::Lighting => {
            let site = LampSite {
                commune: c.id.clone(),
                device: id.clone(),
                lat,
                lon,
                utc_offset_minutes: offset,
            };
            (
                Model::Lamp(Lamp::new(site, rates, rng)),
                spec.intervals.lighting_s,
            )
        }
        Domain::Waste => {
            let site = BinSite {
                commune: c.id.clone(),
                device: id.clone(),
                utc_offset_minutes: offset,
                daily_collection: c.waste >= DAILY_COLLECTION_FROM,
                market_day: weekday(c.market_day),
            };
            (
                Model::Bin(Bin::new(site, rates, rng)),
                spec.intervals.waste_s,
            )
        }
        Domain::Traffic => {
            let period_s = spec.intervals.traffic_s;
            let site = CounterSite {
                commune: c.id.clone(),
                device: id.clone(),
                utc_offset_minutes: offset,
                period_s,
            };
            (Model::Counter(Counter::new(site, rates, rng)), period_s)
        }
    };
    let interval_s = i64::from(interval_s);
    let w = spec.formats;
    let pick = transport.random::<f64>() * (w.native + w.senml + w.the_things_stack + w.chirpstack);
    let format = if pick < w.native {
        Format::Native
    } else if pick < w.native + w.senml {
        Format::Senml
    } else if pick < w.native + w.senml + w.the_things_stack {
        Format::TheThingsStack
    } else {
        Format::ChirpStack
    };
    let phase_s = match domain {
        // A counter reports a little after its period ends.
        Domain::Traffic => transport.random_range(1..=interval_s.clamp(1, 30)),
        _ => transport.random_range(0..interval_s),
    };
    let skew = spec.faults.clock_skew_s;
    let skew_s = if skew > 0.0 {
        transport.random_range(-skew..=skew).round() as i64
    } else {
        0
    };
    let heard = transport.random_range(1..=3.min(gws.len().max(1)));
    let mut hears = Vec::with_capacity(heard);
    let mut mean = transport.random_range(-115.0..-75.0);
    while hears.len() < heard {
        let g = transport.random_range(0..gws.len().max(1));
        if !hears.iter().any(|&(h, _)| h == g) {
            hears.push((g, mean));
            mean -= transport.random_range(4.0..15.0);
        }
    }
    Device {
        index,
        dev_eui: dev_eui(&id),
        id,
        commune: commune_index,
        domain,
        format,
        model,
        interval_s,
        phase_s,
        skew_s,
        f_cnt: transport.random_range(0..50_000),
        hears,
        spreading_factor: transport.random_range(7..=10),
        transport,
        silent: crate::random::Episode::default(),
    }
}
