//! `RunConfig`: how a run is set up (clock, instruments, seed, Ctrl-C, deadlock detection).

use std::future::Future;
use std::rc::Rc;

use crate::core::clock::Clock;
use crate::core::run::instruments::Instrument;
use crate::error::Result;

/// How to run: clock, instruments, scheduling seed, Ctrl-C handling, deadlock detection.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// let answer = trio::RunConfig::new().seed(7).run(async { Ok(42) })?;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
pub struct RunConfig {
    pub(super) clock: Option<Rc<dyn Clock>>,
    pub(super) instruments: Vec<Rc<dyn Instrument>>,
    pub(super) seed: Option<u64>,
    pub(super) ctrl_c: bool,
    pub(super) fail_on_deadlock: bool,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("custom_clock", &self.clock.is_some())
            .field("instruments", &self.instruments.len())
            .field("seed", &self.seed)
            .field("ctrl_c", &self.ctrl_c)
            .field("fail_on_deadlock", &self.fail_on_deadlock)
            .finish()
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RunConfig {
    /// The defaults: system clock, no instruments, a random seed (or `TRIO_SEED` from the
    /// environment), Ctrl-C handled, no deadlock detection.
    pub fn new() -> Self {
        RunConfig {
            clock: None,
            instruments: Vec::new(),
            seed: None,
            ctrl_c: true,
            fail_on_deadlock: false,
        }
    }

    /// Uses `clock` for time (for example `trio_test::MockClock`).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Rc::new(clock));
        self
    }

    /// Adds an instrument; it sees every event of the run.
    pub fn instrument(mut self, instrument: impl Instrument + 'static) -> Self {
        self.instruments.push(Rc::new(instrument));
        self
    }

    /// Adds an instrument that the caller keeps a handle to.
    pub fn instrument_rc(mut self, instrument: Rc<dyn Instrument>) -> Self {
        self.instruments.push(instrument);
        self
    }

    /// Fixes the seed of the scheduling order, to replay a run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Whether to turn Ctrl-C into cancellation (default true). Even when true, the handler is
    /// only installed on the main thread and only over SIGINT's default disposition.
    pub fn ctrl_c(mut self, enabled: bool) -> Self {
        self.ctrl_c = enabled;
        self
    }

    /// Ends the run with a [`DeadlockError`](crate::DeadlockError) (and a task dump) when every task is blocked and
    /// nothing can wake one, instead of hanging. `#[trio::test]` turns this on.
    pub fn fail_on_deadlock(mut self, enabled: bool) -> Self {
        self.fail_on_deadlock = enabled;
        self
    }

    /// Runs `main` to completion with this configuration. See [`run`](crate::run).
    #[track_caller]
    pub fn run<F, T>(self, main: F) -> Result<T>
    where
        F: Future<Output = Result<T>> + 'static,
        T: 'static,
    {
        super::run_with(self, main)
    }
}
