//! `trio::compat::cancellable`: a future that knows nothing of cancel scopes, run so that it
//! obeys them (and `trio::lowlevel::wake_on_cancel`, which it is built on).

mod common;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use common::{is_cancelled, run, yields};
use trio::compat::cancellable;
use trio::{CancelScope, CancelSource, Cancelled};
use trio_test::assert_checkpoints;

/// A foreign future: it completes when its flag is set by hand, and wakes the waker it stored
/// then (as a channel of another library would). Counts its polls and notes being dropped.
#[derive(Clone, Default)]
struct Remote {
    done: Rc<Cell<bool>>,
    waker: Rc<Cell<Option<Waker>>>,
    polls: Rc<Cell<u32>>,
    dropped: Rc<Cell<bool>>,
}

impl Remote {
    fn complete(&self) {
        self.done.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn future(&self) -> RemoteFuture {
        RemoteFuture(self.clone())
    }
}

struct RemoteFuture(Remote);

impl Future for RemoteFuture {
    type Output = &'static str;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        let remote = &self.0;
        remote.polls.set(remote.polls.get() + 1);
        if remote.done.get() {
            return Poll::Ready("done");
        }
        remote.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for RemoteFuture {
    fn drop(&mut self) {
        self.0.dropped.set(true);
    }
}

#[test]
fn output_comes_back_when_the_future_completes() {
    run(async {
        let remote = Remote::default();
        let result = Rc::new(Cell::new(""));
        let (remote2, result2) = (remote.clone(), result.clone());
        trio::open_nursery(|nursery| async move {
            let completer = remote2.clone();
            nursery.start_soon(async move {
                trio::sleep(1.0).await?;
                completer.complete();
                Ok(())
            })?;
            result2.set(cancellable(remote2.future()).await?);
            Ok(())
        })
        .await?;
        assert_eq!(result.get(), "done");
        assert!(remote.dropped.get());
        assert_eq!(trio::current_time()?, 1.0);
        Ok(())
    });
}

#[test]
fn a_ready_future_still_makes_a_checkpoint() {
    run(async {
        assert_eq!(assert_checkpoints(cancellable(async { 7 })).await?, 7);
        // A future that waited made its schedule point by waiting.
        let out = yields(cancellable(async {
            trio::lowlevel::cancel_shielded_checkpoint().await;
            8
        }))
        .await?;
        assert_eq!(out, 8);
        Ok(())
    });
}

#[test]
fn a_cancelled_task_never_polls_the_future() {
    run(async {
        let remote = Remote::default();
        remote.done.set(true);
        let scope = CancelScope::new();
        scope.cancel();
        let fut = cancellable(remote.future());
        let result = scope.run(async { Ok(is_cancelled(fut.await)) }).await?;
        assert_eq!(result, Some(true));
        assert_eq!(remote.polls.get(), 0);
        assert!(remote.dropped.get());
        Ok(())
    });
}

#[test]
fn a_deadline_drops_the_waiting_future() {
    run(async {
        let remote = Remote::default();
        let start = trio::current_time()?;
        let result = trio::move_on_after(5.0, cancellable(remote.future())).await?;
        assert!(result.is_none());
        assert_eq!(trio::current_time()? - start, 5.0);
        assert!(
            remote.dropped.get(),
            "the inner future was dropped on cancel"
        );
        assert_eq!(remote.polls.get(), 1, "and not polled again");
        Ok(())
    });
}

#[test]
fn an_explicit_cancel_from_another_task_reaches_it() {
    run(async {
        let remote = Remote::default();
        let scope = CancelScope::new();
        let (scope2, remote2) = (scope.clone(), remote.clone());
        let scope3 = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let err = scope2
                    .run(async { cancellable(remote2.future()).await })
                    .await;
                assert!(matches!(err, Ok(None)), "absorbed by its scope");
                Ok(())
            })?;
            trio::sleep(1.0).await?;
            scope3.cancel_with_reason("enough");
            Ok(())
        })
        .await?;
        assert!(remote.dropped.get());
        assert!(scope.cancelled_caught());
        Ok(())
    });
}

#[test]
fn the_error_is_the_scope_s_cancelled() {
    run(async {
        let remote = Remote::default();
        let fut = cancellable(remote.future());
        let result = trio::fail_after(2.0, async {
            let err = fut.await.expect_err("cancelled");
            let cancelled = err.downcast_ref::<Cancelled>().expect("a Cancelled");
            assert_eq!(cancelled.source(), CancelSource::Deadline);
            Err::<(), _>(err)
        })
        .await;
        assert!(result.is_err_and(|e| e.is::<trio::TooSlowError>()));
        Ok(())
    });
}

#[test]
fn a_shield_keeps_outer_cancellation_out() {
    run(async {
        let remote = Remote::default();
        let completer = remote.clone();
        let outcome = Rc::new(Cell::new(None));
        let outcome2 = outcome.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                trio::sleep(3.0).await?;
                completer.complete();
                Ok(())
            })?;
            let result = trio::move_on_after(1.0, async {
                let shielded = CancelScope::new();
                shielded.set_shield(true);
                shielded.run(cancellable(remote.future())).await
            })
            .await?;
            outcome2.set(Some(result));
            Ok(())
        })
        .await?;
        // The deadline passed at 1 s; the shielded future went on to complete at 3 s.
        assert_eq!(outcome.get(), Some(Some(Some("done"))));
        assert_eq!(trio::current_time()?, 3.0);
        Ok(())
    });
}

/// A waker of a combinator (not the task's own): notes that it was woken, and wakes the task.
struct FlagWaker {
    woken: AtomicBool,
    task: Waker,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake_by_ref();
    }
}

/// Polls its future with a waker of its own, as `FuturesUnordered` polls its children.
struct OwnWaker<F> {
    inner: Pin<Box<F>>,
    wakers: Vec<Arc<FlagWaker>>,
}

impl<F: Future> Future for OwnWaker<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let flag = Arc::new(FlagWaker {
            woken: AtomicBool::new(false),
            task: cx.waker().clone(),
        });
        self.wakers.push(flag.clone());
        let waker = Waker::from(flag);
        self.inner.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

#[test]
fn a_combinator_s_waker_is_woken_on_cancel() {
    run(async {
        // The remote future stores the waker too; only the cancellation can wake it here.
        let remote = Remote::default();
        let mut fut = OwnWaker {
            inner: Box::pin(cancellable(remote.future())),
            wakers: Vec::new(),
        };
        let result = trio::move_on_after(1.0, &mut fut).await?;
        assert!(result.is_none());
        assert!(remote.dropped.get());
        let first = &fut.wakers[0];
        assert!(
            first.woken.load(Ordering::SeqCst),
            "the combinator's waker was woken"
        );
        Ok(())
    });
}

#[test]
fn wake_on_cancel_outside_a_task_is_a_usage_error() {
    let err = trio::lowlevel::wake_on_cancel(&Context::from_waker(Waker::noop()))
        .expect_err("not in a run");
    assert!(err.is::<trio::UsageError>(), "{err:?}");
}

#[test]
fn polled_after_completion_is_a_usage_error() {
    run(async {
        let mut fut = Box::pin(cancellable(async { 1 }));
        assert_eq!((&mut fut).await?, 1);
        assert!(!fut.is_running());
        let again = common::poll_once(&mut fut).await;
        assert!(matches!(again, Poll::Ready(Err(ref e)) if e.is::<trio::UsageError>()));
        Ok(())
    });
}
