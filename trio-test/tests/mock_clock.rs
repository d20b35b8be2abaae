//! `MockClock`, test by test against Trio's `_core/_tests/test_mock_clock.py`: rate and
//! jumps, autojump thresholds changed during the run, a clock that is not the run's, and how
//! autojump meets `wait_all_tasks_blocked`.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::Log;
use trio::{Clock, UsageError};
use trio_test::{MockClock, wait_all_tasks_blocked};

fn run_with<T: 'static>(
    clock: MockClock,
    main: impl Future<Output = trio::Result<T>> + 'static,
) -> T {
    trio::RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .run(main)
        .expect("the run failed")
}

fn assert_usage(r: trio::Result<()>, message: &str) {
    let e = r.expect_err("a UsageError");
    assert!(e.is::<UsageError>(), "{e:?}");
    assert!(e.to_string().contains(message), "{e}");
}

/// Trio's `test_mock_clock`, on the real clock (Trio swaps it for a fake one): time, jumps,
/// rates, and sleep times.
#[test]
fn rate_jump_and_sleep_times() {
    let c = MockClock::new();
    assert!(format!("{c:?}").contains("MockClock"));
    assert_eq!(c.rate(), 0.0);
    assert_eq!(c.current_time(), 0.0);
    c.jump(1.2).unwrap();
    assert_eq!(c.current_time(), 1.2);
    assert_usage(c.jump(-1), "time can't go backwards");
    assert_eq!(c.current_time(), 1.2);
    assert_eq!(c.deadline_to_sleep_time(1.1), 0.0);
    assert_eq!(c.deadline_to_sleep_time(1.2), 0.0);
    assert!(c.deadline_to_sleep_time(1.3) > 999_999.0);

    assert_usage(c.set_rate(-1), "rate must be >= 0");
    assert_eq!(c.rate(), 0.0);

    // A rate change keeps the time so far.
    c.set_rate(2).unwrap();
    let t = c.current_time();
    assert!((t - 1.2).abs() < 0.01, "{t}");
    let sleep = c.deadline_to_sleep_time(c.current_time() + 1.0);
    assert!((sleep - 0.5).abs() < 0.01, "{sleep}");
    c.set_rate(0.5).unwrap();
    let sleep = c.deadline_to_sleep_time(c.current_time() + 1.0);
    assert!((sleep - 2.0).abs() < 0.01, "{sleep}");
    let before = c.current_time();
    c.jump(0.8).unwrap();
    let jumped = c.current_time() - before;
    assert!((jumped - 0.8).abs() < 0.01, "{jumped}");

    let c2 = MockClock::new().with_rate(3).unwrap();
    assert_eq!(c2.rate(), 3.0);
    assert!(c2.current_time() < 10.0);
}

/// Trio's `test_mock_clock_autojump`: the threshold starts infinite; at 0 sleeps take no real
/// time; at 0.02 `wait_all_tasks_blocked` (cushion 0 or 0.01) wakes before any jump; and a
/// threshold lowered while the loop waits on a long one applies at once.
#[test]
fn autojump_thresholds_changed_during_the_run_apply_at_once() {
    let clock = MockClock::new();
    assert_eq!(clock.autojump_threshold(), f64::INFINITY);
    let c = clock.clone();
    run_with(clock, async move {
        c.set_autojump_threshold(0)?;
        assert_eq!(c.autojump_threshold(), 0.0);
        let real_start = Instant::now();
        let mut virtual_start = trio::current_time()?;
        for i in 0..10 {
            trio::sleep(10 * i).await?;
            assert_eq!(trio::current_time()?, virtual_start + f64::from(10 * i));
            virtual_start = trio::current_time()?;
        }
        assert!(real_start.elapsed() < Duration::from_secs(1));

        c.set_autojump_threshold(0.02)?;
        let t = trio::current_time()?;
        wait_all_tasks_blocked().await?;
        assert_eq!(trio::current_time()?, t);
        wait_all_tasks_blocked().cushion(0.01).await?;
        assert_eq!(trio::current_time()?, t);

        c.set_autojump_threshold(10000)?;
        wait_all_tasks_blocked().await?;
        c.set_autojump_threshold(0)?;
        // Were the 10000 s threshold still in force, this would take that long.
        let real = Instant::now();
        trio::sleep(100_000).await?;
        assert!(real.elapsed() < Duration::from_secs(1));
        Ok(())
    });
}

