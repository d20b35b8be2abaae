//! `Sequencer`: Trio's tests (`test_Sequencer`, `test_Sequencer_cancel`), and what Rust adds:
//! a dropped step breaks the sequence, and `step` is a checkpoint on every path.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Log, assert_err, run};
use trio::lowlevel::wait_all_tasks_blocked;
use trio::{BrokenResourceError, CancelScope, UsageError};
use trio_test::{Sequencer, assert_checkpoints};

/// Starts a task that takes `steps` in turn and logs `(name, step)` inside each.
fn worker(
    nursery: &trio::Nursery,
    seq: &Sequencer,
    log: &Log,
    name: &'static str,
    steps: &'static [usize],
) -> trio::Result<()> {
    let (seq, log) = (seq.clone(), log.clone());
    nursery.start_soon(async move {
        for &n in steps {
            let _step = seq.step(n).await?;
            log.push(format!("{name} {n}"));
        }
        Ok(())
    })
}

#[test]
fn steps_run_in_order_across_tasks() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let seq = Sequencer::new();
        let s = seq.clone();
        trio::open_nursery(|n| async move {
            worker(&n, &s, &log, "f1", &[1, 3, 4])?;
            worker(&n, &s, &log, "f2", &[0, 2])?;
            let step = s.step(5).await?;
            assert_eq!(step.position(), 5);
            wait_all_tasks_blocked().await?;
            assert_eq!(log.take(), ["f2 0", "f1 1", "f2 2", "f1 3", "f1 4"]);
            step.end();
            Ok(())
        })
        .await?;
        // A step is asked for once.
        let seq = Sequencer::new();
        seq.step(0).await?.end();
        let again = seq.step(0).await;
        assert_err::<UsageError, _>(again.map(drop));
        Ok(())
    });
    assert!(seen.take().is_empty());
}

#[test]
fn a_step_waits_until_the_previous_one_has_ended() {
    run(async {
        let seq = Sequencer::new();
        let log = Log::default();
        let (s, l) = (seq.clone(), log.clone());
        trio::open_nursery(|n| async move {
            worker(&n, &s, &l, "second", &[1])?;
            let first = s.step(0).await?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.len(), 0, "step 1 began while step 0 was still going");
            drop(first);
            wait_all_tasks_blocked().await?;
            assert_eq!(l.take(), ["second 1"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn a_cancelled_step_breaks_the_sequence() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let seq = Sequencer::new();
        let (s, l) = (seq.clone(), log.clone());
        trio::open_nursery(|n| async move {
            for i in [1, 2] {
                let (seq, log) = (s.clone(), l.clone());
                n.start_soon(async move {
                    let scope = CancelScope::new();
                    if i == 1 {
                        scope.cancel();
                    }
                    let result = scope.run(async { seq.step(i).await.map(drop) }).await;
                    match result {
                        Err(e) if e.is::<BrokenResourceError>() => {
                            log.push(format!("step({i}) broken: {e}"));
                            Ok(())
                        }
                        other => panic!("step({i}) should have failed, got {other:?}"),
                    }
                })?;
            }
            s.step(0).await?.end();
            Ok(())
        })
        .await?;
        // Late arrivals fail too.
        let late = seq.step(3).await;
        assert_err::<BrokenResourceError, _>(late.map(drop));
        assert!(format!("{seq:?}").contains("broken: true"));
        Ok(())
    });
    let seen = seen.take();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].starts_with("step(1) broken"), "{seen:?}");
    assert!(seen[0].contains("cancelled"), "{seen:?}");
    assert!(seen[1].starts_with("step(2) broken"), "{seen:?}");
}

#[test]
fn a_step_cancelled_at_its_turn_breaks_the_sequence_too() {
    run(async {
        // Step 0 has nothing to wait for, but its cancel point still counts.
        let seq = Sequencer::new();
        let scope = CancelScope::new();
        scope.cancel();
        let s = seq.clone();
        let r = scope.run(async move { s.step(0).await.map(drop) }).await;
        assert_err::<BrokenResourceError, _>(r);
        assert_err::<BrokenResourceError, _>(seq.step(1).await.map(drop));
        Ok(())
    });
}

#[test]
fn a_dropped_step_breaks_the_sequence() {
    run(async {
        let seq = Sequencer::new();
        let outcome = Rc::new(RefCell::new(None));
        let (s, out) = (seq.clone(), outcome.clone());
        trio::open_nursery(|n| async move {
            let waiter = s.clone();
            n.start_soon(async move {
                *out.borrow_mut() = Some(waiter.step(2).await.map(drop));
                Ok(())
            })?;
            // Step 1 is dropped before it can begin: step 2 can never come.
            let mut one = Box::pin(s.step(1));
            assert!(common::poll_once(&mut one).await.is_pending());
            drop(one);
            Ok(())
        })
        .await?;
        let got = outcome.borrow_mut().take().expect("the waiter ran");
        assert_err::<BrokenResourceError, _>(got);
        Ok(())
    });
}

#[test]
fn step_is_a_checkpoint_on_every_path() {
    run(async {
        let seq = Sequencer::new();
        // Step 0, which begins at once.
        let zero = assert_checkpoints(seq.step(0)).await?;
        let s = seq.clone();
        trio::open_nursery(|n| async move {
            // A step that has to wait.
            n.start_soon(async move {
                assert_checkpoints(s.step(1)).await?.end();
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            drop(zero);
            Ok(())
        })
        .await?;
        // A step whose turn has come already.
        assert_checkpoints(seq.step(2)).await?.end();
        Ok(())
    });
}
