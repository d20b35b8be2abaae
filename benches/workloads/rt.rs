//! Runtime plumbing shared by the bench targets: how a trio run and a tokio current_thread
//! runtime are set up, so that every case measures only its loop (not runtime creation).

use std::future::Future;
use std::time::Duration;

/// Runs `body` as the main task of a fresh trio run and returns the time it measured.
///
/// Ctrl-C handling is off (no `sigaction` per sample) and the scheduling seed is fixed, so
/// callgrind runs are repeatable.
pub fn trio_run<F>(body: F) -> Duration
where
    F: Future<Output = trio::Result<Duration>> + 'static,
{
    trio::RunConfig::new()
        .ctrl_c(false)
        .seed(0x5eed)
        .run(body)
        .expect("the trio bench run failed")
}

/// A tokio current_thread runtime (with the time driver) and a `LocalSet`, built once and
/// entered once per sample.
pub struct Tokio {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl Tokio {
    pub fn new() -> Self {
        Self::with_max_blocking_threads(512)
    }

    /// As [`Tokio::new`], with at most `n` threads in the blocking pool (tokio's default is
    /// 512); the thread cases compare it with trio's default limiter of 40.
    pub fn with_max_blocking_threads(n: usize) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .max_blocking_threads(n)
            .build()
            .expect("tokio runtime");
        Tokio {
            rt,
            local: tokio::task::LocalSet::new(),
        }
    }

    /// Runs `body` inside the runtime and the `LocalSet` (so `spawn_local` works).
    pub fn run<F: Future>(&self, body: F) -> F::Output {
        self.local.block_on(&self.rt, body)
    }
}

/// Splits `iters` operations between two tasks (the first takes the odd one).
pub fn split2(iters: u64) -> (u64, u64) {
    (iters - iters / 2, iters / 2)
}
