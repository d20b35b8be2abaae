//! `trio::Condition`: wait/notify rules, repark order, cancellation and drop.

mod common;

use common::*;
use trio::lowlevel::{current_task, wait_all_tasks_blocked};
use trio::{Condition, Event, Lock, UsageError};

#[test]
fn must_hold_the_lock() {
    run(async {
        let cond = Condition::new();
        assert_err::<UsageError, _>(cond.wait().await);
        assert_err::<UsageError, _>(cond.notify(1));
        assert_err::<UsageError, _>(cond.notify_all());
        cond.acquire().await?;
        assert!(cond.locked());
        cond.notify_all()?; // nobody waits: fine
        let c = cond.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                // Another task holding nothing can't notify either.
                assert_err::<UsageError, _>(c.notify(1));
                Ok(())
            })
        })
        .await?;
        cond.release()?;
        assert!(!cond.locked());
        Ok(())
    });
}

#[test]
fn notified_waiters_requeue_on_the_lock_in_order() {
    run(async {
        let lock = Lock::new();
        let cond = Condition::with_lock(lock.clone());
        let woke = Log::default();
        let (c, w) = (cond.clone(), woke.clone());
        trio::open_nursery(|n| async move {
            for i in 0..3 {
                let (c, w) = (c.clone(), w.clone());
                n.start_soon(async move {
                    trio::sleep(f64::from(i)).await?;
                    let _guard = c.lock().await?;
                    c.wait().await?;
                    // Back from wait: the lock is ours again (through the same guard).
                    assert_eq!(c.statistics().lock_statistics.owner, Some(current_task()?));
                    w.push(i);
                    Ok(())
                })?;
            }
            trio::sleep(10.0).await?;
            assert_eq!(c.statistics().tasks_waiting, 3);
            // A task already queued on the lock keeps its place ahead of notified waiters.
            c.acquire().await?;
            let (c2, w2) = (c.clone(), w.clone());
            n.start_soon(async move {
                let _g = c2.as_lock().lock().await?;
                w2.push(99);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            no_yield(async { c.notify(2) }).await?;
            let stats = c.statistics();
            assert_eq!(stats.tasks_waiting, 1);
            assert_eq!(stats.lock_statistics.tasks_waiting, 3);
            c.release()?;
            wait_all_tasks_blocked().await?;
            assert_eq!(w.get(), [99, 0, 1]);
            c.acquire().await?;
            c.notify_all()?;
            assert_eq!(c.statistics().tasks_waiting, 0);
            c.release()
        })
        .await?;
        assert_eq!(woke.get(), [99, 0, 1, 2]);
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn wait_is_a_checkpoint_and_cancel_reacquires() {
    run(async {
        let cond = Condition::new();
        cond.acquire().await?;
        // Cancelled on entry: the lock is not even released.
        let c = cond.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(c.wait().await));
            Ok(())
        })
        .await?;
        assert_eq!(
            cond.statistics().lock_statistics.owner,
            Some(current_task()?)
        );

        // Cancelled while waiting, with the lock held by someone else: wait takes it back
        // (shielded) before it returns Cancelled, which is only after the holder lets go.
        let c = cond.clone();
        let holder_has_it = Event::new();
        trio::open_nursery(|n| async move {
            let (c2, has) = (c.clone(), holder_has_it.clone());
            n.start_soon_named("holder", async move {
                has.wait().await?;
                let _g = c2.lock().await?;
                trio::sleep(5.0).await
            })?;
            let t0 = trio::current_time()?;
            let out = trio::move_on_after(1.0, async {
                holder_has_it.set();
                c.wait().await
            })
            .await?;
            assert_eq!(out, None);
            assert_eq!(trio::current_time()? - t0, 5.0);
            assert_eq!(c.statistics().lock_statistics.owner, Some(current_task()?));
            c.release()
        })
        .await?;
        assert!(!cond.locked());
        Ok(())
    });
}

#[test]
fn cancelled_wait_holding_a_guard_keeps_the_guard_valid() {
    run(async {
        let cond = Condition::new();
        let guard = cond.lock().await?;
        assert_eq!(trio::move_on_after(1.0, cond.wait()).await?, None);
        assert!(cond.locked());
        drop(guard); // still the live acquisition: releases
        assert!(!cond.locked());
        Ok(())
    });
}

#[test]
fn dropped_wait_passes_the_lock_on() {
    run(async {
        let cond = Condition::new();
        let (c, go, c_got) = (cond.clone(), Event::new(), Event::new());
        trio::open_nursery(|n| async move {
            let (w, go2) = (c.clone(), go.clone());
            n.start_soon_named("b", async move {
                let guard = w.lock().await?;
                let mut fut = Box::pin(w.wait());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                // Notified and handed the lock, but the wait is dropped: the lock moves on.
                drop(fut);
                drop(guard); // no longer this guard's acquisition: does nothing
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let (w, got) = (c.clone(), c_got.clone());
            n.start_soon_named("c", async move {
                trio::sleep(1.0).await?;
                let _g = w.lock().await?;
                got.set();
                Ok(())
            })?;
            c.acquire().await?;
            c.notify(1)?;
            trio::sleep(2.0).await?; // c queues behind the notified b
            assert_eq!(c.statistics().lock_statistics.tasks_waiting, 2);
            c.release()?;
            assert_eq!(
                c.statistics()
                    .lock_statistics
                    .owner
                    .map(|t| t.name())
                    .as_deref(),
                Some("b")
            );
            go.set();
            c_got.wait().await
        })
        .await?;
        assert!(!cond.locked());

        // A wait dropped before any notify just leaves; the guard then has nothing to release.
        let guard = cond.lock().await?;
        let mut fut = Box::pin(cond.wait());
        assert!(poll_once(&mut fut).await.is_pending());
        assert!(!cond.locked());
        assert_eq!(cond.statistics().tasks_waiting, 1);
        drop(fut);
        assert_eq!(cond.statistics().tasks_waiting, 0);
        drop(guard);
        assert!(!cond.locked());
        Ok(())
    });
}

#[test]
fn explicit_wait_keeps_explicit_ownership() {
    run(async {
        let cond = Condition::new();
        let c = cond.clone();
        trio::open_nursery(|n| async move {
            let w = c.clone();
            n.start_soon(async move {
                w.acquire().await?;
                w.wait().await?;
                w.release() // still ours to release explicitly
            })?;
            wait_all_tasks_blocked().await?;
            let _g = c.lock().await?;
            c.notify(1)
        })
        .await?;
        assert!(!cond.locked());
        assert!(format!("{cond:?}").starts_with("Condition"));
        Ok(())
    });
}

/// Trio's `Condition.wait` checks that the caller holds the lock before anything else: a
/// task that does not hold it gets the usage error even inside a cancelled scope (a
/// cancellation would hide the bug until the scope stops being cancelled).
#[test]
fn waiting_without_the_lock_is_a_usage_error_even_when_cancelled() {
    run(async {
        let cond = Condition::new();
        let c = cond.clone();
        in_cancelled_scope(async move {
            assert_err::<UsageError, _>(c.wait().await);
            Ok(())
        })
        .await?;
        assert!(!cond.locked());
        Ok(())
    });
}
