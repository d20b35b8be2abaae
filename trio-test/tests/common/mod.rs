//! Helpers shared by trio-test's tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll};

use trio_test::MockClock;

/// Runs `main` on virtual time (autojump), failing on deadlock; panics on error.
pub fn run(main: impl Future<Output = trio::Result<()>> + 'static) {
    trio::RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .fail_on_deadlock(true)
        .ctrl_c(false)
        .run(main)
        .expect("the run failed");
}

/// Awaits `fut`, asserting that it yielded (returned `Pending`) at least once.
pub async fn yields<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut yielded = false;
    let out = std::future::poll_fn(|cx: &mut Context<'_>| {
        let poll = fut.as_mut().poll(cx);
        yielded |= poll.is_pending();
        poll
    })
    .await;
    assert!(yielded, "expected a schedule point");
    out
}

/// Polls `fut` once in the current task's context.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

/// Asserts that `r` failed with error kind `E`.
#[track_caller]
pub fn assert_err<E: std::error::Error + 'static, T: std::fmt::Debug>(r: trio::Result<T>) {
    match r {
        Err(e) if e.is::<E>() => {}
        other => panic!("expected {}, got {other:?}", std::any::type_name::<E>()),
    }
}

/// Asserts that a nursery failed with a group of exactly one `E`.
#[track_caller]
pub fn assert_group_of<E: std::error::Error + 'static>(r: trio::Result<()>) {
    let ok = matches!(&r, Err(e) if e.as_group().is_some_and(|g| g.len() == 1 && g.errors()[0].is::<E>()));
    assert!(
        ok,
        "expected a group of one {}, got {r:?}",
        std::any::type_name::<E>()
    );
}

/// A list shared between tasks.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.borrow_mut().push(entry.into());
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// Awaits `fut`, which must panic; returns the panic's message.
pub async fn panics<F: Future>(fut: F) -> String {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx: &mut Context<'_>| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(_)) => panic!("expected a panic, the future returned"),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(panic_message(payload)),
        }
    })
    .await
}

/// The text of a panic payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// Asserts that `r` failed with the system error `errno` (an `io::Error` inside).
#[track_caller]
pub fn assert_errno<T: std::fmt::Debug>(r: trio::Result<T>, errno: i32) {
    let got = r
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    assert_eq!(
        got,
        Some(errno),
        "expected {}, got {r:?}",
        std::io::Error::from_raw_os_error(errno)
    );
}

/// A socket address from text.
#[track_caller]
pub fn sa(text: &str) -> std::net::SocketAddr {
    text.parse().expect("a socket address")
}

/// The same, as a `SockAddr`.
#[track_caller]
pub fn sock(text: &str) -> trio::socket::SockAddr {
    sa(text).into()
}
