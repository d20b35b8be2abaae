//! I/O benchmarks (processes, files): trio-rs beside tokio's current_thread runtime.
//!
//! ```text
//! cargo bench -p trio-benches --bench io -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! With a case name as its first argument (`--list` prints them) the binary runs just that
//! case, a given number of times, and prints the time per operation: what the interleaved
//! comparisons in docs/benchmarks.md use (`target/release/deps/io-<hash> trio_run_true 2000`).

use std::time::Duration;

use criterion::{Criterion, criterion_group};

#[path = "workloads/io_cases.rs"]
mod io_cases;
// The tokio runtime of rt.rs is the plain one; these cases need every driver (`TokioIo`).
#[allow(dead_code)]
#[path = "workloads/rt.rs"]
mod rt;

use io_cases::*;

fn processes(c: &mut Criterion) {
    let tokio = TokioIo::new();
    // One iteration is one child run to completion.
    let mut g = c.benchmark_group("run_process_true");
    g.sample_size(20);
    g.bench_function("trio", |b| b.iter_custom(trio_run_true));
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| tokio_run_true(&tokio, iters))
    });
    g.finish();
}

fn files(c: &mut Criterion) {
    let tokio = TokioIo::new();
    bench_file();
    // One iteration is a whole 256 MiB file read in 64 KiB chunks.
    let mut g = c.benchmark_group("read_256mib_in_64kib_chunks");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(256 << 20));
    g.bench_function("trio_read_into", |b| b.iter_custom(trio_read_file_into));
    g.bench_function("trio_read", |b| b.iter_custom(trio_read_file));
    g.bench_function("trio_receive_some", |b| b.iter_custom(trio_receive_file));
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| tokio_read_file(&tokio, iters))
    });
    g.finish();
}

criterion_group!(benches, processes, files);

type Case = (&'static str, fn(u64) -> Duration);

const CASES: &[Case] = &[
    ("trio_run_true", trio_run_true),
    ("tokio_run_true", |n| tokio_run_true(&TokioIo::new(), n)),
    ("trio_read_file", trio_read_file),
    ("trio_read_file_into", trio_read_file_into),
    ("trio_receive_file", trio_receive_file),
    ("tokio_read_file", |n| tokio_read_file(&TokioIo::new(), n)),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        CASES.iter().for_each(|(name, _)| println!("{name}"));
        return;
    }
    if let Some(case) = args
        .first()
        .and_then(|name| CASES.iter().find(|(n, _)| n == name))
    {
        let iters = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
        let elapsed = (case.1)(iters);
        let per_op = elapsed.as_nanos() as f64 / iters.max(1) as f64;
        println!("{:<24} {iters:>9} ops  {per_op:>11.1} ns/op", case.0);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
