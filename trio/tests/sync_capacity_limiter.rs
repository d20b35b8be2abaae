//! `trio::CapacityLimiter`: borrowers, adjustable limit, hand-offs that move the borrower. With
//! one token it runs the lock suite in sync_lock_suite.rs: checkpoints, fair hand-off, cancel
//! safety, guards.

mod common;

use common::*;
use trio::lowlevel::{current_task, wait_all_tasks_blocked};
use trio::{Borrower, CapacityLimiter, Event, UsageError, WouldBlock};
use trio_test::assert_checkpoints;

#[test]
fn borrowers_hold_one_token_each() {
    run(async {
        let limiter = CapacityLimiter::new(2);
        let me = Borrower::Task(current_task()?);
        yields(limiter.acquire()).await?;
        assert_err::<UsageError, _>(limiter.acquire().await);
        assert_err::<UsageError, _>(limiter.try_acquire());
        no_yield(async { limiter.try_acquire_on_behalf_of(7u64) }).await?;
        assert_err::<WouldBlock, _>(limiter.try_acquire_on_behalf_of(8u64));
        let stats = limiter.statistics();
        assert_eq!(stats.borrowed_tokens, 2);
        assert_eq!(stats.total_tokens, 2);
        assert_eq!(stats.borrowers, [me.clone(), Borrower::Id(7)]);
        assert_eq!(stats.tasks_waiting, 0);
        assert_eq!(limiter.available_tokens(), 0);
        assert_err::<UsageError, _>(limiter.release_on_behalf_of(8u64));
        limiter.release_on_behalf_of(7u64)?;
        limiter.release()?;
        assert_err::<UsageError, _>(limiter.release());
        assert_eq!(limiter.borrowed_tokens(), 0);
        assert_eq!(Borrower::from(3u64).to_string(), "borrower 3");
        assert!(me.to_string().starts_with("task "));
        Ok(())
    });
}

#[test]
fn acquiring_on_behalf_of_a_borrower_is_a_checkpoint_and_guards_name_it() {
    run(async {
        let limiter = CapacityLimiter::new(1);
        let l = limiter.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(l.acquire_on_behalf_of(1u64).await));
            Ok(())
        })
        .await?;
        assert_eq!(limiter.borrowed_tokens(), 0);
        let guard = assert_checkpoints(limiter.acquire_guard_on_behalf_of(5u64)).await?;
        assert_eq!(guard.borrower(), &Borrower::Id(5));
        drop(guard);
        assert_eq!(limiter.borrowed_tokens(), 0);
        Ok(())
    });
}

#[test]
fn release_hands_off_in_order_and_raising_the_limit_wakes_waiters() {
    run(async {
        let limiter = CapacityLimiter::new(1);
        limiter.acquire_on_behalf_of(0u64).await?;
        let order = Log::default();
        let (l, o) = (limiter.clone(), order.clone());
        trio::open_nursery(|n| async move {
            for i in 1..=4u64 {
                let (l, o) = (l.clone(), o.clone());
                n.start_soon(async move {
                    trio::sleep(i as f64).await?;
                    let _g = l.acquire_guard_on_behalf_of(i).await?;
                    o.push(i);
                    trio::sleep(100.0).await
                })?;
            }
            trio::sleep(10.0).await?;
            assert_eq!(l.statistics().tasks_waiting, 4);
            l.release_on_behalf_of(0u64)?;
            // Handed to borrower 1 at once.
            assert_eq!(l.statistics().borrowers, [Borrower::Id(1)]);
            assert_err::<WouldBlock, _>(l.try_acquire_on_behalf_of(0u64));
            l.set_total_tokens(3);
            let stats = l.statistics();
            assert_eq!(
                stats.borrowers,
                [Borrower::Id(1), Borrower::Id(2), Borrower::Id(3)]
            );
            assert_eq!(stats.tasks_waiting, 1);
            // Lowering takes nothing back.
            l.set_total_tokens(1);
            assert_eq!(l.borrowed_tokens(), 3);
            assert_eq!(l.available_tokens(), 0);
            Ok(())
        })
        .await?;
        // 1, 2 and 3 got their tokens in that order (checked above through the statistics) in
        // one step, so they run in batch order; 4 comes last.
        let mut got = order.get();
        assert_eq!(got[3], 4);
        got.sort();
        assert_eq!(got, [1, 2, 3, 4]);
        Ok(())
    });
}

