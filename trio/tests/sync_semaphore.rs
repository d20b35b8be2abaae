//! `trio::Semaphore`: values, max_value, fair hand-off, cancel safety, guards.

mod common;

use common::*;
use trio::lowlevel::{checkpoint, wait_all_tasks_blocked};
use trio::{Event, Semaphore, UsageError, WouldBlock};

#[test]
fn values_and_max() {
    run(async {
        assert_err::<UsageError, _>(Semaphore::with_max(3, 2).map(drop));
        let sem = Semaphore::with_max(1, 2)?;
        assert_eq!((sem.value(), sem.max_value()), (1, Some(2)));
        no_yield(async { sem.release() }).await?;
        assert_eq!(sem.value(), 2);
        assert_err::<UsageError, _>(sem.release());
        yields(sem.acquire()).await?;
        no_yield(async { sem.try_acquire() }).await?;
        assert_eq!(sem.value(), 0);
        assert_err::<WouldBlock, _>(sem.try_acquire());
        assert_err::<WouldBlock, _>(sem.try_acquire_guard().map(drop));
        let unbounded = Semaphore::new(0);
        assert_eq!(unbounded.max_value(), None);
        for _ in 0..5 {
            unbounded.release()?;
        }
        assert_eq!(unbounded.value(), 5);
        assert!(format!("{unbounded:?}").contains("value: 5"));
        Ok(())
    });
}

#[test]
fn acquire_is_a_checkpoint() {
    run(async {
        let sem = Semaphore::new(1);
        let s = sem.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(s.acquire().await));
            Ok(())
        })
        .await?;
        assert_eq!(sem.value(), 1);
        let guard = yields(sem.acquire_guard()).await?;
        assert_eq!(sem.value(), 0);
        drop(guard);
        assert_eq!(sem.value(), 1);
        Ok(())
    });
}

#[test]
fn release_hands_the_token_to_the_oldest_waiter() {
    run(async {
        let sem = Semaphore::new(0);
        let order = Log::default();
        let (s, o) = (sem.clone(), order.clone());
        trio::open_nursery(|n| async move {
            for i in 0..3 {
                let (s, o) = (s.clone(), o.clone());
                n.start_soon(async move {
                    trio::sleep(f64::from(i)).await?; // queue in order 0, 1, 2
                    s.acquire().await?;
                    o.push(i);
                    Ok(())
                })?;
            }
            trio::sleep(10.0).await?;
            assert_eq!(s.statistics().tasks_waiting, 3);
            s.release()?;
            // Handed over: the counter stays at 0 and nobody else can take it.
            assert_eq!(s.value(), 0);
            assert_err::<WouldBlock, _>(s.try_acquire());
            assert_eq!(s.statistics().tasks_waiting, 2);
            for _ in 0..2 {
                wait_all_tasks_blocked().await?; // let the last one record its turn
                s.release()?;
            }
            Ok(())
        })
        .await?;
        assert_eq!(order.get(), [0, 1, 2]);
        Ok(())
    });
}

#[test]
fn three_looping_tasks_take_strict_turns() {
    let order = run(async {
        let sem = Semaphore::with_max(1, 1)?;
        let order = Log::default();
        let o = order.clone();
        trio::open_nursery(|n| async move {
            for id in 0..3 {
                let (sem, order) = (sem.clone(), o.clone());
                n.start_soon(async move {
                    for _ in 0..10 {
                        let _token = sem.acquire_guard().await?;
                        order.push(id);
                        checkpoint().await?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(order.get())
    });
    assert_eq!(order.len(), 30);
    assert_round_robin(&order, 3);
}

#[test]
fn cancelled_acquire_takes_nothing() {
    run(async {
        let sem = Semaphore::new(0);
        assert_eq!(trio::move_on_after(1.0, sem.acquire()).await?, None);
        assert_eq!(sem.statistics().tasks_waiting, 0);
        sem.release()?;
        assert_eq!(sem.value(), 1); // not handed to the cancelled waiter
        Ok(())
    });
}

#[test]
fn dropped_acquire_passes_the_token_on() {
    run(async {
        let sem = Semaphore::new(0);
        let (s, go, c_got) = (sem.clone(), Event::new(), Event::new());
        trio::open_nursery(|n| async move {
            let (w, go2) = (s.clone(), go.clone());
            n.start_soon(async move {
                let mut fut = Box::pin(w.acquire());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut); // was handed the token
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let (w, got) = (s.clone(), c_got.clone());
            n.start_soon(async move {
                w.acquire().await?;
                got.set();
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s.release()?;
            go.set();
            c_got.wait().await
        })
        .await?;
        assert_eq!(sem.value(), 0); // the one token went to c
        // Dropped with nobody waiting: back to the counter. Also during the fast path's yield.
        sem.release()?;
        let mut fut = Box::pin(sem.acquire());
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(sem.value(), 0);
        drop(fut);
        assert_eq!(sem.value(), 1);
        Ok(())
    });
}

#[test]
fn cancel_after_hand_off_still_completes() {
    run(async {
        let sem = Semaphore::new(0);
        let scope = trio::CancelScope::new();
        let (s, sc) = (sem.clone(), scope.clone());
        trio::open_nursery(|n| async move {
            let w = s.clone();
            n.start_soon(async move {
                let got = sc.run(async { w.acquire().await }).await?;
                assert_eq!(got, Some(()));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s.release()?;
            scope.cancel();
            Ok(())
        })
        .await?;
        assert_eq!(sem.value(), 0);
        Ok(())
    });
}
