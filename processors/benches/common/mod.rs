//! The streams the pipeline benchmark runs, and the pipeline itself, shared
//! by `benches/pipeline.rs` and `examples/pipeline_once.rs` (which runs one
//! stream once, for instruction counts under callgrind).

use std::hint::black_box;

use processors::encode::encode_reading;
use processors::window::{WindowConfig, Windows};
use schemas::decode::Decoder;
use schemas::{Reading, Timestamp};

/// 2026-11-28T20:00:00Z.
const START_S: i64 = 1_795_896_000;
const COMMUNES: [&str; 5] = ["rabat", "casablanca", "chefchaouen", "benguerir", "berkane"];

/// A message as it arrives: topic, payload, time of receipt.
pub struct Message {
    topic: String,
    payload: Vec<u8>,
    received_at: Timestamp,
}

/// A small deterministic generator, so runs are comparable.
pub struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 10_000) as f64 / 10_000.0
    }
}

fn rfc3339(s: i64) -> String {
    Timestamp::from_secs(s).to_string()
}

pub fn native(rng: &mut Lcg, i: usize, t: i64) -> Message {
    let commune = COMMUNES[i % COMMUNES.len()];
    let device = i / 3;
    let (domain, payload) = match i % 3 {
        0 => (
            "lighting",
            format!(
                r#"{{"id":"lamp-{commune}-{device:05}","dateObserved":"{}","powerState":"on","illuminanceLevel":{:.2},"powerConsumption":{:.1},"voltage":{:.1},"current":0.19,"status":"ok"}}"#,
                rfc3339(t),
                rng.unit(),
                20.0 + 40.0 * rng.unit(),
                225.0 + 10.0 * rng.unit()
            ),
        ),
        1 => (
            "waste",
            format!(
                r#"{{"id":"bin-{commune}-{device:05}","dateObserved":{t},"fillingLevel":{:.2},"temperature":{:.1},"status":"ok","batteryLevel":0.77}}"#,
                rng.unit(),
                15.0 + 20.0 * rng.unit()
            ),
        ),
        _ => (
            "traffic",
            format!(
                r#"{{"id":"counter-{commune}-{device:05}","dateObserved":"{}/{}","laneId":{},"intensity":{},"occupancy":{:.2},"averageVehicleSpeed":{:.1},"averageVehicleLength":4.6,"congested":false}}"#,
                rfc3339(t),
                rfc3339(t + 300),
                1 + i % 2,
                rng.next() % 200,
                rng.unit(),
                20.0 + 60.0 * rng.unit()
            ),
        ),
    };
    let prefix = match domain {
        "lighting" => "lamp",
        "waste" => "bin",
        _ => "counter",
    };
    Message {
        topic: format!("city/{commune}/{domain}/{prefix}-{commune}-{device:05}/telemetry"),
        payload: payload.into_bytes(),
        received_at: Timestamp::from_secs(t + 1),
    }
}

pub fn senml(rng: &mut Lcg, i: usize, t: i64) -> Message {
    let commune = COMMUNES[i % COMMUNES.len()];
    let device = format!("lamp-{commune}-s{:05}", i / 2);
    let payload = format!(
        r#"[{{"bn":"urn:dev:ow:{device}:","bt":{t},"bu":"W","n":"powerConsumption","v":{:.1}}},{{"n":"illuminanceLevel","u":"/","v":{:.2}}},{{"n":"powerState","vs":"on"}},{{"n":"energyConsumed","u":"kWh","v":{:.1}}}]"#,
        20.0 + 40.0 * rng.unit(),
        rng.unit(),
        1000.0 + 100.0 * rng.unit()
    );
    Message {
        topic: format!("city/{commune}/lighting/{device}/telemetry"),
        payload: payload.into_bytes(),
        received_at: Timestamp::from_secs(t + 1),
    }
}