#[test]
fn zero_tokens_blocks_until_raised() {
    run(async {
        let limiter = CapacityLimiter::new(0);
        assert_eq!(trio::move_on_after(1.0, limiter.acquire()).await?, None);
        let l = limiter.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            n.start_soon(async move { w.acquire_on_behalf_of(1u64).await })?;
            wait_all_tasks_blocked().await?;
            l.set_total_tokens(1);
            Ok(())
        })
        .await?;
        assert_eq!(limiter.statistics().borrowers, [Borrower::Id(1)]);
        Ok(())
    });
}

#[test]
fn one_wait_per_borrower_and_per_task() {
    run(async {
        let limiter = CapacityLimiter::new(1);
        limiter.acquire_on_behalf_of(0u64).await?;
        let l = limiter.clone();
        trio::open_nursery(|n| async move {
            let w = l.clone();
            n.start_soon(async move {
                let mut first = Box::pin(w.acquire_on_behalf_of(1u64));
                assert!(poll_once(&mut first).await.is_pending());
                // Same borrower waiting twice, or the same task twice: both refused.
                assert_err::<UsageError, _>(w.acquire_on_behalf_of(1u64).await);
                assert_err::<UsageError, _>(w.try_acquire_on_behalf_of(1u64));
                assert_err::<UsageError, _>(w.acquire_on_behalf_of(2u64).await);
                drop(first);
                assert_eq!(w.statistics().tasks_waiting, 0);
                // After leaving, borrower 1 may wait again.
                assert_eq!(
                    trio::move_on_after(1.0, w.acquire_on_behalf_of(1u64)).await?,
                    None
                );
                Ok(())
            })
        })
        .await?;
        assert_eq!(limiter.statistics().borrowers, [Borrower::Id(0)]);
        Ok(())
    });
}