/// Trio's `test_mock_clock_autojump_interference`: another clock's threshold does nothing to
/// the run.
#[test]
fn a_clock_that_is_not_the_runs_does_not_jump_it() {
    let clock = MockClock::new().with_autojump_threshold(0.02).unwrap();
    run_with(clock, async {
        let other = MockClock::new();
        other.set_autojump_threshold(0.01)?;
        // With the other clock's 0.01 in force, the run would jump every 0.01 s and this
        // waiter would never see 0.015 s of quiet.
        wait_all_tasks_blocked().cushion(0.015).await?;
        trio::sleep(100_000).await
    });
}

/// Trio's `test_mock_clock_autojump_preset`: a threshold set before the run is used.
#[test]
fn a_threshold_set_before_the_run_is_used() {
    let clock = MockClock::new().with_autojump_threshold(0.1).unwrap();
    clock.set_autojump_threshold(0.01).unwrap();
    let real = Instant::now();
    run_with(clock, trio::sleep(10_000));
    assert!(real.elapsed() < Duration::from_secs(1));
}

/// Trio's `test_mock_clock_autojump_0_and_wait_all_tasks_blocked_0`: the waiter wakes before
/// the clock jumps to the sleeper's deadline.
#[test]
fn autojump_0_and_a_waiter_with_cushion_0() {
    let log = Log::default();
    let seen = log.clone();
    run_with(
        MockClock::new().with_autojump_threshold(0).unwrap(),
        async move {
            trio::open_nursery(|n| async move {
                let l = log.clone();
                n.start_soon(async move {
                    trio::sleep(100).await?;
                    l.push("yawn");
                    Ok(())
                })?;
                n.start_soon(async move {
                    wait_all_tasks_blocked().await?;
                    log.push("waiter woke");
                    trio::sleep(1000).await?;
                    log.push("waiter done");
                    Ok(())
                })
            })
            .await
        },
    );
    assert_eq!(seen.take(), ["waiter woke", "yawn", "waiter done"]);
}

/// Trio's `test_mock_clock_autojump_0_and_wait_all_tasks_blocked_nonzero` (a cushion of
/// 0.05 s where Trio waits 1 s): while a task waits with a cushion the clock does not jump,
/// even with a threshold of 0, so the waiter ends first.
#[test]
fn autojump_0_and_a_waiter_with_a_cushion() {
    let log = Log::default();
    let seen = log.clone();
    run_with(
        MockClock::new().with_autojump_threshold(0).unwrap(),
        async move {
            trio::open_nursery(|n| async move {
                let l = log.clone();
                n.start_soon(async move {
                    trio::sleep(100).await?;
                    l.push("yawn");
                    Ok(())
                })?;
                n.start_soon(async move {
                    wait_all_tasks_blocked().cushion(0.05).await?;
                    log.push("waiter done");
                    Ok(())
                })
            })
            .await
        },
    );
    assert_eq!(seen.take(), ["waiter done", "yawn"]);
}

/// The example of Trio's "Time and timeouts" docs (`across-realtime.py`), on the autojump
/// clock: the two tasks see the years pass exactly, in the order the sleeps end.
#[test]
fn years_pass_in_order_on_the_autojump_clock() {
    const YEAR: f64 = 365.0 * 24.0 * 60.0 * 60.0;
    let log = Log::default();
    let seen = log.clone();
    let real = Instant::now();
    run_with(
        MockClock::new().with_autojump_threshold(0).unwrap(),
        async move {
            trio::open_nursery(|n| async move {
                let l = log.clone();
                n.start_soon(async move {
                    let start = trio::current_time()?;
                    trio::sleep(YEAR).await?;
                    l.push(format!(
                        "task1 woke after {}",
                        (trio::current_time()? - start) / YEAR
                    ));
                    for _ in 0..100 {
                        trio::sleep(YEAR).await?;
                    }
                    l.push(format!(
                        "task1 slept {}",
                        (trio::current_time()? - start) / YEAR
                    ));
                    Ok(())
                })?;
                n.start_soon(async move {
                    let start = trio::current_time()?;
                    trio::sleep(5.0 * YEAR).await?;
                    log.push(format!(
                        "task2 woke after {}",
                        (trio::current_time()? - start) / YEAR
                    ));
                    trio::sleep(500.0 * YEAR).await?;
                    log.push(format!(
                        "task2 slept {}",
                        (trio::current_time()? - start) / YEAR
                    ));
                    Ok(())
                })
            })
            .await
        },
    );
    assert_eq!(
        seen.take(),
        [
            "task1 woke after 1",
            "task2 woke after 5",
            "task1 slept 101",
            "task2 slept 505"
        ]
    );
    assert!(real.elapsed() < Duration::from_secs(1));
}
