//! What travels between the stages.

use bytes::Bytes;
use schemas::Timestamp;

use crate::mqtt::Acks;
use crate::wal::Checkpoint;

/// An MQTT message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic it was published on.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
    /// When the service received it.
    pub received_at: Timestamp,
}

/// Messages moved together from the source to the processor (through the
/// write-ahead log when it is on).
#[derive(Debug, Default)]
pub struct MessageBatch {
    /// The messages, in receive order.
    pub messages: Vec<Message>,
    /// The acknowledgements the broker is owed for them, sent once they are
    /// durable (empty when acknowledged already, or replayed).
    pub acks: Acks,
    /// The log position after the last message: a checkpoint taken after
    /// processing this batch replays from here. `None` without a log.
    pub end: Option<u64>,
}

impl MessageBatch {
    /// A batch of messages owing nothing, outside the log.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            acks: Acks::default(),
            end: None,
        }
    }
}

/// Encoded line protocol moved from the processor to the sink: whole lines,
/// each ending in `\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineBatch {
    /// The lines.
    pub buf: Vec<u8>,
    /// Lines of raw readings in `buf`.
    pub raw: usize,
    /// Lines of windows and rollups in `buf`.
    pub windows: usize,
    /// A checkpoint to write once these lines, and all before them, are in
    /// the database.
    pub checkpoint: Option<Checkpoint>,
}

impl LineBatch {
    /// Lines in the batch.
    pub fn lines(&self) -> usize {
        self.raw + self.windows
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether it holds neither a line nor a checkpoint.
    pub fn is_void(&self) -> bool {
        self.buf.is_empty() && self.checkpoint.is_none()
    }
}

/// A record for the dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadLetter {
    /// A message the decoder rejected: published on `{prefix}{topic}`.
    Message {
        /// Topic it came on.
        topic: String,
        /// Its payload.
        payload: Bytes,
        /// `Reason::as_str`.
        reason: &'static str,
        /// What was wrong, naming key and value.
        message: String,
        /// When it was received.
        received_at: Timestamp,
    },
    /// A line the database refused as malformed: published on `{prefix}sink`.
    Line {
        /// The line, without its newline.
        line: String,
        /// HTTP status of the refusal.
        status: u16,
        /// The database's error text.
        error: String,
    },
}

impl DeadLetter {
    /// The topic it is published on, below the dead-letter prefix.
    pub fn topic(&self, prefix: &str) -> String {
        match self {
            DeadLetter::Message { topic, .. } => format!("{prefix}{topic}"),
            DeadLetter::Line { .. } => format!("{prefix}sink"),
        }
    }

    /// The JSON published: `reason`, `topic`, `payload`, `received_at` for a
    /// message (the payload as text when it is UTF-8, else base64 under
    /// `payload_base64`); `reason`, `line`, `status`, `error` for a line.
    pub fn to_json(&self) -> Vec<u8> {
        let value = match self {
            DeadLetter::Message {
                topic,
                payload,
                reason,
                message,
                received_at,
            } => {
                let mut v = serde_json::json!({
                    "reason": reason,
                    "message": message,
                    "topic": topic,
                    "received_at": received_at.to_string(),
                });
                match std::str::from_utf8(payload) {
                    Ok(text) => v["payload"] = text.into(),
                    Err(_) => v["payload_base64"] = base64(payload).into(),
                }
                v
            }
            DeadLetter::Line {
                line,
                status,
                error,
            } => serde_json::json!({
                "reason": "rejected_by_database",
                "line": line,
                "status": status,
                "error": error,
            }),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_carry_reason_topic_and_payload() {
        let d = DeadLetter::Message {
            topic: "city/rabat/lighting/lamp-1/telemetry".into(),
            payload: Bytes::from_static(b"{\"powerConsumption\": -5}"),
            reason: "out_of_range",
            message: "key `powerConsumption`: -5 is out of range".into(),
            received_at: Timestamp::from_secs(1_795_896_000),
        };
        assert_eq!(d.topic("dlq/"), "dlq/city/rabat/lighting/lamp-1/telemetry");
        let v: serde_json::Value = serde_json::from_slice(&d.to_json()).expect("JSON");
        assert_eq!(v["reason"], "out_of_range");
        assert_eq!(v["topic"], "city/rabat/lighting/lamp-1/telemetry");
        assert_eq!(v["payload"], "{\"powerConsumption\": -5}");
        assert_eq!(v["received_at"], "2026-11-28T20:00:00Z");
    }

    #[test]
    fn binary_payloads_are_base64() {
        let d = DeadLetter::Message {
            topic: "t".into(),
            payload: Bytes::from_static(&[0xff, 0x00, b'a', b'b']),
            reason: "invalid_json",
            message: String::new(),
            received_at: Timestamp::from_secs(0),
        };
        let v: serde_json::Value = serde_json::from_slice(&d.to_json()).expect("JSON");
        assert_eq!(v["payload_base64"], "/wBhYg==");
        assert!(v.get("payload").is_none());
    }
}
