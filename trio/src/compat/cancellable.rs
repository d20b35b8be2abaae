//! [`cancellable`]: a foreign future (one that knows nothing of cancel scopes) run so that it
//! obeys trio's cancellation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::lowlevel::{
    CancelShieldedCheckpoint, cancel_shielded_checkpoint, checkpoint_if_cancelled, wake_on_cancel,
};
use crate::{Error, Result, UsageError};

/// Runs `future`, a future that knows nothing of trio's cancel scopes (hyper's `Connection`,
/// a `futures` channel, another library's client), so that it obeys them: the result is
/// `Ok(output)` when it completes, or `Err(Cancelled)` as soon as the task's effective cancel
/// state is cancelled (a scope's [`cancel`](crate::CancelScope::cancel), an expired deadline,
/// a failing sibling task, Ctrl-C). On cancellation `future` is dropped at once, without
/// being polled again: whatever it was doing is abandoned, as dropping it abandons it.
///
/// A shield works as for any trio operation: in a shielded scope, outer cancellation does
/// not reach it.
///
/// ```
/// use trio::compat::cancellable;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     // A future that never completes and knows nothing of trio: the deadline still ends it.
///     let gave_up = trio::move_on_after(0.01, cancellable(std::future::pending::<()>())).await?;
///     assert!(gave_up.is_none());
///     // One that completes gives its output.
///     assert_eq!(cancellable(async { 6 * 7 }).await?, 42);
///     Ok(())
/// })
/// # }
/// ```
///
/// The future wakes its task in its own way; what `cancellable` adds is the wake-up on
/// cancellation ([`wake_on_cancel`]), also when it is polled through a combinator that gives
/// it a waker of its own.
///
/// # Checkpoint
/// Yes, as every trio async operation: a cancel point on entry (a task already cancelled
/// never polls `future`), and a schedule point before a normal return when `future` was
/// ready at its first poll. Every later poll checks for cancellation before it polls
/// `future`.
///
/// # Cancel safety
/// As `future`'s when dropped: cancelled, `future` is dropped wherever it was waiting (a
/// hyper connection is cut off, not shut down gracefully; use its `graceful_shutdown` in a
/// shielded scope with a deadline for that).
pub fn cancellable<F: Future>(future: F) -> Cancellable<F> {
    Cancellable {
        inner: Some(future),
        phase: Phase::Entry,
        ready: None,
        yield_point: cancel_shielded_checkpoint(),
    }
}

/// Where a [`Cancellable`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not past the entry cancel point.
    Entry,
    /// Past it, `future` not polled yet or ready at its first poll (no schedule point yet).
    Running,
    /// `future` returned `Pending` at least once: the task has yielded since entry.
    Waiting,
    /// `future` was ready at once: its output is held over the closing schedule point.
    Yielding,
    Done,
}

pin_project_lite::pin_project! {
    /// The future of [`cancellable`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Cancellable<F: Future> {
        #[pin]
        inner: Option<F>,
        phase: Phase,
        ready: Option<F::Output>,
        yield_point: CancelShieldedCheckpoint,
    }
}

impl<F: Future> Cancellable<F> {
    /// Whether the inner future is still there (not completed, not dropped by a
    /// cancellation).
    pub fn is_running(&self) -> bool {
        self.inner.is_some()
    }
}

impl<F: Future> fmt::Debug for Cancellable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("future", &std::any::type_name::<F>())
            .field("phase", &self.phase)
            .finish()
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<F::Output>> {
        let mut this = self.project();
        match *this.phase {
            Phase::Entry => match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
                Poll::Ready(Ok(())) => *this.phase = Phase::Running,
                // Cancelled: the cancel point yielded first and raises now; or not in a task.
                Poll::Ready(Err(e)) => {
                    this.inner.set(None);
                    *this.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            },
            Phase::Running => {}
            // Every poll since the first came after a yield: a cancellation raises at once.
            Phase::Waiting => {
                if let Err(e) = wake_on_cancel(cx) {
                    this.inner.set(None);
                    *this.phase = Phase::Done;
                    return Poll::Ready(Err(e));
                }
            }
            Phase::Yielding => {
                if Pin::new(&mut *this.yield_point).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *this.phase = Phase::Done;
                return match this.ready.take() {
                    Some(output) => Poll::Ready(Ok(output)),
                    None => Poll::Ready(Err(polled_after_completion())),
                };
            }
            Phase::Done => return Poll::Ready(Err(polled_after_completion())),
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            *this.phase = Phase::Done;
            return Poll::Ready(Err(polled_after_completion()));
        };
        match inner.poll(cx) {
            Poll::Pending => {
                *this.phase = Phase::Waiting;
                // The future itself may have cancelled the task (a handler cancelling its
                // server's scope): the next poll, which this wake makes sure of, raises.
                if wake_on_cancel(cx).is_err() {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            Poll::Ready(output) => {
                // Done with it: whatever it holds (a connection's socket) goes now.
                this.inner.set(None);
                if *this.phase == Phase::Waiting {
                    *this.phase = Phase::Done;
                    return Poll::Ready(Ok(output));
                }
                // Ready at the first poll: the schedule point every trio operation makes.
                if Pin::new(&mut *this.yield_point).poll(cx).is_ready() {
                    *this.phase = Phase::Done;
                    return Poll::Ready(Ok(output));
                }
                *this.ready = Some(output);
                *this.phase = Phase::Yielding;
                Poll::Pending
            }
        }
    }
}

#[cold]
fn polled_after_completion() -> Error {
    Error::new(UsageError::new(
        "a cancellable() future was polled after it completed",
    ))
}
