//! Sleeping and timeouts, built from cancel scopes: a sleep is `sleep_forever` inside a scope
//! with a deadline, so there is one timer mechanism (the deadline heap).
//!
//! Durations are seconds on the run's clock: `f64` (Trio's unit), integers, or
//! `std::time::Duration`. Negative and NaN durations are errors, not panics.

use std::future::Future;
use std::time::Duration;

use crate::lowlevel::sleep_forever;
use crate::{CancelScope, Error, Result, TooSlowError, UsageError};

/// A length of time, in seconds. Implemented for `f64`, `f32`, `i32`, `u32`, `u64` and
/// `Duration`, so `sleep(1.5)`, `sleep(3600)` and `sleep(Duration::from_millis(5))` all work.
pub trait IntoSeconds {
    /// The value in seconds.
    fn into_seconds(self) -> f64;
}

impl IntoSeconds for f64 {
    fn into_seconds(self) -> f64 {
        self
    }
}

impl IntoSeconds for f32 {
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for i32 {
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for u32 {
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for u64 {
    fn into_seconds(self) -> f64 {
        self as f64
    }
}

impl IntoSeconds for Duration {
    fn into_seconds(self) -> f64 {
        self.as_secs_f64()
    }
}

/// Sleeps until `deadline` on the run's clock (see [`current_time`](crate::current_time)).
/// A NaN deadline is an error; a deadline in the past returns after a checkpoint.
///
/// # Checkpoint
/// Yes: it always yields, and fails with `Cancelled` in a cancelled scope.
///
/// # Cancel safety
/// Safe: it holds nothing.
pub async fn sleep_until(deadline: f64) -> Result<()> {
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

/// Runs `body` with a timeout of `seconds`: `Ok(Some(value))` if it finished, `Ok(None)` if the
/// timeout cancelled it. Negative or NaN durations are errors.
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
    CancelScope::with_relative_deadline(seconds.into_seconds())?
        .into_run(body)
        .await
}

/// Runs `body` until the absolute `deadline`: `Ok(None)` if the deadline cancelled it.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub async fn move_on_at<F, T>(deadline: f64, body: F) -> Result<Option<T>>
where
    F: Future<Output = Result<T>>,
{
    CancelScope::with_deadline(deadline)?.into_run(body).await
}

/// Runs `body` with a timeout of `seconds`, failing with [`TooSlowError`] if it expires.
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

/// Runs `body` until the absolute `deadline`, failing with [`TooSlowError`] if it expires.
///
/// # Checkpoint
/// Only the body's checkpoints.
///
/// # Cancel safety
/// As the body's.
pub async fn fail_at<F, T>(deadline: f64, body: F) -> Result<T>
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
