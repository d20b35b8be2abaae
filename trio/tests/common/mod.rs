//! Helpers shared by the sync and channel tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use trio_test::MockClock;

pub mod fs;
pub mod serial;
pub mod threads;

/// Runs `main` on virtual time (autojump), failing on deadlock; panics on error.
#[track_caller]
pub fn run<F, T>(main: F) -> T
where
    F: Future<Output = trio::Result<T>> + 'static,
    T: 'static,
{
    try_run(main).expect("the run failed")
}

/// As [`run`], returning the run's result.
#[track_caller]
pub fn try_run<F, T>(main: F) -> trio::Result<T>
where
    F: Future<Output = trio::Result<T>> + 'static,
    T: 'static,
{
    trio::RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .fail_on_deadlock(true)
        .ctrl_c(false)
        .run(main)
}

/// Polls `fut` exactly once, in the current task's context.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// The current task's schedule-point count.
fn schedule_points() -> u64 {
    trio::lowlevel::current_task()
        .expect("inside a task")
        .schedule_points()
}

/// Awaits `fut`, asserting that it yielded to the scheduler (a schedule point).
pub async fn yields<T>(fut: impl Future<Output = T>) -> T {
    let before = schedule_points();
    let out = fut.await;
    assert_ne!(schedule_points(), before, "expected a schedule point");
    out
}

/// Awaits `fut`, asserting that it did not yield.
pub async fn no_yield<T>(fut: impl Future<Output = T>) -> T {
    let before = schedule_points();
    let out = fut.await;
    assert_eq!(schedule_points(), before, "expected no schedule point");
    out
}

/// Whether `r` is a `Cancelled` error (panics on `Ok`).
pub fn is_cancelled<T: std::fmt::Debug>(r: trio::Result<T>) -> bool {
    match r {
        Err(e) => e.is_cancelled(),
        Ok(v) => panic!("expected Cancelled, got Ok({v:?})"),
    }
}

/// Asserts that `r` failed with error kind `E`.
#[track_caller]
pub fn assert_err<E: std::error::Error + 'static, T: std::fmt::Debug>(
    r: trio::Result<T>,
) -> trio::Error {
    match r {
        Err(e) if e.is::<E>() => e,
        other => panic!("expected {}, got {other:?}", std::any::type_name::<E>()),
    }
}

/// Runs `body` in a scope that is already cancelled; returns what the body returned.
pub async fn in_cancelled_scope<T>(
    body: impl Future<Output = trio::Result<T>>,
) -> trio::Result<Option<T>> {
    let scope = trio::CancelScope::new();
    scope.cancel();
    scope.run(body).await
}

/// An ordered log that tasks append to.
#[derive(Clone, Default)]
pub struct Log<T>(Rc<RefCell<Vec<T>>>);

impl<T: Clone> Log<T> {
    pub fn push(&self, item: T) {
        self.0.borrow_mut().push(item);
    }

    pub fn get(&self) -> Vec<T> {
        self.0.borrow().clone()
    }
}

/// Asserts that `order` is strict round-robin over `n` distinct participants.
#[track_caller]
pub fn assert_round_robin<T: PartialEq + std::fmt::Debug>(order: &[T], n: usize) {
    for i in 0..n {
        for j in 0..i {
            assert_ne!(order[i], order[j], "first round not distinct: {order:?}");
        }
    }
    for i in n..order.len() {
        assert_eq!(order[i], order[i - n], "not round-robin at {i}: {order:?}");
    }
}
