//! Parking-lot breakers (a task's exit breaks the lots registered for it), run variables
//! used from inside each other, and deadlock detection under an autojumping clock.

mod common;

use std::rc::Rc;

use common::{Log, assert_err, run, try_run};
use trio::lowlevel::{
    ParkingLot, RunVar, Task, add_parking_lot_breaker, current_task, remove_parking_lot_breaker,
    wait_all_tasks_blocked,
};
use trio::{BrokenResourceError, DeadlockError, UsageError};

/// Parks in `lot` and records how the park ended.
async fn park_and_log(lot: ParkingLot, log: Log<String>) -> trio::Result<()> {
    match lot.park().await {
        Ok(()) => log.push("unparked".into()),
        Err(e) if e.is::<BrokenResourceError>() => log.push(format!("broken: {e}")),
        Err(e) => return Err(e),
    }
    Ok(())
}

#[test]
fn exit_of_a_task_breaks_its_lots() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::new();
        trio::open_nursery(|n| {
            let lot = lot.clone();
            async move {
                let (l, g) = (lot.clone(), log.clone());
                n.start_soon(park_and_log(l, g))?;
                let l = lot.clone();
                n.start_soon_named("owner", async move {
                    add_parking_lot_breaker(&current_task()?, &l)?;
                    wait_all_tasks_blocked().await?;
                    Ok(())
                })?;
                Ok(())
            }
        })
        .await?;
        assert!(lot.is_broken());
        assert_eq!(
            lot.broken_by().iter().map(|t| t.name()).collect::<Vec<_>>(),
            ["owner"]
        );
        // Later parks fail at once.
        assert_err::<BrokenResourceError, _>(lot.park().await);
        Ok(())
    });
    let entries = seen.get();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].starts_with("broken:"), "{entries:?}");
    assert!(entries[0].contains("owner"), "{entries:?}");
}

#[test]
fn failing_and_panicking_tasks_break_their_lots_too() {
    run(async {
        let lot = ParkingLot::new();
        let l = lot.clone();
        let result = trio::open_nursery(|n| async move {
            n.start_soon(async move {
                add_parking_lot_breaker(&current_task()?, &l)?;
                Err(trio::Error::new(std::io::Error::other("boom")))
            })?;
            Ok(())
        })
        .await;
        assert!(result.is_err());
        assert!(lot.is_broken());

        let lot = ParkingLot::new();
        let l = lot.clone();
        let panicked = Box::pin(trio::open_nursery(|n| async move {
            n.start_soon(async move {
                add_parking_lot_breaker(&current_task()?, &l)?;
                panic!("task panics on purpose");
            })?;
            Ok(())
        }));
        let caught = catch_unwind_future(panicked).await;
        assert!(
            caught.is_err(),
            "the child's panic is resumed in the parent"
        );
        assert!(lot.is_broken());
        Ok(())
    });
}

/// Polls `fut`, catching a panic from its poll.
async fn catch_unwind_future<F: std::future::Future + Unpin>(
    mut fut: F,
) -> std::thread::Result<F::Output> {
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(&mut fut).poll(cx)
        })) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    })
    .await
}

#[test]
fn a_dropped_nursery_breaks_the_lots_of_its_children() {
    run(async {
        let lot = ParkingLot::new();
        let l = lot.clone();
        // Poll the nursery once (its child starts and registers), then drop it.
        let mut nursery = Box::pin(trio::open_nursery(|n| async move {
            n.start_soon(async move {
                add_parking_lot_breaker(&current_task()?, &l)?;
                trio::sleep_forever().await
            })?;
            trio::sleep_forever().await
        }));
        let _ = common::poll_once(&mut nursery).await;
        wait_all_tasks_blocked().await?;
        assert!(!lot.is_broken(), "the child is still alive");
        drop(nursery);
        assert!(lot.is_broken());
        Ok(())
    });
}

