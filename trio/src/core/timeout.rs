//! Timeouts whose scope joins the cancel tree only when it has to.
//!
//! [`Timeout`] is the future of `move_on_after` / `move_on_at` (and, through them, of
//! `fail_after` / `fail_at`): a cancel scope with a deadline, invisible to everything but its
//! body. Most timeouts in network code wrap an operation that does not block, or blocks
//! rarely; a node in the cancel tree (linked under the current status, its deadline registered
//! with the driver, unlinked and unregistered again) would cost more than the operation.
//!
//! So on its first poll a timeout reads the clock, and unless the deadline has passed already,
//! polls its body *without* a node: it only records its deadline in the task
//! (`TaskInner::lazy_deadline`). That is exact as long as the body neither blocks nor enters
//! another scope: the deadline can only expire in the run loop, between task steps, and until
//! then the body's cancel points see exactly what they would under the node (the status of
//! the enclosing code, since the timeout itself is not cancelled). The node is made, entered
//! under the enclosing status with the recorded deadline, and made the task's current status
//! ([`enter_lazy_deadline`]) as soon as something needs it:
//!
//! - the body returns `Pending` (it blocks: the deadline must be able to wake it);
//! - the body enters a scope or a nursery (which must hang under this scope);
//! - the body reaches a schedule point that the run loop might skip (`run::schedule_point`).
//!
//! A timeout starts lazily only when no other lazy frame is open in the task (nested
//! timeouts enter the tree at once), so the node a frame gets (`TaskInner::lazy_scope`) is
//! always its own. A deadline that has already passed enters at once and cancels (as in
//! Trio). `current_effective_deadline` takes a lazy deadline into account.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::cancel::ScopeState;
use super::cancel_scope::{StatusSwap, check_duration};
use super::clock::IntoSeconds;
use super::run::{Runner, not_in_run};
use super::task::TaskInner;
use crate::error::{Error, Result};

/// Enters the task's lazily started timeout scope now, if it has one: a node with the
/// recorded deadline, under the current status, becomes the current status. Everything that
/// hangs something under the current status calls this first.
#[inline]
pub(crate) fn enter_lazy_deadline(task: &TaskInner, runner: &Runner) {
    if task.lazy_deadline.get().is_finite() {
        enter_lazy_deadline_now(task, runner);
    }
}

#[cold]
#[inline(never)]
fn enter_lazy_deadline_now(task: &TaskInner, runner: &Runner) {
    // NaN: entered, the node waits in `lazy_scope` for its frame to collect it.
    let deadline = task.lazy_deadline.replace(f64::NAN);
    let node = ScopeState::new();
    node.set_deadline_before_entry(deadline);
    let parent = task.current_status.borrow().clone();
    // A fresh node cannot fail to enter.
    let _ = node.enter(runner, parent, Some(task.key));
    *task.current_status.borrow_mut() = node.clone();
    *task.lazy_scope.borrow_mut() = Some(node);
}

/// When the deadline is: fixed, or relative to when the timeout starts.
#[derive(Debug)]
enum When {
    At(f64),
    After(f64),
    /// `At` or `After` of a shielded timeout.
    Shielded(Box<When>),
    /// A bad argument, reported by the first poll.
    Invalid(Error),
}

impl When {
    /// The deadline, whether it has passed already, and whether the scope is shielded.
    #[inline]
    fn resolve(self, runner: &Runner) -> Result<(f64, bool, bool)> {
        match self {
            When::Invalid(e) => Err(e),
            When::At(deadline) => Ok((
                deadline,
                deadline != f64::INFINITY && deadline <= runner.current_time(),
                false,
            )),
            When::After(seconds) => Ok((runner.current_time() + seconds, seconds <= 0.0, false)),
            When::Shielded(inner) => inner
                .resolve_unshielded(runner)
                .map(|(deadline, passed)| (deadline, passed, true)),
        }
    }

    #[cold]
    fn resolve_unshielded(self, runner: &Runner) -> Result<(f64, bool)> {
        self.resolve(runner)
            .map(|(deadline, passed, _)| (deadline, passed))
    }
}

