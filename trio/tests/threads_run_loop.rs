//! How the run sees a `to_thread` call in flight (beyond Trio, python-trio/trio#456): a mock
//! clock's autojump never fires while a thread runs its function, `wait_all_tasks_blocked`
//! does not count the waiting task as blocked, and the loop blocks in the reactor until the
//! thread's completion wakes it (no polling). While the thread waits for the run (a
//! `from_thread` call), the run is free to idle and autojump again.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use trio::Instrument;
use trio::lowlevel::{
    add_instrument, current_statistics, current_trio_token, wait_all_tasks_blocked,
};
use trio::to_thread::{self, Options};

/// Real time a worker spends in its function (short: no test sleeps over 100 ms).
const WORK: Duration = Duration::from_millis(30);

#[test]
fn autojump_never_fires_while_a_thread_runs() {
    run(async {
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                trio::sleep(10.0).await?;
                l.push("slept");
                Ok(())
            })?;
            let before = trio::current_time()?;
            to_thread::run_sync(|| std::thread::sleep(WORK)).await?;
            // With autojump at threshold 0 the clock would have jumped to the sleeper's
            // deadline while the thread ran, had the run counted itself idle.
            assert_eq!(trio::current_time()?, before);
            Ok(())
        })
        .await?;
        assert_eq!(log.get(), ["slept"]);
        assert_eq!(trio::current_time()?, 10.0);
        Ok(())
    });
}

#[test]
fn wait_all_tasks_blocked_does_not_count_a_task_waiting_on_a_thread_as_blocked() {
    run(async {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                to_thread::run_sync(move || {
                    std::thread::sleep(WORK);
                    d.store(true, Ordering::SeqCst);
                })
                .await
            })?;
            wait_all_tasks_blocked().await?;
            assert!(done.load(Ordering::SeqCst), "woke while a thread still ran");
            Ok(())
        })
        .await
    });
}

/// Counts the loop's I/O waits and remembers the longest timeout.
#[derive(Default)]
struct IoWaits {
    count: Cell<usize>,
    blocking: Cell<usize>,
}

impl Instrument for IoWaits {
    fn before_io_wait(&self, timeout: f64) {
        self.count.set(self.count.get() + 1);
        if timeout == f64::INFINITY {
            self.blocking.set(self.blocking.get() + 1);
        }
    }
}

#[test]
fn the_loop_blocks_in_the_reactor_until_the_thread_completes() {
    run(async {
        let waits = Rc::new(IoWaits::default());
        add_instrument(waits.clone())?;
        to_thread::run_sync(|| std::thread::sleep(WORK)).await?;
        // A loop that polled for the thread would wait many times in 30 ms; this one blocks
        // (no deadline, and a mock clock at rate 0) until the completion wakes it.
        assert!(waits.blocking.get() >= 1, "no blocking wait");
        assert!(
            waits.count.get() <= 3,
            "{} I/O waits: the loop polled",
            waits.count.get()
        );
        Ok(())
    });
}

#[test]
fn statistics_count_a_call_as_an_external_wait_while_its_thread_runs_its_own_code() {
    run(async {
        assert_eq!(current_statistics()?.external_waits, 0);
        let (during_sync, during_async) = to_thread::run_sync(|| {
            // A sync callback runs inside the waiting task's poll: the wait still counts.
            let sync =
                trio::from_thread::run_sync(|| current_statistics().map(|s| s.external_waits));
            // While an async callback runs, the thread waits for the run: it does not.
            let run = trio::from_thread::run(|| async {
                trio::lowlevel::checkpoint().await?;
                Ok(current_statistics()?.external_waits)
            });
            (sync, run)
        })
        .await?;
        assert_eq!(during_sync??, 1);
        assert_eq!(during_async?, 0);
        assert_eq!(current_statistics()?.external_waits, 0);
        Ok(())
    });
}

/// The thread waits for the run while a `from_thread` call runs there, so virtual time may
/// pass: a sleep inside one finishes by autojump, in each of the three ways a call can run.
#[test]
fn autojump_works_while_the_thread_waits_for_the_run() {
    run(async {
        // In the waiting task.
        let t0 = trio::current_time()?;
        to_thread::run_sync(|| trio::from_thread::run(|| trio::sleep(5.0))).await??;
        assert_eq!(trio::current_time()? - t0, 5.0);
        // As a system task: an abandonable call's worker calls back outside the task.
        Options::new()
            .abandon_on_cancel(true)
            .run_sync(|| trio::from_thread::run(|| trio::sleep(5.0)))
            .await??;
        assert_eq!(trio::current_time()? - t0, 10.0);
        // With an explicit token, from a worker.
        let token = current_trio_token()?;
        to_thread::run_sync(move || trio::from_thread::run_on(&token, || trio::sleep(5.0)))
            .await??;
        assert_eq!(trio::current_time()? - t0, 15.0);
        Ok(())
    });
}

#[test]
fn a_run_waiting_on_a_thread_is_not_deadlocked() {
    // `run` fails on deadlock (no runnable task, deadline, I/O waiter or outside wake-up);
    // a call in flight is an outside wake-up to come.
    run(async {
        let seen = Rc::new(RefCell::new(None));
        let s = seen.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                *s.borrow_mut() = Some(
                    to_thread::run_sync(|| {
                        std::thread::sleep(WORK);
                        3
                    })
                    .await?,
                );
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        assert_eq!(*seen.borrow(), Some(3));
        Ok(())
    });
}
