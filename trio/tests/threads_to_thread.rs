//! `trio::to_thread::run_sync`: values and panics, checkpoints, cancellation (waiting or
//! abandoning), the limiter (default and custom, accounting under cancellation, the limit of
//! 40), thread names, and the run loop's view of a call in flight (no autojump, no idle
//! wake-up, a blocking reactor wait).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use common::threads::{Gate, Gauge, event, set_from_worker};
use common::*;
use trio::lowlevel::{checkpoint, current_statistics};
use trio::to_thread::{self, Options};
use trio::{Borrower, CancelScope, CapacityLimiter, UsageError};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn run_sync_runs_the_function_in_another_thread_and_returns_its_value() {
    run(async {
        let trio_thread = std::thread::current().id();
        let (value, thread) = to_thread::run_sync(|| (6 * 7, std::thread::current().id())).await?;
        assert_eq!(value, 42);
        assert_ne!(thread, trio_thread);
        Ok(())
    });
}

#[test]
fn run_sync_checks_for_cancellation_before_it_starts_anything() {
    run(async {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let limiter = to_thread::current_default_thread_limiter()?;
        in_cancelled_scope(async move {
            let result = to_thread::run_sync(move || r.store(true, Ordering::SeqCst)).await;
            assert!(is_cancelled(result));
            Ok(())
        })
        .await?;
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(limiter.borrowed_tokens(), 0);
        Ok(())
    });
}

#[test]
fn run_sync_always_yields() {
    run(async {
        // Also when the thread is done before the call first looks (a quick function, many
        // times: some of them finish that fast).
        for _ in 0..100 {
            assert_eq!(yields(to_thread::run_sync(|| 1)).await?, 1);
        }
        Ok(())
    });
}

#[test]
fn a_panic_in_the_thread_resumes_in_the_calling_task() {
    let caught = std::panic::catch_unwind(|| {
        run(async {
            trio::open_nursery(|nursery| async move {
                nursery.start_soon(async {
                    to_thread::run_sync(|| panic!("boom in a worker")).await?;
                    Ok(())
                })?;
                trio::sleep_forever().await
            })
            .await
        })
    });
    let payload = caught.expect_err("the panic should reach run's caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a worker"));
}

#[test]
fn the_worker_thread_is_named_while_the_call_runs() {
    fn os_name() -> String {
        let mut buf = [0 as libc::c_char; 64];
        // SAFETY: `buf` is a valid buffer of its length for the calling thread's name.
        let rc = unsafe { libc::pthread_getname_np(libc::pthread_self(), buf.as_mut_ptr(), 64) };
        assert_eq!(rc, 0);
        // SAFETY: pthread_getname_np wrote a NUL-terminated string into `buf`.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
    run(async {
        let named = Options::new()
            .thread_name("hash files")
            .run_sync(os_name)
            .await?;
        assert_eq!(named, "hash files");
        let long = Options::new()
            .thread_name("a name longer than fifteen bytes")
            .run_sync(os_name)
            .await?;
        assert_eq!(long, "a name longer t");
        let unnamed = to_thread::run_sync(os_name).await?;
        assert!(unnamed.starts_with("trio-worker-"), "{unnamed}");
        let std_name = to_thread::run_sync(|| std::thread::current().name().map(String::from));
        assert!(
            std_name
                .await?
                .is_some_and(|n| n.starts_with("trio-worker-"))
        );
        Ok(())
    });
}

/// The rule: without `abandon_on_cancel`, a cancellation waits for the thread; the value is
/// returned and the cancellation is seen at the next checkpoint.
#[test]
fn cancellation_waits_for_the_thread_and_is_seen_at_the_next_checkpoint() {
    run(async {
        let gate = Gate::default();
        let log = Log::default();
        let scope = CancelScope::new();
        let (g, l, s) = (gate.clone(), log.clone(), scope.clone());
        let (log2, scope2) = (log.clone(), scope.clone());
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                s.run(async {
                    let value = to_thread::run_sync(move || {
                        set_from_worker("started");
                        g.wait();
                        7
                    })
                    .await?;
                    l.push(format!("returned {value}"));
                    checkpoint().await?;
                    l.push("after the checkpoint".to_string());
                    Ok(())
                })
                .await?;
                Ok(())
            })?;
            event("started").wait().await?;
            scope2.cancel();
            for _ in 0..10 {
                checkpoint().await?;
            }
            assert!(log2.get().is_empty(), "the call returned before its thread");
            gate.open();
            Ok(())
        })
        .await?;
        assert_eq!(log.get(), ["returned 7"]);
        assert!(scope.cancelled_caught());
        Ok(())
    });
}