enum Stage {
    Start(When),
    /// In the cancel tree, with this node.
    Entered(Rc<ScopeState>),
    Done,
}

pin_project_lite::pin_project! {
    /// The future of [`move_on_after`](crate::move_on_after) and
    /// [`move_on_at`](crate::move_on_at): runs its body in a cancel scope with a deadline;
    /// `Ok(Some(value))` if the body finished, `Ok(None)` if the deadline cancelled it.
    #[must_use = "a timeout does nothing unless awaited"]
    pub struct Timeout<F> {
        stage: Stage,
        #[pin]
        body: F,
    }

    impl<F> PinnedDrop for Timeout<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Stage::Entered(scope) = this.project().stage {
                leave(scope);
            }
        }
    }
}

impl<F> std::fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match &self.stage {
            Stage::Start(when) => format!("not started: {when:?}"),
            Stage::Entered(scope) => format!("waiting, deadline {}", scope.deadline()),
            Stage::Done => "done".to_string(),
        };
        f.debug_struct("Timeout")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

impl<F> Timeout<F> {
    /// A timeout of `seconds` from its first poll (negative or NaN: an error then).
    #[inline]
    pub fn after(seconds: impl IntoSeconds, body: F) -> Self {
        let seconds = seconds.into_seconds();
        // NaN fails the comparison too.
        let when = if seconds >= 0.0 {
            When::After(seconds)
        } else {
            When::Invalid(check_duration(seconds, "timeout").err().unwrap_or_else(|| {
                Error::usage(format!("timeout must be non-negative (got {seconds})"))
            }))
        };
        Timeout {
            stage: Stage::Start(when),
            body,
        }
    }

    /// A timeout at the absolute `deadline` on the run's clock (NaN: an error on the first
    /// poll; a passed deadline cancels the body at once).
    #[inline]
    pub fn at(deadline: impl IntoSeconds, body: F) -> Self {
        let deadline = deadline.into_seconds();
        let when = if deadline.is_nan() {
            When::Invalid(Error::usage("deadline must not be NaN"))
        } else {
            When::At(deadline)
        };
        Timeout {
            stage: Stage::Start(when),
            body,
        }
    }
}

impl<F> Timeout<F> {
    /// Shields the body from the cancellation of enclosing scopes (Trio's `shield=True`);
    /// the timeout's own deadline still applies. Set before the first poll.
    ///
    /// The timeout's scope is not reachable from the body, so its shield cannot be lowered
    /// mid-body as Trio's `inner.shield = False` does; for that, run the body in
    /// `CancelScope::with_relative_deadline(seconds)?.shielded(true)` (what `move_on_after`
    /// is) and call `set_shield(false)` on a clone of it.
    pub fn shielded(mut self, shield: bool) -> Self {
        if let Stage::Start(when) = &mut self.stage {
            let unshielded = match std::mem::replace(when, When::At(f64::INFINITY)) {
                When::Shielded(inner) => *inner,
                other => other,
            };
            *when = match (shield, unshielded) {
                (true, When::Invalid(e)) => When::Invalid(e),
                (true, other) => When::Shielded(Box::new(other)),
                (false, other) => other,
            };
        }
        self
    }
}

/// Leaves a scope's node and gives it back to the run's pool.
fn leave(scope: &mut Rc<ScopeState>) {
    let in_run = Runner::with_current(|runner| {
        scope.exit(Some(runner));
        runner.recycle_scope(scope);
    });
    if in_run.is_none() {
        scope.exit(None);
    }
}

/// What the body's poll came to, and whether the node must be left now.
fn finish<T>(scope: &mut Rc<ScopeState>, output: Result<T>) -> Result<Option<T>> {
    let absorbs = scope.is_cancelled() && !scope.parent_cancellation_is_visible();
    let result = match output {
        Ok(value) => Ok(Some(value)),
        Err(e) if absorbs && e.is_cancelled() => {
            scope.set_cancelled_caught();
            Ok(None)
        }
        Err(e) => Err(e),
    };
    leave(scope);
    result
}

