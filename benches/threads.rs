//! Thread benchmarks: `to_thread` / `from_thread` beside tokio's `spawn_blocking`, on a
//! current_thread runtime, in the same target.
//!
//! `cargo bench -p trio-benches --bench threads` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a quick run). Every case runs inside a runtime that is already running (criterion's
//! `iter_custom`); runtime creation is never measured. See docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};

// `split2` serves the two-task cases of the other targets.
#[allow(dead_code)]
#[path = "workloads/rt.rs"]
mod rt;
#[path = "workloads/threads_cases.rs"]
mod threads_cases;

use rt::Tokio;
use threads_cases::*;

fn round_trips(c: &mut Criterion) {
    let tokio = Tokio::new();
    // One iteration is one call: to a worker thread and back.
    let mut g = c.benchmark_group("to_thread_round_trip");
    g.bench_function("trio_to_thread", |b| b.iter_custom(trio_to_thread));
    g.bench_function("tokio_spawn_blocking", |b| {
        b.iter_custom(|iters| tokio_spawn_blocking(&tokio, iters))
    });
    g.finish();

    // One iteration is one call from a worker thread to the run's thread and back.
    let mut g = c.benchmark_group("from_thread_round_trip");
    g.bench_function("trio_from_thread", |b| b.iter_custom(trio_from_thread));
    g.bench_function("tokio_mpsc_oneshot_from_blocking", |b| {
        b.iter_custom(|iters| tokio_from_blocking(&tokio, iters))
    });
    g.finish();
}

fn bursts(c: &mut Criterion) {
    let tokio = Tokio::with_max_blocking_threads(40);
    // One iteration is a burst of 10 000 calls, at most 40 threads at a time.
    let mut g = c.benchmark_group("burst_10000_calls_40_threads");
    g.sample_size(10);
    g.bench_function("trio_to_thread", |b| b.iter_custom(trio_to_thread_burst));
    g.bench_function("tokio_spawn_blocking", |b| {
        b.iter_custom(|iters| tokio_spawn_blocking_burst(&tokio, iters))
    });
    g.finish();
}

criterion_group!(benches, round_trips, bursts);
criterion_main!(benches);
