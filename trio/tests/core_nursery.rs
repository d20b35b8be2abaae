//! Nurseries: children, `start`, closed nurseries, error groups and panics.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{Log, assert_err, run, try_run};
use trio::lowlevel::{checkpoint, current_task, wait_all_tasks_blocked};
use trio::{CancelSource, ErrorGroup, UsageError};

fn boom(message: &'static str) -> trio::Error {
    trio::Error::new(std::io::Error::other(message))
}

#[test]
fn a_return_in_the_body_does_not_cancel_children() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let inner = log.clone();
        trio::open_nursery(|n| async move {
            let l = inner.clone();
            n.start_soon(async move {
                trio::sleep(5.0).await?;
                l.push("child finished");
                Ok(())
            })?;
            inner.push("body returns");
            Ok(())
        })
        .await?;
        log.push("nursery done");
        Ok(())
    });
    assert_eq!(
        seen.get(),
        ["body returns", "child finished", "nursery done"]
    );
}

#[test]
fn two_crashing_children_are_both_reported() {
    // Both crash in the same batch, before either could see the other's cancellation (as in
    // Trio's test: a child that reaches a checkpoint after a sibling failed is cancelled
    // there instead, and its Cancelled is stripped from the group).
    let result = try_run(async {
        trio::open_nursery(|n| async move {
            n.start_soon(async { Err(boom("first")) })?;
            n.start_soon(async { Err(boom("second")) })?;
            Ok(())
        })
        .await
    });
    let error = assert_err::<ErrorGroup, _>(result);
    let group = error.as_group().expect("a group");
    let mut messages: Vec<String> = group.errors().iter().map(|e| e.to_string()).collect();
    messages.sort();
    assert_eq!(messages, ["first", "second"]);
}

#[test]
fn a_child_error_cancels_siblings_and_the_body_error_joins_the_group() {
    let sibling_cancelled = Rc::new(Cell::new(false));
    let flag = sibling_cancelled.clone();
    let result = try_run(async move {
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let r = trio::sleep_forever().await;
                flag.set(r.as_ref().is_err_and(|e| e.is_cancelled()));
                r
            })?;
            n.start_soon(async { Err(boom("child")) })?;
            // The body sees the cancellation at its next checkpoint, then fails too.
            let r = trio::sleep(10.0).await;
            assert!(r.is_err_and(|e| e.is_cancelled()));
            Err(boom("body"))
        })
        .await
    });
    assert!(sibling_cancelled.get());
    let error = assert_err::<ErrorGroup, _>(result);
    let group = error.as_group().expect("a group");
    // Cancelled errors are stripped; the child's and the body's errors remain.
    assert_eq!(group.len(), 2);
    assert!(group.errors().iter().all(|e| !e.is_cancelled()));
}

#[test]
fn a_child_panic_cancels_siblings_and_resumes_in_the_parent_after_all_end() {
    let log = Log::default();
    let seen = log.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        run(async move {
            trio::open_nursery(|n| async move {
                let l = log.clone();
                n.start_soon(async move {
                    let r = trio::sleep_forever().await;
                    // Shielded cleanup still runs before the panic reaches the parent.
                    trio::CancelScope::new()
                        .shielded(true)
                        .run(trio::sleep(1.0))
                        .await?;
                    l.push("sibling cleaned up");
                    r
                })?;
                n.start_soon(async {
                    trio::sleep(1.0).await?;
                    panic!("child panics");
                })?;
                Ok(())
            })
            .await
        })
    }));
    let payload = outcome.expect_err("the panic came out of run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"child panics"));
    assert_eq!(seen.get(), ["sibling cleaned up"]);
}

#[test]
fn start_hands_back_the_value_and_moves_the_task() {
    run(async {
        trio::open_nursery(|n| async move {
            let outer = n.clone();
            let port: u16 = n
                .start(|status| async move {
                    checkpoint().await?;
                    status.started(8080)?;
                    trio::sleep(1.0).await
                })
                .await?;
            assert_eq!(port, 8080);
            // After started() the task runs in the target nursery.
            assert_eq!(outer.child_tasks().len(), 1);
            Ok(())
        })
        .await
    });
}

#[test]
fn an_error_before_started_comes_out_of_start_bare() {
    run(async {
        trio::open_nursery(|n| async move {
            let r: trio::Result<()> = n
                .start(|_status| async move { Err(boom("failed to bind")) })
                .await;
            let e = r.expect_err("start fails");
            assert!(e.as_group().is_none(), "not wrapped in a group: {e:?}");
            assert_eq!(e.to_string(), "failed to bind");
            // A task that returns without calling started() is a usage error.
            let r: trio::Result<()> = n.start(|_status| async move { Ok(()) }).await;
            assert_err::<UsageError, _>(r);
            Ok(())
        })
        .await
    });
}