/// A value whose drop records the thread it was dropped on.
struct RecordsDrop(Arc<std::sync::Mutex<Option<ThreadId>>>);

impl Drop for RecordsDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn abandon_on_cancel_returns_at_once_and_drops_the_result_in_the_thread() {
    run(async {
        let gate = Gate::default();
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let limiter = CapacityLimiter::new(1);
        let scope = CancelScope::new();
        let (g, d, lim, s) = (
            gate.clone(),
            dropped_on.clone(),
            limiter.clone(),
            scope.clone(),
        );
        let scope2 = scope.clone();
        let worker_thread = Arc::new(std::sync::Mutex::new(None));
        let w = worker_thread.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let result = s
                    .run(
                        Options::new()
                            .abandon_on_cancel(true)
                            .limiter(lim)
                            .run_sync(move || {
                                *w.lock().unwrap() = Some(std::thread::current().id());
                                set_from_worker("started");
                                g.wait();
                                RecordsDrop(d)
                            }),
                    )
                    .await?;
                assert!(result.is_none(), "the scope absorbed the call's Cancelled");
                Ok(())
            })?;
            event("started").wait().await?;
            scope2.cancel();
            Ok(())
        })
        .await?;
        assert!(scope.cancelled_caught());
        // The thread runs on, holding its token.
        assert_eq!(limiter.borrowed_tokens(), 1);
        assert!(matches!(
            limiter.statistics().borrowers[..],
            [Borrower::ToThread(_)]
        ));
        gate.open();
        // The token comes back once the thread has finished: wait for it.
        limiter.acquire().await?;
        limiter.release()?;
        let dropped = dropped_on.lock().unwrap().expect("the result was dropped");
        assert_eq!(Some(dropped), *worker_thread.lock().unwrap());
        assert_ne!(dropped, std::thread::current().id());
        Ok(())
    });
}

#[test]
fn dropping_the_call_abandons_the_thread_and_its_token_returns_when_it_ends() {
    run(async {
        let gate = Gate::default();
        let limiter = CapacityLimiter::new(1);
        let g = gate.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut call = Box::pin(Options::new().limiter(limiter.clone()).run_sync(move || {
            g.wait();
            // The thread learns that nobody waits for it any more.
            let _ = tx.send(trio::from_thread::check_cancelled());
        }));
        assert!(poll_once(&mut call).await.is_pending());
        assert_eq!(current_statistics()?.external_waits, 1);
        drop(call);
        assert_eq!(current_statistics()?.external_waits, 0);
        assert_eq!(limiter.borrowed_tokens(), 1);
        gate.open();
        limiter.acquire().await?;
        let checked = rx.recv_timeout(LIMIT).expect("the worker reports");
        let e = checked.expect_err("cancelled: its task dropped the call");
        assert!(e.is_cancelled() && e.to_string().contains("dropped"), "{e}");
        Ok(())
    });
}

