//! Sync benchmarks (channels, locks): trio-rs beside tokio's current_thread runtime.
//!
//! `cargo bench -p trio-benches --bench sync` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a quick run).
//! Every case runs its loop inside a runtime that is already running (criterion's
//! `iter_custom`); runtime creation is never measured. See docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "workloads/rt.rs"]
mod rt;
#[path = "workloads/sync_cases.rs"]
mod sync_cases;

use rt::Tokio;
use sync_cases::*;

fn channels(c: &mut Criterion) {
    let tokio = Tokio::new();
    // One iteration is one round trip (two one-way messages).
    let mut g = c.benchmark_group("pingpong_cap1_round_trip");
    g.bench_function("trio", |b| b.iter_custom(|iters| trio_pingpong(1, iters)));
    g.bench_function("tokio_mpsc1", |b| {
        b.iter_custom(|iters| tokio_pingpong_mpsc(&tokio, iters))
    });
    g.finish();

    // The cap-1 round trip with a timeout around each wait for the reply.
    let mut g = c.benchmark_group("pingpong_cap1_round_trip_with_timeout");
    g.bench_function("trio_fail_after", |b| b.iter_custom(trio_pingpong_timeout));
    g.bench_function("tokio_timeout", |b| {
        b.iter_custom(|iters| tokio_pingpong_timeout(&tokio, iters))
    });
    g.finish();

    let mut g = c.benchmark_group("pingpong_cap0_round_trip");
    g.bench_function("trio", |b| b.iter_custom(|iters| trio_pingpong(0, iters)));
    g.bench_function("tokio_mpsc1", |b| {
        b.iter_custom(|iters| tokio_pingpong_mpsc(&tokio, iters))
    });
    g.bench_function("tokio_mpsc1_oneshot_reply", |b| {
        b.iter_custom(|iters| tokio_pingpong_oneshot(&tokio, iters))
    });
    g.bench_function("tokio_rendezvous_mpsc1_oneshot_ack", |b| {
        b.iter_custom(|iters| tokio_pingpong_rendezvous(&tokio, iters))
    });
    g.finish();
}

fn locks(c: &mut Criterion) {
    let tokio = Tokio::new();
    let mut g = c.benchmark_group("lock_uncontended");
    g.bench_function("trio_lock", |b| b.iter_custom(trio_lock_uncontended));
    g.bench_function("trio_try_lock", |b| b.iter_custom(trio_lock_try));
    g.bench_function("tokio_mutex", |b| {
        b.iter_custom(|iters| tokio_lock_uncontended(&tokio, iters))
    });
    g.bench_function("tokio_lock_then_yield_now", |b| {
        b.iter_custom(|iters| tokio_lock_uncontended_yield(&tokio, iters))
    });
    g.finish();

    // One iteration is one acquire+release by one of two tasks.
    let mut g = c.benchmark_group("lock_contended_two_tasks");
    g.bench_function("trio_lock", |b| b.iter_custom(trio_lock_contended));
    g.bench_function("tokio_mutex", |b| {
        b.iter_custom(|iters| tokio_lock_contended(&tokio, iters))
    });
    g.finish();
}

criterion_group!(benches, channels, locks);
criterion_main!(benches);
