//! Concurrency inside one task: [`join`], [`join_all`], [`race`] and [`race_all`].
//!
//! A nursery's children are tasks of their own, scheduled independently, so their futures
//! must be `'static`. These combinators are the borrowing counterpart: they poll several
//! futures *inside the calling task*, so the futures may borrow from the caller's stack,
//! and they keep a nursery's rules:
//!
//! - **Errors never pass silently.** When a branch fails, the others are cancelled (a cancel
//!   scope around all of them, as a nursery has), run until they end, and the result is an
//!   [`ErrorGroup`] of every error that is not `Cancelled`, each with
//!   the branch it came from. A `Cancelled` from an enclosing scope comes out as itself.
//! - **Nothing outlives the call.** A race's winner cancels the others, and the race
//!   returns once they have ended (their cleanup runs, shielded parts included). Dropping
//!   the future drops every branch.
//! - **Checkpoints.** Each is a checkpoint: a cancel point on entry, and a schedule point
//!   before a normal return if no branch yielded.
//!
//! - **Panics** are caught as a nursery catches a child's: the other branches are cancelled
//!   and run until they end, then the panic resumes in the caller.
//!
//! Each wake-up polls every branch that is still running, so these suit a handful of
//! branches; for many independent jobs, start tasks in a nursery.
//!
//! ```
//! use trio::{join, race, sleep};
//!
//! # fn main() -> trio::Result<()> {
//! # trio::run(async {
//! let names = vec!["a".to_string(), "b".to_string()];
//! // Both branches borrow `names`: no `Rc`, no `'static`.
//! let (first, count) = join((
//!     async { Ok(names[0].clone()) },
//!     async { Ok(names.len()) },
//! ))
//! .await?;
//! assert_eq!((first.as_str(), count), ("a", 2));
//!
//! // The first to finish wins; the other is cancelled and has ended when `race` returns.
//! let winner = race((
//!     async { sleep(10.0).await?; Ok("slow") },
//!     async { Ok("fast") },
//! ))
//! .await?;
//! assert_eq!(winner, "fast");
//! # Ok(())
//! # })
//! # }
//! ```

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use crate::lowlevel::{cancel_shielded_checkpoint, checkpoint_if_cancelled};
use crate::{CancelScope, Error, ErrorGroup, Result, TrioInternalError, UsageError};

/// How a branch stands after a poll.
#[derive(Debug)]
pub enum BranchState {
    /// Still running.
    Running,
    /// Ended with a value, which the branch keeps until the end.
    Succeeded,
    /// Ended with this error.
    Failed(Error),
    /// Panicked with this payload (its future is dropped).
    Panicked(Box<dyn Any + Send>),
    /// Had ended before this poll.
    Ended,
}

pin_project_lite::pin_project! {
    /// One branch of a [`join`] or [`race`]: its future until it ends, then its value.
    #[derive(Debug)]
    pub struct Branch<F, T> {
        #[pin]
        future: Option<F>,
        output: Option<T>,
    }
}

impl<F, T> Branch<F, T>
where
    F: Future<Output = Result<T>>,
{
    fn new(future: F) -> Self {
        Branch {
            future: Some(future),
            output: None,
        }
    }

    /// Polls the branch if it still runs. An ended branch's future is dropped at once, so
    /// what it held (borrows, locks, sockets) is released before the others end.
    fn poll_branch(self: Pin<&mut Self>, cx: &mut Context<'_>) -> BranchState {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return BranchState::Ended;
        };
        let polled = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        let result = match polled {
            Ok(Poll::Pending) => return BranchState::Running,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => {
                this.future.set(None);
                return BranchState::Panicked(payload);
            }
        };
        this.future.set(None);
        match result {
            Ok(value) => {
                *this.output = Some(value);
                BranchState::Succeeded
            }
            Err(error) => BranchState::Failed(error),
        }
    }

    fn take_output(self: Pin<&mut Self>) -> Option<T> {
        self.project().output.take()
    }
}

/// A set of futures that [`join`] (and, when they share an output type, [`race`]) can run:
/// tuples of up to eight futures returning [`Result`], and the branch lists [`join_all`]
/// and [`race_all`] build.
///
/// Not meant to be implemented outside trio.
pub trait Branches {
    /// What `join` returns on success: a tuple of the values, or a `Vec`.
    type Output;
    /// The pinned state `join` polls.
    type State;

