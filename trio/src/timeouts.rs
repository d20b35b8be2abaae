//! Sleeping and timeouts, built from cancel scopes: a sleep is `sleep_forever` inside a scope
//! with a deadline, so there is one timer mechanism (the deadline heap).
//!
//! Every time argument, duration or deadline, is seconds on the run's clock in any
//! [`IntoSeconds`] type: `f64` (Trio's unit), integers, or `std::time::Duration`. NaN and
//! negative durations are errors, not panics.

use std::future::Future;

use crate::lowlevel::{cancel_shielded_checkpoint, current_task, sleep_forever};
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
    sleep_in(CancelScope::with_deadline(deadline)?).await
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
    sleep_in(CancelScope::with_relative_deadline(seconds)?).await
}

/// Sleeps until `scope`'s deadline cancels `sleep_forever`. A deadline that has passed
/// already cancels the scope on entry, and `sleep_forever` then fails at its cancel point
/// without yielding: the schedule point is made here, so that a sleep is a full checkpoint
/// on that path too.
async fn sleep_in(scope: CancelScope) -> Result<()> {
    let task = current_task()?;
    let schedule_points = task.schedule_points();
    scope.into_run(sleep_forever()).await?;
    if task.schedule_points() == schedule_points {
        cancel_shielded_checkpoint().await;
    }
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
pub async fn move_on_after<F, T>(seconds: impl IntoSeconds, body: F) -> Result<Option<T>>
where
    F: Future<Output = Result<T>>,
{
    CancelScope::with_relative_deadline(seconds)?
        .into_run(body)
        .await
}

/// Runs `body` until the absolute `deadline` (any [`IntoSeconds`] type): `Ok(None)` if the
/// deadline cancelled it. A NaN deadline is an error.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub async fn move_on_at<F, T>(deadline: impl IntoSeconds, body: F) -> Result<Option<T>>
where
    F: Future<Output = Result<T>>,
{
    CancelScope::with_deadline(deadline)?.into_run(body).await
}

/// Runs `body` with a timeout of `seconds` (see [`IntoSeconds`]), failing with
/// [`TooSlowError`] if it expires. Negative or NaN durations are errors.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub async fn fail_after<F, T>(seconds: impl IntoSeconds, body: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    move_on_after(seconds, body)
        .await?
        .ok_or_else(|| Error::new(TooSlowError))
}

/// Runs `body` until the absolute `deadline` (any [`IntoSeconds`] type), failing with
/// [`TooSlowError`] if it expires. A NaN deadline is an error.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub async fn fail_at<F, T>(deadline: impl IntoSeconds, body: F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    move_on_at(deadline, body)
        .await?
        .ok_or_else(|| Error::new(TooSlowError))
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
