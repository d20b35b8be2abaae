//! The worker-thread cache behind `to_thread`: workers are reused (across calls and runs),
//! no call is still running when `run` returns unless it was abandoned, idle workers exit
//! after the idle timeout, and runs leave no fd behind.
//!
//! The cache is process-wide and these tests count its threads, so this file has its own
//! harness (`harness = false`) that runs them one at a time.

mod common;

use std::time::{Duration, Instant};

use common::run;
use common::serial::{Test, run_tests};
use common::threads::{Gate, event, set_from_worker};
use trio::to_thread::{self, Options};

/// Polls `condition` (real time, in 1 ms steps) until it holds, failing after 10 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The process's open fds, each with what it points at.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path()).ok()?;
                Some(format!("{:?} -> {}", e.file_name(), target.display()))
            })
            .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

fn workers_are_reused_across_calls_and_runs() {
    let first = run(async { to_thread::run_sync(|| std::thread::current().id()).await });
    for _ in 0..3 {
        let ids = run(async {
            let mut ids = Vec::new();
            for _ in 0..5 {
                ids.push(to_thread::run_sync(|| std::thread::current().id()).await?);
            }
            Ok(ids)
        });
        assert!(ids.iter().all(|&id| id == first), "{ids:?} vs {first:?}");
    }
    assert_eq!(to_thread::worker_threads().busy, 0);
}

fn no_call_is_running_after_run_returns_unless_abandoned() {
    run(async {
        trio::open_nursery(|nursery| async move {
            for _ in 0..10 {
                nursery.start_soon(async {
                    to_thread::run_sync(|| std::thread::sleep(Duration::from_millis(5))).await
                })?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(to_thread::worker_threads().busy, 0);
    // An abandoned call's thread runs on after the run.
    let gate = Gate::default();
    let g = gate.clone();
    run(async move {
        let scope = trio::CancelScope::new();
        let s = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                s.run(Options::new().abandon_on_cancel(true).run_sync(move || {
                    set_from_worker("started");
                    g.wait();
                }))
                .await?;
                Ok(())
            })?;
            event("started").wait().await?;
            scope.cancel();
            Ok(())
        })
        .await
    });
    assert_eq!(to_thread::worker_threads().busy, 1);
    gate.open();
    eventually("the abandoned thread ends", || {
        to_thread::worker_threads().busy == 0
    });
}

fn idle_workers_exit_after_the_idle_timeout() {
    assert_eq!(to_thread::idle_timeout(), Duration::from_secs(10));
    // Bad values are refused and change nothing.
    for bad in [-1.0, f64::NAN] {
        let error = to_thread::set_idle_timeout(bad).unwrap_err();
        assert!(error.is::<trio::UsageError>(), "{error}");
    }
    assert_eq!(to_thread::idle_timeout(), Duration::from_secs(10));
    to_thread::set_idle_timeout(Duration::from_millis(20)).unwrap();
    // Every worker of the cache (and some new ones) takes a call at once, so that each
    // waits with the new timeout afterwards.
    let n = to_thread::worker_threads().idle.max(6);
    run(async move {
        let gate = Gate::default();
        let g = gate.clone();
        trio::open_nursery(|nursery| async move {
            for _ in 0..n {
                let g = g.clone();
                nursery.start_soon(async move { to_thread::run_sync(move || g.wait()).await })?;
            }
            // (This call's own thread is busy too.)
            Options::new()
                .limiter(trio::CapacityLimiter::new(1))
                .run_sync(move || {
                    eventually("all busy", || to_thread::worker_threads().busy == n + 1)
                })
                .await?;
            gate.open();
            Ok(())
        })
        .await
    });
    assert_eq!(to_thread::worker_threads().busy, 0);
    let threads_with_workers = os_threads();
    eventually("idle workers exit", || {
        to_thread::worker_threads().idle == 0
    });
    eventually("their threads are gone", || {
        os_threads() + n <= threads_with_workers
    });
    // Seconds work as well as a Duration (one rule for every time argument).
    to_thread::set_idle_timeout(10).unwrap();
    assert_eq!(to_thread::idle_timeout(), Duration::from_secs(10));
    // A new call starts a new worker.
    run(async { to_thread::run_sync(|| ()).await });
    assert_eq!(to_thread::worker_threads().idle, 1);
}

fn runs_with_threads_leave_no_fd_behind() {
    // Warm up: the first run may create process-wide pipes (Ctrl-C's) that stay.
    run(async { to_thread::run_sync(|| ()).await });
    let before = open_fds();
    for _ in 0..5 {
        run(async {
            trio::open_nursery(|nursery| async move {
                for _ in 0..4 {
                    nursery.start_soon(async {
                        to_thread::run_sync(|| trio::from_thread::run_sync(|| ())).await??;
                        Ok(())
                    })?;
                }
                Ok(())
            })
            .await
        });
    }
    assert_eq!(open_fds(), before);
}

const TESTS: &[Test] = &[
    (
        "workers_are_reused_across_calls_and_runs",
        workers_are_reused_across_calls_and_runs,
    ),
    (
        "no_call_is_running_after_run_returns_unless_abandoned",
        no_call_is_running_after_run_returns_unless_abandoned,
    ),
    (
        "idle_workers_exit_after_the_idle_timeout",
        idle_workers_exit_after_the_idle_timeout,
    ),
    (
        "runs_with_threads_leave_no_fd_behind",
        runs_with_threads_leave_no_fd_behind,
    ),
];

fn main() {
    run_tests(TESTS);
}
