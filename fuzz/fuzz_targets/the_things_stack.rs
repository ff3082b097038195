//! The Things Stack uplinks, with and without a tenant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schemas::decode::Decoder;
use schemas::Timestamp;

fuzz_target!(|payload: &[u8]| {
    let decoder = Decoder::default();
    let mut out = Vec::new();
    for topic in ["v3/rabat-waste@ttn/devices/bin-rabat-agdal-017/up", "v3/rabat-traffic/devices/counter-1/up"] {
        let before = out.len();
        if decoder
            .decode(topic, payload, Timestamp::from_secs(1_795_896_000), &mut out)
            .is_err()
        {
            assert_eq!(out.len(), before, "a rejection leaves no reading behind");
        }
    }
});
