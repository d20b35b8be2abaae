//! `trio::from_thread`: calling back into a run from a `to_thread` worker (in the waiting
//! task, under its cancel scopes) or from any thread with a `TrioToken` (between steps, or
//! as a system task); `check_cancelled`; panics; the usage errors and `RunFinishedError`.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::threads::{Gate, event, set_from_worker};
use common::*;
use trio::from_thread;
use trio::lowlevel::{checkpoint, current_task, current_trio_token, sleep_forever};
use trio::to_thread::{self, Options};
use trio::{CancelScope, RunFinishedError, UsageError};

#[test]
fn run_sync_and_run_from_a_worker_run_in_the_task_that_waits_for_it() {
    run(async {
        let me = current_task()?.id();
        let (in_sync, in_async) = to_thread::run_sync(|| {
            let sync = from_thread::run_sync(|| current_task().map(|t| t.id()));
            let run = from_thread::run(|| async { Ok(current_task()?.id()) });
            (sync, run)
        })
        .await?;
        assert_eq!(in_sync??, me);
        assert_eq!(in_async?, me);
        // The token a worker finds is the run's.
        let token = current_trio_token()?;
        let theirs = to_thread::run_sync(|| from_thread::run_sync(current_trio_token)).await???;
        assert_eq!(theirs, token);
        Ok(())
    });
}

#[test]
fn an_async_call_from_a_worker_runs_under_the_waiting_tasks_deadline() {
    run(async {
        let start = trio::current_time()?;
        let outcome = trio::move_on_after(1.0, async {
            let slept =
                to_thread::run_sync(|| from_thread::run(|| async { sleep_forever().await }))
                    .await?;
            // The worker got the task's Cancelled; passing it on ends the scope.
            slept?;
            Ok(())
        })
        .await?;
        assert!(outcome.is_none());
        assert_eq!(trio::current_time()? - start, 1.0);
        Ok(())
    });
}

/// Trio's `test_from_thread_host_cancelled`: in a cancelled waiting task, a sync call still
/// runs, and an async call fails only at a checkpoint.
#[test]
fn in_a_cancelled_task_sync_calls_run_and_async_calls_fail_at_checkpoints() {
    run(async {
        let scope = current_scope();
        let results = scope
            .run(to_thread::run_sync(|| {
                from_thread::run_sync(|| current_scope().cancel()).expect("cancel");
                let sync = from_thread::run_sync(|| 1);
                let no_checkpoint = from_thread::run(|| async { Ok(2) });
                let checkpoint = from_thread::run(|| async {
                    checkpoint().await?;
                    Ok(3)
                });
                (sync, no_checkpoint, checkpoint)
            }))
            .await?
            .expect("the call returns its value");
        assert_eq!(results.0?, 1);
        assert_eq!(results.1?, 2);
        assert!(is_cancelled(results.2));
        // The call itself returned: no checkpoint in the scope saw the cancellation.
        assert!(!scope.cancelled_caught());
        Ok(())
    });
}

thread_local! {
    static SCOPE: CancelScope = CancelScope::new();
}

/// A scope the current test's run uses (one per trio thread).
fn current_scope() -> CancelScope {
    SCOPE.with(CancelScope::clone)
}

#[test]
fn with_a_token_sync_calls_run_between_steps_and_async_calls_as_system_tasks() {
    run(async {
        let token = current_trio_token()?;
        let t = token.clone();
        let thread = std::thread::spawn(move || {
            let in_task = from_thread::run_sync_on(&t, || current_task().is_ok());
            let system = from_thread::run_on(&t, || async { Ok(current_task()?.is_system()) });
            (in_task, system)
        });
        // Serve the thread's calls (real time: the thread is not a worker of this run).
        let (in_task, system) = to_thread::run_sync(move || thread.join().expect("thread")).await?;
        assert!(!in_task?);
        assert!(system?);
        // The same from a worker that passes the token.
        let t = token.clone();
        let system = to_thread::run_sync(move || {
            from_thread::run_on(&t, || async { Ok(current_task()?.is_system()) })
        })
        .await??;
        assert!(system);
        Ok(())
    });
}

