//! Runs one stream of the pipeline benchmark once, for instruction counts:
//! deterministic where wall-clock time on a shared machine is not.
//!
//! ```sh
//! cargo build --release -p processors --example pipeline_once
//! valgrind --tool=callgrind --toggle-collect='pipeline_once::run_once' \
//!     target/release/examples/pipeline_once native
//! ```
//!
//! Only `run_once` is counted (not building the stream): divide the total
//! by the messages it prints. Streams: `native`, `senml`,
//! `the_things_stack`, `mixed` (all four when none is named).
//!
//! With `--digest`, it runs each stream without counting and prints a hash
//! of every byte of line protocol written (windows flushed at the end), to
//! check that a change leaves the output as it was.

use std::hash::{DefaultHasher, Hasher};
use std::hint::black_box;
use std::process::ExitCode;

#[path = "../benches/common/mod.rs"]
mod common;

use common::{stream, Message, Pipeline, DEVICES, MESSAGES, STREAMS};

/// The part callgrind counts: the pipeline over every message, once.
#[inline(never)]
fn run_once(pipeline: &mut Pipeline, messages: &[Message]) -> usize {
    pipeline.run(black_box(messages))
}

/// Every byte the pipeline writes for `messages`, hashed (the hasher of the
/// standard library with its fixed keys: the same on every run), and how
/// many there were.
fn digest(pipeline: &mut Pipeline, messages: &[Message]) -> (usize, u64, usize) {
    let mut hasher = DefaultHasher::new();
    let mut bytes = 0;
    let mut written = |out: &[u8]| {
        hasher.write(out);
        bytes += out.len();
    };
    let rejected = pipeline.run_into(messages, &mut written);
    let mut rest = std::mem::take(&mut pipeline.out);
    let _ = pipeline.windows.flush_all_encoded(&mut rest);
    written(&rest);
    (rejected, hasher.finish(), bytes)
}

fn main() -> ExitCode {
    let mut wanted: Vec<String> = std::env::args().skip(1).collect();
    let with_digest = wanted.iter().any(|w| w == "--digest");
    wanted.retain(|w| w != "--digest");
    let mut status = ExitCode::SUCCESS;
    for (name, make) in STREAMS {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let messages = stream(MESSAGES, make);
        let mut pipeline = Pipeline::new();
        let rejected = if with_digest {
            let (rejected, hash, bytes) = digest(&mut pipeline, &messages);
            eprintln!("{name}: {bytes} bytes written, digest {hash:016x}");
            rejected
        } else {
            run_once(&mut pipeline, &messages)
        };
        let stats = pipeline.windows.stats();
        let emitted_enough = stats.points_emitted >= (MESSAGES - 2 * DEVICES) as u64;
        eprintln!(
            "{name}: {} messages, {rejected} rejected, {} points emitted, {} too late, {} over capacity",
            messages.len(),
            stats.points_emitted,
            stats.too_late,
            stats.capacity_exceeded
        );
        if rejected != 0 || stats.too_late != 0 || stats.capacity_exceeded != 0 || !emitted_enough {
            eprintln!("{name}: not the stream the benchmark runs");
            status = ExitCode::FAILURE;
        }
    }
    status
}
