//! Cancel scopes: deadlines, shields, absorption, level-triggered cancellation, timeouts.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Log, assert_err, in_cancelled_scope, run};
use trio::lowlevel::{
    cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled, current_effective_deadline,
    wait_all_tasks_blocked,
};
use trio::{CancelScope, CancelSource, TooSlowError, UsageError};

#[test]
fn cancellation_is_level_triggered() {
    run(async {
        let out = in_cancelled_scope(async {
            for _ in 0..3 {
                assert!(checkpoint().await.is_err_and(|e| e.is_cancelled()));
                assert!(
                    checkpoint_if_cancelled()
                        .await
                        .is_err_and(|e| e.is_cancelled())
                );
                assert!(trio::sleep(1.0).await.is_err_and(|e| e.is_cancelled()));
            }
            // A shielded checkpoint is not a cancel point.
            cancel_shielded_checkpoint().await;
            checkpoint().await
        })
        .await?;
        assert_eq!(out, None, "the scope absorbed its Cancelled");
        // Out of the scope, checkpoints succeed again.
        checkpoint().await
    });
}

#[test]
fn nested_cancelled_scopes_the_outer_absorbs() {
    run(async {
        let outer = CancelScope::new();
        let inner = CancelScope::new();
        let (o, i) = (outer.clone(), inner.clone());
        let result = outer
            .run(async move {
                let r = i
                    .run(async move {
                        o.cancel();
                        i_cancel_and_wait().await
                    })
                    .await;
                // The inner scope did not absorb: the outer cancellation is visible here.
                assert!(r.as_ref().is_err_and(|e| e.is_cancelled()));
                r.map(|_| ())
            })
            .await?;
        assert_eq!(result, None);
        assert!(outer.cancelled_caught());
        assert!(!inner.cancelled_caught());
        Ok(())
    });
}

async fn i_cancel_and_wait() -> trio::Result<()> {
    trio::sleep_forever().await
}

#[test]
fn cancel_after_the_last_checkpoint_leaves_cancelled_caught_false() {
    run(async {
        let scope = CancelScope::new();
        let s = scope.clone();
        let out = scope
            .run(async move {
                checkpoint().await?;
                s.cancel();
                Ok(5)
            })
            .await?;
        assert_eq!(out, Some(5));
        assert!(scope.cancel_called());
        assert!(!scope.cancelled_caught());
        Ok(())
    });
}

#[test]
fn shield_toggling_takes_effect_at_once() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let outer = CancelScope::new();
        let shield = CancelScope::new().shielded(true);
        let (o, sh, l) = (outer.clone(), shield.clone(), log.clone());
        trio::open_nursery(|n| async move {
            let (sh2, l2) = (sh.clone(), l.clone());
            n.start_soon(async move {
                o.run(async move {
                    let r = sh2
                        .run(async move {
                            // Blocked while shielded; the outer cancel does not reach us...
                            let r = trio::sleep(100.0).await;
                            l2.push(format!("inner sleep: cancelled={}", r.is_err()));
                            r
                        })
                        .await;
                    l.push(format!("shield scope: {r:?}"));
                    r.map(|_| ())
                })
                .await?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            outer.cancel();
            wait_all_tasks_blocked().await?;
            assert_eq!(
                trio::current_time()?,
                0.0,
                "still blocked: the shield holds"
            );
            // ...until the shield is lowered, which wakes the task at once.
            sh.set_shield(false);
            Ok(())
        })
        .await
    });
    let seen = seen.get();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "inner sleep: cancelled=true");
    assert!(seen[1].starts_with("shield scope: Err"), "{seen:?}");
}

#[test]
fn raising_the_shield_inside_a_cancelled_scope_stops_cancellation() {
    run(async {
        let outer = CancelScope::new();
        let o = outer.clone();
        outer.cancel();
        let shield = CancelScope::new();
        let sh = shield.clone();
        let out = o
            .run(async move {
                sh.run(async {
                    assert!(checkpoint().await.is_err());
                    Ok(())
                })
                .await?;
                Ok(())
            })
            .await?;
        // The body swallowed its Cancelled: nothing reached the scope.
        assert_eq!(out, Some(()));
        assert!(!outer.cancelled_caught());

        let outer = CancelScope::new();
        outer.cancel();
        let out = outer
            .run(async {
                let shield = CancelScope::new();
                let sh = shield.clone();
                shield
                    .run(async move {
                        assert!(checkpoint().await.is_err());
                        sh.set_shield(true);
                        checkpoint().await?;
                        trio::sleep(1.0).await
                    })
                    .await?;
                Ok(())
            })
            .await?;
        // The body finished (shielded), and the outer scope never absorbed anything after it.
        assert_eq!(out, Some(()));
        Ok(())
    });
}

