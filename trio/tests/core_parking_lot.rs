//! ParkingLot: FIFO parking, unpark(n), unpark_all, repark keeping order, break_lot,
//! statistics, and lossless cancellation of a parked task.

mod common;

use common::{Log, assert_err, run};
use trio::BrokenResourceError;
use trio::lowlevel::{ParkingLot, wait_all_tasks_blocked};

/// Starts `n` tasks named 0..n that park in `lot` in that order and log when they wake.
async fn park_in_order(
    nursery: &trio::Nursery,
    lot: &ParkingLot,
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
        wait_all_tasks_blocked().await?;
    }
    Ok(())
}

#[test]
fn unpark_wakes_the_oldest_first() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::new();
        trio::open_nursery(|n| async move {
            park_in_order(&n, &lot, 5, &log).await?;
            assert_eq!(lot.statistics().tasks_waiting, 5);
            let names: Vec<String> = lot.parked_tasks().iter().map(|t| t.name()).collect();
            assert_eq!(names, ["0", "1", "2", "3", "4"]);
            let woken: Vec<String> = lot.unpark(2).iter().map(|t| t.name()).collect();
            assert_eq!(woken, ["0", "1"], "the oldest two");
            assert_eq!(lot.len(), 3);
            wait_all_tasks_blocked().await?;
            assert!(lot.unpark_one().is_some());
            wait_all_tasks_blocked().await?;
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
        let a = ParkingLot::new();
        let b = ParkingLot::new();
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
                wait_all_tasks_blocked().await?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(seen.get(), ["0 woke", "1 woke", "2 woke", "3 woke"]);
}

/// Starts a waiter named `name` that parks in `lot` inside its own scope (returned), and
/// logs how the park ended (Trio's `cancellable_waiter`).
async fn cancellable_waiter(
    nursery: &trio::Nursery,
    name: usize,
    lot: &ParkingLot,
    log: &Log<String>,
) -> trio::Result<trio::CancelScope> {
    let scope = trio::CancelScope::new();
    let (s, lot, log) = (scope.clone(), lot.clone(), log.clone());
    nursery.start_soon(async move {
        log.push(format!("sleep {name}"));
        let r = s.run(lot.park()).await?;
        match r {
            Some(()) => log.push(format!("wake {name}")),
            None => log.push(format!("cancelled {name}")),
        }
        Ok(())
    })?;
    wait_all_tasks_blocked().await?;
    Ok(scope)
}

// Trio's test_parking_lot_repark: a reparked waiter wakes and cancels from its new lot.
#[test]
fn a_reparked_waiter_wakes_and_cancels_from_its_new_lot() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let (lot1, lot2) = (ParkingLot::new(), ParkingLot::new());
        trio::open_nursery(|n| async move {
            let mut scopes = Vec::new();
            for i in 1..=3 {
                scopes.push(cancellable_waiter(&n, i, &lot1, &log).await?);
            }
            assert_eq!(lot1.len(), 3);
            lot1.repark(&lot2, 1);
            assert_eq!((lot1.len(), lot2.len()), (2, 1));
            lot2.unpark_all();
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["sleep 1", "sleep 2", "sleep 3", "wake 1"]);

            lot1.repark_all(&lot2);
            assert_eq!((lot1.len(), lot2.len()), (0, 2));
            scopes[1].cancel();
            wait_all_tasks_blocked().await?;
            assert_eq!(lot2.len(), 1, "the cancelled waiter left its new lot");
            assert_eq!(log.get()[4], "cancelled 2");
            assert_eq!(lot2.unpark_all().len(), 1);
            wait_all_tasks_blocked().await?;
            Ok(())
        })
        .await
    });
    assert_eq!(
        seen.get(),
        [
            "sleep 1",
            "sleep 2",
            "sleep 3",
            "wake 1",
            "cancelled 2",
            "wake 3"
        ]
    );
}

// Trio's test_parking_lot_repark_with_count; a count beyond the waiters moves them all.
#[test]
fn repark_with_a_count_moves_the_oldest_and_tolerates_too_large_counts() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let (lot1, lot2) = (ParkingLot::new(), ParkingLot::new());
        trio::open_nursery(|n| async move {
            for i in 1..=3 {
                cancellable_waiter(&n, i, &lot1, &log).await?;
            }
            lot1.repark(&lot2, 2);
            assert_eq!((lot1.len(), lot2.len()), (1, 2));
            while !lot2.is_empty() {
                lot2.unpark_one();
                wait_all_tasks_blocked().await?;
            }
            assert_eq!(log.get()[3..], ["wake 1", "wake 2"]);
            lot1.repark(&lot2, 10);
            assert_eq!((lot1.len(), lot2.len()), (0, 1));
            lot2.unpark_all();
            Ok(())
        })
        .await
    });
    assert_eq!(
        seen.get(),
        [
            "sleep 1", "sleep 2", "sleep 3", "wake 1", "wake 2", "wake 3"
        ]
    );
}