#[test]
fn removed_breakers_do_not_fire_and_misuse_is_an_error() {
    run(async {
        let lot = ParkingLot::new();
        let l = lot.clone();
        let child = trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let me = current_task()?;
                add_parking_lot_breaker(&me, &l)?;
                remove_parking_lot_breaker(&me, &l)?;
                let again = remove_parking_lot_breaker(&me, &l);
                assert_err::<UsageError, _>(again);
                Ok(())
            })?;
            Ok(())
        });
        child.await?;
        assert!(!lot.is_broken());
        Ok(())
    });
}

#[test]
fn a_finished_task_cannot_take_a_breaker() {
    run(async {
        let slot = Rc::new(std::cell::RefCell::new(None));
        let s = slot.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                *s.borrow_mut() = Some(current_task()?);
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        let finished = slot.borrow_mut().take().expect("the child ran");
        let lot = ParkingLot::new();
        // Trio raises BrokenResourceError here.
        assert_err::<BrokenResourceError, _>(add_parking_lot_breaker(&finished, &lot));
        assert!(!lot.is_broken());
        Ok(())
    });
}

/// Trio's `test_parking_lot_breaker_basic`, `_rebreak` and `_multiple_breakers_exit`:
/// `broken_by` lists every breaker in order, `break_lot()` names the calling task, and
/// breaking again adds a breaker without changing the lot's error.
#[test]
fn broken_by_lists_every_breaker_and_defaults_to_the_calling_task() {
    run(async {
        let me = current_task()?;
        let lot = ParkingLot::new();
        lot.break_lot(None);
        lot.break_lot(None);
        assert_eq!(lot.broken_by(), [me.clone(), me.clone()]);
        let e = lot.park().await.unwrap_err();
        assert!(e.is::<BrokenResourceError>(), "{e}");
        let lot2 = lot.clone();
        let kids = Rc::new(std::cell::RefCell::new(Vec::new()));
        let k = kids.clone();
        trio::open_nursery(|n| async move {
            for _ in 0..3 {
                let l = lot2.clone();
                let task = n
                    .start(|st: trio::TaskStatus<Task>| async move {
                        st.started(current_task()?)?;
                        add_parking_lot_breaker(&current_task()?, &l)?;
                        trio::sleep_forever().await
                    })
                    .await?;
                k.borrow_mut().push(task);
            }
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        let children = kids.borrow().clone();
        let mut expected = vec![me.clone(), me];
        let by = lot.broken_by();
        assert_eq!(by[..2], expected[..]);
        expected.extend(children.iter().cloned());
        let mut tail: Vec<_> = by[2..].iter().map(|t| t.id()).collect();
        let mut want: Vec<_> = children.iter().map(|t| t.id()).collect();
        tail.sort();
        want.sort();
        assert_eq!(tail, want);
        assert_eq!(by.len(), expected.len());
        // The lot's error still names its first breaker.
        let again = lot.park().await.unwrap_err();
        assert_eq!(again.to_string(), e.to_string());
        Ok(())
    });
}

static OUTER: RunVar<Vec<u32>> = RunVar::with_default("outer", Vec::new);
static INNER: RunVar<u32> = RunVar::with_default("inner", || 7);
static NEEDS_OTHER: RunVar<u32> = RunVar::with_default("needs other", || 1);

#[test]
fn run_vars_can_be_used_inside_each_other() {
    run(async {
        let got = OUTER.with(|outer| {
            outer.push(INNER.get()?);
            INNER.set(8)?;
            outer.push(INNER.get()?);
            Ok::<_, trio::Error>(outer.clone())
        })??;
        assert_eq!(got, vec![7, 8]);
        // The same variable inside its own `with` is a clear error, not a panic.
        let nested = OUTER.with(|_| OUTER.get())?;
        assert_err::<UsageError, _>(nested);
        assert_eq!(NEEDS_OTHER.get()?, 1);
        Ok(())
    });
}

#[test]
fn autojump_with_no_deadline_reports_the_deadlock() {
    let result = try_run(async {
        let lot = ParkingLot::new();
        lot.park().await
    });
    let error = assert_err::<DeadlockError, _>(result);
    let dump = error
        .downcast_ref::<DeadlockError>()
        .expect("a deadlock")
        .task_dump();
    assert!(!dump.is_empty());
}
