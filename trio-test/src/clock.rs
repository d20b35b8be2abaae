//! `MockClock`: a clock for tests, with Trio's semantics.
//!
//! Virtual time starts at 0. It advances at `rate` virtual seconds per real second (0 by
//! default: time stands still unless you [`jump`](MockClock::jump)). With an autojump
//! threshold, whenever every task has been blocked for that many *real* seconds the clock
//! jumps straight to the next deadline, so a test that sleeps an hour finishes at once, in
//! exactly the order the sleeps would have happened. Unlike a "paused" clock, autojump only
//! fires when the run is idle, and `wait_all_tasks_blocked` waiters are served before it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use trio::{Clock, IntoSeconds};

struct State {
    /// Virtual time at the last rate change.
    base_virtual: Cell<f64>,
    /// Real instant of the last rate change.
    base_real: Cell<Instant>,
    rate: Cell<f64>,
    autojump_threshold: Cell<f64>,
}

/// A virtual clock. Clones share the same time, so keep one to call [`jump`](Self::jump)
/// while the run uses the other.
#[derive(Clone)]
pub struct MockClock {
    state: Rc<State>,
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MockClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockClock")
            .field("time", &self.current_time())
            .field("rate", &self.rate())
            .field("autojump_threshold", &self.autojump_threshold())
            .finish()
    }
}

/// `value` if it is a number and not negative; otherwise a `UsageError` that names `what`
/// and says, in Trio's words where Trio has them, what was wrong.
fn check(value: f64, what: &str, negative: &str) -> trio::Result<f64> {
    if value.is_nan() {
        Err(trio::Error::new(trio::UsageError::new(format!(
            "{what} must not be NaN"
        ))))
    } else if value < 0.0 {
        Err(trio::Error::new(trio::UsageError::new(format!(
            "{what}: {negative} (got {value})"
        ))))
    } else {
        Ok(value)
    }
}

impl MockClock {
    /// A clock at time 0, standing still (rate 0), without autojump.
    pub fn new() -> Self {
        MockClock {
            state: Rc::new(State {
                base_virtual: Cell::new(0.0),
                base_real: Cell::new(Instant::now()),
                rate: Cell::new(0.0),
                autojump_threshold: Cell::new(f64::INFINITY),
            }),
        }
    }

    /// Builder form of [`set_rate`](Self::set_rate): the clock, or a `UsageError` for a
    /// negative or NaN rate.
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// let clock = trio_test::MockClock::new().with_rate(10)?;
    /// assert_eq!(clock.rate(), 10.0);
    /// assert!(trio_test::MockClock::new().with_rate(-1.0).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_rate(self, rate: impl IntoSeconds) -> trio::Result<Self> {
        self.set_rate(rate)?;
        Ok(self)
    }

    /// Builder form of [`set_autojump_threshold`](Self::set_autojump_threshold): the clock, or
    /// a `UsageError` for a negative or NaN threshold.
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// let clock = trio_test::MockClock::new().with_autojump_threshold(0)?;
    /// trio::RunConfig::new().clock(clock).run(async {
    ///     trio::sleep(3600).await?; // returns at once: the clock jumps
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn with_autojump_threshold(self, seconds: impl IntoSeconds) -> trio::Result<Self> {
        self.set_autojump_threshold(seconds)?;
        Ok(self)
    }

    fn real_elapsed(&self) -> f64 {
        self.state.base_real.get().elapsed().as_secs_f64()
    }

    /// Virtual seconds per real second. 0: time only moves by `jump` and autojump.
    pub fn rate(&self) -> f64 {
        self.state.rate.get()
    }

    /// Changes the rate, in virtual seconds per real second (any [`IntoSeconds`] type), from
    /// now on; time so far is kept. Negative or NaN is a `UsageError` and changes nothing.
    pub fn set_rate(&self, rate: impl IntoSeconds) -> trio::Result<()> {
        let rate = check(rate.into_seconds(), "MockClock rate", "rate must be >= 0")?;
        let now = self.current_time();
        self.state.base_virtual.set(now);
        self.state.base_real.set(Instant::now());
        self.state.rate.set(rate);
        Ok(())
    }

    /// Real seconds of idleness after which the clock jumps to the next deadline
    /// (infinite: never; 0: as soon as every task is blocked).
    pub fn autojump_threshold(&self) -> f64 {
        self.state.autojump_threshold.get()
    }

    /// Sets the autojump threshold (any [`IntoSeconds`] type); the run loop sees it at its
    /// next iteration. Negative or NaN is a `UsageError` and changes nothing.
    pub fn set_autojump_threshold(&self, seconds: impl IntoSeconds) -> trio::Result<()> {
        let seconds = check(
            seconds.into_seconds(),
            "MockClock autojump threshold",
            "the threshold must be >= 0",
        )?;
        self.state.autojump_threshold.set(seconds);
        Ok(())
    }

    /// Moves time forward by `seconds` (any [`IntoSeconds`] type). Negative or NaN is a
    /// `UsageError` and changes nothing (time never goes back).
    pub fn jump(&self, seconds: impl IntoSeconds) -> trio::Result<()> {
        let seconds = check(
            seconds.into_seconds(),
            "MockClock jump",
            "time can't go backwards",
        )?;
        self.state
            .base_virtual
            .set(self.state.base_virtual.get() + seconds);
        Ok(())
    }

    /// The current virtual time.
    pub fn current_time(&self) -> f64 {
        self.state.base_virtual.get() + self.real_elapsed() * self.state.rate.get()
    }
}

impl Clock for MockClock {
    fn start_clock(&self) {}

    fn current_time(&self) -> f64 {
        MockClock::current_time(self)
    }

    fn deadline_to_sleep_time(&self, deadline: f64) -> f64 {
        let virtual_timeout = deadline - self.current_time();
        if virtual_timeout <= 0.0 {
            0.0
        } else if self.state.rate.get() > 0.0 {
            virtual_timeout / self.state.rate.get()
        } else {
            f64::INFINITY
        }
    }

    fn autojump_threshold(&self) -> f64 {
        self.state.autojump_threshold.get()
    }

    fn autojump(&self, next_deadline: f64) {
        let jump = next_deadline - self.current_time();
        if jump > 0.0 && jump.is_finite() {
            let _ = self.jump(jump);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_and_rate() {
        let clock = MockClock::new();
        assert_eq!(clock.current_time(), 0.0);
        clock.jump(5.0).unwrap();
        assert_eq!(clock.current_time(), 5.0);
        assert!(clock.jump(-1.0).is_err());
        assert!(clock.jump(f64::NAN).is_err());
        assert_eq!(clock.deadline_to_sleep_time(10.0), f64::INFINITY);
        assert_eq!(clock.deadline_to_sleep_time(4.0), 0.0);
        clock.set_rate(2.0).unwrap();
        let sleep = clock.deadline_to_sleep_time(clock.current_time() + 10.0);
        assert!((sleep - 5.0).abs() < 0.01);
        assert!(clock.set_rate(-2.0).is_err());
    }
}
