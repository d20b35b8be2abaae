//! [`CancelScope`]: Trio's `with CancelScope():` block as a future combinator.
//!
//! [`CancelScope::run`] swaps the scope's node (`cancel.rs`) in as the task's current status
//! around every poll of its body, so nested scopes, `join`-style combinators inside one task,
//! and nurseries all see the right status without a per-task stack.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::cancel::{CancelReason, Phase, ScopeState};
use super::clock::IntoSeconds;
use super::run::Runner;
use super::task::TaskInner;
use crate::error::{CancelSource, Error};

/// A cancel scope: a region of code that can be cancelled, by a call or by a deadline.
///
/// Make one, configure it, then run a body in it with [`run`](Self::run). The handle is cheap to
/// clone; any clone can cancel the scope or move its deadline, from any task of the run. A scope
/// can be entered once.
///
/// When the scope is cancelled, every checkpoint inside it (in this task and in the tasks of
/// nurseries opened inside it) fails with [`Cancelled`](crate::Cancelled) until the body returns. The `Cancelled`
/// travels out with `?` and the scope absorbs it: `run` returns `Ok(None)` and
/// [`cancelled_caught`](Self::cancelled_caught) becomes true. When an enclosing scope is
/// cancelled too, the outermost cancelled one absorbs.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let scope = trio::CancelScope::new();
///     let out = scope
///         .run(async {
///             scope.cancel();
///             trio::sleep(1.0).await?; // fails at once: the scope is cancelled
///             Ok("not reached")
///         })
///         .await?;
///     assert_eq!(out, None);
///     assert!(scope.cancelled_caught());
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct CancelScope {
    pub(crate) state: Rc<ScopeState>,
}

impl Default for CancelScope {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelScope")
            .field("cancel_called", &self.cancel_called())
            .field("shield", &self.shield())
            .field("deadline", &self.deadline())
            .field("phase", &self.state.phase.get())
            .finish()
    }
}

fn check_deadline(deadline: f64) -> Result<f64, Error> {
    if deadline.is_nan() {
        Err(Error::usage("deadline must not be NaN"))
    } else {
        Ok(deadline)
    }
}

pub(crate) fn check_duration(seconds: f64, what: &str) -> Result<f64, Error> {
    if seconds.is_nan() {
        Err(Error::usage(format!("{what} must not be NaN")))
    } else if seconds < 0.0 {
        Err(Error::usage(format!(
            "{what} must be non-negative (got {seconds})"
        )))
    } else {
        Ok(seconds)
    }
}

impl CancelScope {
    /// A scope with no deadline, not shielded, not cancelled.
    pub fn new() -> Self {
        CancelScope {
            state: ScopeState::new(),
        }
    }

    pub(crate) fn from_state(state: Rc<ScopeState>) -> Self {
        CancelScope { state }
    }

    /// A scope with an absolute deadline (on the run's clock, see [`current_time`](crate::current_time)),
    /// given as any [`IntoSeconds`](crate::IntoSeconds) type.
    ///
    /// A NaN deadline is an error.
    pub fn with_deadline(deadline: impl IntoSeconds) -> Result<Self, Error> {
        let scope = Self::new();
        scope
            .state
            .deadline
            .set(check_deadline(deadline.into_seconds())?);
        Ok(scope)
    }

    /// A scope whose deadline is `seconds` (any [`IntoSeconds`](crate::IntoSeconds) type)
    /// after the moment it is entered.
    ///
    /// Negative or NaN durations are errors.
    pub fn with_relative_deadline(seconds: impl IntoSeconds) -> Result<Self, Error> {
        let scope = Self::new();
        scope
            .state
            .relative_deadline
            .set(check_duration(seconds.into_seconds(), "relative deadline")?);
        Ok(scope)
    }

    /// Sets the shield (builder form of [`set_shield`](Self::set_shield)).
    pub fn shielded(self, shield: bool) -> Self {
        self.set_shield(shield);
        self
    }

    /// Cancels the scope. Idempotent: a second call changes nothing.
    pub fn cancel(&self) {
        self.cancel_inner(CancelSource::Explicit, None);
    }

    /// Cancels the scope, recording a reason that the resulting `Cancelled` errors carry.
    pub fn cancel_with_reason(&self, reason: impl Into<String>) {
        self.cancel_inner(CancelSource::Explicit, Some(reason.into()));
    }

