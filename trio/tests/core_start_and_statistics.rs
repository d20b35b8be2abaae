//! The parts of Trio's `_core/_tests/test_run.py` that earlier audits left: the edge cases of
//! `Nursery::start` (`test_nursery_start`, `test_nursery_start_with_cancelled_nursery`,
//! `test_nursery_start_keeps_nursery_open`), `current_statistics` and the root task.

mod common;

use std::sync::Arc;

use common::{Log, assert_err, run};
use trio::lowlevel::{
    checkpoint, current_root_task, current_statistics, current_task, current_trio_token,
    sleep_forever, wait_all_tasks_blocked,
};
use trio::{CancelScope, Nursery, TaskStatus, UsageError};

fn boom(what: &'static str) -> trio::Error {
    trio::Error::new(std::io::Error::other(what))
}

/// `test_nursery_start`: a task that returns without calling `started` makes `start` fail with
/// a message that says so.
#[test]
fn a_task_that_never_calls_started_is_named_in_the_error() {
    run(async {
        trio::open_nursery(|n| async move {
            let r: trio::Result<()> = n.start(|_status| async { Ok(()) }).await;
            let e = assert_err::<UsageError, _>(r);
            assert!(
                e.to_string()
                    .contains("without calling task_status.started()"),
                "the message says what happened: {e}"
            );
            Ok(())
        })
        .await
    });
}

/// `test_nursery_start`: in a cancelled scope `started()` does nothing, so a task that fails
/// after calling it still fails `start()` with its own error; one that ends without a
/// checkpoint returns its value and the scope catches nothing.
#[test]
fn in_a_cancelled_scope_an_error_after_started_still_comes_out_of_start() {
    run(async {
        trio::open_nursery(|n| async move {
            let scope = CancelScope::new();
            let target = n.clone();
            let out = scope
                .run(async {
                    scope.cancel();
                    let r: trio::Result<()> = target
                        .start(|status| async move {
                            status.started(())?;
                            Err(boom("whoopsiedaisy"))
                        })
                        .await;
                    let e = r.expect_err("the error comes out of start");
                    assert_eq!(e.to_string(), "whoopsiedaisy");
                    Ok(())
                })
                .await?;
            assert_eq!(out, Some(()));
            assert!(!scope.cancelled_caught());

            let scope = CancelScope::new();
            let target = n.clone();
            let out = scope
                .run(async {
                    scope.cancel();
                    target
                        .start(|status| async move { status.started(()) })
                        .await
                })
                .await?;
            assert_eq!(out, Some(()));
            assert!(
                !scope.cancelled_caught(),
                "start() returned without Cancelled"
            );
            Ok(())
        })
        .await
    });
}

/// `test_nursery_start`: starting in a closed nursery fails at once; no time passes.
#[test]
fn start_in_a_closed_nursery_fails_at_once() {
    run(async {
        let mut kept = None;
        trio::open_nursery(|n| {
            kept = Some(n.clone());
            async { Ok(()) }
        })
        .await?;
        let closed = kept.expect("the nursery handle");
        let t0 = trio::current_time()?;
        let r: trio::Result<()> = closed
            .start(|status| async move {
                trio::sleep(7).await?;
                status.started(())
            })
            .await;
        assert_err::<UsageError, _>(r);
        assert_eq!(trio::current_time()?, t0);
        Ok(())
    });
}

/// Trio's `setup_nursery`: a nursery that lives in a task of its own until cancelled.
async fn setup_nursery(status: TaskStatus<Nursery>) -> trio::Result<()> {
    trio::open_nursery(|n| async move {
        status.started(n.clone())?;
        sleep_forever().await
    })
    .await
}

/// Trio's `sleeping_children`: two sleeping children, then `before_started`, then `started()`:
/// the children move with the task into the target nursery, cancelled or not.
async fn sleeping_children(
    status: TaskStatus<()>,
    before_started: impl FnOnce() + 'static,
) -> trio::Result<()> {
    trio::open_nursery(|n| async move {
        n.start_soon(async { sleep_forever().await.map(drop) })?;
        n.start_soon(async { sleep_forever().await.map(drop) })?;
        wait_all_tasks_blocked().await?;
        before_started();
        status.started(())
    })
    .await
}