    /// Wraps the futures into branches.
    fn into_state(self) -> Self::State;
    /// How many branches there are.
    fn count(state: &Self::State) -> usize;
    /// Polls branch `index` (see [`BranchState`]).
    fn poll_branch(state: Pin<&mut Self::State>, index: usize, cx: &mut Context<'_>)
    -> BranchState;
    /// Takes every value, once every branch has succeeded.
    fn take_outputs(state: Pin<&mut Self::State>) -> Option<Self::Output>;
}

/// [`Branches`] whose futures all return the same type: what [`race`] can run.
pub trait RaceBranches: Branches {
    /// The type every branch returns.
    type Value;
    /// Takes the value of branch `index`, which has succeeded.
    fn take_value(state: Pin<&mut Self::State>, index: usize) -> Option<Self::Value>;
}

/// Runs every future of `futures` (a tuple, or [`join_all`]'s list) concurrently inside the
/// calling task, and returns all their values once all have succeeded.
///
/// The futures may borrow from the caller. If one fails, the others are cancelled and run
/// until they end; then `join` fails with an [`ErrorGroup`] of every error that is not
/// `Cancelled` (its [`origin`](ErrorGroup::origin)s say `branch N`), as a nursery does. A
/// cancellation from an enclosing scope comes out as `Err(Cancelled)`.
///
/// # Checkpoint
/// Yes: a cancel point on entry (in a cancelled scope no branch starts), and a schedule
/// point before returning if no branch yielded.
///
/// # Cancel safety
/// Dropping the future drops every branch, with whatever cancel safety each has.
pub async fn join<B: Branches>(futures: B) -> Result<B::Output> {
    let mut state = pin!(futures.into_state());
    run_branches::<B>(state.as_mut(), Goal::All).await?;
    B::take_outputs(state).ok_or_else(|| internal("join ended without every value"))
}

/// Runs every future of `futures` (a tuple of futures with one output type, or
/// [`race_all`]'s list) concurrently inside the calling task; the first to succeed wins.
///
/// The winner cancels the others, and `race` returns its value once they have ended. As in
/// a nursery, errors are not ignored: a branch that fails (before or after the winner, with
/// an error that is not `Cancelled`) makes the race fail with an [`ErrorGroup`] of those
/// errors. An empty race is a [`UsageError`].
///
/// # Checkpoint
/// Yes: a cancel point on entry, and a schedule point before returning if no branch yielded.
///
/// # Cancel safety
/// Dropping the future drops every branch, with whatever cancel safety each has.
pub async fn race<B: RaceBranches>(futures: B) -> Result<B::Value> {
    let mut state = pin!(futures.into_state());
    if B::count(&state) == 0 {
        checkpoint_if_cancelled().await?;
        return Err(Error::new(UsageError::new(
            "race() needs at least one future (an empty race has no winner)",
        )));
    }
    let winner = run_branches::<B>(state.as_mut(), Goal::First).await?;
    winner
        .and_then(|index| B::take_value(state, index))
        .ok_or_else(|| internal("race ended without a winner"))
}

/// The futures of an iterator as [`Branches`] for [`join`]: `join(join_all(futures))`
/// returns their values in order, in a `Vec`.
pub fn join_all<I>(futures: I) -> BranchList<I::Item>
where
    I: IntoIterator,
{
    BranchList(futures.into_iter().collect())
}

/// The futures of an iterator as [`RaceBranches`] for [`race`]: `race(race_all(futures))`.
pub fn race_all<I>(futures: I) -> BranchList<I::Item>
where
    I: IntoIterator,
{
    join_all(futures)
}

/// A list of futures of one type, as [`Branches`] (built by [`join_all`] and [`race_all`]).
#[derive(Debug)]
pub struct BranchList<F>(Vec<F>);

/// The state of a [`BranchList`]: its branches in one allocation that never moves.
#[derive(Debug)]
pub struct BranchListState<F, T>(Pin<Box<[Branch<F, T>]>>);

impl<F, T> BranchListState<F, T> {
    fn branch(self: Pin<&mut Self>, index: usize) -> Pin<&mut Branch<F, T>> {
        // `BranchListState` is `Unpin` (a `Pin<Box<_>>`), so the outer pin gives no more
        // than `&mut`; the inner one is what pins the branches.
        let slice = self.get_mut().0.as_mut();
        // SAFETY: the branches live in a pinned boxed slice that is never resized or moved
        // out of; projecting to one element keeps it where it is.
        unsafe { slice.map_unchecked_mut(|branches| &mut branches[index]) }
    }
}

impl<F, T> Branches for BranchList<F>
where
    F: Future<Output = Result<T>>,
{
    type Output = Vec<T>;
    type State = BranchListState<F, T>;

    fn into_state(self) -> Self::State {
        BranchListState(Box::into_pin(
            self.0.into_iter().map(Branch::new).collect::<Box<[_]>>(),
        ))
    }

    fn count(state: &Self::State) -> usize {
        state.0.len()
    }

    fn poll_branch(
        state: Pin<&mut Self::State>,
        index: usize,
        cx: &mut Context<'_>,
    ) -> BranchState {
        state.branch(index).poll_branch(cx)
    }

    fn take_outputs(mut state: Pin<&mut Self::State>) -> Option<Vec<T>> {
        (0..Self::count(&state))
            .map(|index| state.as_mut().branch(index).take_output())
            .collect()
    }
}

impl<F, T> RaceBranches for BranchList<F>
where
    F: Future<Output = Result<T>>,
{
    type Value = T;

    fn take_value(state: Pin<&mut Self::State>, index: usize) -> Option<T> {
        state.branch(index).take_output()
    }
}

/// What `run_branches` waits for.
#[derive(Clone, Copy, PartialEq)]
enum Goal {
    /// Every branch succeeds (`join`).
    All,
    /// One branch succeeds (`race`).
    First,
}

/// Runs the branches inside a cancel scope of their own (a nursery's, without tasks) until
/// every one has ended. Returns the winner's index for [`Goal::First`].
async fn run_branches<B: Branches>(state: Pin<&mut B::State>, goal: Goal) -> Result<Option<usize>> {
    checkpoint_if_cancelled().await?;
    let scope = CancelScope::new();
    let yielded = Cell::new(false);
    let running = B::count(&state);
    let body = Body::<B> {
        state,
        scope: scope.clone(),
        goal,
        yielded: &yielded,
        running,
        winner: None,
        errors: Vec::new(),
        origins: Vec::new(),
        cancelled: None,
        panic: None,
    };
    let ended = scope.run(body).await?;
    if !yielded.get() {
        cancel_shielded_checkpoint().await;
    }
    ended.ok_or_else(|| internal("the branches' own scope absorbed a cancellation"))
}

/// The body `run_branches` runs in its scope: polls every running branch on each wake-up.
struct Body<'a, B: Branches> {
    state: Pin<&'a mut B::State>,
    scope: CancelScope,
    goal: Goal,
    yielded: &'a Cell<bool>,
    running: usize,
    winner: Option<usize>,
    errors: Vec<Error>,
    origins: Vec<String>,
    cancelled: Option<Error>,
    panic: Option<Box<dyn Any + Send>>,
}

