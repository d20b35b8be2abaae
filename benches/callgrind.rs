//! A bench binary without criterion, for instruction counts under callgrind.
//!
//! ```text
//! cargo bench -p trio-benches --bench callgrind --no-run   # build (release, debug info)
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/callgrind-<hash> trio_spawn_join 100000
//! benches/callgrind.sh                                       # every case, instructions per operation
//! ```
//!
//! Arguments: a case name (`--list` prints them; a name without `trio_`/`tokio_` means the
//! trio case) and an optional number of operations (default 100000). The case runs that many
//! operations and prints the wall-clock time per operation. Without a case (as under a plain
//! `cargo bench`), every case runs once with a few operations, as a smoke test.
//!
//! Setup (runtime creation, process start) is a fixed cost: `benches/callgrind.sh` runs each
//! case at two sizes and divides the difference of the instruction counts by the difference of
//! the operation counts, which leaves only the per-operation cost.

use std::time::Duration;

#[path = "workloads/core_cases.rs"]
mod core_cases;
#[path = "workloads/debug_cases.rs"]
mod debug_cases;
#[path = "workloads/hyper_cases.rs"]
mod hyper_cases;
#[path = "workloads/net_cases.rs"]
mod net_cases;
#[path = "workloads/rt.rs"]
mod rt;
#[path = "workloads/sync_cases.rs"]
mod sync_cases;
#[path = "workloads/threads_cases.rs"]
mod threads_cases;

use core_cases::*;
use debug_cases::trio_dump_10k;
use hyper_cases::*;
use net_cases::*;
use rt::Tokio;
use sync_cases::*;
use threads_cases::*;

type Case = (&'static str, fn(u64) -> Duration);

const CASES: &[Case] = &[
    ("trio_spawn_join", trio_spawn_join),
    ("tokio_spawn_join", |n| tokio_spawn_join(&Tokio::new(), n)),
    ("trio_spawn_join_batch", trio_spawn_join_batch),
    ("tokio_spawn_join_batch", |n| {
        tokio_spawn_join_batch(&Tokio::new(), n)
    }),
    ("trio_switch", trio_switch),
    ("trio_switch_shielded", trio_switch_shielded),
    ("tokio_switch", |n| tokio_switch(&Tokio::new(), n)),
    ("trio_cancel_scope", trio_cancel_scope),
    ("trio_cancel_scope_abs", trio_cancel_scope_abs),
    ("tokio_cancel_scope", |n| {
        tokio_cancel_scope(&Tokio::new(), n)
    }),
    ("trio_join2", trio_join2),
    ("tokio_join2", |n| tokio_join2(&Tokio::new(), n)),
    ("trio_race2", trio_race2),
    ("tokio_select2", |n| tokio_select2(&Tokio::new(), n)),
    ("trio_pingpong1", |n| trio_pingpong(1, n)),
    ("trio_pingpong0", |n| trio_pingpong(0, n)),
    ("tokio_pingpong_mpsc", |n| {
        tokio_pingpong_mpsc(&Tokio::new(), n)
    }),
    ("tokio_pingpong_oneshot", |n| {
        tokio_pingpong_oneshot(&Tokio::new(), n)
    }),
    ("tokio_pingpong_rendezvous", |n| {
        tokio_pingpong_rendezvous(&Tokio::new(), n)
    }),
    ("trio_pingpong_timeout", trio_pingpong_timeout),
    ("tokio_pingpong_timeout", |n| {
        tokio_pingpong_timeout(&Tokio::new(), n)
    }),
    ("trio_lock", trio_lock_uncontended),
    ("trio_try_lock", trio_lock_try),
    ("tokio_lock", |n| tokio_lock_uncontended(&Tokio::new(), n)),
    ("trio_poll_receive_hit", trio_poll_receive_hit),
    ("tokio_poll_read_hit", tokio_poll_read_hit),
    ("trio_poll_receive_cycle", trio_poll_receive_cycle),
    ("tokio_poll_read_cycle", tokio_poll_read_cycle),
    ("tokio_lock_yield", |n| {
        tokio_lock_uncontended_yield(&Tokio::new(), n)
    }),
    ("trio_lock_contended", trio_lock_contended),
    ("tokio_lock_contended", |n| {
        tokio_lock_contended(&Tokio::new(), n)
    }),
    ("trio_to_thread", trio_to_thread),
    ("tokio_spawn_blocking", |n| {
        tokio_spawn_blocking(&Tokio::new(), n)
    }),
    // One operation is a burst of 10 000 calls (threads_cases::BURST).
    ("trio_to_thread_burst", trio_to_thread_burst),
    ("tokio_spawn_blocking_burst", |n| {
        tokio_spawn_blocking_burst(&Tokio::with_max_blocking_threads(40), n)
    }),
    ("trio_from_thread", trio_from_thread),
    ("tokio_from_blocking", |n| {
        tokio_from_blocking(&Tokio::new(), n)
    }),
    // One operation is one HTTP/1 request on a keep-alive connection, server and client in
    // one run; `_timer`: the server has a timer (hyper's header_read_timeout is armed).
    ("trio_hyper1", |n| trio_hyper1(n, false)),
    ("trio_hyper1_timer", |n| trio_hyper1(n, true)),
    ("tokio_hyper1", |n| tokio_hyper1(n, false)),
    ("tokio_hyper1_timer", |n| tokio_hyper1(n, true)),
];

/// Cases too slow to run at the script's sizes: run by name only, with a small count
/// (`callgrind trio_dump_10k 5`; docs/benchmarks.md).
const BY_NAME_ONLY: &[Case] = &[("trio_dump_10k", trio_dump_10k)];

fn find(name: &str) -> Option<&'static Case> {
    CASES
        .iter()
        .chain(BY_NAME_ONLY)
        .find(|(n, _)| *n == name)
        .or_else(|| {
            CASES
                .iter()
                .chain(BY_NAME_ONLY)
                .find(|(n, _)| *n == format!("trio_{name}"))
        })
}

fn run(case: &Case, iters: u64) {
    let elapsed = (case.1)(iters);
    let per_op = elapsed.as_nanos() as f64 / iters.max(1) as f64;
    println!("{:<24} {iters:>9} ops  {per_op:>9.1} ns/op", case.0);
}

fn main() {
    // `cargo bench` passes `--bench` (and criterion-style flags) to every target.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--") || a == "--list")
        .collect();
    match args.first().map(String::as_str) {
        // A burst case's operation is 10 000 calls: one is enough for a smoke test.
        None => CASES.iter().for_each(|case| {
            run(
                case,
                if case.0.ends_with("_burst") {
                    1
                } else {
                    10_000
                },
            )
        }),
        Some("--list") => CASES.iter().for_each(|(name, _)| println!("{name}")),
        Some(name) => {
            let Some(case) = find(name) else {
                eprintln!("unknown case {name:?}; `--list` prints the cases");
                std::process::exit(2);
            };
            let iters = match args.get(1).map(|s| s.parse::<u64>()) {
                None => 100_000,
                Some(Ok(n)) => n,
                Some(Err(e)) => {
                    eprintln!("bad operation count: {e}");
                    std::process::exit(2);
                }
            };
            run(case, iters);
        }
    }
}
