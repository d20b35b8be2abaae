//! The debugging cases: what a task dump costs. Only the callgrind binary runs them (by name).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::rt::trio_run;

/// Tasks in the tree of [`trio_dump_10k`].
pub const DUMP_TASKS: u64 = 10_000;

/// trio: `iters` task dumps (text) of a run with 10,000 blocked tasks in 100 nurseries of 100,
/// each task in a cancel scope with a deadline and parked on an `Event`.
pub fn trio_dump_10k(iters: u64) -> Duration {
    trio_run(async move {
        let go = trio::Event::new();
        let elapsed = std::rc::Rc::new(std::cell::Cell::new(Duration::ZERO));
        let out = elapsed.clone();
        trio::open_nursery(|outer| async move {
            for _ in 0..DUMP_TASKS / 100 {
                let go = go.clone();
                outer.start_soon(async move {
                    trio::open_nursery(|inner| async move {
                        for _ in 0..100 {
                            let go = go.clone();
                            inner.start_soon(async move {
                                trio::move_on_after(1e6, go.wait()).await?;
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })
                    .await
                })?;
            }
            trio::lowlevel::wait_all_tasks_blocked().await?;
            let start = Instant::now();
            for _ in 0..iters {
                black_box(trio::lowlevel::task_dump()?);
            }
            out.set(start.elapsed());
            go.set();
            Ok(())
        })
        .await?;
        Ok(elapsed.get())
    })
}