/// The domain and payload-formatter output of LoRaWAN device `i`: waste
/// for even devices, traffic for odd ones.
fn decoded_payload(rng: &mut Lcg, i: usize) -> (&'static str, String) {
    if i.is_multiple_of(2) {
        (
            "waste",
            format!(
                r#"{{"fillingLevel":{:.2},"temperature":{:.1},"batteryLevel":0.8,"status":"ok"}}"#,
                rng.unit(),
                15.0 + 20.0 * rng.unit()
            ),
        )
    } else {
        (
            "traffic",
            format!(
                r#"{{"laneId":1,"intensity":{},"occupancy":{:.2},"averageVehicleSpeed":{:.1}}}"#,
                rng.next() % 200,
                rng.unit(),
                20.0 + 60.0 * rng.unit()
            ),
        )
    }
}

pub fn tts(rng: &mut Lcg, i: usize, t: i64) -> Message {
    let commune = COMMUNES[i % COMMUNES.len()];
    let (domain, decoded) = decoded_payload(rng, i);
    let app = format!("{commune}-{domain}");
    let device = format!("{domain}-{commune}-l{:05}", i / 2);
    let at = rfc3339(t);
    let payload = format!(
        r#"{{"end_device_ids":{{"device_id":"{device}","application_ids":{{"application_id":"{app}"}},"dev_eui":"70B3D57ED0051A2F","join_eui":"0000000000000000","dev_addr":"260B1F4A"}},"correlation_ids":["as:up:01HZ3K9Q7T8V2W3X4Y5Z6A7B8C"],"received_at":"{at}","uplink_message":{{"session_key_id":"AYjJ8Jv2gkYk3WlqkP0X4w==","f_port":2,"f_cnt":{i},"frm_payload":"UwAZAQ==","decoded_payload":{decoded},"rx_metadata":[{{"gateway_ids":{{"gateway_id":"gw-{commune}-01","eui":"B827EBFFFE8A1C2D"}},"time":"{at}","rssi":-97,"channel_rssi":-97,"snr":7.25}},{{"gateway_ids":{{"gateway_id":"gw-{commune}-02"}},"rssi":-112,"snr":-3.5}}],"settings":{{"data_rate":{{"lora":{{"bandwidth":125000,"spreading_factor":9}}}},"frequency":"868100000"}},"received_at":"{at}","consumed_airtime":"0.205824s","network_ids":{{"net_id":"000013","tenant_id":"ttn","cluster_id":"eu1"}}}}}}"#
    );
    Message {
        topic: format!("v3/{app}@ttn/devices/{device}/up"),
        payload: payload.into_bytes(),
        received_at: Timestamp::from_secs(t + 1),
    }
}

/// A ChirpStack v4 uplink event (waste or traffic), shaped as the
/// simulator's: device info, the codec's `object`, two gateways with their
/// location and metadata, and the radio settings (~1.2 kB).
pub fn chirpstack(rng: &mut Lcg, i: usize, t: i64) -> Message {
    let commune = COMMUNES[i % COMMUNES.len()];
    let (domain, object) = decoded_payload(rng, i);
    let app = format!("{commune}-{domain}");
    let device = format!("{domain}-{commune}-c{:05}", i / 2);
    let eui = format!("70b3d57ed0{i:06x}");
    let at = rfc3339(t);
    let payload = format!(
        r#"{{"deduplicationId":"3f0b6d2c-1a4e-4c8f-9b7d-{i:012x}","time":"{at}","deviceInfo":{{"tenantId":"52f14cd4-c6f1-4fbd-8f87-4025e1d49242","tenantName":"Commune {commune}","applicationId":"{app}","applicationName":"{app}","deviceProfileId":"0d4f3a6e-8f2b-4c3a-9e1d-5b7c2a1f0e9d","deviceProfileName":"{domain} sensor","deviceName":"{device}","devEui":"{eui}","deviceClassEnabled":"CLASS_A","tags":{{}}}},"devAddr":"01a3c5e7","adr":true,"dr":3,"fCnt":{i},"fPort":2,"confirmed":false,"data":"UwAZAQ==","object":{object},"rxInfo":[{{"gatewayId":"b827ebfffe8a1c2d","uplinkId":40213,"nsTime":"{at}","rssi":-97,"snr":7.25,"channel":2,"location":{{"latitude":34.02,"longitude":-6.84,"altitude":60.0}},"context":"AAAAAQ==","metadata":{{"region_config_id":"eu868","region_common_name":"EU868"}},"crcStatus":"CRC_OK"}},{{"gatewayId":"b827ebfffe8a1c3e","uplinkId":1877,"nsTime":"{at}","rssi":-112,"snr":-3.5,"channel":2,"location":{{"latitude":34.01,"longitude":-6.83,"altitude":52.0}},"context":"AAAAAg==","metadata":{{"region_config_id":"eu868","region_common_name":"EU868"}},"crcStatus":"CRC_OK"}}],"txInfo":{{"frequency":868100000,"modulation":{{"lora":{{"bandwidth":125000,"spreadingFactor":9,"codeRate":"CR_4_5"}}}}}},"regionConfigId":"eu868"}}"#
    );
    Message {
        topic: format!("application/{app}/device/{eui}/event/up"),
        payload: payload.into_bytes(),
        received_at: Timestamp::from_secs(t + 1),
    }
}

