//! Snapshot and restore of the windows of 20,000 devices in five communes,
//! as the checkpoint of the write-ahead log takes them: after one simulated
//! minute (one open window per device) and after ten (every device holding
//! the windows the allowed lateness keeps open, six or seven each).
//!
//! `cargo bench -p processors --bench window_snapshot`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use processors::window::{WindowConfig, Windows};
use schemas::{Attribute, Domain, Reading, Timestamp, Value};

/// 2026-11-28T20:00:00Z.
const START_S: i64 = 1_795_896_000;
const COMMUNES: [&str; 5] = ["rabat", "casablanca", "chefchaouen", "benguerir", "berkane"];
const DEVICES: usize = 20_000;

fn config() -> WindowConfig {
    WindowConfig {
        max_open_windows: 8 * DEVICES,
        ..WindowConfig::default()
    }
}

/// What device `i` reports at `t`, with the fields the decoders give.
fn reading(i: usize, t: i64) -> Reading {
    let commune = COMMUNES[i % COMMUNES.len()];
    let level = ((i * 7 + t as usize) % 100) as f64;
    let (domain, prefix) = match i % 3 {
        0 => (Domain::Lighting, "lamp"),
        1 => (Domain::Waste, "bin"),
        _ => (Domain::Traffic, "counter"),
    };
    let device = format!("{prefix}-{commune}-{:05}", i / 3);
    let mut r = Reading::new(domain, commune, &device, Timestamp::from_secs(t));
    let v = &mut r.values;
    match domain {
        Domain::Lighting => {
            v.set(Attribute::PowerState, Value::Symbol("on"));
            v.set(Attribute::IlluminanceLevel, Value::Number(level / 100.0));
            v.set(
                Attribute::PowerConsumption,
                Value::Number(20.0 + level * 0.4),
            );
            v.set(Attribute::Voltage, Value::Number(225.0 + level / 10.0));
            v.set(Attribute::Current, Value::Number(0.19));
            v.set(Attribute::LampStatus, Value::Symbol("ok"));
        }
        Domain::Waste => {
            r.district = Some("agdal".into());
            v.set(Attribute::FillingLevel, Value::Number(level / 100.0));
            v.set(Attribute::Temperature, Value::Number(15.0 + level / 5.0));
            v.set(Attribute::WasteStatus, Value::Symbol("ok"));
            v.set(Attribute::BatteryLevel, Value::Number(0.77));
        }
        Domain::Traffic => {
            r.lane = Some(1 + (i % 2) as u32);
            r.period_s = Some(300);
            v.set(Attribute::Intensity, Value::Number(level * 2.0));
            v.set(Attribute::Occupancy, Value::Number(level / 100.0));
            v.set(
                Attribute::AverageVehicleSpeed,
                Value::Number(20.0 + level * 0.6),
            );
            v.set(Attribute::AverageVehicleLength, Value::Number(4.6));
            v.set(Attribute::Congested, Value::Bool(false));
        }
    }
    r
}

/// Windows after `minutes` simulated minutes, drained as the shell drains.
fn windows(minutes: usize) -> Windows {
    let mut w = Windows::new(config());
    let mut out = Vec::with_capacity(1 << 20);
    for m in 0..minutes {
        for i in 0..DEVICES {
            let t = START_S + 60 * m as i64 + (i * 60 / DEVICES) as i64;
            w.record(&reading(i, t));
            if i % 1024 == 1023 {
                let _ = w.drain_encoded(&mut out);
                out.clear();
            }
        }
    }
    let _ = w.drain_encoded(&mut out);
    w
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("window_snapshot");
    group.sample_size(20);
    for minutes in [1, 10] {
        let w = windows(minutes);
        let mut image = Vec::new();
        w.snapshot(&mut image);
        let restored = Windows::restore(config(), &image).expect("the image restores");
        let mut again = Vec::new();
        restored.snapshot(&mut again);
        assert!(again == image, "a restored state writes the same image");
        eprintln!(
            "{minutes} min: {} windows, image {} bytes",
            w.stats().open_windows,
            image.len()
        );
        group.throughput(Throughput::Bytes(image.len() as u64));
        group.bench_function(format!("snapshot_{minutes}min"), |b| {
            let mut out = Vec::with_capacity(image.len());
            b.iter(|| {
                out.clear();
                w.snapshot(&mut out);
                black_box(&out);
            });
        });
        group.bench_function(format!("restore_{minutes}min"), |b| {
            // The shell keeps what it restores: dropping it is not timed.
            b.iter_with_large_drop(|| Windows::restore(config(), black_box(&image)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
