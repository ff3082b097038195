//! SenML packs (any bytes, but the format is told by structure) on every domain's topic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::decode::Decoder;
use schemas::Timestamp;

fuzz_target!(|payload: &[u8]| {
    let decoder = Decoder::default();
    let mut out = Vec::new();
    for topic in ["city/casablanca/lighting/lamp-casa-maarif-0042/telemetry", "city/casablanca/waste/bin-2/telemetry", "city/casablanca/traffic/c-3/telemetry"] {
        let before = out.len();
        if decoder
            .decode(topic, payload, Timestamp::from_secs(1_795_896_000), &mut out)
            .is_err()
        {
            assert_eq!(out.len(), before, "a rejection leaves no reading behind");
        }
    }
});
