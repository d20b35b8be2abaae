//! Core benchmarks: trio-rs beside tokio's current_thread runtime, in the same target.
//!
//! `cargo bench -p trio-benches --bench core` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a quick run).
//! Every case runs its loop inside a runtime that is already running (criterion's
//! `iter_custom`); runtime creation is never measured. See docs/benchmarks.md.

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "workloads/core_cases.rs"]
mod core_cases;
#[path = "workloads/rt.rs"]
mod rt;

use core_cases::*;
use rt::Tokio;

fn spawn_join(c: &mut Criterion) {
    let tokio = Tokio::new();
    let mut g = c.benchmark_group("spawn_join");
    g.bench_function("trio", |b| b.iter_custom(trio_spawn_join));
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| tokio_spawn_join(&tokio, iters))
    });
    g.finish();

    // One iteration is one task of a batch of `BATCH`.
    let mut g = c.benchmark_group("spawn_join_batch1000_per_task");
    g.bench_function("trio", |b| b.iter_custom(trio_spawn_join_batch));
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| tokio_spawn_join_batch(&tokio, iters))
    });
    g.finish();
}

fn switch(c: &mut Criterion) {
    let tokio = Tokio::new();
    // One iteration is one yield of one of two tasks: one task switch.
    let mut g = c.benchmark_group("switch_two_tasks");
    g.bench_function("trio_checkpoint", |b| b.iter_custom(trio_switch));
    g.bench_function("trio_cancel_shielded_checkpoint", |b| {
        b.iter_custom(trio_switch_shielded)
    });
    g.bench_function("tokio_yield_now", |b| {
        b.iter_custom(|iters| tokio_switch(&tokio, iters))
    });
    g.finish();
}

fn cancel_scope(c: &mut Criterion) {
    let tokio = Tokio::new();
    let mut g = c.benchmark_group("cancel_scope_deadline");
    g.bench_function("trio_move_on_after", |b| b.iter_custom(trio_cancel_scope));
    g.bench_function("trio_with_deadline", |b| {
        b.iter_custom(trio_cancel_scope_abs)
    });
    g.bench_function("tokio_timeout", |b| {
        b.iter_custom(|iters| tokio_cancel_scope(&tokio, iters))
    });
    g.finish();
}

fn join_and_race(c: &mut Criterion) {
    let tokio = Tokio::new();
    // Two branches that yield once each, inside one task.
    let mut g = c.benchmark_group("join_two");
    g.bench_function("trio_join", |b| b.iter_custom(trio_join2));
    g.bench_function("tokio_join", |b| {
        b.iter_custom(|iters| tokio_join2(&tokio, iters))
    });
    g.finish();
    // A branch that yields once and wins against one that would wait forever.
    let mut g = c.benchmark_group("race_two");
    g.bench_function("trio_race", |b| b.iter_custom(trio_race2));
    g.bench_function("tokio_select", |b| {
        b.iter_custom(|iters| tokio_select2(&tokio, iters))
    });
    g.finish();
}

criterion_group!(benches, spawn_join, switch, cancel_scope, join_and_race);
criterion_main!(benches);
