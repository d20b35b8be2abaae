//! Sleeping and timeouts, built from cancel scopes: a sleep is `sleep_forever` inside a scope
//! with a deadline, so there is one timer mechanism (the deadline heap).
//!
//! Every time argument, duration or deadline, is seconds on the run's clock in any
//! [`IntoSeconds`] type: `f64` (Trio's unit), integers, or `std::time::Duration`. NaN and
//! negative durations are errors, not panics.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::lowlevel::{Timeout, sleep_forever};
use crate::{CancelScope, Error, IntoSeconds, Result, TooSlowError, UsageError};

/// Sleeps until `deadline` on the run's clock (see [`current_time`](crate::current_time)), in
/// any [`IntoSeconds`] type. A NaN deadline is an error; a deadline in the past returns after
/// a checkpoint.
///
/// # Checkpoint
/// Yes: it always yields, and fails with `Cancelled` in a cancelled scope.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub async fn sleep_until(deadline: impl IntoSeconds) -> Result<()> {
    let scope = CancelScope::with_deadline(deadline)?;
    scope.into_run(sleep_forever()).await?;
    Ok(())
}

/// Sleeps for `seconds` (see [`IntoSeconds`]). `sleep(0)` is a plain checkpoint. Negative or
/// NaN durations are errors.
///
/// # Checkpoint
/// Yes: it always yields, and fails with `Cancelled` in a cancelled scope.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub async fn sleep(seconds: impl IntoSeconds) -> Result<()> {
    let seconds = seconds.into_seconds();
    if seconds.is_nan() {
        return Err(Error::new(UsageError::new(
            "sleep duration must not be NaN",
        )));
    }
    if seconds < 0.0 {
        return Err(Error::new(UsageError::new(format!(
            "sleep duration must be non-negative (got {seconds})"
        ))));
    }
    if seconds == 0.0 {
        return crate::lowlevel::checkpoint().await;
    }
    let scope = CancelScope::with_relative_deadline(seconds)?;
    scope.into_run(sleep_forever()).await?;
    Ok(())
}

/// Runs `body` with a timeout of `seconds` (see [`IntoSeconds`]): `Ok(Some(value))` if it
/// finished, `Ok(None)` if the timeout cancelled it. Negative or NaN durations are errors.
///
/// # Checkpoint
/// Only the body's checkpoints (a scope is not a checkpoint of its own).
///
/// # Cancel safety
/// As the body's.
pub fn move_on_after<F, T>(seconds: impl IntoSeconds, body: F) -> Timeout<F>
where
    F: Future<Output = Result<T>>,
{
    Timeout::after(seconds, body)
}

/// Runs `body` until the absolute `deadline` (any [`IntoSeconds`] type): `Ok(None)` if the
/// deadline cancelled it. A NaN deadline is an error.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub fn move_on_at<F, T>(deadline: impl IntoSeconds, body: F) -> Timeout<F>
where
    F: Future<Output = Result<T>>,
{
    Timeout::at(deadline, body)
}

/// Runs `body` with a timeout of `seconds` (see [`IntoSeconds`]), failing with
/// [`TooSlowError`] if it expires. Negative or NaN durations are errors.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub fn fail_after<F, T>(seconds: impl IntoSeconds, body: F) -> FailAfter<F>
where
    F: Future<Output = Result<T>>,
{
    FailAfter {
        timeout: Timeout::after(seconds, body),
    }
}

/// Runs `body` until the absolute `deadline` (any [`IntoSeconds`] type), failing with
/// [`TooSlowError`] if it expires. A NaN deadline is an error.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub fn fail_at<F, T>(deadline: impl IntoSeconds, body: F) -> FailAfter<F>
where
    F: Future<Output = Result<T>>,
{
    FailAfter {
        timeout: Timeout::at(deadline, body),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`fail_after`] and [`fail_at`]: a [`Timeout`] whose expiry is a
    /// [`TooSlowError`].
    #[must_use = "a timeout does nothing unless awaited"]
    #[derive(Debug)]
    pub struct FailAfter<F> {
        #[pin]
        timeout: Timeout<F>,
    }
}

impl<F> FailAfter<F> {
    /// Shields the body from the cancellation of enclosing scopes (Trio's `shield=True`);
    /// the deadline still applies. Set before the first poll.
    pub fn shielded(self, shield: bool) -> Self {
        FailAfter {
            timeout: self.timeout.shielded(shield),
        }
    }
}

impl<F, T> Future for FailAfter<F>
where
    F: Future<Output = Result<T>>,
{
    type Output = Result<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self.project().timeout.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(value))) => Poll::Ready(Ok(value)),
            Poll::Ready(Ok(None)) => Poll::Ready(Err(Error::new(TooSlowError))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

/// The current time on the run's clock, in seconds (see [`Clock`](crate::Clock)).
/// Fails outside a run. Not a checkpoint.
pub fn current_time() -> Result<f64> {
    crate::lowlevel::current_time()
}

/// The earliest deadline that can cancel the calling code (`-inf` if already cancelled).
pub fn current_effective_deadline() -> Result<f64> {
    crate::lowlevel::current_effective_deadline()
}
