//! LoRaWAN network servers' uplinks: The Things Stack v3 (`v3/{application}@ttn/devices/{device}/up`)
//! and ChirpStack v4 (`application/{application}/device/{dev_eui}/event/up`),
//! with envelopes shaped like the servers' own, the observation in the
//! decoded payload under Smart Data Models names, and the radio metadata of
//! one to three gateways.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use schemas::Domain;
use serde_json::{json, Value as Json};

use super::{application, attributes, rfc3339_precise, to_bytes};
use crate::observation::Observation;
use crate::random::fnv1a;

/// One gateway's reception of an uplink.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRx {
    /// Gateway id (`gw-{commune}-{nn}`).
    pub id: String,
    /// Gateway EUI, 16 hex digits.
    pub eui: String,
    /// Received signal strength, dBm.
    pub rssi: i32,
    /// Signal to noise ratio, dB.
    pub snr: f64,
    /// Gateway position: latitude, longitude (degrees), altitude (m).
    pub location: (f64, f64, i32),
    /// Time from the uplink's transmission to this gateway's timestamp, ms.
    pub delay_ms: i64,
}

/// How one uplink travelled: the device's radio identity and the gateways
/// that heard it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    /// The device EUI (lowercase hex), see [`dev_eui`].
    pub dev_eui: String,
    /// Frame counter of the uplink.
    pub f_cnt: u32,
    /// When the device transmitted.
    pub sent_at: DateTime<Utc>,
    /// The gateways that heard it (at least one for a realistic uplink).
    pub gateways: Vec<GatewayRx>,
    /// Random bits for the server's identifiers (correlation, deduplication).
    pub token: u128,
    /// LoRa spreading factor, 7..=12.
    pub spreading_factor: u8,
    /// Channel index, 0..=7.
    pub channel: u8,
}

/// The EUI of a device: 16 lowercase hex digits, a hash of its id, so that
/// the same device always has the same EUI.
pub fn dev_eui(device: &str) -> String {
    format!("{:016x}", fnv1a(device.as_bytes()))
}

const FREQUENCIES: [u32; 8] = [
    868_100_000,
    868_300_000,
    868_500_000,
    867_100_000,
    867_300_000,
    867_500_000,
    867_700_000,
    867_900_000,
];

impl Link {
    fn frequency(&self) -> u32 {
        FREQUENCIES[usize::from(self.channel) % FREQUENCIES.len()]
    }

    fn at(&self, ms: i64) -> DateTime<Utc> {
        self.sent_at + TimeDelta::milliseconds(ms)
    }

    /// When the network server handled the uplink: after the last gateway.
    fn server_at(&self) -> DateTime<Utc> {
        let last = self.gateways.iter().map(|g| g.delay_ms).max().unwrap_or(0);
        self.at(last + 15)
    }

    /// The frame payload: bytes standing for the device's binary encoding.
    fn frm_payload(&self, obs: &Observation) -> String {
        let mut bytes = Vec::with_capacity(12);
        bytes.extend_from_slice(&fnv1a(format!("{obs:?}").as_bytes()).to_be_bytes());
        bytes.extend_from_slice(&self.f_cnt.to_be_bytes());
        base64(&bytes)
    }
}

fn domain_port(domain: Domain) -> u8 {
    match domain {
        Domain::Lighting => 3,
        Domain::Waste => 2,
        Domain::Traffic => 10,
    }
}

/// A Crockford base-32 ULID-like id from random bits.
fn ulid(bits: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .map(|i| char::from(ALPHABET[((bits >> (5 * (25 - i))) & 31) as usize]))
        .collect()
}