#[test]
fn cancel_is_idempotent_and_carries_source_and_reason() {
    run(async {
        let scope = CancelScope::new();
        scope.cancel_with_reason("shutting down");
        scope.cancel();
        scope.cancel_with_reason("again");
        let caught = Rc::new(Cell::new(false));
        let c = caught.clone();
        scope
            .run(async move {
                let e = checkpoint().await.expect_err("cancelled");
                let cancelled = e.downcast_ref::<trio::Cancelled>().expect("Cancelled");
                assert_eq!(cancelled.source(), CancelSource::Explicit);
                assert_eq!(cancelled.reason(), Some("shutting down"));
                assert!(cancelled.source_task().is_some());
                c.set(true);
                Err::<(), _>(e)
            })
            .await?;
        assert!(caught.get());
        assert!(scope.cancelled_caught());

        let timed = CancelScope::with_relative_deadline(1.0)?;
        let r = timed
            .run(async {
                let e = trio::sleep_forever().await.expect_err("deadline");
                let c = e.downcast_ref::<trio::Cancelled>().expect("Cancelled");
                assert_eq!(c.source(), CancelSource::Deadline);
                Err::<(), _>(e)
            })
            .await?;
        assert_eq!(r, None);
        Ok(())
    });
}

#[test]
fn a_scope_is_single_use() {
    run(async {
        let scope = CancelScope::new();
        scope.run(async { Ok(()) }).await?;
        let again = scope.run(async { Ok(()) }).await;
        let e = assert_err::<UsageError, _>(again);
        assert!(!e.to_string().is_empty());
        Ok(())
    });
}

#[test]
fn deadlines_absolute_and_relative() {
    run(async {
        let start = trio::current_time()?;
        let scope = CancelScope::with_deadline(start + 5.0)?;
        let out = scope.run(trio::sleep(10.0)).await?;
        assert_eq!(out, None);
        assert_eq!(trio::current_time()? - start, 5.0);

        // A relative deadline is fixed when the scope is entered, not when it was made.
        let relative = CancelScope::with_relative_deadline(3.0)?;
        trio::sleep(10.0).await?;
        let entered = trio::current_time()?;
        let r2 = relative.clone();
        relative
            .run(async move {
                assert_eq!(r2.deadline(), entered + 3.0);
                trio::sleep_forever().await
            })
            .await?;
        assert_eq!(trio::current_time()? - entered, 3.0);

        // Moving a deadline while the task is blocked takes effect.
        let scope = CancelScope::new();
        let s = scope.clone();
        let t0 = trio::current_time()?;
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                s.run(trio::sleep_forever()).await?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            scope.set_deadline(trio::current_time()? + 2.0)?;
            Ok(())
        })
        .await?;
        assert_eq!(trio::current_time()? - t0, 2.0);
        Ok(())
    });
}

#[test]
fn bad_deadlines_and_durations_are_clear_errors() {
    run(async {
        assert_err::<UsageError, _>(CancelScope::with_deadline(f64::NAN));
        assert_err::<UsageError, _>(CancelScope::with_relative_deadline(-1.0));
        assert_err::<UsageError, _>(trio::sleep(-1.0).await);
        assert_err::<UsageError, _>(trio::sleep(f64::NAN).await);
        assert_err::<UsageError, _>(trio::move_on_after(-0.5, async { Ok(()) }).await);
        assert_err::<UsageError, _>(trio::fail_after(f64::NAN, async { Ok(()) }).await);
        assert_err::<UsageError, _>(trio::sleep_until(f64::NAN).await);
        Ok(())
    });
}