/// The lazy frame of a timeout's first poll: ends it when the body's poll returns, and on
/// unwinding too.
struct LazyFrame<'a> {
    task: &'a TaskInner,
}

impl LazyFrame<'_> {
    /// Ends the frame; returns the node the body made it enter, if it did (the task's current
    /// status is then put back to the enclosing one).
    #[inline]
    fn close(self) -> Option<Rc<ScopeState>> {
        let task = self.task;
        std::mem::forget(self);
        let entered = task.lazy_deadline.replace(f64::INFINITY).is_nan();
        if entered { take_entered(task) } else { None }
    }
}

impl Drop for LazyFrame<'_> {
    fn drop(&mut self) {
        // Unwinding out of the body: the node the frame entered, if any, is left.
        self.task.lazy_deadline.set(f64::INFINITY);
        if let Some(mut scope) = take_entered(self.task) {
            leave(&mut scope);
        }
    }
}

/// Takes the node a lazy frame entered and puts the enclosing status back.
#[cold]
fn take_entered(task: &TaskInner) -> Option<Rc<ScopeState>> {
    let scope = task.lazy_scope.borrow_mut().take()?;
    if let Some(parent) = scope.parent() {
        *task.current_status.borrow_mut() = parent;
    }
    Some(scope)
}

/// A new node with `deadline` (and `shield`), entered under the task's current status.
fn enter_node(
    task: &TaskInner,
    runner: &Runner,
    deadline: f64,
    shield: bool,
) -> Result<Rc<ScopeState>> {
    let node = ScopeState::new();
    node.set_deadline_before_entry(deadline);
    if shield {
        node.set_shield(true);
    }
    let parent = task.current_status.borrow().clone();
    node.enter(runner, parent, Some(task.key))?;
    Ok(node)
}

impl<F, T> Future for Timeout<F>
where
    F: Future<Output = Result<T>>,
{
    type Output = Result<Option<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut body = this.body;
        let stage = this.stage;
        let polled = Runner::with_current_task(|runner, task| {
            if let Stage::Start(_) = stage {
                let Stage::Start(when) = std::mem::replace(stage, Stage::Done) else {
                    unreachable!("matched above")
                };
                let (deadline, passed, shield) = match when.resolve(runner) {
                    Ok(resolved) => resolved,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                // Not while another frame is open or waits to collect its node (infinite: none),
                // and not shielded: a shield changes what the body's cancel points see.
                let lazy = !passed && !shield && task.lazy_deadline.get() == f64::INFINITY;
                if lazy {
                    task.lazy_deadline.set(deadline);
                    let frame = LazyFrame { task };
                    let polled = body.as_mut().poll(cx);
                    return match (frame.close(), polled) {
                        (None, Poll::Ready(output)) => Poll::Ready(output.map(Some)),
                        (None, Poll::Pending) => match enter_node(task, runner, deadline, false) {
                            Ok(node) => {
                                *stage = Stage::Entered(node);
                                Poll::Pending
                            }
                            Err(e) => Poll::Ready(Err(e)),
                        },
                        (Some(mut node), Poll::Ready(output)) => {
                            Poll::Ready(finish(&mut node, output))
                        }
                        (Some(node), Poll::Pending) => {
                            *stage = Stage::Entered(node);
                            Poll::Pending
                        }
                    };
                }
                // An enclosing lazy timeout enters first, so that this one hangs under it.
                enter_lazy_deadline(task, runner);
                match enter_node(task, runner, deadline, shield) {
                    Ok(node) => *stage = Stage::Entered(node),
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            let Stage::Entered(scope) = stage else {
                return Poll::Ready(Err(Error::usage("a timeout polled after it finished")));
            };
            let polled = {
                let _swap = StatusSwap::new(task, scope.clone());
                body.as_mut().poll(cx)
            };
            match polled {
                Poll::Pending => Poll::Pending,
                Poll::Ready(output) => {
                    let result = finish(scope, output);
                    *stage = Stage::Done;
                    Poll::Ready(result)
                }
            }
        });
        polled.unwrap_or_else(|| Poll::Ready(Err(not_in_run("move_on_after/move_on_at"))))
    }
}
