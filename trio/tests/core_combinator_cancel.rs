//! Cancellation reaches operations polled under a combinator that gives each child its own
//! waker (as `FuturesUnordered` does) and re-polls only the children whose waker fired.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use common::{Log, run};
use trio::CancelScope;
use trio::lowlevel::{ParkingLot, wait_all_tasks_blocked};

/// A child's own waker: records the wake and wakes the combinator's task.
struct ChildWaker {
    woken: AtomicBool,
    parent: Mutex<Option<Waker>>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(parent) = self.parent.lock().unwrap().take() {
            parent.wake();
        }
    }
}

type Child = Pin<Box<dyn Future<Output = trio::Result<()>>>>;

/// Polls every child to completion, each only after its own waker fired.
struct OwnWakers {
    children: Vec<(Option<Child>, Arc<ChildWaker>)>,
    results: Vec<Option<trio::Result<()>>>,
}

impl OwnWakers {
    fn new(children: Vec<Child>) -> Self {
        let n = children.len();
        OwnWakers {
            children: children
                .into_iter()
                .map(|c| {
                    let w = Arc::new(ChildWaker {
                        woken: AtomicBool::new(true),
                        parent: Mutex::new(None),
                    });
                    (Some(c), w)
                })
                .collect(),
            results: (0..n).map(|_| None).collect(),
        }
    }
}

impl Future for OwnWakers {
    type Output = Vec<trio::Result<()>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for (i, (child, flag)) in this.children.iter_mut().enumerate() {
            *flag.parent.lock().unwrap() = Some(cx.waker().clone());
            let Some(fut) = child else { continue };
            if !flag.woken.swap(false, Ordering::SeqCst) {
                continue;
            }
            let waker = Waker::from(flag.clone());
            if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                this.results[i] = Some(r);
                *child = None;
            }
        }
        if this.results.iter().all(Option::is_some) {
            Poll::Ready(this.results.iter_mut().map(|r| r.take().unwrap()).collect())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn a_deadline_reaches_sleeps_inside_the_combinator() {
    run(async {
        let start = trio::current_time()?;
        let out = trio::move_on_after(5.0, async {
            let results = OwnWakers::new(vec![
                Box::pin(trio::sleep_forever()),
                Box::pin(trio::sleep(100.0)),
            ])
            .await;
            assert!(
                results
                    .iter()
                    .all(|r| r.as_ref().is_err_and(|e| e.is_cancelled()))
            );
            Err::<(), _>(results.into_iter().next().unwrap().unwrap_err())
        })
        .await?;
        assert_eq!(out, None);
        assert_eq!(trio::current_time()? - start, 5.0);
        Ok(())
    });
}

#[test]
fn an_explicit_cancel_reaches_parked_children() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let lot = ParkingLot::new();
        let scope = CancelScope::new();
        let (s, l, lg) = (scope.clone(), lot.clone(), log.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                s.run(async move {
                    let (a, b) = (l.clone(), l.clone());
                    let results = OwnWakers::new(vec![
                        Box::pin(async move { a.park().await }),
                        Box::pin(async move { b.park().await }),
                    ])
                    .await;
                    for r in &results {
                        lg.push(format!(
                            "cancelled={}",
                            r.as_ref().is_err_and(|e| e.is_cancelled())
                        ));
                    }
                    Err::<(), _>(results.into_iter().next().unwrap().unwrap_err())
                })
                .await?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(lot.len(), 2);
            scope.cancel();
            wait_all_tasks_blocked().await?;
            assert_eq!(lot.len(), 0, "both parked children left the lot");
            Ok(())
        })
        .await
    });
    assert_eq!(seen.get(), ["cancelled=true", "cancelled=true"]);
}

#[test]
fn unpark_wakes_the_child_that_parked() {
    run(async {
        let lot = ParkingLot::new();
        let l = lot.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let (a, b) = (l.clone(), l.clone());
                let results = OwnWakers::new(vec![
                    Box::pin(async move { a.park().await }),
                    Box::pin(async move { b.park().await }),
                ])
                .await;
                assert!(results.iter().all(Result::is_ok));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            lot.unpark_one();
            wait_all_tasks_blocked().await?;
            assert_eq!(lot.len(), 1);
            lot.unpark_all();
            Ok(())
        })
        .await
    });
}

// A nursery opened inside such a combinator: when its children finish, the waker it was
// polled with fires too, not only the task's own (which would not make the combinator re-poll
// it).
#[test]
fn a_nursery_inside_the_combinator_finishes() {
    run(async {
        let start = trio::current_time()?;
        let results = OwnWakers::new(vec![
            Box::pin(trio::open_nursery(|n| async move {
                n.start_soon(trio::sleep(2.0))?;
                Ok(())
            })),
            Box::pin(trio::sleep(1.0)),
        ])
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(trio::current_time()? - start, 2.0);
        Ok(())
    });
}

// `Nursery::start` inside such a combinator returns once the task calls `started`.
#[test]
fn a_start_inside_the_combinator_returns() {
    run(async {
        trio::open_nursery(|n| async move {
            let nursery = n.clone();
            let results = OwnWakers::new(vec![
                Box::pin(async move {
                    let value = nursery
                        .start(|status: trio::TaskStatus<u32>| async move {
                            trio::sleep(1.0).await?;
                            status.started(7)?;
                            trio::sleep(1.0).await
                        })
                        .await?;
                    assert_eq!(value, 7);
                    Ok(())
                }),
                Box::pin(trio::sleep(0.5)),
            ])
            .await;
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            Ok(())
        })
        .await
    });
}
