//! `trio::Semaphore`: values and max_value, anonymous tokens. As a lock (one token) it runs the
//! lock suite in sync_lock_suite.rs: checkpoints, fair hand-off, cancel safety, guards.

mod common;

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;
use trio::{Semaphore, UsageError, WouldBlock};

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
fn tokens_are_anonymous_any_task_releases_and_many_can_be_held() {
    run(async {
        let sem = Semaphore::new(2);
        sem.acquire().await?;
        sem.acquire().await?;
        assert_eq!(sem.value(), 0);
        let s = sem.clone();
        trio::open_nursery(|n| async move {
            let waiter = s.clone();
            n.start_soon(async move { waiter.acquire().await })?;
            wait_all_tasks_blocked().await?;
            let other = s.clone();
            // A task that never acquired releases: the token goes to the waiter.
            n.start_soon(async move { other.release() })?;
            Ok(())
        })
        .await?;
        assert_eq!((sem.value(), sem.statistics().tasks_waiting), (0, 0));
        sem.release()?;
        sem.release()?;
        assert_eq!(sem.value(), 2);
        Ok(())
    });
}

/// Trio's `Semaphore.release` hands the token to a waiter before it looks at `max_value`:
/// the bound limits the tokens held in the semaphore, and a token handed straight on never
/// enters it. So even `Semaphore(0, max_value=0)` passes a release on to a blocked acquirer.
#[test]
fn release_to_a_waiter_is_not_limited_by_max_value() {
    run(async {
        let sem = Semaphore::with_max(0, 0)?;
        assert_err::<UsageError, _>(sem.release());
        let s = sem.clone();
        trio::open_nursery(|n| async move {
            let waiter = s.clone();
            n.start_soon(async move { waiter.acquire().await })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(s.statistics().tasks_waiting, 1);
            s.release()?;
            assert_eq!((s.value(), s.statistics().tasks_waiting), (0, 0));
            Ok(())
        })
        .await?;
        assert_eq!(sem.value(), 0);
        Ok(())
    });
}