/// `test_nursery_start_with_cancelled_nursery`: a task moved by `started()` into a cancelled
/// nursery, with children asleep, has them cancelled there (the nursery is cancelled just
/// before `started()`, or just after).
#[test]
fn started_into_a_cancelled_nursery_cancels_the_sleeping_children() {
    run(async {
        trio::open_nursery(|n| async move {
            let target: Nursery = n.start(setup_nursery).await?;
            let scope = target.cancel_scope();
            target
                .start(move |status| sleeping_children(status, move || scope.cancel()))
                .await?;
            Ok(())
        })
        .await?;
        trio::open_nursery(|n| async move {
            let target: Nursery = n.start(setup_nursery).await?;
            target
                .start(|status| sleeping_children(status, || ()))
                .await?;
            target.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
}

/// `test_nursery_start_keeps_nursery_open`: a pending `start` keeps its target open for the
/// whole time the task runs, and until it crashes when it never calls `started()`.
#[test]
fn a_pending_start_keeps_the_nursery_open_until_the_task_crashes() {
    run(async {
        // Two starts from another nursery's tasks, 1 s apart: 2 s to start, 3 s more to run.
        let t0 = trio::current_time()?;
        trio::open_nursery(|n1| async move {
            trio::open_nursery(|n2| async move {
                let sleep_a_bit = |status: TaskStatus<()>| async move {
                    trio::sleep(2).await?;
                    status.started(())?;
                    trio::sleep(3).await
                };
                let n = n2.clone();
                n1.start_soon(async move { n.start(sleep_a_bit).await })?;
                trio::sleep(1).await?;
                n1.start_soon(async move { n2.start(sleep_a_bit).await })?;
                // The body ends with no task in n2: only the pending starts keep it open.
                Ok(())
            })
            .await
        })
        .await?;
        assert_eq!(trio::current_time()? - t0, 6.0);

        let t0 = trio::current_time()?;
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n1| async move {
            trio::open_nursery(|n2| async move {
                n1.start_soon(async move {
                    let r: trio::Result<()> = n2
                        .start(|_status| async move {
                            trio::sleep(7).await?;
                            Err(boom("KeyError"))
                        })
                        .await;
                    l.push(r.expect_err("start fails").to_string());
                    Ok(())
                })?;
                wait_all_tasks_blocked().await
            })
            .await?;
            // The inner nursery stayed open until the task crashed.
            assert_eq!(trio::current_time()? - t0, 7.0);
            Ok(())
        })
        .await?;
        assert_eq!(log.get(), ["KeyError"]);
        Ok(())
    });
}

/// `test_current_statistics`. trio-rs has no task for the entry queue: at rest the run has
/// its init task and the main task (Trio: two system tasks and the main task).
#[test]
fn statistics_follow_tasks_wakeups_callbacks_and_deadlines() {
    run(async {
        wait_all_tasks_blocked().await?;
        let stats = current_statistics()?;
        assert_eq!(stats.tasks_living, 2);
        assert_eq!(stats.run_sync_soon_queue_size, 0);
        trio::open_nursery(|n| async move {
            n.start_soon(async {
                match sleep_forever().await {
                    Err(e) if e.is_cancelled() => Ok(()),
                    other => panic!("expected Cancelled, got {other:?}"),
                }
            })?;
            wait_all_tasks_blocked().await?;
            let token = current_trio_token()?;
            token.run_sync_soon(|| ())?;
            token.run_sync_soon_idempotent(Arc::new(|| ()))?;
            let stats = current_statistics()?;
            assert_eq!(stats.tasks_living, 3);
            assert_eq!(stats.tasks_runnable, 0);
            assert_eq!(stats.run_sync_soon_queue_size, 2);
            // Cancelling wakes the sleeper at once: it is runnable before anything runs. The
            // task that cancels is rescheduled too, as every task in the scope is (parts of
            // it may be blocked in a combinator), so it counts where Trio counts 1
            // (docs/decisions.md, "Waking on cancellation").
            n.cancel_scope().cancel();
            assert_eq!(current_statistics()?.tasks_runnable, 2);
            Ok(())
        })
        .await?;
        checkpoint().await?;
        checkpoint().await?;
        assert_eq!(current_statistics()?.run_sync_soon_queue_size, 0);
        let scope = CancelScope::with_deadline(trio::current_time()? + 5.0)?;
        scope
            .run(async {
                assert_eq!(current_statistics()?.seconds_to_next_deadline, 5.0);
                Ok(())
            })
            .await?;
        assert_eq!(
            current_statistics()?.seconds_to_next_deadline,
            f64::INFINITY
        );
        Ok(())
    });
}

/// `test_root_task` and `test_current_task`: the root task has no parent nursery, eventual or
/// not; a child's nursery's parent task is the task that opened it.
#[test]
fn the_root_task_has_no_parent_and_a_childs_nursery_names_its_parent() {
    run(async {
        let root = current_root_task()?;
        assert!(root.parent_nursery().is_none());
        assert!(root.eventual_parent_nursery().is_none());
        let me = current_task()?;
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let parent = current_task()?
                    .parent_nursery()
                    .and_then(|n| n.parent_task());
                assert_eq!(parent, Some(me));
                Ok(())
            })
        })
        .await
    });
}

/// `test_nursery_closure`: while its children run, a nursery whose body has returned still
/// takes new tasks; once it is done, it takes none.
#[test]
fn a_nursery_takes_tasks_until_its_last_child_ends() {
    run(async {
        let log = Log::default();
        let (l, seen) = (log.clone(), log.clone());
        let mut kept = None;
        trio::open_nursery(|n| {
            kept = Some(n.clone());
            let n2 = n.clone();
            async move {
                n.start_soon(async move {
                    checkpoint().await?;
                    n2.start_soon(async move {
                        l.push("child2");
                        Ok(())
                    })
                })
            }
        })
        .await?;
        assert_eq!(seen.get(), ["child2"]);
        let closed = kept.expect("the nursery handle");
        assert_err::<UsageError, _>(closed.start_soon(async { Ok(()) }));
        Ok(())
    });
}

