//! `trio::Lock` / `StrictFIFOLock`: checkpoints, ownership rules, fair hand-off, cancel
//! safety, broken locks, guards.

mod common;

use common::*;
use trio::lowlevel::{checkpoint, current_task, wait_all_tasks_blocked};
use trio::{BrokenResourceError, Event, Lock, StrictFIFOLock, UsageError, WouldBlock};

#[test]
fn acquire_is_a_checkpoint_even_uncontended() {
    run(async {
        let lock = Lock::new();
        yields(lock.acquire()).await?;
        assert!(lock.locked());
        no_yield(async { lock.release() }).await?;
        let guard = yields(lock.lock()).await?;
        drop(guard);
        assert!(!lock.locked());
        // In a cancelled scope it fails even though the lock is free, and takes nothing.
        let l = lock.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(l.acquire().await));
            assert!(is_cancelled(l.lock().await.map(drop)));
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        // try_acquire is sync and works in a cancelled scope.
        let l = lock.clone();
        in_cancelled_scope(async move {
            l.try_acquire()?;
            l.release()
        })
        .await?;
        Ok(())
    });
}

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
fn release_hands_off_to_the_oldest_waiter() {
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
            let stats = l.statistics();
            assert!(stats.locked);
            assert_eq!(stats.tasks_waiting, 1);
            l.release()?;
            // The waiter owns it before it even runs: the releaser can't take it back.
            let stats = l.statistics();
            assert_eq!(stats.owner.map(|t| t.name()).as_deref(), Some("waiter"));
            assert_eq!(stats.tasks_waiting, 0);
            assert_err::<WouldBlock, _>(l.try_acquire());
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn try_acquire_does_not_jump_the_queue() {
    run(async {
        let lock = Lock::new();
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            l.acquire().await?;
            let w = l.clone();
            n.start_soon(async move {
                w.acquire().await?;
                checkpoint().await?;
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            let l2 = l.clone();
            n.start_soon(async move {
                assert_err::<WouldBlock, _>(l2.try_acquire());
                Ok(())
            })
        })
        .await
    });
}

async fn three_loopers(lock: Lock, explicit: bool) -> trio::Result<Vec<usize>> {
    let order = Log::default();
    let o = order.clone();
    trio::open_nursery(|n| async move {
        for id in 0..3 {
            let (lock, order) = (lock.clone(), o.clone());
            n.start_soon(async move {
                for _ in 0..10 {
                    if explicit {
                        lock.acquire().await?;
                        order.push(id);
                        checkpoint().await?;
                        lock.release()?;
                    } else {
                        let _guard = lock.lock().await?;
                        order.push(id);
                        trio::sleep(1.0).await?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    })
    .await?;
    Ok(order.get())
}

#[test]
fn three_looping_tasks_take_strict_turns() {
    for explicit in [false, true] {
        let order = run(three_loopers(Lock::new(), explicit));
        assert_eq!(order.len(), 30);
        assert_round_robin(&order, 3);
    }
    let order = run(async { three_loopers(StrictFIFOLock::new().as_lock().clone(), true).await });
    assert_round_robin(&order, 3);
}

#[test]
fn cancelled_acquire_has_no_effect() {
    run(async {
        let lock = Lock::new();
        lock.acquire().await?;
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            n.start_soon(async move {
                let out = trio::move_on_after(5.0, w.acquire()).await?;
                assert_eq!(out, None);
                Ok(())
            })?;
            let (w, got) = (l.clone(), Event::new());
            let g = got.clone();
            n.start_soon(async move {
                trio::sleep(1.0).await?; // queued behind the one that gets cancelled
                w.acquire().await?;
                g.set();
                w.release()
            })?;
            trio::sleep(10.0).await?;
            assert_eq!(l.statistics().tasks_waiting, 1);
            assert!(!got.is_set());
            l.release()?;
            got.wait().await
        })
        .await?;
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn cancel_after_hand_off_still_completes() {
    run(async {
        let lock = Lock::new();
        lock.acquire().await?;
        let scope = trio::CancelScope::new();
        let l = lock.clone();
        let s = scope.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            n.start_soon_named("late", async move {
                let got = s
                    .run(async {
                        w.acquire().await?;
                        Ok(())
                    })
                    .await?;
                // The lock was handed over before the cancel landed: acquire returned Ok.
                assert_eq!(got, Some(()));
                assert_eq!(w.statistics().owner, Some(current_task()?));
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            scope.cancel();
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn dropped_acquire_passes_the_lock_on() {
    run(async {
        let lock = Lock::new();
        lock.acquire().await?;
        let (l, b_parked, go, c_got) = (lock.clone(), Event::new(), Event::new(), Event::new());
        trio::open_nursery(|n| async move {
            let (w, parked, go2) = (l.clone(), b_parked.clone(), go.clone());
            n.start_soon_named("b", async move {
                let mut fut = Box::pin(w.acquire());
                assert!(poll_once(&mut fut).await.is_pending());
                parked.set();
                go2.wait().await?;
                // Handed to b, but b drops the future before it returns.
                assert_eq!(w.statistics().owner, Some(current_task()?));
                drop(fut);
                assert_eq!(w.statistics().owner.map(|t| t.name()).as_deref(), Some("c"));
                Ok(())
            })?;
            b_parked.wait().await?;
            let (w, got) = (l.clone(), c_got.clone());
            n.start_soon_named("c", async move {
                w.acquire().await?;
                got.set();
                w.release()
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().tasks_waiting, 2);
            l.release()?;
            go.set();
            c_got.wait().await
        })
        .await?;
        assert!(!lock.locked());

        // Dropped with nobody queued behind: the lock ends up free.
        lock.acquire().await?;
        let l = lock.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            let go = Event::new();
            let go2 = go.clone();
            n.start_soon(async move {
                let mut fut = Box::pin(w.lock());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            go.set();
            Ok(())
        })
        .await?;
        assert!(!lock.locked());
        Ok(())
    });
}

#[test]
fn dropped_while_waiting_or_yielding_leaves_no_trace() {
    run(async {
        let lock = Lock::new();
        // Dropped during the schedule point of an uncontended acquire: released again.
        let mut fut = Box::pin(lock.acquire());
        assert!(poll_once(&mut fut).await.is_pending());
        assert!(lock.locked());
        drop(fut);
        assert!(!lock.locked());

        let l = lock.clone();
        trio::open_nursery(|n| async move {
            l.acquire().await?;
            let w = l.clone();
            n.start_soon(async move {
                let mut fut = Box::pin(w.acquire());
                assert!(poll_once(&mut fut).await.is_pending());
                assert_eq!(w.statistics().tasks_waiting, 1);
                drop(fut);
                assert_eq!(w.statistics().tasks_waiting, 0);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            l.release()?;
            assert!(!l.locked());
            Ok(())
        })
        .await
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
