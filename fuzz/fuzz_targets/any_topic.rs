//! Topic and payload both from the input: the first line is the topic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::decode::Decoder;
use schemas::Timestamp;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(topic) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let payload = data.get(split + 1..).unwrap_or_default();
    let mut out = Vec::new();
    let now = Timestamp::from_secs(1_795_896_000);
    if Decoder::default().decode(topic, payload, now, &mut out).is_err() {
        assert!(out.is_empty(), "a rejection leaves no reading behind");
    }
});
