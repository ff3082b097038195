//! The hot path on one core: decode → validate → normalize → window → encode,
//! over realistic streams of many devices in the three domains. Devices report
//! once a minute for ten simulated minutes, so the figure includes closing and
//! emitting windows.
//!
//! `cargo bench -p processors --bench pipeline`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

mod common;

use common::{stream, Pipeline, DEVICES, MESSAGES, STREAMS};

fn bench(c: &mut Criterion) {
    let streams = STREAMS.map(|(name, make)| (name, stream(MESSAGES, make)));
    let mut group = c.benchmark_group("pipeline");
    group.sample_size(20);
    for (name, messages) in &streams {
        let mut pipeline = Pipeline::new();
        assert_eq!(
            pipeline.run(messages),
            0,
            "{name}: every message must be accepted"
        );
        let stats = pipeline.windows.stats();
        assert_eq!(
            (stats.too_late, stats.capacity_exceeded),
            (0, 0),
            "{name}: every reading must reach its windows"
        );
        assert!(
            stats.points_emitted >= (MESSAGES - 2 * DEVICES) as u64,
            "{name}: windows must close and be emitted during the run"
        );
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(*name, |b| {
            b.iter_batched_ref(
                Pipeline::new,
                |p| p.run(black_box(messages)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