#[test]
fn an_abandonable_calls_worker_calls_back_outside_the_task() {
    // Its task may be gone by then, so the calls run as Trio runs them: between steps and as
    // system tasks.
    run(async {
        let (sync, system) = Options::new()
            .abandon_on_cancel(true)
            .run_sync(|| {
                (
                    from_thread::run_sync(|| current_task().is_ok()),
                    from_thread::run(|| async { Ok(current_task()?.is_system()) }),
                )
            })
            .await?;
        assert!(!sync?);
        assert!(system?);
        Ok(())
    });
}

#[test]
fn on_the_trio_thread_every_call_is_a_usage_error() {
    run(async {
        let token = current_trio_token()?;
        assert_err::<UsageError, _>(from_thread::run_sync(|| ()));
        assert_err::<UsageError, _>(from_thread::run(|| async { Ok(()) }));
        let e = assert_err::<UsageError, _>(from_thread::run_sync_on(&token, || ()));
        assert!(e.to_string().contains("deadlock"), "{e}");
        assert_err::<UsageError, _>(from_thread::run_on(&token, || async { Ok(()) }));
        assert_err::<UsageError, _>(from_thread::check_cancelled());
        Ok(())
    });
}

#[test]
fn a_thread_not_started_by_to_thread_needs_a_token() {
    let results = std::thread::spawn(|| {
        (
            from_thread::run_sync(|| ()),
            from_thread::run(|| async { Ok(()) }),
            from_thread::check_cancelled(),
        )
    })
    .join()
    .expect("thread");
    let e = assert_err::<UsageError, _>(results.0);
    assert!(e.to_string().contains("TrioToken"), "{e}");
    assert_err::<UsageError, _>(results.1);
    assert_err::<UsageError, _>(results.2);
}

#[test]
fn after_the_run_has_finished_calls_fail_with_run_finished_error() {
    let token = run(async { current_trio_token() });
    let t = token.clone();
    let (sync, run_on) = std::thread::spawn(move || {
        (
            from_thread::run_sync_on(&t, || ()),
            from_thread::run_on(&t, || async { Ok(()) }),
        )
    })
    .join()
    .expect("thread");
    assert_err::<RunFinishedError, _>(sync);
    assert_err::<RunFinishedError, _>(run_on);
}

#[test]
fn an_abandoned_worker_that_outlives_the_run_gets_run_finished_error() {
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    run(async move {
        let scope = CancelScope::new();
        scope.cancel();
        let mut call = Box::pin(Options::new().abandon_on_cancel(true).run_sync(move || {
            g.wait();
            let _ = tx.send(from_thread::run_sync(|| ()));
        }));
        // Started, then abandoned by the drop.
        assert!(poll_once(&mut call).await.is_pending());
        drop(call);
        Ok(())
    });
    gate.open();
    let after = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the worker reports");
    assert_err::<RunFinishedError, _>(after);
}

/// Trio's `test_await_in_trio_thread_while_main_exits`: a system task started for a thread
/// is cancelled when the main task ends, and the thread gets the `Cancelled`.
#[test]
fn a_system_task_call_is_cancelled_when_the_main_task_ends() {
    let thread = run(async {
        let token = current_trio_token()?;
        let thread = std::thread::spawn(move || {
            from_thread::run_on(&token, || async {
                event("sleeping").set();
                sleep_forever().await
            })
        });
        event("sleeping").wait().await?;
        Ok(thread)
    });
    let outcome = thread.join().expect("thread");
    assert!(is_cancelled(outcome));
}