#[test]
fn current_effective_deadline_follows_scopes_and_shields() {
    run(async {
        assert_eq!(current_effective_deadline()?, f64::INFINITY);
        let now = trio::current_time()?;
        trio::move_on_after(10.0, async move {
            assert_eq!(current_effective_deadline()?, now + 10.0);
            trio::move_on_after(20.0, async move {
                assert_eq!(current_effective_deadline()?, now + 10.0);
                CancelScope::new()
                    .shielded(true)
                    .run(async {
                        assert_eq!(current_effective_deadline()?, f64::INFINITY);
                        Ok(())
                    })
                    .await?;
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await?;
        let cancelled = CancelScope::new();
        cancelled.cancel();
        cancelled
            .run(async {
                assert_eq!(current_effective_deadline()?, f64::NEG_INFINITY);
                Ok(())
            })
            .await?;
        Ok(())
    });
}

#[test]
fn move_on_and_fail_after() {
    run(async {
        let start = trio::current_time()?;
        assert_eq!(trio::move_on_after(1.0, trio::sleep(5.0)).await?, None);
        assert_eq!(trio::move_on_after(5.0, async { Ok(7) }).await?, Some(7));
        let e = trio::fail_after(2.0, trio::sleep_forever()).await;
        assert_err::<TooSlowError, _>(e);
        assert_eq!(trio::fail_after(2.0, async { Ok("fast") }).await?, "fast");
        let at = trio::current_time()? + 1.5;
        assert_err::<TooSlowError, _>(trio::fail_at(at, trio::sleep(3.0)).await);
        assert_eq!(
            trio::move_on_at(trio::current_time()? + 1.0, trio::sleep(9.0)).await?,
            None
        );
        assert_eq!(trio::current_time()? - start, 1.0 + 2.0 + 1.5 + 1.0);
        Ok(())
    });
}

#[test]
fn sleep_until_and_current_time() {
    run(async {
        let t = trio::current_time()?;
        trio::sleep_until(t + 42.0).await?;
        assert_eq!(trio::current_time()?, t + 42.0);
        // A deadline in the past still checkpoints and returns at once.
        trio::sleep_until(t).await?;
        assert_eq!(trio::current_time()?, t + 42.0);
        trio::sleep(0.0).await?;
        Ok(())
    });
}

// The run reuses the nodes of finished timeouts and sleeps (a pool, for speed). A reused node
// must carry nothing over: no cancellation, no deadline, and stale deadline-heap entries of
// its earlier life must never fire on it.
#[test]
fn reused_timeout_scopes_start_fresh() {
    run(async {
        for round in 0..50 {
            let start = trio::current_time()?;
            // Expires: the scope is cancelled by its deadline and absorbs it.
            let out = trio::move_on_after(1.0, trio::sleep(5.0)).await?;
            assert_eq!(out, None, "round {round}");
            assert_eq!(trio::current_time()? - start, 1.0);
            // Finishes first: the deadline is left in the heap as a stale entry.
            let out = trio::move_on_after(3.0, async {
                assert_eq!(trio::current_effective_deadline()?, start + 1.0 + 3.0);
                trio::sleep(0.5).await
            })
            .await?;
            assert_eq!(out, Some(()));
            // A scope with no deadline reuses a node: the stale entries (deadlines at
            // start + 4.0) must not cancel it.
            let out = trio::CancelScope::new()
                .run(async {
                    assert_eq!(trio::current_effective_deadline()?, f64::INFINITY);
                    trio::sleep(10.0).await
                })
                .await?;
            assert_eq!(out, Some(()));
            assert_eq!(trio::current_time()? - start, 11.5);
        }
        Ok(())
    });
}

// Trio cancels a scope whose deadline has already passed when it is entered, so a cancel point
// before any schedule point (the start of a `send`, say) already fails.
#[test]
fn a_deadline_already_passed_cancels_the_scope_on_entry() {
    run(async {
        let reached = Rc::new(Cell::new(false));
        let r = reached.clone();
        let out = trio::move_on_after(0.0, async move {
            checkpoint_if_cancelled().await?;
            r.set(true);
            Ok(())
        })
        .await?;
        assert_eq!(out, None);
        assert!(!reached.get(), "the cancel point before any yield failed");

        let past = CancelScope::with_deadline(trio::current_time()? - 1.0)?;
        let handle = past.clone();
        let out = past
            .run(async move {
                assert!(handle.cancel_called(), "cancelled as it was entered");
                let e = checkpoint_if_cancelled().await.expect_err("cancelled");
                let c = e.downcast_ref::<trio::Cancelled>().expect("Cancelled");
                assert_eq!(c.source(), CancelSource::Deadline);
                Err::<(), _>(e)
            })
            .await?;
        assert_eq!(out, None);

        let e = trio::fail_after(0.0, checkpoint_if_cancelled()).await;
        assert_err::<TooSlowError, _>(e);
        Ok(())
    });
}

// Deadlines of scopes entered and left within one task step never reach the run's deadline
// heap (a speed-up); the ones still entered when the task blocks must fire all the same, with
// the deadline they have by then.
#[test]
fn deadlines_registered_within_one_step_still_fire() {
    run(async {
        let start = trio::current_time()?;
        let out = trio::move_on_after(2.0, async {
            for _ in 0..100 {
                trio::move_on_after(1.0, async { Ok(()) }).await?;
                let scope = CancelScope::with_relative_deadline(0.5)?;
                scope.run(async { Ok(()) }).await?;
            }
            trio::sleep_forever().await
        })
        .await?;
        assert_eq!(out, None);
        assert_eq!(trio::current_time()? - start, 2.0);

        // A deadline moved before the task first blocks takes effect with its new value.
        let scope = CancelScope::with_relative_deadline(10.0)?;
        let handle = scope.clone();
        let t0 = trio::current_time()?;
        scope
            .run(async move {
                handle.set_deadline(t0 + 7.0)?;
                handle.set_deadline(t0 + 3.0)?;
                trio::sleep_forever().await
            })
            .await?;
        assert_eq!(trio::current_time()? - t0, 3.0);

        // Scopes left out of nesting order (a nursery's children) keep their deadlines apart.
        let t1 = trio::current_time()?;
        trio::open_nursery(|n| async move {
            for (i, d) in [(0u32, 4.0), (1, 1.0), (2, 2.0)] {
                n.start_soon(async move {
                    let out = trio::move_on_after(d, trio::sleep_forever()).await?;
                    assert_eq!(out, None, "task {i}");
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        assert_eq!(trio::current_time()? - t1, 4.0);
        Ok(())
    });
}

#[test]
fn cancel_called_is_true_as_soon_as_the_deadline_has_passed() {
    use trio_test::MockClock;
    let clock = MockClock::new();
    let jumper = clock.clone();
    trio::RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .run(async move {
            let now = trio::current_time()?;
            // Before entry.
            let unentered = trio::CancelScope::with_deadline(now)?;
            assert!(unentered.cancel_called());
            let later = trio::CancelScope::with_deadline(now + 10.0)?;
            assert!(!later.cancel_called());
            // While active: the loop has not expired the deadline yet.
            let scope = trio::CancelScope::with_deadline(now + 1.0)?;
            let out = scope
                .run(async {
                    assert!(!scope.cancel_called());
                    jumper.jump(1.0)?;
                    assert!(scope.cancel_called(), "the deadline has passed");
                    trio::lowlevel::checkpoint().await?;
                    Ok(())
                })
                .await?;
            assert_eq!(out, None);
            assert!(scope.cancelled_caught());
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_cancelled_operation_yields_before_it_raises() {
    // Trio's rule: a checkpoint that raises Cancelled has yielded first. So a loop that
    // catches Cancelled and tries again lets the other tasks run on every turn.
    run(async {
        let progress = Rc::new(Cell::new(0u32));
        let counted = progress.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                loop {
                    counted.set(counted.get() + 1);
                    checkpoint().await?;
                }
            })?;
            let scope = CancelScope::new();
            scope.cancel();
            let lot = trio::lowlevel::ParkingLot::new();
            let lock = trio::Lock::new();
            let (tx, rx) = trio::open_memory_channel::<u32>(1);
            scope
                .run(async {
                    let task = trio::lowlevel::current_task()?;
                    for _ in 0..3 {
                        let before = (progress.get(), task.schedule_points());
                        assert!(lot.park().await.unwrap_err().is_cancelled());
                        assert!(lock.acquire().await.unwrap_err().is_cancelled());
                        assert!(tx.send(1).await.unwrap_err().is_cancelled());
                        assert!(rx.receive().await.unwrap_err().is_cancelled());
                        assert!(trio::sleep_forever().await.unwrap_err().is_cancelled());
                        assert!(
                            trio::lowlevel::checkpoint_if_cancelled()
                                .await
                                .unwrap_err()
                                .is_cancelled()
                        );
                        assert_eq!(task.schedule_points(), before.1 + 6, "each raise yielded");
                        // The other task ran in (at least) every batch but the last.
                        assert!(progress.get() >= before.0 + 5);
                    }
                    Ok(())
                })
                .await?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
}

/// `current_task_if_not_cancelled`: the task and a counted cancel point when not cancelled;
/// `None`, uncounted, inside a cancelled scope (and again outside a shield's reach); an error
/// outside a run.
#[test]
fn current_task_if_not_cancelled_is_a_cancel_point_that_never_yields() {
    use trio::lowlevel::{current_task, current_task_if_not_cancelled};
    assert_err::<UsageError, _>(current_task_if_not_cancelled());
    run(async {
        let me = current_task()?;
        let (points, yields) = (me.cancel_points(), me.schedule_points());
        assert_eq!(current_task_if_not_cancelled()?, Some(me.clone()));
        assert_eq!(me.cancel_points(), points + 1);
        let out = in_cancelled_scope(async {
            let me = current_task()?;
            let points = me.cancel_points();
            assert_eq!(current_task_if_not_cancelled()?, None);
            assert_eq!(
                me.cancel_points(),
                points,
                "the caller's own cancel point counts"
            );
            let shielded = CancelScope::new()
                .shielded(true)
                .run(async { current_task_if_not_cancelled() })
                .await?;
            assert_eq!(shielded, Some(Some(me)));
            checkpoint().await
        })
        .await?;
        assert_eq!(out, None);
        // None of the calls yielded; the checkpoint in the scope did.
        assert_eq!(me.schedule_points(), yields + 1);
        Ok(())
    });
}

/// Trio's `test_timeout_deadline_on_entry`: once a scope is entered, its relative deadline is
/// the time left until its deadline, so it follows `set_deadline` and the clock.
#[test]
fn relative_deadline_after_entry_is_the_time_left() {
    run(async {
        let cs = CancelScope::with_relative_deadline(5.0)?;
        assert_eq!(cs.relative_deadline(), 5.0);
        let start = trio::current_time()?;
        let c = cs.clone();
        cs.run(async move {
            assert_eq!(c.deadline(), start + 5.0);
            assert_eq!(c.relative_deadline(), 5.0);
            c.set_deadline(start + 3.0)?;
            assert_eq!(c.relative_deadline(), 3.0);
            c.set_relative_deadline(4.0)?;
            assert_eq!(c.deadline(), start + 4.0);
            assert_eq!(c.relative_deadline(), 4.0);
            trio::sleep(1.0).await?;
            assert_eq!(c.relative_deadline(), 3.0);
            Ok(())
        })
        .await?;
        assert_eq!(CancelScope::new().relative_deadline(), f64::INFINITY);
        Ok(())
    });
}

#[test]
fn is_relative_until_entered() {
    run(async {
        assert_eq!(CancelScope::new().is_relative(), Some(false));
        assert_eq!(CancelScope::with_deadline(5.0)?.is_relative(), Some(false));
        let relative = CancelScope::with_relative_deadline(5.0)?;
        assert_eq!(relative.is_relative(), Some(true));
        let inside = relative.clone();
        relative
            .run(async move {
                assert_eq!(inside.is_relative(), None);
                Ok(())
            })
            .await?;
        assert_eq!(
            relative.is_relative(),
            None,
            "once entered, always absolute"
        );
        Ok(())
    });
}

#[test]
fn in_trio_run_and_in_trio_task() {
    use trio::lowlevel::{current_trio_token, in_trio_run, in_trio_task};
    assert!(!in_trio_run() && !in_trio_task());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let from_callback = seen.clone();
    run(async move {
        assert!(in_trio_run() && in_trio_task());
        current_trio_token()?.run_sync_soon(move || {
            *from_callback.lock().unwrap() = Some((in_trio_run(), in_trio_task()));
        })?;
        checkpoint().await?;
        trio::sleep(1.0).await
    });
    assert_eq!(
        *seen.lock().unwrap(),
        Some((true, false)),
        "a run_sync_soon callback runs outside tasks"
    );
    assert!(!in_trio_run());
}
