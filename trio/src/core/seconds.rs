//! [`IntoSeconds`]: the one type rule for every time argument of the API.
//!
//! It lives in the core because the core's own entry points (`CancelScope` deadlines,
//! `wait_all_tasks_blocked`'s cushion) take time arguments too, and every layer must accept
//! the same types.

use std::time::Duration;

/// A time argument, in seconds on the run's clock. Implemented for `f64` (Trio's unit), `f32`,
/// `i32`, `u32`, `u64` and [`Duration`], so `sleep(1.5)`, `sleep(3600)` and
/// `sleep(Duration::from_millis(5))` all work.
///
/// Every API that takes a time accepts it: durations ([`sleep`](crate::sleep),
/// [`move_on_after`](crate::move_on_after), [`fail_after`](crate::fail_after),
/// [`CancelScope::with_relative_deadline`](crate::CancelScope::with_relative_deadline),
/// [`CancelScope::set_relative_deadline`](crate::CancelScope::set_relative_deadline), the
/// cushion of [`wait_all_tasks_blocked`](crate::lowlevel::wait_all_tasks_blocked), and a mock
/// clock's jump, rate and autojump threshold) and deadlines, which are points on the run's
/// clock ([`sleep_until`](crate::sleep_until), [`move_on_at`](crate::move_on_at),
/// [`fail_at`](crate::fail_at), [`CancelScope::with_deadline`](crate::CancelScope::with_deadline),
/// [`CancelScope::set_deadline`](crate::CancelScope::set_deadline)).
///
/// The checks are the same everywhere too: NaN is a [`UsageError`](crate::UsageError); so is a
/// negative duration, while a deadline may be in the past (it has expired) or infinite (none).
pub trait IntoSeconds {
    /// The value in seconds.
    fn into_seconds(self) -> f64;
}

impl IntoSeconds for f64 {
    #[inline]
    fn into_seconds(self) -> f64 {
        self
    }
}

impl IntoSeconds for f32 {
    #[inline]
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for i32 {
    #[inline]
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for u32 {
    #[inline]
    fn into_seconds(self) -> f64 {
        f64::from(self)
    }
}

impl IntoSeconds for u64 {
    #[inline]
    fn into_seconds(self) -> f64 {
        self as f64
    }
}

impl IntoSeconds for Duration {
    #[inline]
    fn into_seconds(self) -> f64 {
        self.as_secs_f64()
    }
}