#[test]
fn the_default_limiter_has_40_tokens_per_run_and_can_be_changed() {
    run(async {
        let limiter = to_thread::current_default_thread_limiter()?;
        assert_eq!(limiter.total_tokens(), to_thread::DEFAULT_LIMIT);
        assert_eq!(to_thread::DEFAULT_LIMIT, 40);
        limiter.set_total_tokens(3);
        assert_eq!(
            to_thread::current_default_thread_limiter()?.total_tokens(),
            3
        );
        Ok(())
    });
    run(async {
        assert_eq!(
            to_thread::current_default_thread_limiter()?.total_tokens(),
            40
        );
        Ok(())
    });
    assert!(to_thread::current_default_thread_limiter().is_err_and(|e| e.is::<UsageError>()));
}

#[test]
fn the_call_holds_a_token_of_its_limiter_while_the_thread_runs() {
    run(async {
        let custom = CapacityLimiter::new(5);
        let default = to_thread::current_default_thread_limiter()?;
        for use_custom in [true, false] {
            let gate = Gate::default();
            let g = gate.clone();
            let mut options = Options::new();
            if use_custom {
                options = options.limiter(custom.clone());
            }
            let (used, other) = if use_custom {
                (custom.clone(), default.clone())
            } else {
                (default.clone(), custom.clone())
            };
            let name = if use_custom { "custom" } else { "default" };
            trio::open_nursery(|nursery| async move {
                nursery.start_soon(async move {
                    options
                        .run_sync(move || {
                            set_from_worker(name);
                            g.wait();
                        })
                        .await
                })?;
                event(name).wait().await?;
                let stats = used.statistics();
                assert_eq!(stats.borrowed_tokens, 1);
                assert!(matches!(stats.borrowers[..], [Borrower::ToThread(_)]));
                assert!(
                    stats.borrowers[0]
                        .to_string()
                        .starts_with("trio::to_thread call ")
                );
                assert_eq!(other.borrowed_tokens(), 0);
                gate.open();
                Ok(())
            })
            .await?;
            assert_eq!(custom.borrowed_tokens() + default.borrowed_tokens(), 0);
        }
        Ok(())
    });
}

thread_local! {
    /// Cancel scopes that worker threads cancel (through `from_thread`), by number.
    static SCOPES: std::cell::RefCell<std::collections::HashMap<usize, CancelScope>> =
        Default::default();
}

fn scope_no(i: usize) -> CancelScope {
    SCOPES.with(|s| s.borrow_mut().entry(i).or_default().clone())
}

/// Trio's `test_run_in_worker_thread_limiter`: with a limit of `max`, `2 * max` calls whose
/// threads each cancel their own call (abandoned or waited for) never run more than `max`
/// threads at once: a call that was abandoned keeps its token until its thread ends. Every
/// call runs, and every token comes back.
fn limiter_accounting(max: usize, abandon: bool, use_default: bool) {
    run(async move {
        SCOPES.with(|s| s.borrow_mut().clear());
        let limiter = if use_default {
            let l = to_thread::current_default_thread_limiter()?;
            l.set_total_tokens(max);
            l
        } else {
            CapacityLimiter::new(max)
        };
        let gauge = Gauge::default();
        let gate = Gate::default();
        let caught = Rc::new(Cell::new(0));
        let (lim, ga, gt, c) = (limiter.clone(), gauge.clone(), gate.clone(), caught.clone());
        trio::open_nursery(|nursery| async move {
            for i in 0..2 * max {
                let (lim, ga, gt, c) = (lim.clone(), ga.clone(), gt.clone(), c.clone());
                nursery.start_soon(async move {
                    let mut options = Options::new().abandon_on_cancel(abandon);
                    if !use_default {
                        options = options.limiter(lim);
                    }
                    let scope = scope_no(i);
                    scope
                        .run(options.run_sync(move || {
                            trio::from_thread::run_sync(move || scope_no(i).cancel())
                                .expect("cancel through from_thread");
                            ga.enter();
                            gt.wait();
                            ga.leave();
                        }))
                        .await?;
                    if scope.cancelled_caught() {
                        c.set(c.get() + 1);
                    }
                    Ok(())
                })?;
            }
            // Wait, in a thread under a limiter of its own, until `max` threads run.
            let g = ga.clone();
            Options::new()
                .limiter(CapacityLimiter::new(1))
                .run_sync(move || g.wait_for(max, LIMIT))
                .await?;
            // The other calls wait for tokens, even those whose callers were abandoned.
            assert_eq!(lim.statistics().tasks_waiting, max);
            assert_eq!(lim.borrowed_tokens(), max);
            gt.open();
            Ok(())
        })
        .await?;
        // Abandoned threads may still run: their tokens come back as they end.
        while limiter.borrowed_tokens() > 0 {
            limiter.acquire().await?;
            limiter.release()?;
        }
        assert_eq!(gauge.high_water(), max);
        assert_eq!(gauge.now(), 0);
        assert_eq!(gauge.total(), 2 * max);
        // A call that waits returns its value (no checkpoint follows in the scope). An
        // abandonable one ends in Cancelled, absorbed by its scope, unless its thread was done
        // before the cancellation reached the task (then the value wins): surely the first
        // `max`, whose threads were held at the gate.
        if abandon {
            assert!((max..=2 * max).contains(&caught.get()), "{}", caught.get());
        } else {
            assert_eq!(caught.get(), 0);
        }
        Ok(())
    });
}

