//! The thread cases: a `to_thread` round trip against tokio's `spawn_blocking`, a burst of
//! 10 000 calls under trio's default limiter (40 threads) against tokio's blocking pool
//! capped at 40 threads, and a `from_thread` round trip from a worker against its tokio
//! equivalent. Each function runs `iters` operations inside a running runtime and returns
//! the time they took (criterion's `iter_custom`); the callgrind binary calls the same ones.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::rt::{Tokio, trio_run};

/// Calls per burst in the burst cases (one operation is one burst).
pub const BURST: u64 = 10_000;

/// trio: `to_thread::run_sync(|| 1)`, `iters` times in a row.
pub fn trio_to_thread(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(trio::to_thread::run_sync(|| black_box(1)).await?);
        }
        Ok(start.elapsed())
    })
}

/// tokio: `spawn_blocking(|| 1).await`, `iters` times in a row.
pub fn tokio_spawn_blocking(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(
                tokio::task::spawn_blocking(|| black_box(1))
                    .await
                    .expect("join"),
            );
        }
        start.elapsed()
    })
}

/// trio: `iters` bursts, each of [`BURST`] tasks that make one call each, under the run's
/// default limiter (40 threads at most).
pub fn trio_to_thread_burst(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            trio::open_nursery(|nursery| async move {
                for _ in 0..BURST {
                    nursery.start_soon(async {
                        black_box(trio::to_thread::run_sync(|| black_box(1)).await?);
                        Ok(())
                    })?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(start.elapsed())
    })
}

/// tokio: `iters` bursts, each of [`BURST`] local tasks that await one `spawn_blocking`
/// each, on a runtime whose blocking pool has at most 40 threads.
pub fn tokio_spawn_blocking_burst(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        let mut handles = Vec::with_capacity(BURST as usize);
        for _ in 0..iters {
            handles.extend((0..BURST).map(|_| {
                tokio::task::spawn_local(async {
                    black_box(
                        tokio::task::spawn_blocking(|| black_box(1))
                            .await
                            .expect("join"),
                    );
                })
            }));
            for handle in handles.drain(..) {
                handle.await.expect("join");
            }
        }
        start.elapsed()
    })
}

/// trio: from one worker, `from_thread::run_sync(|| 1)` `iters` times (timed in the worker).
pub fn trio_from_thread(iters: u64) -> Duration {
    trio_run(async move {
        trio::to_thread::run_sync(move || {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(trio::from_thread::run_sync(|| black_box(1)).expect("from_thread"));
            }
            start.elapsed()
        })
        .await
    })
}

type Job = (
    Box<dyn FnOnce() -> u64 + Send>,
    tokio::sync::oneshot::Sender<u64>,
);

/// tokio: the same round trip from a `spawn_blocking` thread: tokio has no `from_thread`, so
/// the thread sends the closure to a task on the runtime (unbounded mpsc) and blocks on a
/// oneshot for the answer.
pub fn tokio_from_blocking(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let server = tokio::task::spawn_local(async move {
            while let Some((f, reply)) = rx.recv().await {
                let _ = reply.send(f());
            }
        });
        let elapsed = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            for _ in 0..iters {
                let (reply, answer) = tokio::sync::oneshot::channel();
                tx.send((Box::new(|| black_box(1)), reply)).expect("server");
                black_box(answer.blocking_recv().expect("answer"));
            }
            start.elapsed()
        })
        .await
        .expect("join");
        server.await.expect("server");
        elapsed
    })
}