    pub(crate) fn cancel_inner(&self, source: CancelSource, reason: Option<String>) {
        let task = Runner::with_current(|r| r.current_task_name()).flatten();
        self.state.cancel(CancelReason {
            source,
            reason,
            task,
        });
    }

    /// Whether `cancel` was called or the deadline has passed.
    ///
    /// As in Trio, a scope that is running (or not entered yet) whose deadline is now or
    /// earlier counts as cancelled at once, before the run loop gets to expire it: asking
    /// cancels it, with the deadline as the source. Not a checkpoint.
    pub fn cancel_called(&self) -> bool {
        let state = &self.state;
        if !state.cancel_called.get()
            && state.phase.get() != Phase::Exited
            && state.deadline.get() != f64::INFINITY
            && Runner::with_current(|runner| runner.current_time() >= state.deadline.get())
                == Some(true)
        {
            state.cancel(CancelReason {
                source: CancelSource::Deadline,
                reason: None,
                task: None,
            });
        }
        state.cancel_called.get()
    }

    /// Whether the scope absorbed a `Cancelled` when its body returned.
    pub fn cancelled_caught(&self) -> bool {
        self.state.cancelled_caught.get()
    }

    /// The absolute deadline (`f64::INFINITY`: none). Before a scope with a relative deadline
    /// is entered this is infinite; use [`relative_deadline`](Self::relative_deadline).
    ///
    /// Trio raises `RuntimeError` when this is read on an unentered relative scope; here the
    /// getter cannot fail (see "Deadline getters never fail" in `docs/decisions.md`):
    /// [`is_relative`](Self::is_relative) says which of the two is set.
    pub fn deadline(&self) -> f64 {
        self.state.deadline.get()
    }

    /// Moves the deadline (any [`IntoSeconds`](crate::IntoSeconds) type); takes effect at
    /// once, also while the scope is running.
    ///
    /// A NaN deadline is an error, and so is setting an absolute deadline on a scope that has
    /// an unentered relative one (say which one you mean).
    pub fn set_deadline(&self, deadline: impl IntoSeconds) -> Result<(), Error> {
        let deadline = check_deadline(deadline.into_seconds())?;
        let state = &self.state;
        if state.phase.get() == Phase::Unentered && state.relative_deadline.get().is_finite() {
            return Err(Error::usage(
                "this scope has a relative deadline; set one or the other, not both",
            ));
        }
        state.deadline.set(deadline);
        if state.phase.get() == Phase::Entered {
            Runner::with_current(|runner| {
                runner.unregister_deadline(state);
                if deadline != f64::INFINITY {
                    runner.register_deadline(state);
                }
            });
        }
        Ok(())
    }

    /// The relative deadline in seconds (`f64::INFINITY`: none). Before the scope is entered,
    /// the duration it will have at entry; once entered, the time left until its deadline
    /// (Trio's `deadline - current_time()`, so it follows `set_deadline` and the clock).
    ///
    /// Trio raises `RuntimeError` when this is read on an unentered scope with an absolute
    /// deadline; here it is infinite then (no relative deadline), and
    /// [`is_relative`](Self::is_relative) is `Some(false)`. Setting the other kind of deadline
    /// on an unentered scope is an error, as in Trio.
    pub fn relative_deadline(&self) -> f64 {
        let state = &self.state;
        if state.phase.get() != Phase::Unentered
            && let Some(now) = Runner::with_current(|runner| runner.current_time())
        {
            return state.deadline.get() - now;
        }
        state.relative_deadline.get()
    }

    /// Sets the relative deadline (any [`IntoSeconds`](crate::IntoSeconds) type). Before entry
    /// it is fixed at entry; on a running scope it moves the deadline to now + `seconds`.
    /// Negative or NaN durations are errors.
    pub fn set_relative_deadline(&self, seconds: impl IntoSeconds) -> Result<(), Error> {
        let seconds = check_duration(seconds.into_seconds(), "relative deadline")?;
        let state = &self.state;
        match state.phase.get() {
            Phase::Unentered if state.deadline.get() != f64::INFINITY => Err(Error::usage(
                "this scope has an absolute deadline; set one or the other, not both",
            )),
            Phase::Entered => {
                state.relative_deadline.set(seconds);
                let now = Runner::with_current(|r| r.current_time()).unwrap_or(0.0);
                self.set_deadline(now + seconds)
            }
            _ => {
                state.relative_deadline.set(seconds);
                Ok(())
            }
        }
    }

