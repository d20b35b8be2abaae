//! Checkpoint assertions (Trio's `assert_checkpoints` / `assert_no_checkpoints`).
//!
//! A checkpoint is a cancel point (the operation checks for cancellation) and a schedule point
//! (the task yields to the scheduler). The current task counts both
//! ([`Task::cancel_points`](trio::lowlevel::Task::cancel_points) and
//! [`Task::schedule_points`](trio::lowlevel::Task::schedule_points)); the assertions read the
//! counters around the future they wrap.

use std::future::Future;
use std::panic::Location;

use trio::lowlevel::{Task, current_task};

/// The two counters of a task at one moment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Points {
    cancel: u64,
    schedule: u64,
}

impl Points {
    pub(crate) fn of(task: &Task) -> Self {
        Points {
            cancel: task.cancel_points(),
            schedule: task.schedule_points(),
        }
    }

    /// What is missing for `self → now` to be a checkpoint, or `None` when both moved.
    pub(crate) fn missing_since(self, now: Points) -> Option<&'static str> {
        match (now.cancel != self.cancel, now.schedule != self.schedule) {
            (true, true) => None,
            (true, false) => Some("a schedule point"),
            (false, true) => Some("a cancel point"),
            (false, false) => Some("a cancel point and a schedule point"),
        }
    }

    /// What happened between `self` and `now`, or `None` when neither counter moved.
    pub(crate) fn made_since(self, now: Points) -> Option<&'static str> {
        match (now.cancel != self.cancel, now.schedule != self.schedule) {
            (false, false) => None,
            (true, false) => Some("a cancel point"),
            (false, true) => Some("a schedule point"),
            (true, true) => Some("a cancel point and a schedule point"),
        }
    }
}

/// The task awaiting the assertion; a panic naming `what` outside a task.
fn task_for(what: &str, at: &Location<'_>) -> Task {
    match current_task() {
        Ok(task) => task,
        Err(e) => panic!("{what} at {at} must be awaited inside a trio task ({e})"),
    }
}

/// Awaits `fut` and asserts that, if it succeeded, it was a checkpoint: it made a cancel
/// point *and* a schedule point on the way (Trio's `assert_checkpoints`). An `Err` is not
/// checked, as Trio checks only a block that did not raise: the checkpoint rule is about
/// normal returns, and a failure (`Cancelled` above all) may return at once.
///
/// Wrap one call, or a block with `async { ... }` (a block of several operations passes if
/// they make a cancel point and a schedule point between them, as in Trio).
///
/// ```
/// use trio_test::{MockClock, assert_checkpoints};
///
/// # fn main() -> trio::Result<()> {
/// trio::RunConfig::new()
///     .clock(MockClock::new().with_autojump_threshold(0)?)
///     .run(async {
///         let lock = trio::Lock::new();
///         assert_checkpoints(lock.acquire()).await?; // even though the lock was free
///         assert_checkpoints(trio::sleep(1)).await?;
///         lock.release()
///     })
/// # }
/// ```
///
/// # Panics
/// When `fut` returned `Ok` without a cancel point, without a schedule point, or without
/// either; the message says which and where the assertion is. Also when awaited outside a
/// trio task.
///
/// # Checkpoint
/// Exactly those of `fut`.
///
/// # Cancel safety
/// As `fut`'s: dropping the assertion drops `fut` and checks nothing.
#[track_caller]
pub fn assert_checkpoints<F, T, E>(fut: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
{
    let at = Location::caller();
    async move {
        let task = task_for("assert_checkpoints", at);
        let before = Points::of(&task);
        let out = fut.await;
        if out.is_ok() {
            if let Some(missing) = before.missing_since(Points::of(&task)) {
                panic!("assert_checkpoints at {at}: the operation returned Ok without {missing}");
            }
        }
        out
    }
}

/// Awaits `fut` and asserts that it made neither a cancel point nor a schedule point (Trio's
/// `assert_no_checkpoints`), whatever it returned: half a checkpoint
/// ([`checkpoint_if_cancelled`](trio::lowlevel::checkpoint_if_cancelled) alone, or
/// [`cancel_shielded_checkpoint`](trio::lowlevel::cancel_shielded_checkpoint) alone) fails
/// it as well.
///
/// ```
/// use trio_test::assert_no_checkpoints;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let (tx, rx) = trio::open_memory_channel::<u32>(1);
///     assert_no_checkpoints(async { tx.try_send(1) }).await?;
///     assert_eq!(assert_no_checkpoints(async { rx.try_receive() }).await?, 1);
///     Ok(())
/// })
/// # }
/// ```
///
/// # Panics
/// When `fut` made a cancel point or a schedule point; the message says which and where the
/// assertion is. Also when awaited outside a trio task.
///
/// # Checkpoint
/// None, or it panics.
///
/// # Cancel safety
/// As `fut`'s: dropping the assertion drops `fut` and checks nothing.
#[track_caller]
pub fn assert_no_checkpoints<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let at = Location::caller();
    async move {
        let task = task_for("assert_no_checkpoints", at);
        let before = Points::of(&task);
        let out = fut.await;
        if let Some(made) = before.made_since(Points::of(&task)) {
            panic!("assert_no_checkpoints at {at}: the operation made {made}");
        }
        out
    }
}