#[test]
fn limiter_accounting_when_calls_wait_for_their_threads() {
    limiter_accounting(3, false, false);
    limiter_accounting(5, false, true);
}

#[test]
fn limiter_accounting_when_calls_are_abandoned() {
    limiter_accounting(3, true, false);
    limiter_accounting(5, true, true);
}

#[test]
fn never_more_than_40_threads_run_at_once_under_the_default_limiter() {
    run(async {
        const CALLS: usize = 100;
        let gauge = Gauge::default();
        let gate = Gate::default();
        let (ga, gt) = (gauge.clone(), gate.clone());
        trio::open_nursery(|nursery| async move {
            for _ in 0..CALLS {
                let (ga, gt) = (ga.clone(), gt.clone());
                nursery.start_soon(async move {
                    to_thread::run_sync(move || {
                        ga.enter();
                        gt.wait();
                        ga.leave();
                    })
                    .await
                })?;
            }
            let g = ga.clone();
            Options::new()
                .limiter(CapacityLimiter::new(1))
                .run_sync(move || g.wait_for(40, LIMIT))
                .await?;
            let limiter = to_thread::current_default_thread_limiter()?;
            assert_eq!(limiter.borrowed_tokens(), 40);
            assert_eq!(limiter.statistics().tasks_waiting, CALLS - 40);
            gt.open();
            Ok(())
        })
        .await?;
        assert_eq!(gauge.high_water(), 40);
        assert_eq!(gauge.total(), CALLS);
        Ok(())
    });
}

