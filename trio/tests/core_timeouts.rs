//! Timeouts (`move_on_after`, `move_on_at`, `fail_after`, `fail_at`) keep Trio's semantics
//! whichever way their body runs: a body that finishes without blocking never puts the
//! timeout's scope into the cancel tree (core/timeout.rs), and everything that could tell the
//! difference is checked here.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{assert_err, run};
use trio::lowlevel::{checkpoint, current_effective_deadline, wait_all_tasks_blocked};
use trio::{CancelScope, TooSlowError, UsageError};
use trio_test::MockClock;

/// Runs `main` on a MockClock (no autojump) that the body can jump.
fn run_with_clock<F, Fut>(main: F)
where
    F: FnOnce(MockClock) -> Fut,
    Fut: std::future::Future<Output = trio::Result<()>> + 'static,
{
    let clock = MockClock::new();
    let body = main(clock.clone());
    trio::RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .fail_on_deadlock(true)
        .run(body)
        .expect("the run failed");
}

#[test]
fn a_body_that_does_not_block_returns_its_value() {
    run(async {
        assert_eq!(trio::move_on_after(1.0, async { Ok(7) }).await?, Some(7));
        assert_eq!(trio::fail_after(1.0, async { Ok(8) }).await?, 8);
        let now = trio::current_time()?;
        assert_eq!(trio::move_on_at(now + 1.0, async { Ok(9) }).await?, Some(9));
        assert_eq!(trio::fail_at(now + 1.0, async { Ok(10) }).await?, 10);
        Ok(())
    });
}