#[test]
fn a_panic_on_the_trio_thread_resumes_in_the_calling_thread() {
    run(async {
        let (sync, run) = to_thread::run_sync(|| {
            let sync = std::panic::catch_unwind(|| from_thread::run_sync(|| panic!("sync boom")));
            let run = std::panic::catch_unwind(|| {
                from_thread::run(|| async { panic!("async boom") as trio::Result<()> })
            });
            let message = |p: Box<dyn std::any::Any + Send>| p.downcast_ref::<&str>().copied();
            (sync.err().and_then(message), run.err().and_then(message))
        })
        .await?;
        assert_eq!(sync, Some("sync boom"));
        assert_eq!(run, Some("async boom"));
        Ok(())
    });
}

/// Trio's `test_from_thread_check_cancelled_no_abandon`.
#[test]
fn check_cancelled_reports_a_cancellation_of_the_waiting_task() {
    for cancel in [false, true] {
        run(async move {
            let gate = Gate::default();
            let scope = CancelScope::new();
            let (g, s) = (gate.clone(), scope.clone());
            let log = Log::default();
            let l = log.clone();
            trio::open_nursery(|nursery| async move {
                nursery.start_soon(async move {
                    let seen = s
                        .run(to_thread::run_sync(move || {
                            let before = from_thread::check_cancelled().is_ok();
                            set_from_worker("started");
                            g.wait();
                            (before, from_thread::check_cancelled())
                        }))
                        .await?;
                    let (before, after) = seen.expect("the call waits for its thread");
                    l.push(before);
                    l.push(after.is_ok());
                    if let Err(e) = after {
                        assert!(e.is_cancelled());
                    }
                    Ok(())
                })?;
                event("started").wait().await?;
                if cancel {
                    scope.cancel();
                }
                // Let the cancellation reach the waiting task before the thread looks.
                for _ in 0..3 {
                    checkpoint().await?;
                }
                gate.open();
                Ok(())
            })
            .await?;
            assert_eq!(log.get(), [true, !cancel]);
            Ok(())
        });
    }
}

/// Trio's `test_from_thread_check_cancelled_abandon_on_cancel`: an abandoned thread learns
/// that nobody waits for it.
#[test]
fn check_cancelled_tells_an_abandoned_thread_to_stop() {
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let g = gate.clone();
    run(async move {
        let scope = CancelScope::new();
        let s = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                s.run(Options::new().abandon_on_cancel(true).run_sync(move || {
                    set_from_worker("started");
                    g.wait();
                    let _ = tx.send(from_thread::check_cancelled());
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
    gate.open();
    let checked = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the worker reports");
    assert!(is_cancelled(checked));
}

#[test]
fn a_worker_whose_task_is_dropped_mid_call_gets_cancelled() {
    run(async {
        let (tx, rx) = mpsc::channel();
        let mut call = Box::pin(to_thread::run_sync(move || {
            let outcome = from_thread::run(|| async {
                event("in the call").set();
                sleep_forever().await
            });
            let _ = tx.send(outcome);
        }));
        while !event("in the call").is_set() {
            assert!(poll_once(&mut call).await.is_pending());
            checkpoint().await?;
        }
        drop(call);
        let outcome = to_thread::run_sync(move || rx.recv_timeout(Duration::from_secs(10)))
            .await?
            .expect("the worker reports");
        let e = outcome.expect_err("the task is gone");
        assert!(e.is_cancelled(), "{e}");
        assert!(e.to_string().contains("dropped"), "{e}");
        Ok(())
    });
}

#[test]
fn a_worker_can_start_another_worker_through_the_run() {
    run(async {
        let (outer, inner) = to_thread::run_sync(|| {
            let inner = from_thread::run(|| to_thread::run_sync(|| std::thread::current().id()));
            (std::thread::current().id(), inner)
        })
        .await?;
        assert_ne!(outer, inner?);
        Ok(())
    });
}

/// Trio's `test_reentry_doesnt_deadlock`: tasks that loop over calls that call back.
#[test]
fn calls_that_call_back_do_not_deadlock() {
    run(async {
        trio::open_nursery(|nursery| async move {
            for _ in 0..4 {
                nursery.start_soon(async {
                    for _ in 0..50 {
                        to_thread::run_sync(|| from_thread::run(|| trio::sleep(0.0))).await??;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
    });
}