#[test]
fn a_pending_start_keeps_the_target_nursery_open() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        trio::open_nursery(|target| async move {
            let l = log.clone();
            // start() is called from another task, into `target`, whose body returns at once.
            let t = target.clone();
            trio::lowlevel::spawn_system_task("starter", async move {
                let _: () = t
                    .start(|status| async move {
                        trio::sleep(2.0).await?;
                        l.push("started");
                        status.started(())?;
                        trio::sleep(1.0).await?;
                        l.push("child done");
                        Ok(())
                    })
                    .await?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            log.push("body returns");
            Ok(())
        })
        .await?;
        Ok(())
    });
    assert_eq!(seen.get(), ["body returns", "started", "child done"]);
}

#[test]
fn starting_a_task_in_a_closed_nursery_is_a_clear_error() {
    run(async {
        let mut kept = None;
        trio::open_nursery(|n| {
            kept = Some(n.clone());
            async { Ok(()) }
        })
        .await?;
        let n = kept.expect("the nursery handle");
        assert!(n.is_closed());
        let e = assert_err::<UsageError, _>(n.start_soon(async { Ok(()) }));
        assert!(e.to_string().contains("closed"), "{e}");
        let r: trio::Result<()> = n.start(|s| async move { s.started(()) }).await;
        assert_err::<UsageError, _>(r);
        Ok(())
    });
}

#[test]
fn nursery_cancel_scope_and_child_tasks() {
    run(async {
        trio::open_nursery(|n| async move {
            n.start_soon_named("a", trio::sleep_forever())?;
            n.start_soon_named("b", trio::sleep_forever())?;
            let mut names: Vec<String> = n.child_tasks().iter().map(|t| t.name()).collect();
            names.sort();
            assert_eq!(names, ["a", "b"]);
            assert_eq!(n.parent_task(), Some(current_task()?));
            wait_all_tasks_blocked().await?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        Ok(())
    });
}

#[test]
fn sibling_cancellation_names_the_nursery_as_source() {
    run(async {
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let r = trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let r = trio::sleep_forever().await;
                if let Err(e) = &r {
                    s.set(e.downcast_ref::<trio::Cancelled>().map(|c| c.source()));
                }
                r
            })?;
            n.start_soon(async { Err(boom("x")) })?;
            Ok(())
        })
        .await;
        assert!(r.is_err());
        assert_eq!(seen.get(), Some(CancelSource::Nursery));
        Ok(())
    });
}

// The run reuses the records of finished nurseries (a pool, for speed). These check that
// nothing leaks from one `open_nursery` into the next, and that a nursery something still
// refers to is never reused.

#[test]
fn a_reused_nursery_starts_fresh() {
    run(async {
        // A nursery cancelled with a deadline and a reason, absorbing its Cancelled...
        let scope = trio::open_nursery(|n| async move {
            let scope = n.cancel_scope();
            scope.set_deadline(trio::current_time()? + 1.0)?;
            scope.cancel();
            n.start_soon(async { trio::sleep_forever().await })?;
            Ok(())
        });
        scope.await?;
        // ...then fresh nurseries: not cancelled, no deadline, children run to completion.
        for _ in 0..3 {
            let ran = Rc::new(Cell::new(false));
            let flag = ran.clone();
            trio::open_nursery(|n| async move {
                let scope = n.cancel_scope();
                assert!(!scope.cancel_called());
                assert!(!scope.cancelled_caught());
                assert_eq!(scope.deadline(), f64::INFINITY);
                n.start_soon(async move {
                    trio::sleep(2.0).await?;
                    flag.set(true);
                    Ok(())
                })?;
                Ok(())
            })
            .await?;
            assert!(ran.get());
        }
        Ok(())
    });
}

#[test]
fn a_nursery_handle_kept_after_close_is_not_reused() {
    run(async {
        let mut kept = None;
        trio::open_nursery(|n| {
            kept = Some(n.clone());
            async { Ok(()) }
        })
        .await?;
        let old = kept.expect("kept the handle");
        let old_scope = old.cancel_scope();
        trio::open_nursery(|n| async move {
            // The old handle still names the old, closed nursery, not this one.
            assert!(old.is_closed());
            assert_ne!(old, n);
            let err = old.start_soon(async { Ok(()) }).expect_err("closed");
            assert!(err.is::<UsageError>());
            // Cancelling the old scope does not reach this nursery.
            old_scope.cancel();
            n.start_soon(async { trio::sleep(1.0).await })?;
            Ok(())
        })
        .await
    });
}

