//! ParkingLot: FIFO parking, unpark(n), unpark_all, repark keeping order, break_lot,
//! statistics, and lossless cancellation of a parked task.

mod common;

use std::rc::Rc;

use common::{Log, assert_err, run};
use trio::BrokenResourceError;
use trio::lowlevel::{ParkingLot, wait_all_tasks_blocked};

/// Starts `n` tasks named 0..n that park in `lot` in that order and log when they wake.
async fn park_in_order(
    nursery: &trio::Nursery,
    lot: &Rc<ParkingLot>,
    n: usize,
    log: &Log<String>,
) -> trio::Result<()> {
    for i in 0..n {
        let (lot, log) = (lot.clone(), log.clone());
        nursery.start_soon_named(i.to_string(), async move {
            match lot.park().await {
                Ok(()) => log.push(format!("{i} woke")),
                Err(e) if e.is::<BrokenResourceError>() => log.push(format!("{i} broken")),
                Err(e) if e.is_cancelled() => {
                    log.push(format!("{i} cancelled"));
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
            Ok(())
        })?;
        // Park one at a time, so the queue order is known.
        wait_all_tasks_blocked(0.0).await?;
    }
    Ok(())
}

#[test]
fn unpark_wakes_the_oldest_first() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = Rc::new(ParkingLot::new());
        trio::open_nursery(|n| async move {
            park_in_order(&n, &lot, 5, &log).await?;
            assert_eq!(lot.statistics().tasks_waiting, 5);
            let names: Vec<String> = lot.parked_tasks().iter().map(|t| t.name()).collect();
            assert_eq!(names, ["0", "1", "2", "3", "4"]);
            let woken: Vec<String> = lot.unpark(2).iter().map(|t| t.name()).collect();
            assert_eq!(woken, ["0", "1"], "the oldest two");
            assert_eq!(lot.len(), 3);
            wait_all_tasks_blocked(0.0).await?;
            assert!(lot.unpark_one().is_some());
            wait_all_tasks_blocked(0.0).await?;
            assert_eq!(lot.unpark_all().len(), 2);
            assert!(lot.is_empty());
            assert_eq!(lot.unpark(3).len(), 0, "unparking an empty lot is fine");
            Ok(())
        })
        .await
    });
    let seen = seen.get();
    // Tasks woken together run in one batch, in a (seeded) random order.
    let mut first_two = seen[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["0 woke", "1 woke"]);
    assert_eq!(seen[2], "2 woke");
    let mut rest = seen[3..].to_vec();
    rest.sort();
    assert_eq!(rest, ["3 woke", "4 woke"]);
}

#[test]
fn repark_moves_waiters_keeping_their_order() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let a = Rc::new(ParkingLot::new());
        let b = Rc::new(ParkingLot::new());
        trio::open_nursery(|n| async move {
            park_in_order(&n, &a, 4, &log).await?;
            a.repark(&b, 2);
            assert_eq!((a.len(), b.len()), (2, 2));
            a.repark_all(&b);
            assert_eq!((a.len(), b.len()), (0, 4));
            let names: Vec<String> = b.parked_tasks().iter().map(|t| t.name()).collect();
            assert_eq!(names, ["0", "1", "2", "3"]);
            for _ in 0..4 {
                b.unpark_one();
                wait_all_tasks_blocked(0.0).await?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(seen.get(), ["0 woke", "1 woke", "2 woke", "3 woke"]);
}

#[test]
fn a_cancelled_waiter_leaves_the_queue() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = Rc::new(ParkingLot::new());
        trio::open_nursery(|n| async move {
            park_in_order(&n, &lot, 2, &log).await?;
            // Cancel task "0" by running a third waiter inside a scope we cancel.
            let scope = trio::CancelScope::new();
            let (s, l2, lg) = (scope.clone(), lot.clone(), log.clone());
            n.start_soon(async move {
                s.run(async move {
                    let r = l2.park().await;
                    lg.push("scoped cancelled".into());
                    r
                })
                .await?;
                Ok(())
            })?;
            wait_all_tasks_blocked(0.0).await?;
            assert_eq!(lot.len(), 3);
            scope.cancel();
            wait_all_tasks_blocked(0.0).await?;
            assert_eq!(lot.len(), 2, "the cancelled waiter left");
            // Unparking two wakes the two real waiters, not the departed one.
            assert_eq!(lot.unpark(2).len(), 2);
            Ok(())
        })
        .await
    });
    let seen = seen.get();
    assert_eq!(seen[0], "scoped cancelled");
    // Woken together, they run in one batch in a (seeded) random order.
    let mut woke = seen[1..].to_vec();
    woke.sort();
    assert_eq!(woke, ["0 woke", "1 woke"]);
}

#[test]
fn break_lot_fails_current_and_future_parkers() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = Rc::new(ParkingLot::new());
        trio::open_nursery(|n| {
            let lot = lot.clone();
            async move {
                park_in_order(&n, &lot, 2, &log).await?;
                lot.break_lot(None);
                Ok(())
            }
        })
        .await?;
        assert!(lot.is_broken());
        let e = assert_err::<BrokenResourceError, _>(lot.park().await);
        assert!(e.to_string().contains("broken"), "{e}");
        Ok(())
    });
    let mut seen = seen.get();
    seen.sort();
    assert_eq!(seen, ["0 broken", "1 broken"]);
}

#[test]
fn park_is_a_cancel_point() {
    run(async {
        let lot = ParkingLot::new();
        let out = common::in_cancelled_scope(async { lot.park().await }).await?;
        assert_eq!(out, None);
        assert!(lot.is_empty());
        Ok(())
    });
}
