//! `trio::Lock` / `StrictFIFOLock`: ownership rules, broken locks, guards. Both run the lock
//! suite in sync_lock_suite.rs too: checkpoints, fair hand-off, cancel safety.

mod common;

use common::*;
use trio::lowlevel::{current_task, wait_all_tasks_blocked};
use trio::{BrokenResourceError, Event, Lock, StrictFIFOLock, UsageError, WouldBlock};

#[test]
fn not_reentrant_and_only_the_owner_releases() {
    run(async {
        let lock = Lock::new();
        assert_err::<UsageError, _>(lock.release());
        lock.acquire().await?;
        let e = assert_err::<UsageError, _>(lock.acquire().await);
        assert!(e.to_string().contains("re-entrant"), "{e}");
        assert_err::<UsageError, _>(lock.try_acquire());
        assert_err::<UsageError, _>(lock.try_lock().map(drop));
        assert_err::<UsageError, _>(lock.lock().await.map(drop));
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            n.start_soon_named("intruder", async move {
                let e = assert_err::<UsageError, _>(l.release());
                assert!(e.to_string().contains("intruder"), "{e}");
                assert_err::<WouldBlock, _>(l.try_acquire());
                Ok(())
            })
        })
        .await?;
        lock.release()?;
        assert_err::<UsageError, _>(lock.release());
        Ok(())
    });
}

