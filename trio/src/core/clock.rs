//! Clocks: where the run's notion of time comes from.
//!
//! Time in trio is an `f64` number of seconds on the run's clock, as in Trio. The system clock
//! is monotonic and starts at a random offset, so code cannot confuse it with wall-clock time.
//! Tests swap in `trio_test::MockClock`, which can run at any rate and autojump.
//!
//! [`IntoSeconds`] is the one type rule for every time argument of the API, durations and
//! deadlines alike; it lives here because the core's own entry points (`CancelScope`
//! deadlines, `wait_all_tasks_blocked`'s cushion) take time arguments too.

use std::time::Duration;

/// A source of time for a run.
///
/// Implementations are used from the run's thread only. The run loop calls
/// [`deadline_to_sleep_time`](Self::deadline_to_sleep_time) to decide how long it may block,
/// and, when nothing is runnable for [`autojump_threshold`](Self::autojump_threshold) real
/// seconds, [`autojump`](Self::autojump).
pub trait Clock {
    /// Called once when the run starts.
    fn start_clock(&self) {}

    /// The current time, in seconds.
    fn current_time(&self) -> f64;

    /// How many real seconds the run loop should sleep to reach `deadline` (may be infinite).
    fn deadline_to_sleep_time(&self, deadline: f64) -> f64;

    /// Real seconds of idleness after which [`autojump`](Self::autojump) is called
    /// (infinite: never).
    fn autojump_threshold(&self) -> f64 {
        f64::INFINITY
    }

    /// Every task has been blocked for the autojump threshold; `next_deadline` is the earliest
    /// pending deadline (infinite if none). A mock clock jumps to it.
    fn autojump(&self, next_deadline: f64) {
        let _ = next_deadline;
    }
}

/// The default clock: the system's monotonic clock, with a random offset.
#[derive(Debug)]
pub struct SystemClock {
    /// What to add to the monotonic clock's reading: the random offset, minus the reading
    /// when the clock was made.
    bias: f64,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemClock {
    /// A system clock whose reading starts somewhere between 10 000 and 200 000 seconds.
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        let offset = 10_000.0 + unit * 190_000.0;
        SystemClock {
            bias: offset - crate::sys::monotonic_seconds(),
        }
    }
}

impl Clock for SystemClock {
    #[inline]
    fn current_time(&self) -> f64 {
        crate::sys::monotonic_seconds() + self.bias
    }

    fn deadline_to_sleep_time(&self, deadline: f64) -> f64 {
        deadline - self.current_time()
    }
}

/// A time argument, in seconds on the run's clock. Implemented for `f64` (Trio's unit), `f32`,
/// `i32`, `u32`, `u64` and [`Duration`], so `sleep(1.5)`, `sleep(3600)` and
/// `sleep(Duration::from_millis(5))` all work.
///
/// Every API that takes a time accepts it: durations ([`sleep`](crate::sleep),
/// [`move_on_after`](crate::move_on_after), [`fail_after`](crate::fail_after),
/// [`CancelScope::with_relative_deadline`](crate::CancelScope::with_relative_deadline),
/// [`CancelScope::set_relative_deadline`](crate::CancelScope::set_relative_deadline), the
/// cushion of [`wait_all_tasks_blocked`](crate::lowlevel::wait_all_tasks_blocked), the
/// slow-step threshold of [`RunConfig::detect_slow_steps`](crate::RunConfig::detect_slow_steps),
/// the happy-eyeballs delay of [`ConnectOptions`](crate::net::ConnectOptions), the worker
/// threads' [`set_idle_timeout`](crate::to_thread::set_idle_timeout), and a mock
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_offset_and_monotonic() {
        let clock = SystemClock::new();
        let a = clock.current_time();
        let b = clock.current_time();
        assert!((10_000.0..=200_001.0).contains(&a));
        assert!(b >= a);
        let sleep = clock.deadline_to_sleep_time(a + 5.0);
        assert!(sleep <= 5.0 && sleep > 4.0);
    }
}
