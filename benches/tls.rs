//! TLS benchmarks: trio's `SslStream` beside tokio-rustls (both on rustls with ring).
//!
//! ```text
//! cargo bench -p trio-benches --bench tls -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! With a case name as its first argument (`--list` prints them) the binary runs just that
//! case a given number of times and prints the time per operation, for interleaved runs.

use std::time::Duration;

use criterion::{Criterion, criterion_group};

#[path = "workloads/io_cases.rs"]
mod io_cases;
#[allow(dead_code)]
#[path = "workloads/rt.rs"]
mod rt;
#[path = "workloads/tls_cases.rs"]
mod tls_cases;

use io_cases::TokioIo;
use tls_cases::*;

fn echo(c: &mut Criterion) {
    let tokio = TokioIo::new();
    // One iteration is one round trip of a 16 KiB message over TLS 1.3 on loopback TCP.
    let mut g = c.benchmark_group("tls13_echo_16kib_round_trip");
    g.throughput(criterion::Throughput::Bytes(2 * MESSAGE as u64));
    g.bench_function("trio", |b| b.iter_custom(trio_tls_echo));
    g.bench_function("tokio_rustls", |b| {
        b.iter_custom(|iters| tokio_tls_echo(&tokio, iters))
    });
    g.finish();
}

criterion_group!(benches, echo);

type Case = (&'static str, fn(u64) -> Duration);

const CASES: &[Case] = &[
    ("trio_tls_echo", trio_tls_echo),
    ("tokio_tls_echo", |n| tokio_tls_echo(&TokioIo::new(), n)),
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