/// Trio's `test_trivial_yields`: opening and closing a nursery in a cancelled scope is a
/// schedule point but no cancel point (unless something inside checks), even with a child
/// that makes no checkpoint; and a body that fails there fails with its own error, in a group.
#[test]
fn a_nursery_in_a_cancelled_scope_schedules_without_raising() {
    run(async {
        let task = current_task()?;
        let before = task.schedule_points();
        let scope = CancelScope::new();
        let out = scope
            .run(async {
                scope.cancel();
                trio::open_nursery(|_n| async { Ok(()) }).await
            })
            .await?;
        assert_eq!(out, Some(()));
        assert!(!scope.cancelled_caught());
        assert!(task.schedule_points() > before);

        let before = task.schedule_points();
        let scope = CancelScope::new();
        let out = scope
            .run(async {
                scope.cancel();
                trio::open_nursery(|n| async move { n.start_soon(async { Ok(()) }) }).await
            })
            .await?;
        assert_eq!(out, Some(()));
        assert!(!scope.cancelled_caught());
        assert!(task.schedule_points() > before);

        let scope = CancelScope::new();
        let out = scope
            .run(async {
                scope.cancel();
                trio::open_nursery(|_n| async { Err::<(), _>(boom("KeyError")) }).await
            })
            .await;
        let e = out.expect_err("the body's error comes out");
        let group = e.as_group().expect("in a group");
        assert_eq!(group.len(), 1);
        assert_eq!(group.errors()[0].to_string(), "KeyError");
        Ok(())
    });
}

/// Trio's `test_yield_briefly_checks_for_timeout`: a deadline that the clock jumped past is
/// noticed by the next checkpoint, although no time passed in the run loop before it.
#[test]
fn a_checkpoint_notices_a_deadline_the_clock_jumped_past() {
    let clock = trio_test::MockClock::new();
    let jumper = clock.clone();
    trio::RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .run(async move {
            let scope = CancelScope::with_deadline(trio::current_time()? + 5.0)?;
            let out = scope
                .run(async {
                    checkpoint().await?;
                    jumper.jump(10)?;
                    let r = checkpoint().await;
                    assert!(
                        r.as_ref().is_err_and(trio::Error::is_cancelled),
                        "expected Cancelled, got {r:?}"
                    );
                    r
                })
                .await?;
            assert_eq!(out, None);
            Ok(())
        })
        .unwrap();
}

/// Trio's `test_task_nursery_stack`: a task's child nurseries are the ones open in it, in
/// order; a nursery that fails leaves the list as one that ends well does.
#[test]
fn a_failed_nursery_leaves_the_tasks_nursery_stack() {
    run(async {
        let task = current_task()?;
        assert!(task.child_nurseries().is_empty());
        let t = task.clone();
        trio::open_nursery(|n1| async move {
            assert_eq!(t.child_nurseries(), std::slice::from_ref(&n1));
            let (t2, n1_again) = (t.clone(), n1.clone());
            let r = trio::open_nursery(|n2| async move {
                assert_eq!(t2.child_nurseries(), [n1_again, n2]);
                Err::<(), _>(boom("KeyError"))
            })
            .await;
            let e = r.expect_err("the nursery fails");
            assert_eq!(e.as_group().map(|g| g.len()), Some(1));
            assert_eq!(t.child_nurseries(), [n1]);
            Ok(())
        })
        .await?;
        assert!(task.child_nurseries().is_empty());
        Ok(())
    });
}

/// Trio's `sleep_then_start`: sleeps, reports `seconds`, sleeps again.
async fn sleep_then_start(seconds: u32, status: TaskStatus<u32>) -> trio::Result<()> {
    trio::sleep(seconds).await?;
    status.started(seconds)?;
    trio::sleep(seconds).await
}

/// `test_nursery_start`'s happy path: `start` returns once the task calls `started()`, with
/// its value, and the nursery then waits for the task; and with `TaskStatus::ignored()`
/// (Trio's `TASK_STATUS_IGNORED`) the same function is awaited directly.
#[test]
fn start_waits_for_started_and_an_ignored_status_runs_the_function_directly() {
    run(async {
        for seconds in [1, 2] {
            let t0 = trio::current_time()?;
            trio::open_nursery(|n| async move {
                assert!(n.child_tasks().is_empty());
                let value = n
                    .start(move |status| sleep_then_start(seconds, status))
                    .await?;
                assert_eq!(value, seconds);
                assert_eq!(trio::current_time()? - t0, f64::from(seconds));
                assert_eq!(n.child_tasks().len(), 1);
                Ok(())
            })
            .await?;
            assert_eq!(trio::current_time()? - t0, f64::from(2 * seconds));
        }
        let t0 = trio::current_time()?;
        sleep_then_start(3, TaskStatus::ignored()).await?;
        assert_eq!(trio::current_time()? - t0, 6.0);
        assert!(format!("{:?}", TaskStatus::<()>::ignored()).contains("ignored"));
        Ok(())
    });
}
