//! [`Sequencer`]: force code in different tasks to run in one explicit order (Trio's
//! `trio.testing.Sequencer`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use trio::lowlevel::checkpoint;
use trio::{BrokenResourceError, Error, Event, Result, UsageError};

#[derive(Default)]
struct Inner {
    /// Step `n` may begin once the event at `n` is set (by the end of step `n - 1`).
    points: RefCell<HashMap<usize, Event>>,
    claimed: RefCell<HashSet<usize>>,
    broken: Cell<bool>,
}

impl Inner {
    fn point(&self, position: usize) -> Event {
        self.points
            .borrow_mut()
            .entry(position)
            .or_default()
            .clone()
    }

    /// Breaks the sequence: every step waiting now, and every step asked for later, fails.
    fn break_sequence(&self) {
        self.broken.set(true);
        let points: Vec<Event> = self.points.borrow().values().cloned().collect();
        for event in points {
            event.set();
        }
    }
}

/// Forces code in different tasks to run in an explicit linear order (Trio's `Sequencer`).
///
/// Each task asks for its place in the sequence with [`step(n)`](Self::step) and gets a
/// [`SequencerStep`] guard: step 0 begins at once, and step `n` begins only when step `n - 1`
/// has ended, that is when its guard was dropped (or [`end`](SequencerStep::end)ed). Clones
/// are handles to the same sequence.
///
/// A test that depends on an exact interleaving says it with steps, instead of with
/// [`wait_all_tasks_blocked`](crate::wait_all_tasks_blocked) and hope:
///
/// ```
/// use trio_test::Sequencer;
///
/// # fn main() -> trio::Result<()> {
/// let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let out = log.clone();
/// trio::run(async move {
///     let seq = Sequencer::new();
///     trio::open_nursery(|nursery| async move {
///         for (task, steps) in [("a", [1, 3]), ("b", [0, 2])] {
///             let (seq, log) = (seq.clone(), log.clone());
///             nursery.start_soon(async move {
///                 for n in steps {
///                     let _step = seq.step(n).await?;
///                     log.borrow_mut().push(format!("{task}{n}"));
///                 } // the guard drops here: step n + 1 may begin
///                 Ok(())
///             })?;
///         }
///         Ok(())
///     })
///     .await
/// })?;
/// assert_eq!(*out.borrow(), ["b0", "a1", "b2", "a3"]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors, as in Trio
/// - Asking for a step that was already asked for is a [`UsageError`].
/// - A step that fails to begin *breaks the sequence*: cancelled while it waits for its turn
///   (or dropped before it began), it fails with a [`BrokenResourceError`] ("sequence
///   broken"), not with `Cancelled`, so the test fails rather than quietly skipping a step
///   (Trio raises `RuntimeError` there for the same reason). Every step waiting then, and
///   every step asked for later, fails with a `BrokenResourceError` too.
#[derive(Clone, Default)]
pub struct Sequencer {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut claimed: Vec<usize> = self.inner.claimed.borrow().iter().copied().collect();
        claimed.sort_unstable();
        f.debug_struct("Sequencer")
            .field("claimed", &claimed)
            .field("broken", &self.inner.broken.get())
            .finish()
    }
}

fn broken(message: &str) -> Error {
    Error::new(BrokenResourceError::new(message))
}

/// Breaks the sequence if a step is dropped (or fails) before it began.
struct BreakUnlessBegun<'a> {
    inner: &'a Inner,
    begun: bool,
}

impl Drop for BreakUnlessBegun<'_> {
    fn drop(&mut self) {
        if !self.begun {
            self.inner.break_sequence();
        }
    }
}

impl Sequencer {
    /// A new sequence, at step 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until step `position` may begin (at once for 0; for `n`, when the guard of step
    /// `n - 1` is dropped) and returns its guard. The step lasts until the guard is dropped.
    ///
    /// Fails with a [`UsageError`] when `position` was asked for before, and with a
    /// [`BrokenResourceError`] when the sequence is broken, or breaks now because this step
    /// was cancelled while it waited (see [`Sequencer`]).
    ///
    /// # Checkpoint
    /// Yes, also for step 0 and for a step whose turn has come already. A cancellation at its
    /// cancel point breaks the sequence, as one while it waits does.
    ///
    /// # Cancel safety
    /// Cancelled, it breaks the sequence and returns a `BrokenResourceError`; dropped before
    /// it returned, it breaks the sequence too (the step can never happen).
    pub async fn step(&self, position: usize) -> Result<SequencerStep> {
        let inner = &*self.inner;
        if inner.claimed.borrow().contains(&position) {
            return Err(Error::new(UsageError::new(format!(
                "Sequencer: step {position} was asked for already (each step happens once)"
            ))));
        }
        if inner.broken.get() {
            return Err(broken("Sequencer: sequence broken"));
        }
        inner.claimed.borrow_mut().insert(position);
        let mut guard = BreakUnlessBegun {
            inner,
            begun: false,
        };
        let waited = if position == 0 {
            checkpoint().await
        } else {
            inner.point(position).wait().await
        };
        match waited {
            Err(e) if e.is_cancelled() => {
                return Err(broken(&format!(
                    "Sequencer: step {position} was cancelled while it waited; sequence broken"
                )));
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        // As in Trio, only a step that waited for its turn checks again: step 0 began when it
        // was asked for (its checkpoint is this crate's rule, not a wait).
        if position != 0 && inner.broken.get() {
            return Err(broken("Sequencer: sequence broken"));
        }
        guard.begun = true;
        Ok(SequencerStep {
            inner: self.inner.clone(),
            position,
        })
    }
}

/// A step of a [`Sequencer`] in progress: dropping it (or calling [`end`](Self::end)) ends the
/// step, so that the next one may begin.
#[must_use = "the step ends as soon as its guard is dropped"]
pub struct SequencerStep {
    inner: Rc<Inner>,
    position: usize,
}

impl SequencerStep {
    /// This step's position in the sequence.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Ends the step (the same as dropping the guard).
    pub fn end(self) {}
}

impl std::fmt::Debug for SequencerStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequencerStep")
            .field("position", &self.position)
            .finish()
    }
}

impl Drop for SequencerStep {
    fn drop(&mut self) {
        if let Some(next) = self.position.checked_add(1) {
            self.inner.point(next).set();
        }
    }
}
