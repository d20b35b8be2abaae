//! Clocks: where the run's notion of time comes from.
//!
//! Time in trio is an `f64` number of seconds on the run's clock, as in Trio. The system clock
//! is monotonic and starts at a random offset, so code cannot confuse it with wall-clock time.
//! Tests swap in `trio_test::MockClock`, which can run at any rate and autojump.

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
