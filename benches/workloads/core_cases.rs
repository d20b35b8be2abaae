//! The core cases: spawn+join, task switch, cancel scope with a deadline. Each function runs
//! `iters` operations inside an already running runtime and returns the time they took, as
//! criterion's `iter_custom` wants; the callgrind binary calls the same functions.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::rt::{Tokio, split2, trio_run};

/// Tasks per nursery (per `LocalSet` batch) in the batched spawn case.
pub const BATCH: u64 = 1000;

/// trio: one nursery with one empty child, opened and joined `iters` times.
pub fn trio_spawn_join(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            trio::open_nursery(|n| async move {
                n.start_soon(async { Ok(()) })?;
                Ok(())
            })
            .await?;
        }
        Ok(start.elapsed())
    })
}

/// tokio: `spawn_local(async {}).await`, `iters` times.
pub fn tokio_spawn_join(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        for _ in 0..iters {
            tokio::task::spawn_local(async {}).await.expect("join");
        }
        start.elapsed()
    })
}

/// trio: `iters` empty tasks, started `BATCH` at a time in one nursery each.
pub fn trio_spawn_join_batch(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let k = left.min(BATCH);
            left -= k;
            trio::open_nursery(|n| async move {
                for _ in 0..k {
                    n.start_soon(async { Ok(()) })?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(start.elapsed())
    })
}

/// tokio: `iters` empty tasks, spawned `BATCH` at a time, then every handle awaited.
pub fn tokio_spawn_join_batch(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        let mut left = iters;
        let mut handles = Vec::with_capacity(BATCH as usize);
        while left > 0 {
            let k = left.min(BATCH);
            left -= k;
            handles.extend((0..k).map(|_| tokio::task::spawn_local(async {})));
            for handle in handles.drain(..) {
                handle.await.expect("join");
            }
        }
        start.elapsed()
    })
}

/// trio: two tasks that each checkpoint (a full checkpoint: schedule point + cancel point);
/// `iters` checkpoints in all, so the time per iteration is the cost of one task switch.
pub fn trio_switch(iters: u64) -> Duration {
    let (a, b) = split2(iters);
    trio_run(async move {
        let start = Instant::now();
        trio::open_nursery(|n| async move {
            for count in [a, b] {
                n.start_soon(async move {
                    for _ in 0..count {
                        trio::lowlevel::checkpoint().await?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(start.elapsed())
    })
}

/// trio: as [`trio_switch`] with `cancel_shielded_checkpoint` (a bare schedule point).
pub fn trio_switch_shielded(iters: u64) -> Duration {
    let (a, b) = split2(iters);
    trio_run(async move {
        let start = Instant::now();
        trio::open_nursery(|n| async move {
            for count in [a, b] {
                n.start_soon(async move {
                    for _ in 0..count {
                        trio::lowlevel::cancel_shielded_checkpoint().await;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(start.elapsed())
    })
}

/// tokio: two `spawn_local` tasks that each `yield_now`; `iters` yields in all.
pub fn tokio_switch(rt: &Tokio, iters: u64) -> Duration {
    let (a, b) = split2(iters);
    rt.run(async move {
        let start = Instant::now();
        let handles = [a, b].map(|count| {
            tokio::task::spawn_local(async move {
                for _ in 0..count {
                    tokio::task::yield_now().await;
                }
            })
        });
        for handle in handles {
            handle.await.expect("join");
        }
        start.elapsed()
    })
}

/// trio: `move_on_after(1000.0, ready body)`: a scope with a relative deadline entered and
/// left (clock read, deadline heap push and pop, cancel-tree link and unlink).
pub fn trio_cancel_scope(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = trio::move_on_after(1000.0, async move { Ok(black_box(i)) }).await?;
            black_box(out);
        }
        Ok(start.elapsed())
    })
}

/// trio: `CancelScope::with_deadline(far future).run(ready body)`: absolute deadline, no
/// clock read.
pub fn trio_cancel_scope_abs(iters: u64) -> Duration {
    trio_run(async move {
        let deadline = trio::current_time()? + 1000.0;
        let start = Instant::now();
        for i in 0..iters {
            let scope = trio::CancelScope::with_deadline(deadline)?;
            let out = scope.run(async move { Ok(black_box(i)) }).await?;
            black_box(out);
        }
        Ok(start.elapsed())
    })
}

/// tokio: `timeout(1000 s, ready future)`.
pub fn tokio_cancel_scope(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = tokio::time::timeout(Duration::from_secs(1000), async move { black_box(i) })
                .await
                .expect("no timeout");
            black_box(out);
        }
        start.elapsed()
    })
}

/// trio: `join` of two branches that each yield once (a checkpoint), inside one task.
pub fn trio_join2(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = trio::join((
                async move {
                    trio::lowlevel::checkpoint().await?;
                    Ok(black_box(i))
                },
                async move {
                    trio::lowlevel::checkpoint().await?;
                    Ok(black_box(i + 1))
                },
            ))
            .await?;
            black_box(out);
        }
        Ok(start.elapsed())
    })
}

/// tokio: `tokio::join!` of two branches that each yield once (`yield_now`).
pub fn tokio_join2(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = tokio::join!(
                async move {
                    tokio::task::yield_now().await;
                    black_box(i)
                },
                async move {
                    tokio::task::yield_now().await;
                    black_box(i + 1)
                },
            );
            black_box(out);
        }
        start.elapsed()
    })
}

/// trio: `race` of a branch that yields once and wins, and one that would wait forever
/// (cancelled by the winner).
pub fn trio_race2(iters: u64) -> Duration {
    trio_run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = trio::race((
                async move {
                    trio::lowlevel::checkpoint().await?;
                    Ok(black_box(i))
                },
                async move {
                    trio::lowlevel::sleep_forever().await?;
                    Ok(0)
                },
            ))
            .await?;
            black_box(out);
        }
        Ok(start.elapsed())
    })
}

/// tokio: `tokio::select!` of a branch that yields once and one that never finishes.
pub fn tokio_select2(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let start = Instant::now();
        for i in 0..iters {
            let out = tokio::select! {
                v = async move {
                    tokio::task::yield_now().await;
                    black_box(i)
                } => v,
                v = std::future::pending::<u64>() => v,
            };
            black_box(out);
        }
        start.elapsed()
    })
}
