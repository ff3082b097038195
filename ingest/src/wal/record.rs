//! One record of the log: an MQTT message as received, framed and checked.
//!
//! ```text
//! len   u32 LE   bytes of the body
//! crc   u32 LE   CRC-32 (IEEE) of the four `len` bytes, then of the body
//! body  lsn u64 LE | received_at i64 LE (ns) | topic_len u16 LE | topic | payload
//! ```
//!
//! The CRC covers the length too, so a torn or flipped length is caught, and
//! the body carries its own sequence number, so a record found in the wrong
//! place is caught as well.

use bytes::Bytes;
use schemas::Timestamp;

/// Bytes before the body.
pub const HEADER: usize = 8;
/// Bytes of the body before the topic.
const FIXED: usize = 8 + 8 + 2;
/// The largest body accepted when reading: larger lengths are corruption.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// A message read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its sequence number in the log.
    pub lsn: u64,
    /// When the service received it.
    pub received_at: Timestamp,
    /// MQTT topic.
    pub topic: String,
    /// MQTT payload.
    pub payload: Bytes,
}

/// Why the bytes at an offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bad {
    /// The bytes end before the record does: a torn write.
    #[error("the record is cut short ({have} of {need} bytes)")]
    Incomplete {
        /// Bytes there.
        have: usize,
        /// Bytes the record needs.
        need: usize,
    },
    /// The length is impossible.
    #[error("impossible record length {0}")]
    Length(usize),
    /// The checksum does not match.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// As stored.
        stored: u32,
        /// As computed.
        computed: u32,
    },
    /// The record is intact but not the one expected here.
    #[error("sequence number {found} where {expected} was expected")]
    Sequence {
        /// In the record.
        found: u64,
        /// Expected at this place.
        expected: u64,
    },
    /// The body does not hold together (topic length, UTF-8).
    #[error("malformed body: {0}")]
    Body(&'static str),
}

/// The bytes a record of this topic and payload takes.
pub fn encoded_len(topic: &str, payload: &[u8]) -> usize {
    HEADER + FIXED + topic.len() + payload.len()
}

/// Appends one record to `out`.
///
/// # Panics
/// Never for MQTT topics (at most 65,535 bytes by the protocol); a longer
/// topic is cut to that length by the caller's contract.
pub fn encode(out: &mut Vec<u8>, lsn: u64, received_at: Timestamp, topic: &str, payload: &[u8]) {
    let topic = &topic.as_bytes()[..topic.len().min(usize::from(u16::MAX))];
    let body_len = FIXED + topic.len() + payload.len();
    let len = u32::try_from(body_len).unwrap_or(u32::MAX).to_le_bytes();
    let start = out.len();
    out.reserve(HEADER + body_len);
    out.extend_from_slice(&len);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&received_at.as_nanos().to_le_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(payload);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&out[start + HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// Reads the record at the start of `buf`, which must carry `expected`;
/// returns it with the bytes it took.
pub fn decode(buf: &[u8], expected: u64) -> Result<(Record, usize), Bad> {
    if buf.len() < HEADER {
        return Err(Bad::Incomplete {
            have: buf.len(),
            need: HEADER,
        });
    }
    let len_bytes: [u8; 4] = buf[..4].try_into().unwrap_or_default();
    let len = u32::from_le_bytes(len_bytes) as usize;
    if !(FIXED..=MAX_BODY).contains(&len) {
        return Err(Bad::Length(len));
    }
    let need = HEADER + len;
    if buf.len() < need {
        return Err(Bad::Incomplete {
            have: buf.len(),
            need,
        });
    }
    let stored = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    let body = &buf[HEADER..need];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len_bytes);
    crc.update(body);
    let computed = crc.finalize();
    if stored != computed {
        return Err(Bad::Checksum { stored, computed });
    }
    let lsn = u64::from_le_bytes(body[..8].try_into().unwrap_or_default());
    if lsn != expected {
        return Err(Bad::Sequence {
            found: lsn,
            expected,
        });
    }
    let nanos = i64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
    let topic_len = usize::from(u16::from_le_bytes(
        body[16..18].try_into().unwrap_or_default(),
    ));
    let rest = &body[FIXED..];
    if topic_len > rest.len() {
        return Err(Bad::Body("topic longer than the record"));
    }
    let topic = std::str::from_utf8(&rest[..topic_len])
        .map_err(|_| Bad::Body("topic is not UTF-8"))?
        .to_owned();
    Ok((
        Record {
            lsn,
            received_at: Timestamp::from_nanos(nanos),
            topic,
            payload: Bytes::copy_from_slice(&rest[topic_len..]),
        },
        need,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Vec<u8> {
        let mut buf = Vec::new();
        encode(
            &mut buf,
            7,
            Timestamp::from_secs(1_795_896_000),
            "city/rabat/lighting/lamp-1/telemetry",
            br#"{"powerConsumption": 40}"#,
        );
        buf
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let buf = one();
        assert_eq!(
            buf.len(),
            encoded_len(
                "city/rabat/lighting/lamp-1/telemetry",
                br#"{"powerConsumption": 40}"#
            )
        );
        let (r, used) = decode(&buf, 7).expect("valid");
        assert_eq!(used, buf.len());
        assert_eq!(r.lsn, 7);
        assert_eq!(r.received_at, Timestamp::from_secs(1_795_896_000));
        assert_eq!(r.topic, "city/rabat/lighting/lamp-1/telemetry");
        assert_eq!(&r.payload[..], br#"{"powerConsumption": 40}"#);
    }

    #[test]
    fn every_cut_is_incomplete_and_every_flip_is_caught() {
        let buf = one();
        for cut in 0..buf.len() {
            assert!(
                matches!(
                    decode(&buf[..cut], 7),
                    Err(Bad::Incomplete { .. } | Bad::Length(_))
                ),
                "cut at {cut}"
            );
        }
        for at in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[at] ^= 1 << bit;
                assert!(decode(&b, 7).is_err(), "flip of bit {bit} at {at}");
            }
        }
    }

    #[test]
    fn a_record_out_of_place_is_caught() {
        assert_eq!(
            decode(&one(), 8).expect_err("wrong place"),
            Bad::Sequence {
                found: 7,
                expected: 8
            }
        );
    }
}