impl<B: Branches> Body<'_, B> {
    /// Polls every running branch once; whether this cancelled the scope.
    fn poll_running(&mut self, cx: &mut Context<'_>) -> bool {
        let mut cancelled_now = false;
        for index in 0..B::count(&self.state) {
            match B::poll_branch(self.state.as_mut(), index, cx) {
                BranchState::Running | BranchState::Ended => {}
                BranchState::Succeeded => {
                    self.running -= 1;
                    if self.goal == Goal::First && self.winner.is_none() {
                        self.winner = Some(index);
                        self.scope
                            .cancel_with_reason(format!("branch {index} won the race"));
                        cancelled_now = true;
                    }
                }
                BranchState::Failed(error) => {
                    self.running -= 1;
                    if error.is_cancelled() {
                        self.cancelled.get_or_insert(error);
                    } else {
                        self.scope
                            .cancel_with_reason(format!("branch {index} failed: {error}"));
                        self.errors.push(error);
                        self.origins.push(format!("branch {index}"));
                        cancelled_now = true;
                    }
                }
                BranchState::Panicked(payload) => {
                    self.running -= 1;
                    let message = panic_message(&*payload);
                    self.scope
                        .cancel_with_reason(format!("branch {index} panicked: {message}"));
                    self.panic.get_or_insert(payload);
                    cancelled_now = true;
                }
            }
        }
        cancelled_now
    }

    fn result(&mut self) -> Result<Option<usize>> {
        if let Some(payload) = self.panic.take() {
            resume_unwind(payload);
        }
        if !self.errors.is_empty() {
            let errors = std::mem::take(&mut self.errors);
            let origins = std::mem::take(&mut self.origins);
            return Err(Error::new(ErrorGroup::with_origins(errors, origins)));
        }
        match (self.goal, self.winner, self.cancelled.take()) {
            (Goal::First, Some(winner), _) => Ok(Some(winner)),
            (_, _, Some(cancelled)) => Err(cancelled),
            (Goal::All, _, None) => Ok(None),
            (Goal::First, None, None) => Err(internal("every branch ended, none won")),
        }
    }
}

