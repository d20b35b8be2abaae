//! `trio::Event`: set, is_set, wait; checkpoints and cancellation.

mod common;

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;

#[test]
fn set_wakes_every_waiter() {
    run(async {
        let event = trio::Event::new();
        let woke = Log::default();
        let (e2, w2) = (event.clone(), woke.clone());
        trio::open_nursery(|n| async move {
            for i in 0..3 {
                let (e, w) = (e2.clone(), w2.clone());
                n.start_soon(async move {
                    e.wait().await?;
                    w.push(i);
                    Ok(())
                })?;
            }
            wait_all_tasks_blocked().await?;
            assert_eq!(e2.statistics().tasks_waiting, 3);
            assert!(!e2.is_set());
            no_yield(async { e2.set() }).await;
            assert!(e2.is_set());
            assert_eq!(e2.statistics().tasks_waiting, 0);
            e2.set(); // idempotent
            Ok(())
        })
        .await?;
        let mut got = woke.get();
        got.sort();
        assert_eq!(got, [0, 1, 2]);
        assert!(event.is_set());
        Ok(())
    });
}

#[test]
fn wait_on_set_event_is_a_checkpoint() {
    run(async {
        let event = trio::Event::new();
        event.set();
        yields(event.wait()).await?;
        // Cancelled even though it would not have to wait.
        let e = event.clone();
        let out = in_cancelled_scope(async move {
            assert!(is_cancelled(e.wait().await));
            Ok(())
        })
        .await?;
        assert_eq!(out, Some(()));
        Ok(())
    });
}

#[test]
fn cancelled_wait_leaves_the_queue() {
    run(async {
        let event = trio::Event::new();
        let out = trio::move_on_after(1.0, event.wait()).await?;
        assert_eq!(out, None);
        assert_eq!(event.statistics().tasks_waiting, 0);
        // A dropped wait leaves too.
        let mut fut = Box::pin(event.wait());
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(event.statistics().tasks_waiting, 1);
        drop(fut);
        assert_eq!(event.statistics().tasks_waiting, 0);
        Ok(())
    });
}

#[test]
fn debug_and_default() {
    let event = trio::Event::default();
    assert!(format!("{event:?}").contains("is_set: false"));
}