    /// Whether the deadline is relative (Trio's `is_relative`): `None` once the scope has been
    /// entered (its deadline is absolute from then on), else whether it was given a relative
    /// deadline (`Some(false)` when it has none at all).
    pub fn is_relative(&self) -> Option<bool> {
        let state = &self.state;
        (state.phase.get() == Phase::Unentered).then(|| state.relative_deadline.get().is_finite())
    }

    /// Whether the scope is shielded from the cancellation of enclosing scopes.
    pub fn shield(&self) -> bool {
        self.state.shield.get()
    }

    /// Shields (or unshields) the scope; takes effect at once, also while it is running.
    pub fn set_shield(&self, shield: bool) {
        self.state.set_shield(shield);
    }

    /// Runs `body` inside this scope.
    ///
    /// Returns `Ok(Some(value))` when the body finished, `Ok(None)` when the scope was cancelled
    /// and absorbed the body's `Cancelled`, and `Err` for every other error (a `Cancelled` that
    /// belongs to an enclosing scope included). Running a scope a second time is an error.
    ///
    /// # Checkpoint
    /// Entering and leaving a scope is not a checkpoint of its own (as Trio's
    /// `with CancelScope():`); the body's checkpoints are the only ones.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the scope (it unlinks from the cancel tree and its deadline
    /// is dropped) and drops the body, with whatever cancel safety the body has.
    pub fn run<F, T>(&self, body: F) -> ScopeRun<F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        ScopeRun {
            scope: self.state.clone(),
            entered: false,
            body,
        }
    }

    /// As [`run`](Self::run), giving up this handle: nothing outside can see the scope, so the
    /// run may reuse its node once the body is done (timeouts and sleeps use this).
    pub(crate) fn into_run<F, T>(self, body: F) -> ScopeRun<F>
    where
        F: Future<Output = Result<T, Error>>,
    {
        ScopeRun {
            scope: self.state,
            entered: false,
            body,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CancelScope::run`].
    #[must_use = "a scope does nothing unless awaited"]
    pub struct ScopeRun<F> {
        scope: Rc<ScopeState>,
        entered: bool,
        #[pin]
        body: F,
    }

    impl<F> PinnedDrop for ScopeRun<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let in_run = Runner::with_current(|runner| {
                if *this.entered {
                    this.scope.exit(Some(runner));
                }
                runner.recycle_scope(this.scope);
            });
            if in_run.is_none() && *this.entered {
                this.scope.exit(None);
            }
        }
    }
}

/// Restores the task's previous cancel status when a poll of a scope's body ends, also by
/// unwinding.
pub(crate) struct StatusSwap<'a> {
    task: &'a TaskInner,
    previous: Option<Rc<ScopeState>>,
}

impl<'a> StatusSwap<'a> {
    #[inline]
    pub(crate) fn new(task: &'a TaskInner, status: Rc<ScopeState>) -> Self {
        let previous = std::mem::replace(&mut *task.current_status.borrow_mut(), status);
        StatusSwap {
            task,
            previous: Some(previous),
        }
    }
}

impl Drop for StatusSwap<'_> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            *self.task.current_status.borrow_mut() = previous;
        }
    }
}

impl<F, T> Future for ScopeRun<F>
where
    F: Future<Output = Result<T, Error>>,
{
    type Output = Result<Option<T>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let scope = this.scope.clone();
        let polled = Runner::with_current_task(|runner, task| {
            if !*this.entered {
                super::timeout::enter_lazy_deadline(task, runner);
                let parent = task.current_status.borrow().clone();
                scope.enter(runner, parent, Some(task.key))?;
                *this.entered = true;
            }
            let _swap = StatusSwap::new(task, scope.clone());
            Ok(this.body.poll(cx))
        });
        let output = match polled {
            None => return Poll::Ready(Err(super::run::not_in_run("CancelScope::run"))),
            Some(Err(e)) => return Poll::Ready(Err(e)),
            Some(Ok(Poll::Pending)) => return Poll::Pending,
            Some(Ok(Poll::Ready(output))) => output,
        };
        let absorbs = scope.is_cancelled() && !scope.parent_cancellation_is_visible();
        *this.entered = false;
        Runner::with_current(|runner| scope.exit(Some(runner)));
        Poll::Ready(match output {
            Ok(value) => Ok(Some(value)),
            Err(e) if absorbs && e.is_cancelled() => {
                scope.cancelled_caught.set(true);
                Ok(None)
            }
            Err(e) => Err(e),
        })
    }
}