/// A version-4 UUID from random bits.
fn uuid(bits: u128) -> String {
    let b = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        b >> 96,
        (b >> 80) & 0xffff,
        (b >> 64) & 0xffff,
        (b >> 48) & 0xffff,
        b & 0xffff_ffff_ffff
    )
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A The Things Stack v3 uplink on `v3/{commune}-{domain}@ttn/devices/{device}/up`.
pub(super) fn the_things_stack(obs: &Observation, link: &Link) -> (String, Vec<u8>) {
    let app = application(obs);
    let topic = format!("v3/{app}@ttn/devices/{}/up", obs.device);
    let nanos = |t| rfc3339_precise(t, SecondsFormat::Nanos);
    let millis = |t| rfc3339_precise(t, SecondsFormat::Millis);
    let rx: Vec<Json> = link
        .gateways
        .iter()
        .map(|g| {
            json!({
                "gateway_ids": { "gateway_id": g.id, "eui": g.eui.to_uppercase() },
                "time": millis(link.at(g.delay_ms)),
                "timestamp": (fnv1a(g.id.as_bytes()) as u32).wrapping_add(link.f_cnt.wrapping_mul(60_000_000)),
                "rssi": g.rssi,
                "channel_rssi": g.rssi,
                "snr": g.snr,
                "location": { "latitude": g.location.0, "longitude": g.location.1, "altitude": g.location.2, "source": "SOURCE_REGISTRY" },
                "uplink_token": base64(&fnv1a(format!("{}{}", g.id, link.f_cnt).as_bytes()).to_le_bytes()),
                "channel_index": link.channel,
                "received_at": nanos(link.at(g.delay_ms + 5)),
            })
        })
        .collect();
    let server_at = link.server_at();
    let airtime_s = f64::from(1u32 << link.spreading_factor.saturating_sub(7)) * 0.051_456;
    let payload = json!({
        "end_device_ids": {
            "device_id": obs.device,
            "application_ids": { "application_id": app },
            "dev_eui": link.dev_eui.to_uppercase(),
            "join_eui": "70B3D57ED0000000",
            "dev_addr": format!("{:08X}", 0x2600_0000 | (fnv1a(obs.device.as_bytes()) as u32 & 0x01ff_ffff)),
        },
        "correlation_ids": [format!("as:up:{}", ulid(link.token)), format!("gs:uplink:{}", ulid(link.token.rotate_left(64)))],
        "received_at": nanos(server_at + TimeDelta::milliseconds(3)),
        "uplink_message": {
            "session_key_id": base64(&link.token.to_le_bytes()),
            "f_port": domain_port(obs.domain),
            "f_cnt": link.f_cnt,
            "frm_payload": link.frm_payload(obs),
            "decoded_payload": attributes(obs),
            "rx_metadata": rx,
            "settings": {
                "data_rate": { "lora": { "bandwidth": 125_000, "spreading_factor": link.spreading_factor, "coding_rate": "4/5" } },
                "frequency": link.frequency().to_string(),
                "timestamp": (fnv1a(obs.device.as_bytes()) as u32).wrapping_add(link.f_cnt),
            },
            "received_at": millis(server_at),
            "consumed_airtime": format!("{airtime_s:.6}s"),
            "network_ids": { "net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1", "cluster_address": "eu1.cloud.thethings.network" },
        },
    });
    (topic, to_bytes(&payload))
}

fn profile_name(domain: Domain) -> &'static str {
    match domain {
        Domain::Lighting => "Streetlight controller EU868",
        Domain::Waste => "Waste level sensor EU868",
        Domain::Traffic => "Traffic counter radar EU868",
    }
}

/// A ChirpStack v4 uplink event on
/// `application/{commune}-{domain}/device/{dev_eui}/event/up`. ChirpStack's
/// application ids are UUIDs; the simulated server names its applications
/// `{commune}-{domain}` and uses that name as the id too, so that topics
/// are readable and need no configuration in the service.
pub(super) fn chirpstack(obs: &Observation, link: &Link) -> (String, Vec<u8>) {
    let app = application(obs);
    let topic = format!("application/{app}/device/{}/event/up", link.dev_eui);
    let micros = |t| rfc3339_precise(t, SecondsFormat::Micros);
    let region = json!({ "region_config_id": "eu868", "region_common_name": "EU868" });
    let rx: Vec<Json> = link
        .gateways
        .iter()
        .map(|g| {
            json!({
                "gatewayId": g.eui,
                "uplinkId": fnv1a(format!("{}{}", g.id, link.f_cnt).as_bytes()) & 0xffff,
                "nsTime": micros(link.at(g.delay_ms + 10)),
                "rssi": g.rssi,
                "snr": g.snr,
                "channel": link.channel,
                "location": { "latitude": g.location.0, "longitude": g.location.1, "altitude": g.location.2 },
                "context": base64(&(fnv1a(g.eui.as_bytes()) as u32).wrapping_add(link.f_cnt).to_be_bytes()),
                "metadata": region,
                "crcStatus": "CRC_OK",
            })
        })
        .collect();
    let payload = json!({
        "deduplicationId": uuid(link.token),
        "time": micros(link.at(link.gateways.first().map_or(0, |g| g.delay_ms))),
        "deviceInfo": {
            "tenantId": uuid(u128::from(fnv1a(obs.commune.as_bytes())) << 64 | 0x5eed),
            "tenantName": format!("Commune {}", obs.commune),
            "applicationId": app,
            "applicationName": app,
            "deviceProfileId": uuid(u128::from(fnv1a(obs.domain.as_str().as_bytes()))),
            "deviceProfileName": profile_name(obs.domain),
            "deviceName": obs.device,
            "devEui": link.dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": format!("{:08x}", 0x0100_0000 | (fnv1a(obs.device.as_bytes()) as u32 & 0x00ff_ffff)),
        "adr": true,
        "dr": 12 - link.spreading_factor.clamp(7, 12),
        "fCnt": link.f_cnt,
        "fPort": domain_port(obs.domain),
        "confirmed": false,
        "data": link.frm_payload(obs),
        "object": attributes(obs),
        "rxInfo": rx,
        "txInfo": {
            "frequency": link.frequency(),
            "modulation": { "lora": { "bandwidth": 125_000, "spreadingFactor": link.spreading_factor, "codeRate": "CR_4_5" } },
        },
        "regionConfigId": "eu868",
    });
    (topic, to_bytes(&payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_standard() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0xfc]), "//79/A==");
        let id = uuid(u128::MAX);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(ulid(0).len(), 26);
        assert_eq!(dev_eui("lamp-rabat-00001").len(), 16);
        assert_ne!(dev_eui("lamp-rabat-00001"), dev_eui("lamp-rabat-00002"));
    }
}