#[test]
fn ownership_moves_with_each_hand_off() {
    run(async {
        let lock = Lock::new();
        lock.acquire().await?;
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let waiter = l.clone();
            n.start_soon_named("waiter", async move {
                waiter.acquire().await?;
                waiter.release()
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            // The waiter owns it before it even runs.
            let owner = l.statistics().owner.map(|t| t.name());
            assert_eq!(owner.as_deref(), Some("waiter"));
            Ok(())
        })
        .await?;
        assert!(!lock.locked());

        // Cancelled just after the hand-off: acquire returned Ok and the task owns the lock.
        lock.acquire().await?;
        let scope = trio::CancelScope::new();
        let (l, s) = (lock.clone(), scope.clone());
        trio::open_nursery(|n| async move {
            let w = l.clone();
            n.start_soon_named("late", async move {
                assert_eq!(s.run(w.acquire()).await?, Some(()));
                assert_eq!(w.statistics().owner, Some(current_task()?));
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            scope.cancel();
            Ok(())
        })
        .await?;

        // Handed to b, whose future is dropped before it returns: c becomes the owner.
        lock.acquire().await?;
        let (l, go, c_got) = (lock.clone(), Event::new(), Event::new());
        trio::open_nursery(|n| async move {
            let (w, go2) = (l.clone(), go.clone());
            n.start_soon_named("b", async move {
                let mut fut = Box::pin(w.acquire());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                assert_eq!(w.statistics().owner, Some(current_task()?));
                drop(fut);
                assert_eq!(w.statistics().owner.map(|t| t.name()).as_deref(), Some("c"));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let (w, got) = (l.clone(), c_got.clone());
            n.start_soon_named("c", async move {
                w.acquire().await?;
                got.set();
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            go.set();
            c_got.wait().await
        })
        .await?;
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn owner_exiting_breaks_the_lock_for_waiters_and_later_acquirers() {
    run(async {
        let lock = Lock::new();
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let (w, exit) = (l.clone(), Event::new());
            let exit2 = exit.clone();
            n.start_soon_named("careless", async move {
                w.acquire().await?;
                exit2.wait().await // returns still holding the lock
            })?;
            wait_all_tasks_blocked().await?;
            let w = l.clone();
            n.start_soon_named("waiter", async move {
                let e = assert_err::<BrokenResourceError, _>(w.acquire().await);
                assert!(e.to_string().contains("careless"), "{e}");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().tasks_waiting, 1);
            exit.set();
            Ok(())
        })
        .await?;
        let e = assert_err::<BrokenResourceError, _>(lock.acquire().await);
        assert!(e.to_string().contains("careless"), "{e}");
        assert_err::<BrokenResourceError, _>(lock.try_acquire());
        assert_err::<BrokenResourceError, _>(lock.lock().await.map(drop));
        Ok(())
    });
}

#[test]
fn owner_exit_noticed_by_the_next_acquirer() {
    run(async {
        let lock = Lock::new();
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            n.start_soon_named("quitter", async move { l.acquire().await })
        })
        .await?;
        let stats = lock.statistics();
        assert!(stats.locked);
        assert!(stats.owner.as_ref().is_some_and(|t| t.is_finished()));
        let e = assert_err::<BrokenResourceError, _>(lock.try_acquire());
        assert!(e.to_string().contains("quitter"), "{e}");
        assert_err::<BrokenResourceError, _>(lock.acquire().await);
        Ok(())
    });
}

#[test]
fn guards_release_on_drop_even_in_another_task() {
    run(async {
        let lock = Lock::new();
        let (tx, rx) = trio::open_memory_channel::<trio::LockGuard>(1);
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let l2 = l.clone();
            n.start_soon_named("taker", async move {
                let guard = l2.lock().await?;
                tx.send(guard).await?;
                Ok(())
            })?;
            n.start_soon(async move {
                let guard = rx.receive().await?;
                trio::sleep(1.0).await?;
                // The taker has exited, but a guard-held lock is not broken.
                assert!(guard.lock().locked());
                drop(guard);
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        lock.acquire().await?;
        lock.release()
    });
}

#[test]
fn stale_guard_does_not_release_a_later_acquisition() {
    run(async {
        let lock = Lock::new();
        let guard = lock.lock().await?;
        lock.release()?; // explicit release by the owner is allowed
        lock.acquire().await?;
        drop(guard); // stale: must not release the new acquisition
        assert!(lock.locked());
        lock.release()
    });
}

#[test]
fn statistics_and_debug() {
    run(async {
        let lock = StrictFIFOLock::new();
        let stats = lock.statistics();
        assert!(!stats.locked);
        assert_eq!(stats.owner, None);
        assert_eq!(stats.tasks_waiting, 0);
        let guard = lock.try_lock()?;
        let stats = lock.statistics();
        assert!(stats.locked);
        assert_eq!(stats.owner, Some(current_task()?));
        assert!(format!("{lock:?}").starts_with("StrictFIFOLock"));
        assert!(format!("{:?}", lock.as_lock()).starts_with("Lock"));
        drop(guard);
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn outside_a_run_sync_calls_fail_cleanly() {
    let lock = Lock::new();
    assert!(lock.try_acquire().is_err());
    assert!(lock.release().is_err());
    assert!(!lock.locked());
}

/// The lock takes a fast path while it has never had waiters; after waiters come and go
/// (cancelled, handed the lock, moved in by a `Condition`) it must still be free for
/// everyone, hand off in order, and count its waiters.
#[test]
fn a_lock_that_had_waiters_is_free_again_once_they_are_gone() {
    run(async {
        let lock = Lock::new();
        let guard = lock.lock().await?;
        // A waiter that is cancelled leaves the queue: the release finds nobody.
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            let token = n.cancel_scope();
            n.start_soon_named("impatient", async move {
                let r = w.acquire().await;
                assert!(is_cancelled(r));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().tasks_waiting, 1);
            token.cancel();
            Ok(())
        })
        .await?;
        assert_eq!(lock.statistics().tasks_waiting, 0);
        drop(guard);
        assert!(!lock.locked());
        // Free and unqueued: taken at once, by try_lock and by lock().
        drop(lock.try_lock()?);
        drop(taken_on_first_poll(&lock).await?);
        assert!(!lock.locked());

        // Two waiters, handed the lock in turn; then it is free again.
        let order = Log::default();
        let guard = lock.lock().await?;
        let l = lock.clone();
        let o = order.clone();
        trio::open_nursery(|n| async move {
            for name in ["first", "second"] {
                let (w, o) = (l.clone(), o.clone());
                n.start_soon_named(name, async move {
                    let g = w.lock().await?;
                    o.push(name);
                    trio::lowlevel::checkpoint().await?;
                    drop(g);
                    Ok(())
                })?;
                wait_all_tasks_blocked().await?;
            }
            assert_eq!(l.statistics().tasks_waiting, 2);
            drop(guard);
            Ok(())
        })
        .await?;
        assert_eq!(order.get(), ["first", "second"]);
        assert!(!lock.locked());
        lock.acquire().await?;
        assert_eq!(lock.statistics().owner, Some(current_task()?));
        lock.release()?;

        // A Condition moves its waiter into the queue of a lock that never had one, while
        // the notifier holds it: the release hands it over.
        let lock = Lock::new();
        let cond = trio::Condition::with_lock(lock.clone());
        let c = cond.clone();
        trio::open_nursery(|n| async move {
            let w = c.clone();
            n.start_soon_named("sleeper", async move {
                w.acquire().await?;
                w.wait().await?;
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            let guard = c.lock().await?;
            c.notify(1)?;
            assert_eq!(c.as_lock().statistics().tasks_waiting, 1);
            drop(guard);
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        drop(lock.try_lock()?);
        Ok(())
    });
}

/// `lock()` on a free lock: taken on the first poll (the rest is the schedule point).
async fn taken_on_first_poll(lock: &Lock) -> trio::Result<trio::LockGuard> {
    let mut fut = std::pin::pin!(lock.lock());
    match poll_once(&mut fut).await {
        std::task::Poll::Pending => {}
        std::task::Poll::Ready(r) => return r,
    }
    assert!(
        lock.locked(),
        "a free lock is held from the first poll of lock()"
    );
    fut.await
}
