//! ParkingLot waiters live inside their `Park` futures (an intrusive queue). These tests drive
//! the paths where a waiter's memory could go away while the lot still points at it: a
//! callback that drops the very waiter it is handed, a callback that panics, a waiter dropped
//! or cancelled after it was moved to another lot whose handle is gone. They are meant to be
//! run under Miri too (see docs/decisions.md), which checks that no freed waiter is touched.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use common::{Log, run};
use trio::lowlevel::{Park, ParkingLot, wait_all_tasks_blocked};

/// A waiter whose `Park` sits in a shared, boxed slot, so that anyone (even an unparker's
/// callback) can drop it while the lot still has it queued.
type SharedPark = Rc<RefCell<Option<Pin<Box<Park<String>>>>>>;

/// Waits on the shared park; `None` once someone else dropped it.
struct WaitShared(SharedPark);

impl Future for WaitShared {
    type Output = Option<trio::Result<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.borrow_mut().as_mut() {
            Some(park) => park.as_mut().poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// Starts a task named `name` that waits on a shared park in `lot` holding `data` (it logs how
/// the wait ended), and returns once it is queued, so the queue order is the call order.
async fn park_shared_waiter(
    nursery: &trio::Nursery,
    lot: &ParkingLot<String>,
    name: &str,
    data: &str,
    log: &Log<String>,
) -> trio::Result<SharedPark> {
    let shared: SharedPark = Rc::new(RefCell::new(Some(Box::pin(
        lot.park_with(data.to_string()),
    ))));
    let (waiting, log, name) = (shared.clone(), log.clone(), name.to_string());
    nursery.start_soon_named(name.clone(), async move {
        let outcome = WaitShared(waiting.clone()).await;
        let data = waiting
            .borrow()
            .as_ref()
            .and_then(|park| park.take_data())
            .unwrap_or_default();
        log.push(match outcome {
            Some(Ok(())) => format!("{name} woke with {data}"),
            Some(Err(e)) if e.is_cancelled() => format!("{name} cancelled"),
            Some(Err(e)) => format!("{name} failed: {e}"),
            None => format!("{name} lost its park"),
        });
        Ok(())
    })?;
    wait_all_tasks_blocked().await?;
    Ok(shared)
}

/// What a scenario's body gets: the nursery the waiters run in, their lot, and their parks
/// (in queue order).
struct Waiters {
    nursery: trio::Nursery,
    lot: ParkingLot<String>,
    parks: Vec<SharedPark>,
}

/// Parks one waiter task per `(name, data)` in a new lot, in that order, runs `body`, and
/// returns how each wait ended, in the order the waits ended. The body must end every wait
/// (wake, drop or cancel it).
fn with_waiters<F, B>(waiters: &'static [(&'static str, &'static str)], body: F) -> Vec<String>
where
    F: FnOnce(Waiters) -> B + 'static,
    B: Future<Output = trio::Result<()>>,
{
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::<String>::new();
        trio::open_nursery(|nursery| async move {
            let mut parks = Vec::new();
            for (name, data) in waiters {
                parks.push(park_shared_waiter(&nursery, &lot, name, data, &log).await?);
            }
            body(Waiters {
                nursery,
                lot,
                parks,
            })
            .await
        })
        .await
    });
    seen.get()
}

/// `with_waiters`, its log sorted (for waits that end in the same batch).
fn sorted(mut log: Vec<String>) -> Vec<String> {
    log.sort();
    log
}

#[test]
fn a_callback_that_drops_the_waiter_it_was_handed_is_safe() {
    let seen = with_waiters(&[("a", "a-in"), ("b", "b-in")], |w| async move {
        let Waiters {
            nursery,
            lot,
            parks,
        } = w;
        let (a, b) = (parks[0].clone(), parks[1].clone());
        assert_eq!(lot.len(), 2);
        // The callback frees a's park (and its queued waiter) while working on its data.
        let got = lot.unpark_one_with(|data| {
            a.borrow_mut().take();
            data.push_str(" (seen)");
            data.clone()
        });
        assert_eq!(
            got.as_deref(),
            Some("a-in (seen)"),
            "the callback still ran"
        );
        assert_eq!(lot.len(), 1, "b is still queued");
        // a's task was not woken (its waiter is gone): cancel it out of its wait.
        wait_all_tasks_blocked().await?;
        assert_eq!(
            lot.unpark_one_with(|data| data.push_str(" + out")),
            Some(())
        );
        wait_all_tasks_blocked().await?;
        drop((b, parks));
        nursery.cancel_scope().cancel();
        Ok(())
    });
    assert_eq!(sorted(seen), ["a lost its park", "b woke with b-in + out"]);
}

#[test]
fn a_panicking_callback_still_wakes_its_waiter_and_keeps_the_others() {
    let waiters = &[("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")];
    let seen = with_waiters(waiters, |Waiters { lot, .. }| async move {
        // unpark_one_with: the waiter is woken with the data as the callback left it.
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            lot.unpark_one_with(|data| {
                data.push_str(" (half done)");
                panic!("callback failed");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(lot.len(), 3);
        wait_all_tasks_blocked().await?;
        // unpark_all_where: the waiters not woken yet go back, in order, at the front.
        let mut calls = 0;
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            lot.unpark_all_where(|data| {
                calls += 1;
                if data == "c" {
                    panic!("callback failed");
                }
                data == "b"
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(calls, 2, "b chosen, then c panicked");
        let left: Vec<String> = lot.parked_tasks().iter().map(|t| t.name()).collect();
        assert_eq!(left, ["c", "d"], "put back in order");
        wait_all_tasks_blocked().await?;
        for _ in 0..2 {
            assert!(lot.unpark_one().is_some());
            wait_all_tasks_blocked().await?;
        }
        Ok(())
    });
    assert_eq!(
        seen,
        [
            "a woke with a (half done)",
            "b woke with b",
            "c woke with c",
            "d woke with d"
        ]
    );
}

#[test]
fn unpark_all_where_skips_a_waiter_its_callback_dropped() {
    let waiters = &[("a", "a"), ("b", "b"), ("c", "c")];
    let seen = with_waiters(waiters, |w| async move {
        let b = w.parks[1].clone();
        let lot = w.lot.clone();
        let mut visited = Vec::new();
        let woken = w.lot.unpark_all_where(|data| {
            visited.push(data.clone());
            if data == "a" {
                // Drops b's park while it waits to be sorted: it is uncounted and skipped.
                b.borrow_mut().take();
                assert_eq!(lot.len(), 2);
            }
            true
        });
        assert_eq!(visited, ["a", "c"]);
        assert_eq!(woken, 2);
        assert!(w.lot.is_empty());
        wait_all_tasks_blocked().await?;
        w.nursery.cancel_scope().cancel();
        Ok(())
    });
    assert_eq!(
        sorted(seen),
        ["a woke with a", "b lost its park", "c woke with c"]
    );
}

#[test]
fn a_reparked_waiter_outlives_the_handle_of_its_new_lot() {
    let waiters = &[("stays", "s"), ("dropped", "d")];
    let seen = with_waiters(waiters, |w| async move {
        let to = ParkingLot::<String>::new();
        w.lot.repark_all(&to);
        assert_eq!((w.lot.len(), to.len()), (0, 2));
        // Only the waiters keep `to` alive now.
        drop(to);
        // One leaves by being dropped, the other by cancellation: both unlink from `to`.
        w.parks[1].borrow_mut().take();
        wait_all_tasks_blocked().await?;
        w.nursery.cancel_scope().cancel();
        Ok(())
    });
    assert_eq!(sorted(seen), ["dropped lost its park", "stays cancelled"]);
}

#[test]
fn unpark_one_replacing_swaps_the_oldest_waiters_data() {
    let waiters = &[("a", "a-in"), ("b", "b-in"), ("c", "c-in")];
    let seen = with_waiters(waiters, |w| async move {
        let nobody = ParkingLot::<String>::new();
        assert_eq!(
            nobody.unpark_one_replacing("nobody".to_string()),
            Err("nobody".to_string()),
            "with nobody parked, the data comes back"
        );
        // Oldest first; the waiter wakes with the new data, the old comes back.
        assert_eq!(
            w.lot.unpark_one_replacing("a-out".to_string()),
            Ok(Some("a-in".to_string()))
        );
        assert_eq!(w.lot.len(), 2);
        // b's data was taken while it waited: it still wakes, with the new data.
        let taken = w.parks[1]
            .borrow()
            .as_ref()
            .and_then(|park| park.take_data());
        assert_eq!(taken.as_deref(), Some("b-in"));
        assert_eq!(w.lot.unpark_one_replacing("b-out".to_string()), Ok(None));
        wait_all_tasks_blocked().await?;
        assert_eq!(w.lot.len(), 1, "c still waits");
        w.nursery.cancel_scope().cancel();
        Ok(())
    });
    assert_eq!(
        sorted(seen),
        ["a woke with a-out", "b woke with b-out", "c cancelled"]
    );
}
