//! `RunConfig`: how a run is set up (clock, instruments, seed, Ctrl-C, deadlock detection,
//! and the debugging options: slow steps, a task dump on a signal).

use std::future::Future;
use std::rc::Rc;

use crate::core::clock::{Clock, IntoSeconds};
use crate::core::run::debug_hooks::{SlowStep, SlowSteps};
use crate::core::run::instruments::Instrument;
use crate::error::{Error, Result};

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
    pub(super) slow_steps: Option<SlowSteps>,
    pub(super) dump_signal: Option<libc::c_int>,
    /// A bad argument to a builder method, reported by `run`.
    pub(super) invalid: Option<Error>,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("custom_clock", &self.clock.is_some())
            .field("instruments", &self.instruments.len())
            .field("seed", &self.seed)
            .field("ctrl_c", &self.ctrl_c)
            .field("fail_on_deadlock", &self.fail_on_deadlock)
            .field(
                "slow_step_threshold",
                &self.slow_steps.as_ref().map(|s| s.threshold),
            )
            .field("dump_signal", &self.dump_signal)
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
            slow_steps: None,
            dump_signal: None,
            invalid: None,
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

    /// Ends the run with a [`DeadlockError`](crate::DeadlockError) when every task is blocked
    /// and nothing can wake one, instead of hanging: no task is runnable, no deadline is set,
    /// no task waits for I/O, and nothing outside the run (a [`TrioToken`] held elsewhere, an
    /// entry queued by another thread) can wake it. The error carries a task dump that says
    /// what every task waits for, so a program that turns this on reports its deadlock and
    /// exits (`#[trio::main]` prints the error) instead of hanging silently (Trio's #1085).
    /// `#[trio::test]` turns it on.
    ///
    /// [`TrioToken`]: crate::lowlevel::TrioToken
    pub fn fail_on_deadlock(mut self, enabled: bool) -> Self {
        self.fail_on_deadlock = enabled;
        self
    }

    /// Reports every task step that runs longer than `threshold` seconds (any
    /// [`IntoSeconds`] type): a task that blocks the loop, with the task's name, spawn site
    /// and the step's duration, printed to stderr (or given to
    /// [`on_slow_step`](Self::on_slow_step)), and a `tracing` event with the `tracing`
    /// feature. Off by default, and free when off: the loop only reads the clock around steps
    /// when this is on. A negative or NaN threshold makes `run` fail with a `UsageError`.
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// trio::RunConfig::new().detect_slow_steps(0.1).run(async {
    ///     // A blocking call inside a task holds up every other task: reported on stderr.
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn detect_slow_steps(mut self, threshold: impl IntoSeconds) -> Self {
        let seconds = threshold.into_seconds();
        if seconds.is_nan() || seconds < 0.0 {
            self.invalid = Some(Error::usage(format!(
                "detect_slow_steps: the threshold must be a non-negative number of seconds \
                 (got {seconds})"
            )));
            return self;
        }
        let threshold = std::time::Duration::from_secs_f64(seconds.min(1e9));
        let report = self.slow_steps.take().and_then(|s| s.report);
        self.slow_steps = Some(SlowSteps { threshold, report });
        self
    }

    /// Hands each slow step (see [`detect_slow_steps`](Self::detect_slow_steps), which this
    /// does not turn on) to `report` instead of printing it to stderr.
    pub fn on_slow_step(mut self, report: impl Fn(&SlowStep) + 'static) -> Self {
        let report: Rc<dyn Fn(&SlowStep)> = Rc::new(report);
        match &mut self.slow_steps {
            Some(slow) => slow.report = Some(report),
            None => {
                self.slow_steps = Some(SlowSteps {
                    threshold: std::time::Duration::MAX,
                    report: Some(report),
                });
            }
        }
        self
    }

    /// Prints a task dump ([`task_dump`](crate::lowlevel::task_dump)) to stderr whenever the
    /// process receives SIGUSR1, like a Java thread dump: `kill -USR1 <pid>` shows where a
    /// running program is stuck. Off by default. Only one run at a time in a process handles
    /// the signal; the previous disposition comes back when the run ends. See
    /// [`dump_on_signal_number`](Self::dump_on_signal_number) for another signal.
    pub fn dump_on_signal(mut self, enabled: bool) -> Self {
        self.dump_signal = enabled.then_some(libc::SIGUSR1);
        self
    }

    /// As [`dump_on_signal`](Self::dump_on_signal), on `signal` (SIGUSR2, say) instead of
    /// SIGUSR1. SIGINT, SIGKILL, SIGSTOP and the signals of faults make `run` fail with a
    /// `UsageError`.
    pub fn dump_on_signal_number(mut self, signal: libc::c_int) -> Self {
        let refused = [
            libc::SIGINT,
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
        ];
        if signal <= 0 || refused.contains(&signal) {
            self.invalid = Some(Error::usage(format!(
                "dump_on_signal_number: signal {signal} can't carry task dumps (use SIGUSR1, \
                 SIGUSR2, SIGQUIT or another signal a program may handle)"
            )));
        } else {
            self.dump_signal = Some(signal);
        }
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