#[test]
fn a_cancelled_waiter_leaves_the_queue() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::new();
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
            wait_all_tasks_blocked().await?;
            assert_eq!(lot.len(), 3);
            scope.cancel();
            wait_all_tasks_blocked().await?;
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
        let lot = ParkingLot::new();
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

/// Parks a task named `name` in `lot` with `data`; logs what it gets back and how it ended.
fn park_with_data(
    nursery: &trio::Nursery,
    lot: &ParkingLot<String>,
    name: &str,
    data: &str,
    log: &Log<String>,
) -> trio::Result<()> {
    let (lot, log, name, data) = (lot.clone(), log.clone(), name.to_string(), data.to_string());
    nursery.start_soon_named(name.clone(), async move {
        let mut park = std::pin::pin!(lot.park_with(data));
        let out = park.as_mut().await;
        let data = park.take_data().unwrap_or_default();
        match out {
            Ok(()) => log.push(format!("{name} woke with {data}")),
            Err(e) if e.is_cancelled() => log.push(format!("{name} cancelled with {data}")),
            Err(e) => log.push(format!("{name} failed with {data}: {e}")),
        }
        Ok(())
    })
}

#[test]
fn data_travels_with_the_waiter_both_ways() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::<String>::new();
        let after = lot.clone();
        trio::open_nursery(|n| async move {
            park_with_data(&n, &lot, "a", "a-in", &log)?;
            wait_all_tasks_blocked().await?;
            park_with_data(&n, &lot, "b", "b-in", &log)?;
            wait_all_tasks_blocked().await?;
            // The oldest waiter's data is read and replaced before it wakes.
            let was = lot.unpark_one_with(|d| std::mem::replace(d, "from unparker".into()));
            assert_eq!(was.as_deref(), Some("a-in"));
            assert_eq!(lot.len(), 1);
            wait_all_tasks_blocked().await?;
            // A cancelled waiter gets its own data back, untouched.
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(
            after.unpark_one_with(|_| ()),
            None,
            "an empty lot calls nothing"
        );
        Ok(())
    });
    assert_eq!(
        seen.get(),
        ["a woke with from unparker", "b cancelled with b-in"]
    );
}

#[test]
fn unpark_all_where_wakes_the_chosen_and_keeps_the_rest_in_order() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::<String>::new();
        trio::open_nursery(|n| async move {
            for (name, data) in [("0", "odd"), ("1", "even"), ("2", "odd"), ("3", "even")] {
                park_with_data(&n, &lot, name, data, &log)?;
                wait_all_tasks_blocked().await?;
            }
            let mut chosen_so_far = 0;
            let woken = lot.unpark_all_where(|d| {
                // The lot can be used from inside: the waiters not yet woken count as parked.
                assert_eq!(lot.len(), 4 - chosen_so_far);
                assert!(
                    lot.unpark_one_with(|_| ()).is_none(),
                    "none queued meanwhile"
                );
                let chosen = d == "even";
                if chosen {
                    d.push_str(" (chosen)");
                    chosen_so_far += 1;
                }
                chosen
            });
            assert_eq!(woken, 2);
            assert_eq!(lot.len(), 2);
            let left: Vec<String> = lot.parked_tasks().iter().map(|t| t.name()).collect();
            assert_eq!(left, ["0", "2"]);
            wait_all_tasks_blocked().await?;
            // The ones kept are still first in line, oldest first.
            assert!(lot.unpark_one().is_some());
            wait_all_tasks_blocked().await?;
            assert!(lot.unpark_one().is_some());
            Ok(())
        })
        .await
    });
    let seen = seen.get();
    let mut chosen = seen[..2].to_vec();
    chosen.sort();
    assert_eq!(
        chosen,
        ["1 woke with even (chosen)", "3 woke with even (chosen)"]
    );
    assert_eq!(seen[2..], ["0 woke with odd", "2 woke with odd"]);
}

#[test]
fn a_park_dropped_before_its_first_poll_keeps_its_data() {
    run(async {
        let lot = ParkingLot::<Vec<u8>>::new();
        let park = lot.park_with(vec![1, 2, 3]);
        assert!(!park.is_unparked());
        assert_eq!(park.take_data(), Some(vec![1, 2, 3]));
        assert_eq!(park.take_data(), None, "taken once");
        drop(park);
        assert!(lot.is_empty());
        Ok(())
    });
}