/// Trio's `test_wait_all_threads_completed` and `..._no_threads`: calls count from the start
/// of their thread until they return; `wait_all_threads_completed` returns when none is left,
/// and an abandoned call stops counting when it returns although its thread runs on.
#[test]
fn wait_all_threads_completed_waits_for_every_call_in_progress() {
    run(async {
        assert_eq!(to_thread::active_thread_count()?, 0);
        to_thread::wait_all_threads_completed().await?;
        let none_left = Rc::new(Cell::new(false));
        let nl = none_left.clone();
        trio::open_nursery(|nursery| async move {
            for name in ["e1", "e2"] {
                nursery.start_soon(async move {
                    // The thread waits for the run (a trio event), so every task blocks.
                    to_thread::run_sync(move || {
                        trio::from_thread::run(move || async move { event(name).wait().await })
                    })
                    .await??;
                    event(if name == "e1" {
                        "e1 exited"
                    } else {
                        "e2 exited"
                    })
                    .set();
                    Ok(())
                })?;
            }
            trio::lowlevel::wait_all_tasks_blocked().await?;
            nursery.start_soon(async move {
                to_thread::wait_all_threads_completed().await?;
                nl.set(true);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert!(!none_left.get());
            assert_eq!(to_thread::active_thread_count()?, 2);

            event("e1").set();
            event("e1 exited").wait().await?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert!(!none_left.get());
            assert_eq!(to_thread::active_thread_count()?, 1);

            event("e2").set();
            event("e2 exited").wait().await?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert!(none_left.get());
            assert_eq!(to_thread::active_thread_count()?, 0);
            Ok(())
        })
        .await?;

        // Abandoned: no longer counted once the call has returned.
        let gate = Gate::default();
        let g = gate.clone();
        let scope = CancelScope::new();
        let s = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                s.run(Options::new().abandon_on_cancel(true).run_sync(move || {
                    set_from_worker("abandoned started");
                    g.wait();
                }))
                .await?;
                Ok(())
            })?;
            event("abandoned started").wait().await?;
            assert_eq!(to_thread::active_thread_count()?, 1);
            scope.cancel();
            Ok(())
        })
        .await?;
        assert_eq!(to_thread::active_thread_count()?, 0);
        assert!(
            trio::move_on_after(1, to_thread::wait_all_threads_completed())
                .await?
                .is_some()
        );
        gate.open();
        Ok(())
    });
    assert!(to_thread::active_thread_count().is_err(), "outside a run");
}

#[test]
fn start_thread_soon_runs_f_then_deliver_in_one_worker_thread_without_a_run() {
    use std::sync::mpsc;
    use trio::lowlevel::start_thread_soon;

    let (sender, receiver) = mpsc::channel();
    let caller = std::thread::current().id();
    start_thread_soon(
        move || {
            let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
            (6 * 7, std::thread::current().id(), name)
        },
        move |outcome| {
            let delivered_in = std::thread::current().id();
            sender.send((outcome.ok(), delivered_in)).unwrap();
        },
        Some("soon-thread-name-longer-than-fifteen"),
    )
    .unwrap();
    let (outcome, delivered_in) = receiver.recv_timeout(LIMIT).unwrap();
    let (value, ran_in, name) = outcome.expect("f returned");
    assert_eq!(value, 42);
    assert_ne!(ran_in, caller);
    assert_eq!(ran_in, delivered_in, "deliver runs in f's thread");
    if cfg!(target_os = "linux") {
        assert_eq!(
            name.trim_end(),
            "soon-thread-nam",
            "cut to Linux's 15 bytes"
        );
    }

    // A panic in `f` is the outcome, not a lost thread.
    let (sender, receiver) = mpsc::channel();
    start_thread_soon(
        || -> u8 { panic!("worker says no") },
        move |outcome| {
            let message = outcome
                .err()
                .and_then(|p| p.downcast_ref::<&str>().map(|m| m.to_string()));
            sender.send(message).unwrap();
        },
        None,
    )
    .unwrap();
    assert_eq!(
        receiver.recv_timeout(LIMIT).unwrap().as_deref(),
        Some("worker says no")
    );
}

#[test]
fn start_thread_soon_hands_back_to_a_run_through_its_token() {
    run(async {
        let token = trio::lowlevel::current_trio_token()?;
        let on_trio_thread = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        trio::lowlevel::start_thread_soon(
            || 7 * 6,
            move |outcome| {
                let value = outcome.expect("no panic");
                token
                    .run_sync_soon(move || tx.send((value, std::thread::current().id())).unwrap())
                    .expect("the run is still going");
            },
            None,
        )?;
        // The run does not know of the thread: wait through short `to_thread` calls (each a
        // real wait, so virtual time does not jump past it) until the callback has run.
        let (value, ran_on) = loop {
            if let Ok(value) = rx.try_recv() {
                break value;
            }
            trio::to_thread::run_sync(|| std::thread::sleep(Duration::from_millis(1))).await?;
        };
        assert_eq!(value, 42);
        assert_eq!(ran_on, on_trio_thread, "the callback ran in the run");
        Ok(())
    });
}