#[test]
fn a_failed_nursery_leaves_no_errors_behind() {
    run(async {
        let first = trio::open_nursery(|n| async move {
            n.start_soon(async { Err(boom("first")) })?;
            Ok(())
        })
        .await;
        assert!(first.is_err());
        for _ in 0..3 {
            trio::open_nursery(|n| async move {
                n.start_soon(async { checkpoint().await })?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    });
}

#[test]
fn a_child_that_drops_its_own_nursery_is_discarded_cleanly() {
    use std::cell::RefCell;
    use std::future::Future;
    use std::pin::Pin;
    type Slot = Rc<RefCell<Option<Pin<Box<dyn Future<Output = trio::Result<()>>>>>>>;
    let after_drop = Rc::new(Cell::new(0));
    let seen = after_drop.clone();
    run(async move {
        let slot: Slot = Rc::new(RefCell::new(None));
        let child_slot = slot.clone();
        let mut nursery: Pin<Box<dyn Future<Output = trio::Result<()>>>> =
            Box::pin(trio::open_nursery(move |n| async move {
                n.start_soon(async move {
                    // Drops the nursery this very task is a child of, mid-poll.
                    let dropped = child_slot.borrow_mut().take();
                    drop(dropped);
                    after_drop.set(after_drop.get() + 1);
                    trio::sleep_forever().await
                })?;
                trio::sleep_forever().await
            }));
        // Poll once so the nursery opens and its child is spawned, then park it in the slot.
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(nursery.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        *slot.borrow_mut() = Some(nursery);
        wait_all_tasks_blocked().await?;
        assert!(slot.borrow().is_none(), "the child dropped the nursery");
        Ok(())
    });
    assert_eq!(seen.get(), 1);
}

#[test]
fn started_in_a_cancelled_scope_leaves_the_task_under_the_scope() {
    // Trio: started() does nothing while the start call's own nursery is cancelled; the task
    // stays there, fails at its next checkpoint, and start() raises Cancelled, which the
    // cancelled scope absorbs.
    run(async {
        trio::open_nursery(|n| async move {
            let scope = trio::CancelScope::new();
            let target = n.clone();
            let out = scope
                .run(async {
                    scope.cancel();
                    target
                        .start(|status| async move {
                            status.started("hi")?;
                            checkpoint().await?;
                            Ok(())
                        })
                        .await
                })
                .await?;
            assert_eq!(out, None, "the scope absorbed start()'s Cancelled");
            assert!(scope.cancelled_caught());
            assert!(n.child_tasks().is_empty(), "the task never moved");
            // A task that calls started() there and then ends cleanly hands its value back.
            let scope = trio::CancelScope::new();
            let out = scope
                .run(async {
                    scope.cancel();
                    target
                        .start(|status| async move {
                            status.started(7)?;
                            Ok(())
                        })
                        .await
                })
                .await?;
            assert_eq!(out, Some(7));
            Ok(())
        })
        .await
    });
}

#[test]
fn a_finished_task_keeps_its_link_to_its_nursery() {
    run(async {
        trio::open_nursery(|n| async move {
            let child = Rc::new(Cell::new(None));
            let slot = child.clone();
            n.start_soon(async move {
                slot.set(Some(current_task()?));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let task = child.take().expect("the child ran");
            assert!(task.is_finished());
            let parent = task
                .parent_nursery()
                .expect("upward links outlive the task");
            assert_eq!(
                parent.cancel_scope().deadline(),
                n.cancel_scope().deadline()
            );
            assert_eq!(parent.parent_task(), Some(current_task()?));
            Ok(())
        })
        .await
    });
}

#[test]
fn a_failing_child_is_named_in_the_cancel_reason_and_the_group() {
    let log = Log::default();
    let seen = log.clone();
    let result = try_run(async move {
        trio::open_nursery(|n| async move {
            let l = log.clone();
            n.start_soon(async move {
                let e = trio::sleep_forever().await.expect_err("cancelled");
                let cancelled = e.as_cancelled().expect("a Cancelled");
                assert_eq!(cancelled.source(), CancelSource::Nursery);
                assert_eq!(cancelled.source_task(), Some("fetch-3"));
                l.push(e.to_string());
                Err(e)
            })?;
            n.start_soon_named("fetch-3", async {
                checkpoint().await?;
                Err(boom("connection refused"))
            })?;
            Ok(())
        })
        .await
    });
    let e = result.expect_err("the nursery failed");
    let group = e.as_group().expect("a group");
    assert_eq!(group.origin(0), Some("task \"fetch-3\""));
    assert_eq!(
        e.to_string(),
        "1 error in a nursery: task \"fetch-3\" failed: connection refused"
    );
    assert_eq!(
        seen.get(),
        ["cancelled (nursery): task \"fetch-3\" failed: connection refused"]
    );
}

#[test]
fn a_failing_body_is_named_too() {
    let result = try_run(async { trio::open_nursery(|_n| async { Err(boom("boom")) }).await });
    let e = result.expect_err("the body failed");
    assert_eq!(
        e.to_string(),
        "1 error in a nursery: the nursery's body failed: boom"
    );
}
