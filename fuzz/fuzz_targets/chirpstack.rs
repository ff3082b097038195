//! ChirpStack uplinks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::decode::Decoder;
use schemas::Timestamp;

fuzz_target!(|payload: &[u8]| {
    let decoder = Decoder::default();
    let mut out = Vec::new();
    for topic in ["application/berkane-lighting/device/70b3d57ed0051a2f/event/up"] {
        let before = out.len();
        if decoder
            .decode(topic, payload, Timestamp::from_secs(1_795_896_000), &mut out)
            .is_err()
        {
            assert_eq!(out.len(), before, "a rejection leaves no reading behind");
        }
    }
});