#[test]
fn hand_offs_move_the_borrower() {
    run(async {
        let limiter = CapacityLimiter::new(1);
        limiter.acquire_on_behalf_of(0u64).await?;
        // Cancelled while waiting for another borrower: nothing taken, nothing pending.
        assert_eq!(
            trio::move_on_after(1.0, limiter.acquire_on_behalf_of(1u64)).await?,
            None
        );
        assert_eq!(limiter.statistics().tasks_waiting, 0);
        let (l, go, c_got) = (limiter.clone(), Event::new(), Event::new());
        let scope = trio::CancelScope::new();
        let sc = scope.clone();
        trio::open_nursery(|n| async move {
            // b is handed a token, then drops its future: the token passes to c.
            let (w, go2) = (l.clone(), go.clone());
            n.start_soon(async move {
                let mut fut = Box::pin(w.acquire_on_behalf_of(1u64));
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                assert_eq!(w.statistics().borrowers, [Borrower::Id(1)]);
                drop(fut);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let (w, got) = (l.clone(), c_got.clone());
            n.start_soon(async move {
                // c is cancelled right after the hand-off: it still holds the token.
                let r = sc.run(w.acquire_on_behalf_of(2u64)).await?;
                assert_eq!(r, Some(()));
                got.set();
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            l.release_on_behalf_of(0u64)?;
            go.set();
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().borrowers, [Borrower::Id(2)]);
            scope.cancel();
            c_got.wait().await
        })
        .await?;
        assert_eq!(limiter.statistics().borrowers, [Borrower::Id(2)]);
        // Dropped during the fast path's schedule point: the borrower's token is released.
        limiter.release_on_behalf_of(2u64)?;
        let mut fut = Box::pin(limiter.acquire_on_behalf_of(9u64));
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(limiter.statistics().borrowers, [Borrower::Id(9)]);
        drop(fut);
        assert_eq!(limiter.borrowed_tokens(), 0);
        Ok(())
    });
}

/// Trio's `test_CapacityLimiter_change_total_tokens`: lowering the limit below the tokens
/// held hands nothing on until the borrowers are below the new limit.
#[test]
fn a_lowered_limit_hands_on_only_below_it() {
    run(async {
        let limiter = CapacityLimiter::new(2);
        let l = limiter.clone();
        trio::open_nursery(|n| async move {
            for i in 0..5u64 {
                let w = l.clone();
                n.start_soon(async move { w.acquire_on_behalf_of(i).await })?;
                wait_all_tasks_blocked().await?;
            }
            let ids = |l: &CapacityLimiter| {
                let mut b: Vec<_> = l.statistics().borrowers;
                b.sort_by_key(|b| b.to_string());
                b
            };
            assert_eq!(ids(&l), [Borrower::Id(0), Borrower::Id(1)]);
            assert_eq!(l.statistics().tasks_waiting, 3);
            l.set_total_tokens(4);
            assert_eq!(ids(&l), (0..4).map(Borrower::Id).collect::<Vec<_>>());
            assert_eq!(l.statistics().tasks_waiting, 1);
            l.set_total_tokens(1);
            assert_eq!((l.borrowed_tokens(), l.total_tokens()), (4, 1));
            for i in 0..3u64 {
                l.release_on_behalf_of(i)?;
            }
            assert_eq!(ids(&l), [Borrower::Id(3)]);
            assert_eq!(l.statistics().tasks_waiting, 1);
            l.release_on_behalf_of(3u64)?;
            assert_eq!(ids(&l), [Borrower::Id(4)]);
            assert_eq!(l.statistics().tasks_waiting, 0);
            l.release_on_behalf_of(4u64)
        })
        .await
    });
}

/// Trio's `test_CapacityLimiter_zero_limit_tokens`: a limit of 0 lets nobody in, also after
/// a release, until it is raised.
#[test]
fn a_zero_limit_lets_nobody_in_until_raised() {
    run(async {
        let limiter = CapacityLimiter::new(5);
        let l = limiter.clone();
        trio::open_nursery(|n| async move {
            l.set_total_tokens(0);
            for i in 0..5u64 {
                let w = l.clone();
                n.start_soon(async move { w.acquire_on_behalf_of(i).await })?;
                wait_all_tasks_blocked().await?;
            }
            assert!(l.statistics().borrowers.is_empty());
            assert_eq!(l.statistics().tasks_waiting, 5);
            l.set_total_tokens(5);
            assert_eq!(l.borrowed_tokens(), 5);
            for i in 0..5u64 {
                l.release_on_behalf_of(i)?;
            }
            l.set_total_tokens(0);
            assert_err::<WouldBlock, _>(l.try_acquire());
            let w = l.clone();
            n.start_soon(async move { w.acquire_on_behalf_of(6u64).await })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().tasks_waiting, 1);
            assert!(l.statistics().borrowers.is_empty());
            l.set_total_tokens(1);
            assert_eq!(l.statistics().tasks_waiting, 0);
            assert_eq!(l.statistics().borrowers, [Borrower::Id(6)]);
            l.release_on_behalf_of(6u64)?;

            l.acquire_on_behalf_of(0u64).await?;
            let w = l.clone();
            n.start_soon(async move { w.acquire_on_behalf_of(1u64).await })?;
            wait_all_tasks_blocked().await?;
            l.set_total_tokens(0);
            assert_eq!(l.statistics().borrowers, [Borrower::Id(0)]);
            // Released under a limit of 0: not handed on.
            l.release_on_behalf_of(0u64)?;
            wait_all_tasks_blocked().await?;
            assert!(l.statistics().borrowers.is_empty());
            assert_eq!(l.statistics().tasks_waiting, 1);
            l.set_total_tokens(1);
            wait_all_tasks_blocked().await?;
            assert_eq!(l.statistics().borrowers, [Borrower::Id(1)]);
            assert_eq!(l.statistics().tasks_waiting, 0);
            l.release_on_behalf_of(1u64)?;
            l.set_total_tokens(0);
            Ok(())
        })
        .await?;
        assert_eq!(limiter.total_tokens(), 0);
        assert!(limiter.statistics().borrowers.is_empty());
        Ok(())
    });
}
