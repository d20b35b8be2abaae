//! What a `to_thread` call and its worker share: the outcome slot, the host task's waker,
//! the queue of `from_thread` requests the host task runs, and what the worker may ask
//! (was the host cancelled?); plus the reply channel a `from_thread` call blocks on.
//!
//! Everything here is `Send + Sync` and lives in an `Arc`: the worker thread and the trio
//! thread each hold one. Values that must stay on the trio thread (the limiter, the external
//! wait) are kept by the host future in `to_thread.rs`, never here.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::lowlevel::TrioToken;
use crate::{Cancelled, Error, Result};

/// What a function run on another thread gave: its value, or its panic's payload.
pub(super) type Outcome<T> = std::thread::Result<T>;

/// A `from_thread` call waiting to be run on the trio thread.
pub(super) enum Request {
    /// A sync function; running the box runs it and sends the reply.
    Sync(Box<dyn FnOnce() + Send>),
    /// An async function.
    Async(Box<dyn AsyncRequest>),
}

/// An async `from_thread` call, its type erased.
pub(super) trait AsyncRequest: Send {
    /// Calls the function (on the trio thread); the future awaits it and sends the reply.
    fn start(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()>>>;
    /// Replies with `error` without calling the function.
    fn fail(self: Box<Self>, error: Error);
}

/// The state of one `to_thread` call, shared by the host future and the worker.
pub(super) struct CallState<T> {
    /// The worker's outcome, once it has finished (and the call was not abandoned).
    pub(super) outcome: Option<Outcome<T>>,
    /// The host task's waker: woken by the outcome, a request, or a change of
    /// `waiting_on_trio`.
    pub(super) waker: Option<Waker>,
    /// `from_thread` calls for the host task to run.
    pub(super) requests: VecDeque<Request>,
    /// The cancellation that reached the host task while it waited (`check_cancelled`).
    pub(super) cancelled: Option<Cancelled>,
    /// The host gave up on the call (cancelled with `abandon_on_cancel`, or dropped): the
    /// outcome is dropped in the worker and the limiter token released from there.
    pub(super) abandoned: bool,
    /// `from_thread` calls of the worker that run outside the host task: while one is in
    /// flight the worker waits for trio, so the host does not count an external wait.
    pub(super) waiting_on_trio: usize,
}

/// One `to_thread` call.
pub(super) struct Call<T> {
    state: Mutex<CallState<T>>,
    /// The run the call belongs to.
    pub(super) token: TrioToken,
    /// The call's number (its limiter borrower).
    pub(super) id: u64,
    pub(super) abandon_on_cancel: bool,
}

impl<T> Call<T> {
    pub(super) fn new(token: TrioToken, id: u64, abandon_on_cancel: bool) -> Self {
        Call {
            state: Mutex::new(CallState {
                outcome: None,
                waker: None,
                requests: VecDeque::new(),
                cancelled: None,
                abandoned: false,
                waiting_on_trio: 0,
            }),
            token,
            id,
            abandon_on_cancel,
        }
    }

    /// The state; a panic never happens while it is held, but a poisoned lock would still
    /// hold consistent data.
    pub(super) fn lock(&self) -> MutexGuard<'_, CallState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a worker (and `from_thread`) sees of the call it runs for, its type erased.
pub(super) trait Host: Send + Sync {
    /// The run the call belongs to.
    fn token(&self) -> &TrioToken;
    /// Whether `from_thread` calls should go to the host task.
    fn abandon_on_cancel(&self) -> bool;
    /// Queues `request` for the host task, or gives it back if the host is gone.
    fn submit(&self, request: Request) -> std::result::Result<(), Request>;
    /// The cancellation that reached the host task, if one did.
    fn cancelled(&self) -> Option<Cancelled>;
    /// Counts a `from_thread` call that runs outside the host task in (`+1`) or out (`-1`).
    fn waiting_on_trio(&self, delta: isize);
}

impl<T: Send> Host for Call<T> {
    fn token(&self) -> &TrioToken {
        &self.token
    }

    fn abandon_on_cancel(&self) -> bool {
        self.abandon_on_cancel
    }

    fn submit(&self, request: Request) -> std::result::Result<(), Request> {
        let mut state = self.lock();
        if state.abandoned {
            return Err(request);
        }
        state.requests.push_back(request);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    fn cancelled(&self) -> Option<Cancelled> {
        self.lock().cancelled.clone()
    }

    fn waiting_on_trio(&self, delta: isize) {
        let mut state = self.lock();
        state.waiting_on_trio = state.waiting_on_trio.saturating_add_signed(delta);
        let waker = if state.abandoned {
            None
        } else {
            state.waker.take()
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

thread_local! {
    /// The call a worker thread is running, while it runs it.
    static CONTEXT: RefCell<Option<Arc<dyn Host>>> = const { RefCell::new(None) };
}

/// The call this thread is running for, if it is a `to_thread` worker inside a call.
pub(super) fn current_host() -> Option<Arc<dyn Host>> {
    CONTEXT.with(|c| c.borrow().clone())
}

/// Makes `host` the thread's current call until dropped.
pub(super) struct HostGuard(());

impl HostGuard {
    pub(super) fn enter(host: Arc<dyn Host>) -> HostGuard {
        CONTEXT.with(|c| *c.borrow_mut() = Some(host));
        HostGuard(())
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        CONTEXT.with(|c| c.borrow_mut().take());
    }
}

/// How a reply ended.
enum ReplyState<T> {
    Waiting,
    Sent(Outcome<Result<T>>),
    /// The sender was dropped without sending: the request never ran to the end.
    Dropped,
}

/// The receiving half of a one-shot reply, on which a `from_thread` call blocks.
pub(super) struct Reply<T> {
    state: Mutex<ReplyState<T>>,
    ready: Condvar,
}

impl<T> Reply<T> {
    /// Blocks until the reply is sent (`Some`) or its sender is dropped (`None`).
    pub(super) fn wait(&self) -> Option<Outcome<Result<T>>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut *state, ReplyState::Waiting) {
                ReplyState::Waiting => {
                    state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                ReplyState::Sent(outcome) => return Some(outcome),
                ReplyState::Dropped => return None,
            }
        }
    }

    fn set(&self, value: ReplyState<T>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = value;
        self.ready.notify_one();
    }
}

/// The sending half; dropping it unsent wakes the receiver with `None`.
pub(super) struct ReplySender<T> {
    reply: Option<Arc<Reply<T>>>,
}

impl<T> ReplySender<T> {
    pub(super) fn send(mut self, outcome: Outcome<Result<T>>) {
        if let Some(reply) = self.reply.take() {
            reply.set(ReplyState::Sent(outcome));
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply.set(ReplyState::Dropped);
        }
    }
}

/// A one-shot reply channel.
pub(super) fn reply_channel<T>() -> (ReplySender<T>, Arc<Reply<T>>) {
    let reply = Arc::new(Reply {
        state: Mutex::new(ReplyState::Waiting),
        ready: Condvar::new(),
    });
    (
        ReplySender {
            reply: Some(reply.clone()),
        },
        reply,
    )
}

/// Polls a future, catching a panic in any poll as the outcome.
pub(super) struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    pub(super) fn new(inner: F) -> Self {
        CatchUnwind {
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Outcome<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
