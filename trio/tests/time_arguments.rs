//! One rule for time arguments: every API that takes seconds or a deadline takes any
//! `IntoSeconds` type, with the same checks; `wait_all_tasks_blocked` has a default cushion;
//! `MockClock` rejects bad values with a `UsageError`.

mod common;

use std::time::Duration;

use common::{assert_err, run};
use trio::lowlevel::wait_all_tasks_blocked;
use trio::{CancelScope, UsageError};
use trio_test::MockClock;

#[test]
fn deadlines_take_the_same_types_as_durations() {
    run(async {
        // Virtual time starts at 0 under MockClock, so small deadlines are in the future.
        trio::sleep_until(Duration::from_secs(1)).await?;
        assert_eq!(trio::current_time()?, 1.0);
        trio::sleep_until(2).await?;
        trio::sleep_until(3u64).await?;
        trio::sleep_until(4.0f32).await?;
        assert_eq!(trio::current_time()?, 4.0);

        let r = trio::move_on_at(5u32, trio::sleep_forever()).await?;
        assert!(r.is_none());
        assert_eq!(trio::current_time()?, 5.0);
        let r = trio::fail_at(Duration::from_secs(6), trio::sleep_forever()).await;
        assert_err::<trio::TooSlowError, _>(r);
        assert_eq!(trio::current_time()?, 6.0);
        let r = trio::move_on_at(7, async { Ok(1) }).await?;
        assert_eq!(r, Some(1));
        Ok(())
    });
}

#[test]
fn cancel_scope_deadlines_take_every_time_type() -> trio::Result<()> {
    let scope = CancelScope::with_deadline(Duration::from_millis(1500))?;
    assert_eq!(scope.deadline(), 1.5);
    scope.set_deadline(3)?;
    assert_eq!(scope.deadline(), 3.0);
    scope.set_deadline(4u64)?;
    assert_eq!(scope.deadline(), 4.0);

    let scope = CancelScope::with_relative_deadline(Duration::from_secs(2))?;
    assert_eq!(scope.relative_deadline(), 2.0);
    scope.set_relative_deadline(5u32)?;
    assert_eq!(scope.relative_deadline(), 5.0);
    // The checks are the same whatever the type: a negative duration is an error; a deadline
    // may be in the past (it has expired) but not NaN.
    assert_err::<UsageError, _>(CancelScope::with_relative_deadline(-1));
    assert_err::<UsageError, _>(scope.set_relative_deadline(-0.5f32));
    assert_err::<UsageError, _>(CancelScope::with_deadline(f32::NAN));
    CancelScope::with_deadline(-3)?;
    Ok(())
}

#[test]
fn timeouts_take_every_time_type() {
    run(async {
        let t0 = trio::current_time()?;
        trio::move_on_after(Duration::from_secs(2), trio::sleep_forever()).await?;
        trio::move_on_after(3u64, trio::sleep_forever()).await?;
        let r = trio::fail_after(1.5f32, trio::sleep_forever()).await;
        assert_err::<trio::TooSlowError, _>(r);
        assert_eq!(trio::current_time()? - t0, 6.5);
        assert_err::<UsageError, _>(trio::sleep(-1).await);
        Ok(())
    });
}

#[test]
fn wait_all_tasks_blocked_has_a_default_cushion_of_zero() {
    run(async {
        let t0 = trio::current_time()?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async { trio::sleep(10).await })?;
            // No argument: wakes as soon as the sleeper is blocked, before autojump moves time.
            wait_all_tasks_blocked().await?;
            assert_eq!(trio::current_time()?, t0);
            Ok(())
        })
        .await
    });
}

#[test]
fn wait_all_tasks_blocked_cushion_takes_every_time_type() {
    run(async {
        wait_all_tasks_blocked()
            .cushion(Duration::from_millis(1))
            .await?;
        wait_all_tasks_blocked().cushion(0).await?;
        wait_all_tasks_blocked().cushion(0.001f32).await?;
        assert_err::<UsageError, _>(wait_all_tasks_blocked().cushion(-1).await);
        assert_err::<UsageError, _>(wait_all_tasks_blocked().cushion(f64::NAN).await);
        Ok(())
    });
}

#[test]
fn a_cushion_set_after_the_wait_started_is_a_usage_error() {
    run(async {
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async { trio::sleep(1).await })?;
            let mut wait = wait_all_tasks_blocked();
            assert!(common::poll_once(&mut wait).await.is_pending());
            let wait = wait.cushion(0.5);
            let err = assert_err::<UsageError, _>(wait.await);
            assert!(err.to_string().contains("before the first poll"), "{err}");
            // The waiter was unregistered: a new wait works as usual.
            wait_all_tasks_blocked().await?;
            Ok(())
        })
        .await
    });
}

#[test]
fn mock_clock_takes_every_time_type() -> trio::Result<()> {
    let clock = MockClock::new();
    clock.jump(Duration::from_secs(2))?;
    clock.jump(3)?;
    clock.jump(0.5f32)?;
    assert_eq!(clock.current_time(), 5.5);
    clock.set_autojump_threshold(Duration::from_millis(250))?;
    assert_eq!(clock.autojump_threshold(), 0.25);
    clock.set_rate(0u32)?;
    assert_eq!(clock.rate(), 0.0);
    let clock = MockClock::new()
        .with_rate(2)?
        .with_autojump_threshold(1u64)?;
    assert_eq!((clock.rate(), clock.autojump_threshold()), (2.0, 1.0));
    Ok(())
}

#[test]
fn mock_clock_rejects_a_negative_or_nan_rate_threshold_or_jump() {
    let clock = MockClock::new();
    for bad in [-1.0, f64::NAN] {
        let e = assert_err::<UsageError, _>(clock.set_rate(bad));
        assert!(e.to_string().contains("rate"), "{e}");
        let e = assert_err::<UsageError, _>(clock.set_autojump_threshold(bad));
        assert!(e.to_string().contains("autojump threshold"), "{e}");
        let e = assert_err::<UsageError, _>(clock.jump(bad));
        assert!(e.to_string().contains("jump"), "{e}");
        // The builders say so too instead of keeping the default silently.
        assert_err::<UsageError, _>(MockClock::new().with_rate(bad));
        assert_err::<UsageError, _>(MockClock::new().with_autojump_threshold(bad));
    }
    assert_err::<UsageError, _>(MockClock::new().with_autojump_threshold(-1));
    // Nothing changed.
    assert_eq!(clock.rate(), 0.0);
    assert_eq!(clock.autojump_threshold(), f64::INFINITY);
    assert_eq!(clock.current_time(), 0.0);
}
