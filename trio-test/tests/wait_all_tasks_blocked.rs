//! `trio_test::wait_all_tasks_blocked` (the re-export of trio's): Trio's
//! `test_wait_all_tasks_blocked`, `_with_timeouts` and `_with_cushion`, and how cushions meet
//! a clock that autojumps.

mod common;

use std::future::Future;

use common::{Log, run};
use trio::lowlevel::checkpoint;
use trio_test::{MockClock, wait_all_tasks_blocked};

/// Runs `main` with `clock`, panicking on error.
fn run_with(clock: MockClock, main: impl Future<Output = trio::Result<()>> + 'static) {
    trio::RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .run(main)
        .expect("the run failed");
}

#[test]
fn waits_until_every_other_task_is_blocked() {
    let log = Log::default();
    let (seen, cancelled) = (log.clone(), log.clone());
    run(async move {
        trio::open_nursery(|n| async move {
            let bee = log.clone();
            n.start_soon(async move {
                for _ in 0..10 {
                    checkpoint().await?;
                }
                bee.push("busy bee exhausted");
                Ok(())
            })?;
            for _ in 0..2 {
                let l = log.clone();
                n.start_soon(async move {
                    wait_all_tasks_blocked().await?;
                    l.push("quiet at last!");
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        // Cancellation reaches a waiter.
        let l = cancelled.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                match wait_all_tasks_blocked().await {
                    Err(e) if e.is_cancelled() => l.push("ok"),
                    other => panic!("expected Cancelled, got {other:?}"),
                }
                Ok(())
            })?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
    assert_eq!(
        seen.take(),
        [
            "busy bee exhausted",
            "quiet at last!",
            "quiet at last!",
            "ok"
        ]
    );
}

#[test]
fn a_sleeping_task_is_blocked() {
    // Trio's `mock_clock` fixture: no autojump, time moves only by `jump`.
    let clock = MockClock::new();
    let jumper = clock.clone();
    run_with(clock, async move {
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n| async move {
            let tt = l.clone();
            n.start_soon(async move {
                tt.push("tt start");
                trio::sleep(5).await?;
                tt.push("tt finished");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.take(), ["tt start"]);
            jumper.jump(10)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.take(), ["tt finished"]);
            Ok(())
        })
        .await
    });
}

/// Trio's cushion test: `blink` sleeps 3 × 0.01 s; waiters with cushions 0, 0.02, 0.02 and
/// 0.03. Run at rate 1 (virtual time is real time, about 0.06 s in all), as Trio runs it on
/// its real clock.
#[test]
fn cushions_measure_how_long_everything_stayed_blocked() {
    let log = Log::default();
    let seen = log.clone();
    let clock = MockClock::new().with_rate(1).unwrap();
    run_with(clock, async move {
        trio::open_nursery(|n| async move {
            start_blink(&n, &log, 0.01)?;
            start_waiters(&n, &log)
        })
        .await
    });
    // The small cushions never fit between blink's sleeps: they wake only after it ended.
    assert_eq!(
        seen.take(),
        [
            "blink start",
            "wait_no_cushion end",
            "blink end",
            "wait_small_cushion end",
            "wait_small_cushion end",
            "wait_big_cushion end",
        ]
    );
}

#[test]
fn on_an_autojump_clock_waiters_come_before_the_jump() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        trio::open_nursery(|n| async move {
            start_blink(&n, &log, 1)?;
            start_waiters(&n, &log)
        })
        .await
    });
    // Virtual sleeps end only when the clock jumps, and it jumps only once nobody waits in
    // `wait_all_tasks_blocked`: every waiter wakes first, smallest cushion first.
    assert_eq!(
        seen.take(),
        [
            "blink start",
            "wait_no_cushion end",
            "wait_small_cushion end",
            "wait_small_cushion end",
            "wait_big_cushion end",
            "blink end",
        ]
    );
}

fn start_blink(
    n: &trio::Nursery,
    log: &Log,
    seconds: impl trio::IntoSeconds + Copy + 'static,
) -> trio::Result<()> {
    let log = log.clone();
    n.start_soon(async move {
        log.push("blink start");
        for _ in 0..3 {
            trio::sleep(seconds).await?;
        }
        log.push("blink end");
        Ok(())
    })
}

fn start_waiters(n: &trio::Nursery, log: &Log) -> trio::Result<()> {
    for (cushion, name) in [
        (0.0, "wait_no_cushion"),
        (0.02, "wait_small_cushion"),
        (0.02, "wait_small_cushion"),
        (0.03, "wait_big_cushion"),
    ] {
        let log = log.clone();
        n.start_soon(async move {
            wait_all_tasks_blocked().cushion(cushion).await?;
            log.push(format!("{name} end"));
            Ok(())
        })?;
    }
    Ok(())
}

/// Trio's docs: the waiter with the shortest cushion is woken, "and this task becoming
/// unblocked resets the timers for the remaining tasks". With cushions of 0.01 s and 0.02 s
/// and nothing else running, the second waiter wakes 0.02 s after the first one ran, so at
/// least 0.03 s in (rate 1: virtual time is real time).
#[test]
fn a_woken_waiter_resets_the_others_timers() {
    let log = Log::default();
    let seen = log.clone();
    let clock = MockClock::new().with_rate(1).unwrap();
    run_with(clock, async move {
        let t0 = trio::current_time()?;
        trio::open_nursery(|n| async move {
            for cushion in [0.02, 0.01] {
                let log = log.clone();
                n.start_soon(async move {
                    wait_all_tasks_blocked().cushion(cushion).await?;
                    let elapsed = trio::current_time()? - t0;
                    log.push(format!("{cushion}"));
                    if cushion == 0.02 {
                        assert!(elapsed >= 0.029, "woke {elapsed} s in");
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(seen.take(), ["0.01", "0.02"]);
}

/// Trio wakes `wait_all_tasks_blocked` waiters (and autojumps) only when the I/O wait ran
/// its full timeout (`not events`): a wake-up of the loop that leaves nothing runnable, such
/// as a callback from another thread, starts the quiet period again. Here a thread queues a
/// no-op callback 10 ms into a 50 ms cushion: the waiter still sees 50 ms of quiet.
#[test]
fn a_wakeup_of_the_loop_restarts_the_cushion() {
    let clock = MockClock::new().with_rate(1).unwrap();
    run_with(clock, async {
        let token = trio::lowlevel::current_trio_token()?;
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            token.run_sync_soon(|| ()).expect("the run is going");
        });
        let start = std::time::Instant::now();
        wait_all_tasks_blocked().cushion(0.05).await?;
        let waited = start.elapsed();
        thread.join().expect("the thread ends");
        assert!(
            waited >= std::time::Duration::from_millis(50),
            "woke after {waited:?}"
        );
        Ok(())
    });
}

/// The same for autojump: the clock jumps only after the threshold of real quiet, which a
/// callback from another thread interrupts.
#[test]
fn a_wakeup_of_the_loop_restarts_the_autojump_threshold() {
    let clock = MockClock::new().with_autojump_threshold(0.05).unwrap();
    run_with(clock, async {
        let token = trio::lowlevel::current_trio_token()?;
        let thread = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            token.run_sync_soon(|| ()).expect("the run is going");
        });
        let start = std::time::Instant::now();
        trio::sleep(10).await?;
        let waited = start.elapsed();
        thread.join().expect("the thread ends");
        assert!(
            waited >= std::time::Duration::from_millis(50),
            "jumped after {waited:?}"
        );
        Ok(())
    });
}

/// A cushion of -0.0 is a cushion of 0 (as `-0.0 == 0.0` in Trio's sorted waiters): it wakes
/// before a longer one.
#[test]
fn a_negative_zero_cushion_is_zero() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        trio::open_nursery(|n| async move {
            for cushion in [0.05, -0.0] {
                let log = log.clone();
                n.start_soon(async move {
                    wait_all_tasks_blocked().cushion(cushion).await?;
                    log.push(format!("{cushion}"));
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(seen.take(), ["-0", "0.05"]);
}