impl<B: Branches> Future for Body<'_, B> {
    type Output = Result<Option<usize>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // A branch that just cancelled the scope is seen by the others only when they are
        // polled again: poll until a pass cancels nothing new.
        while this.running > 0 && this.poll_running(cx) {}
        if this.running > 0 {
            this.yielded.set(true);
            return Poll::Pending;
        }
        Poll::Ready(this.result())
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(message), _) => message,
        (_, Some(message)) => message,
        _ => "(a payload that is not a string)",
    }
}

fn internal(what: &str) -> Error {
    Error::new(TrioInternalError {
        message: format!("trio::join: {what}"),
    })
}

macro_rules! tuple_branches {
    ($state:ident; $($F:ident $T:ident $field:ident $index:tt),+) => {
        pin_project_lite::pin_project! {
            /// The state of a tuple of branches (see [`Branches`]).
            #[derive(Debug)]
            pub struct $state<$($F, $T),+> {
                $(#[pin] $field: Branch<$F, $T>,)+
            }
        }

        impl<$($F, $T),+> Branches for ($($F,)+)
        where
            $($F: Future<Output = Result<$T>>,)+
        {
            type Output = ($($T,)+);
            type State = $state<$($F, $T),+>;

            fn into_state(self) -> Self::State {
                $state { $($field: Branch::new(self.$index),)+ }
            }

            fn count(_: &Self::State) -> usize {
                [$($index),+].len()
            }

            fn poll_branch(
                state: Pin<&mut Self::State>,
                index: usize,
                cx: &mut Context<'_>,
            ) -> BranchState {
                let this = state.project();
                match index {
                    $($index => this.$field.poll_branch(cx),)+
                    _ => BranchState::Ended,
                }
            }

            fn take_outputs(state: Pin<&mut Self::State>) -> Option<Self::Output> {
                let this = state.project();
                Some(($(this.$field.take_output()?,)+))
            }
        }

        impl<Value, $($F),+> RaceBranches for ($($F,)+)
        where
            $($F: Future<Output = Result<Value>>,)+
        {
            type Value = Value;

            fn take_value(state: Pin<&mut Self::State>, index: usize) -> Option<Value> {
                let this = state.project();
                match index {
                    $($index => this.$field.take_output(),)+
                    _ => None,
                }
            }
        }
    };
}

tuple_branches!(Branches1; F0 T0 b0 0);
tuple_branches!(Branches2; F0 T0 b0 0, F1 T1 b1 1);
tuple_branches!(Branches3; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2);
tuple_branches!(Branches4; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2, F3 T3 b3 3);
tuple_branches!(Branches5; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2, F3 T3 b3 3, F4 T4 b4 4);
tuple_branches!(Branches6; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2, F3 T3 b3 3, F4 T4 b4 4, F5 T5 b5 5);
tuple_branches!(Branches7; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2, F3 T3 b3 3, F4 T4 b4 4, F5 T5 b5 5, F6 T6 b6 6);
tuple_branches!(Branches8; F0 T0 b0 0, F1 T1 b1 1, F2 T2 b2 2, F3 T3 b3 3, F4 T4 b4 4, F5 T5 b5 5, F6 T6 b6 6, F7 T7 b7 7);