/// How many devices report; each reports once per simulated minute.
pub const DEVICES: usize = 20_000;
/// Messages per stream: ten simulated minutes, about 333 messages per second.
pub const MESSAGES: usize = 10 * DEVICES;

/// `n` messages from `make`: every device reports once a minute, at its own
/// second within the minute, so one-minute windows open, close and are
/// emitted as the stream goes.
pub fn stream(n: usize, make: Make) -> Vec<Message> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|i| {
            let device = i % DEVICES;
            let minute = (i / DEVICES) as i64;
            let second = (device * 60 / DEVICES) as i64;
            make(&mut rng, device, START_S + 60 * minute + second)
        })
        .collect()
}

/// The realistic mix: 70 % native, 15 % SenML, 15 % The Things Stack.
pub fn mixed(rng: &mut Lcg, i: usize, t: i64) -> Message {
    match i % 20 {
        0..=13 => native(rng, i, t),
        14..=16 => senml(rng, i, t),
        _ => tts(rng, i, t),
    }
}

pub struct Pipeline {
    pub decoder: Decoder,
    pub windows: Windows,
    pub readings: Vec<Reading>,
    pub out: Vec<u8>,
}

impl Pipeline {
    pub fn new() -> Self {
        Self {
            decoder: Decoder::default(),
            // Every device holds up to seven one-minute windows (the current
            // one and those the allowed lateness keeps open): more than the
            // default cap allows for this many devices.
            windows: Windows::new(WindowConfig {
                max_open_windows: 8 * DEVICES,
                ..WindowConfig::default()
            }),
            readings: Vec::with_capacity(16),
            out: Vec::with_capacity(1 << 20),
        }
    }

    /// Runs every message through; returns how many were rejected.
    pub fn run(&mut self, messages: &[Message]) -> usize {
        self.run_into(messages, |out| {
            black_box(out);
        })
    }

    /// As [`Pipeline::run`], showing `written` the lines of every batch
    /// (those of the last, unfinished batch stay in `out`).
    pub fn run_into(&mut self, messages: &[Message], mut written: impl FnMut(&[u8])) -> usize {
        let mut rejected = 0;
        for (i, m) in messages.iter().enumerate() {
            if self
                .decoder
                .decode(&m.topic, &m.payload, m.received_at, &mut self.readings)
                .is_err()
            {
                rejected += 1;
            }
            for r in self.readings.drain(..) {
                self.windows.record(&r);
                let _ = encode_reading(&r, &mut self.out);
            }
            if i % 1024 == 1023 {
                let _ = self.windows.drain_encoded(&mut self.out);
                written(&self.out);
                self.out.clear();
            }
        }
        rejected
    }
}

/// Makes message `i` of a stream, at `t` seconds since the epoch.
pub type Make = fn(&mut Lcg, usize, i64) -> Message;

/// Every stream the benchmark runs, by name.
pub const STREAMS: [(&str, Make); 5] = [
    ("native", native),
    ("senml", senml),
    ("the_things_stack", tts),
    ("chirpstack", chirpstack),
    ("mixed", mixed),
];