#[test]
fn the_deadline_is_seen_by_the_body_before_it_blocks() {
    run(async {
        let now = trio::current_time()?;
        trio::move_on_after(5.0, async move {
            assert_eq!(current_effective_deadline()?, now + 5.0);
            // Nested, the earlier deadline wins.
            trio::move_on_after(2.0, async move {
                assert_eq!(current_effective_deadline()?, now + 2.0);
                Ok(())
            })
            .await?;
            trio::move_on_after(9.0, async move {
                assert_eq!(current_effective_deadline()?, now + 5.0);
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await?;
        assert_eq!(current_effective_deadline()?, f64::INFINITY);
        Ok(())
    });
}

#[test]
fn a_body_that_blocks_times_out() {
    run(async {
        let start = trio::current_time()?;
        assert_eq!(trio::move_on_after(1.5, trio::sleep_forever()).await?, None);
        assert_eq!(trio::current_time()? - start, 1.5);
        assert_err::<TooSlowError, _>(trio::fail_after(2.0, trio::sleep(10.0)).await);
        Ok(())
    });
}

#[test]
fn a_body_that_only_checkpoints_still_times_out() {
    // The body never blocks, but its schedule points let the run loop see the deadline.
    run_with_clock(|clock| async move {
        let rounds = Rc::new(Cell::new(0));
        let counted = rounds.clone();
        let out = trio::move_on_after(1.0, async move {
            loop {
                counted.set(counted.get() + 1);
                clock.jump(0.25)?;
                checkpoint().await?;
            }
            #[allow(unreachable_code)]
            Ok(())
        })
        .await?;
        assert_eq!(out, None);
        assert_eq!(
            rounds.get(),
            4,
            "cancelled at the first checkpoint past the deadline"
        );
        Ok(())
    });
}

#[test]
fn a_nursery_opened_in_the_body_hangs_under_the_timeout() {
    run(async {
        let cancelled = Rc::new(Cell::new(false));
        let seen = cancelled.clone();
        let out = trio::move_on_after(1.0, async move {
            trio::open_nursery(|n| async move {
                n.start_soon(async move {
                    let r = trio::sleep(10.0).await;
                    seen.set(r.as_ref().is_err_and(|e| e.is_cancelled()));
                    r
                })?;
                Ok(())
            })
            .await
        })
        .await?;
        assert_eq!(out, None);
        assert!(cancelled.get(), "the child was cancelled by the timeout");
        Ok(())
    });
}

#[test]
fn a_scope_entered_after_the_deadline_passed_in_the_same_step_is_cancelled() {
    // The clock moves past the deadline while the body runs without blocking; the nested
    // scope then enters the timeout's scope, whose deadline has passed: it cancels at entry,
    // and the timeout absorbs the Cancelled.
    run_with_clock(|clock| async move {
        let out = trio::move_on_after(1.0, async move {
            clock.jump(2.0)?;
            CancelScope::new().run(checkpoint()).await?;
            Ok("not reached")
        })
        .await?;
        assert_eq!(out, None);
        Ok(())
    });
}

#[test]
fn an_enclosing_cancellation_is_not_absorbed() {
    run(async {
        let outer = CancelScope::new();
        let out = outer
            .run(async {
                let r = trio::move_on_after(5.0, async {
                    outer.cancel();
                    checkpoint().await
                })
                .await;
                assert!(r.as_ref().is_err_and(|e| e.is_cancelled()), "{r:?}");
                r
            })
            .await?;
        assert_eq!(out, None);
        assert!(outer.cancelled_caught());
        Ok(())
    });
}

#[test]
fn a_passed_or_zero_deadline_cancels_at_once() {
    run(async {
        let now = trio::current_time()?;
        assert_eq!(trio::move_on_at(now, checkpoint()).await?, None);
        assert_eq!(trio::move_on_after(0, checkpoint()).await?, None);
        // A body with no cancel point finishes even so.
        assert_eq!(trio::move_on_after(0, async { Ok(1) }).await?, Some(1));
        Ok(())
    });
}

#[test]
fn bad_arguments_are_errors_at_the_first_poll() {
    run(async {
        let e = assert_err::<UsageError, _>(trio::move_on_after(-1.0, async { Ok(()) }).await);
        assert!(e.to_string().contains("non-negative"), "{e}");
        assert_err::<UsageError, _>(trio::move_on_after(f64::NAN, async { Ok(()) }).await);
        assert_err::<UsageError, _>(trio::fail_at(f64::NAN, async { Ok(()) }).await);
        Ok(())
    });
}

#[test]
fn timeouts_in_a_join_do_not_mix_their_deadlines() {
    // Two timeouts polled by one task, each blocking: each gets its own scope.
    run(async {
        let start = trio::current_time()?;
        let a = trio::move_on_after(1.0, trio::sleep(5.0));
        let b = trio::move_on_after(3.0, async {
            trio::sleep(2.0).await?;
            Ok(2)
        });
        let mut a = std::pin::pin!(a);
        let mut b = std::pin::pin!(b);
        let (mut ra, mut rb) = (None, None);
        std::future::poll_fn(|cx| {
            use std::future::Future;
            if ra.is_none()
                && let std::task::Poll::Ready(r) = a.as_mut().poll(cx)
            {
                ra = Some(r);
            }
            if rb.is_none()
                && let std::task::Poll::Ready(r) = b.as_mut().poll(cx)
            {
                rb = Some(r);
            }
            if ra.is_some() && rb.is_some() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        assert_eq!(ra.expect("a finished")?, None);
        assert_eq!(rb.expect("b finished")?, Some(2));
        assert_eq!(trio::current_time()? - start, 2.0);
        wait_all_tasks_blocked().await?;
        Ok(())
    });
}

#[test]
fn a_shielded_timeout_keeps_outer_cancellation_out_but_its_own_deadline_applies() {
    run(async {
        let outer = trio::CancelScope::new();
        outer.cancel();
        let start = trio::current_time()?;
        let inner = outer
            .run(async {
                // Trio's `move_on_after(2, shield=True)`: the outer cancel does not reach in.
                let moved_on = trio::move_on_after(2.0, trio::sleep(10.0))
                    .shielded(true)
                    .await?;
                assert_eq!(moved_on, None, "the timeout's own deadline ended it");
                assert_eq!(trio::current_time()?, start + 2.0);
                let done = trio::move_on_after(5.0, trio::lowlevel::checkpoint())
                    .shielded(true)
                    .await?;
                assert_eq!(done, Some(()));
                let too_slow = trio::fail_after(1.0, trio::sleep(10.0))
                    .shielded(true)
                    .await;
                assert!(too_slow.is_err_and(|e| e.is_too_slow()));
                // Unshielded, the outer cancellation reaches the body at once.
                trio::move_on_after(5.0, trio::lowlevel::checkpoint()).await?;
                unreachable!("the outer scope is cancelled");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await?;
        assert_eq!(inner, None);
        assert_eq!(trio::current_time()?, start + 3.0);
        Ok(())
    });
}

/// Trio's `test_timeout_deadline_on_entry`: a relative timeout made earlier counts from when
/// it starts (its first poll), not from when it was made; so does a scope with a relative
/// deadline, from when it is entered.
#[test]
fn a_relative_deadline_counts_from_entry_not_from_creation() {
    run_with_clock(|clock| async move {
        let timeout = trio::move_on_after(5.0, async { current_effective_deadline() });
        let scope = CancelScope::with_relative_deadline(5.0)?;
        clock.jump(3.0)?;
        let start = trio::current_time()?;
        assert_eq!(timeout.await?, Some(start + 5.0));
        let inside = scope.clone();
        scope
            .run(async move {
                assert_eq!(inside.deadline(), start + 5.0);
                Ok(())
            })
            .await?;
        Ok(())
    });
}

/// Trio's `test_invalid_access_unentered`: on an unentered scope, setting the kind of
/// deadline it does not have is an error that changes nothing. Reading it is not an error
/// here (a deliberate difference, docs/decisions.md "Deadline getters never fail"): it reads
/// as none, and `is_relative` tells the kinds apart.
#[test]
fn the_other_kind_of_deadline_of_an_unentered_scope() {
    run(async {
        let relative = CancelScope::with_relative_deadline(5.0)?;
        assert_err::<UsageError, _>(relative.set_deadline(7.0));
        assert_eq!(relative.relative_deadline(), 5.0);
        assert_eq!(relative.deadline(), f64::INFINITY);
        assert_eq!(relative.is_relative(), Some(true));

        let absolute = CancelScope::with_deadline(5.0)?;
        assert_err::<UsageError, _>(absolute.set_relative_deadline(7.0));
        assert_eq!(absolute.deadline(), 5.0);
        assert_eq!(absolute.relative_deadline(), f64::INFINITY);
        assert_eq!(absolute.is_relative(), Some(false));
        Ok(())
    });
}

/// Trio's `test_context_shields_from_outer`: a timeout's scope made with `shield=True` keeps
/// an outer cancellation out until its shield is lowered. A `Timeout` hides its scope, so the
/// form that can lower the shield mid-body is a scope with a relative deadline (what
/// `move_on_after` is); `Timeout::shielded` points there.
#[test]
fn lowering_a_timeout_scopes_shield_lets_the_outer_cancellation_in() {
    run(async {
        let outer = CancelScope::new();
        let o = outer.clone();
        let out = outer
            .run(async move {
                let inner = CancelScope::with_relative_deadline(1.0)?.shielded(true);
                let i = inner.clone();
                inner
                    .run(async move {
                        o.cancel();
                        checkpoint().await?;
                        i.set_shield(false);
                        let cancelled = checkpoint().await;
                        assert!(cancelled.as_ref().is_err_and(|e| e.is_cancelled()));
                        cancelled
                    })
                    .await?;
                unreachable!("the outer cancellation is not the inner scope's to absorb");
                #[allow(unreachable_code)]
                Ok(())
            })
            .await?;
        assert_eq!(out, None);
        Ok(())
    });
}
