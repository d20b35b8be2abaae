//! Run blocking code in a worker thread without blocking the run (Trio's `trio.to_thread`).
//!
//! ```
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     // std::fs blocks; in a worker thread it blocks only the calling task.
//!     let len = trio::to_thread::run_sync(|| std::fs::read("Cargo.toml").map(|b| b.len()))
//!         .await??;
//!     assert!(len > 0);
//!
//!     // With options: an OS thread name, abandoning on cancellation, a limiter of your own.
//!     let limiter = trio::CapacityLimiter::new(2);
//!     let n = trio::to_thread::Options::new()
//!         .thread_name("summing")
//!         .limiter(limiter)
//!         .run_sync(|| (1..=10).sum::<u32>())
//!         .await?;
//!     assert_eq!(n, 55);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # The rules
//!
//! - **A checkpoint.** [`run_sync`] checks for cancellation before it starts anything, and
//!   always yields at least once.
//! - **Limited.** Each call holds a token of a [`CapacityLimiter`] for its thread, from before
//!   the thread starts until the thread has finished (even after an abandoned call has
//!   returned). By default that is the run's limiter of [`DEFAULT_LIMIT`] (40) tokens,
//!   [`current_default_thread_limiter`], whose `total_tokens` you may change.
//! - **Cancellation.** By default the call waits for its thread: a cancellation that arrives
//!   meanwhile is seen by the thread through [`from_thread::check_cancelled`], and by the task
//!   at its next checkpoint after the call returns its value. With
//!   [`Options::abandon_on_cancel`] the call returns `Err(Cancelled)` at once; the thread runs
//!   on, and its result (or panic) is dropped in the thread when it ends. Dropping the future
//!   before it completes abandons the thread in the same way.
//! - **Panics.** A panic in the function resumes in the calling task, as a child task's panic
//!   resumes in its parent.
//! - **Calling back.** Inside the function, [`from_thread`] runs code on the trio thread (in
//!   the calling task, so its cancel scopes apply).
//! - **Threads.** Workers are cached and reused (process-wide, as in Trio); one that has been
//!   idle for [`idle_timeout`] (10 s) exits. So after `trio::run` returns no call of it is
//!   still running (unless it was abandoned), but idle workers may remain for a few seconds;
//!   [`worker_threads`] counts them. The completion of a call reaches the run through its
//!   entry queue, which wakes the reactor: the run loop never polls for it.
//! - **Beyond Trio.** While a call's thread runs, the run counts an external wait
//!   ([`ExternalWait`](crate::lowlevel::ExternalWait)): a `MockClock` does not autojump and
//!   `wait_all_tasks_blocked` does not consider the calling task blocked (Trio's autojump
//!   fires while a thread runs, python-trio/trio#456). A `from_thread` call the thread makes
//!   ends that wait until it returns, since the thread then waits for the run.
//!
//! [`from_thread`]: crate::from_thread
//! [`from_thread::check_cancelled`]: crate::from_thread::check_cancelled

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use super::cache::{self, Job};
use super::from_thread::run_outside_host;
use super::link::{Call, HostGuard, Outcome, Request};
use crate::lowlevel::{
    ExternalWait, RunVar, SleepForever, checkpoint_if_cancelled, current_trio_token, sleep_forever,
};
use crate::sync::{Borrower, CapacityLimiter, Event};
use crate::{CancelSource, Cancelled, Error, IntoSeconds, Result, WouldBlock};

/// The number of tokens of each run's default limiter (Trio's `DEFAULT_LIMIT`).
pub const DEFAULT_LIMIT: usize = 40;

static DEFAULT_LIMITER: RunVar<CapacityLimiter> =
    RunVar::with_default("trio.to_thread.default_limiter", || {
        CapacityLimiter::new(DEFAULT_LIMIT)
    });

/// Tokens of abandoned calls whose threads still run, by call number: released on the trio
/// thread when the thread reports that it has finished.
static ABANDONED: RunVar<HashMap<u64, Held>> =
    RunVar::with_default("trio.to_thread.abandoned", HashMap::new);

/// The run's `run_sync` calls in progress (Trio's `_active_threads_local`).
static ACTIVE: RunVar<Rc<ActiveCalls>> =
    RunVar::with_default("trio.to_thread.active_threads", Rc::default);

/// How many calls are in progress, and the event the last one to end sets.
#[derive(Default)]
struct ActiveCalls {
    count: Cell<usize>,
    all_done: RefCell<Event>,
}

/// Counts one call as in progress while it lives.
struct ActiveCall(Rc<ActiveCalls>);

impl ActiveCall {
    fn begin() -> Result<ActiveCall> {
        let calls = ACTIVE.get()?;
        calls.count.set(calls.count.get() + 1);
        Ok(ActiveCall(calls))
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        let left = self.0.count.get() - 1;
        self.0.count.set(left);
        if left == 0 {
            // Waiters hold the old event; later waits get a fresh one.
            self.0.all_done.take().set();
        }
    }
}

/// How many [`run_sync`] calls of this run are in progress (Trio's
/// `trio.testing.active_thread_count`): a call counts from when it has its limiter token
/// until it returns, so an abandoned call stops counting when it returns although its thread
/// runs on. Fails outside a run. Not a checkpoint.
pub fn active_thread_count() -> Result<usize> {
    Ok(ACTIVE.get()?.count.get())
}

/// Waits until no [`run_sync`] call of this run is in progress (Trio's
/// `trio.testing.wait_all_threads_completed`), for tests of code that uses threads. With
/// [`wait_all_tasks_blocked`](crate::lowlevel::wait_all_tasks_blocked) in a loop it waits
/// for everything to settle:
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     trio::open_nursery(|nursery| async move {
///         nursery.start_soon(async {
///             trio::to_thread::run_sync(|| std::thread::sleep(std::time::Duration::from_millis(5)))
///                 .await
///         })?;
///         trio::to_thread::wait_all_threads_completed().await?;
///         assert_eq!(trio::to_thread::active_thread_count()?, 0);
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: a full checkpoint first, then it waits while calls are in progress.
///
/// # Cancel safety
/// Safe: it only waits.
pub async fn wait_all_threads_completed() -> Result<()> {
    crate::lowlevel::checkpoint().await?;
    let calls = ACTIVE.get()?;
    while calls.count.get() != 0 {
        let done = calls.all_done.borrow().clone();
        done.wait().await?;
    }
    Ok(())
}

/// Call numbers (the limiter borrowers), unique in the process.
static NEXT_CALL: AtomicU64 = AtomicU64::new(0);

/// The limiter [`run_sync`] uses when no other is given: one per run, with [`DEFAULT_LIMIT`]
/// tokens. Change its `total_tokens` to allow more (or fewer) threads at once. Fails outside
/// a run. Not a checkpoint.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let limiter = trio::to_thread::current_default_thread_limiter()?;
///     assert_eq!(limiter.total_tokens(), 40);
///     limiter.set_total_tokens(8);
///     assert_eq!(trio::to_thread::current_default_thread_limiter()?.total_tokens(), 8);
///     Ok(())
/// })
/// # }
/// ```
pub fn current_default_thread_limiter() -> Result<CapacityLimiter> {
    DEFAULT_LIMITER.get()
}

/// How long an idle worker thread waits for work before it exits (10 s unless changed).
pub fn idle_timeout() -> Duration {
    cache::idle_timeout()
}

/// Changes how long idle worker threads wait for work before they exit, for the whole
/// process, in seconds or as any [`IntoSeconds`] (a `Duration`, say); `f64::INFINITY` keeps
/// them forever. Workers waiting now use the new value from their next wait on.
///
/// Errors: a [`UsageError`](crate::UsageError) for NaN or a negative timeout.
pub fn set_idle_timeout(timeout: impl IntoSeconds) -> Result<()> {
    let seconds = timeout.into_seconds();
    if seconds.is_nan() || seconds < 0.0 {
        return Err(Error::usage(format!(
            "set_idle_timeout: the timeout must be >= 0 seconds (got {seconds})"
        )));
    }
    cache::set_idle_timeout(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    Ok(())
}

/// The process's worker threads, as counted by [`worker_threads`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerThreads {
    /// Threads waiting for a call (they exit after [`idle_timeout`]).
    pub idle: usize,
    /// Threads running a call, abandoned ones included.
    pub busy: usize,
}

/// Counts the worker threads of the process (every run's). Not a checkpoint.
pub fn worker_threads() -> WorkerThreads {
    let (idle, busy) = cache::counts();
    WorkerThreads { idle, busy }
}

/// Options of a [`run_sync`] call: thread name, cancellation behaviour, limiter.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// # trio::run(async {
/// let answer = trio::to_thread::Options::new()
///     .abandon_on_cancel(true)
///     .run_sync(|| 42)
///     .await?;
/// # assert_eq!(answer, 42);
/// # Ok(())
/// # })
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Options {
    name: Option<CString>,
    abandon_on_cancel: bool,
    limiter: Option<CapacityLimiter>,
}

impl Options {
    /// The defaults: the worker's own thread name, wait for the thread when cancelled, the
    /// run's default limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The OS name of the worker thread while it runs this call (what `ps -T`, `top -H`,
    /// debuggers and profilers show), cut to the platform's limit (15 bytes on Linux) and at
    /// a NUL. Without it the thread keeps its own name, `trio-worker-N`. Trio names threads
    /// after the function and task by default; a Rust closure has no name, and the OS limit
    /// leaves no room for both, so name the calls you want to recognise.
    ///
    /// The name is the OS thread's; `std::thread::current().name()` stays the worker's.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(cache::os_name(&name.into()));
        self
    }

    /// Whether a cancellation abandons the thread (`true`: the call returns `Err(Cancelled)`
    /// at once and the thread runs on, its result dropped) or waits for it (`false`, the
    /// default). Abandon only work that is safe to leave running and whose result nobody
    /// needs (a lookup, a hash), as Trio advises.
    pub fn abandon_on_cancel(mut self, abandon: bool) -> Self {
        self.abandon_on_cancel = abandon;
        self
    }

    /// The limiter whose token the call holds for its thread (instead of the run's default).
    pub fn limiter(mut self, limiter: CapacityLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Runs `f` in a worker thread and returns what it returns; see [`run_sync`].
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and it always yields at least once.
    ///
    /// # Cancel safety
    /// Cancelled while it waits for a limiter token, nothing was started. Cancelled while the
    /// thread runs, it waits for the thread and returns its value (the cancellation is seen at
    /// the next checkpoint), or with `abandon_on_cancel` returns `Err(Cancelled)` and leaves
    /// the thread running; the token is released when the thread ends. Dropping the future
    /// while the thread runs abandons it the same way.
    pub async fn run_sync<F, T>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        checkpoint_if_cancelled().await?;
        let limiter = match self.limiter {
            Some(limiter) => limiter,
            None => current_default_thread_limiter()?,
        };
        let id = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let borrower = Borrower::ToThread(id);
        match limiter.try_acquire_on_behalf_of(borrower.clone()) {
            Ok(()) => {}
            Err(e) if e.is::<WouldBlock>() => {
                limiter.acquire_on_behalf_of(borrower.clone()).await?;
            }
            Err(e) => return Err(e),
        }
        let held = Held { limiter, borrower };
        let token = match current_trio_token() {
            Ok(token) => token,
            Err(e) => {
                held.release()?;
                return Err(e);
            }
        };
        let active = match ActiveCall::begin() {
            Ok(active) => active,
            Err(e) => {
                held.release()?;
                return Err(e);
            }
        };
        let call = Arc::new(Call::new(token, id, self.abandon_on_cancel));
        let mut wait = Wait {
            call: call.clone(),
            held: Some(held),
            _active: active,
            external: ExternalWait::begin().ok(),
            running: None,
            yielded: false,
            cancel_seen: false,
            cancel: sleep_forever(),
        };
        let job = Box::new(ThreadJob {
            f: Some(f),
            outcome: None,
            call,
            name: self.name,
        });
        if let Err(e) = cache::start_thread_soon(job) {
            wait.external = None;
            if let Some(held) = wait.held.take() {
                held.release()?;
            }
            return Err(Error::new(e));
        }
        wait.await
    }
}

/// Runs `f` in a worker thread and returns what it returns, without blocking the run: other
/// tasks go on meanwhile. Trio's `trio.to_thread.run_sync`, with the default [`Options`].
///
/// Use it for blocking calls (files, C libraries, DNS lookups) and CPU-heavy work. Inside
/// `f`, [`from_thread`](crate::from_thread) calls back into the run. A panic in `f` resumes
/// in the calling task. The module docs list the rules (limiter, threads, cancellation).
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let main_thread = std::thread::current().id();
///     let worker = trio::to_thread::run_sync(|| std::thread::current().id()).await?;
///     assert_ne!(worker, main_thread);
///     Ok(())
/// })
/// # }
/// ```
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always yields at least once.
///
/// # Cancel safety
/// Cancelled while it waits for a limiter token, nothing was started. Cancelled while the
/// thread runs, it waits for the thread and returns its value (the cancellation is seen at
/// the next checkpoint). Dropping the future while the thread runs abandons the thread: it
/// runs on, its result is dropped, and its token is released when it ends.
pub async fn run_sync<F, T>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Options::new().run_sync(f).await
}

/// A limiter token held for a call's thread.
struct Held {
    limiter: CapacityLimiter,
    borrower: Borrower,
}

impl Held {
    /// Gives the token back. An error means someone released it on the call's behalf.
    fn release(self) -> Result<()> {
        self.limiter.release_on_behalf_of(self.borrower)
    }
}

/// Releases the token of an abandoned call whose thread has finished (on the trio thread,
/// from the thread's `run_sync_soon`).
fn release_abandoned(id: u64) {
    if let Ok(Some(held)) = ABANDONED.with(|table| table.remove(&id)) {
        let _ = held.release();
    }
}

/// The worker's side of a call.
struct ThreadJob<F, T> {
    f: Option<F>,
    outcome: Option<Outcome<T>>,
    call: Arc<Call<T>>,
    name: Option<CString>,
}

impl<F, T> Job for ThreadJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn thread_name(&self) -> Option<&CStr> {
        self.name.as_deref()
    }

    fn work(&mut self) {
        let _host = HostGuard::enter(self.call.clone());
        if let Some(f) = self.f.take() {
            self.outcome = Some(catch_unwind(AssertUnwindSafe(f)));
        }
    }

    fn deliver(self: Box<Self>) {
        let ThreadJob { outcome, call, .. } = *self;
        let mut state = call.lock();
        if state.abandoned {
            drop(state);
            // Nobody waits for it: the result (or panic) ends here, off the trio thread.
            drop(outcome);
            let id = call.id;
            // After the run has ended there is no token to release.
            let _ = call.token.run_sync_soon(move || release_abandoned(id));
            return;
        }
        state.outcome = outcome;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The calling task's side of a call: waits for the outcome, runs the thread's `from_thread`
/// requests meanwhile, and holds the limiter token and the external wait.
struct Wait<T> {
    call: Arc<Call<T>>,
    /// The token, until the thread's outcome is taken or the call is abandoned.
    held: Option<Held>,
    /// Counts the call in [`active_thread_count`] until it returns (or is dropped).
    _active: ActiveCall,
    /// Counted while the thread runs its own code (not while it waits for this run).
    external: Option<ExternalWait>,
    /// A `from_thread::run` request running in this task.
    running: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// Whether the call has yielded (it always does once: a schedule point).
    yielded: bool,
    /// Whether a cancellation reached the task (it is then ignored, or abandons the call).
    cancel_seen: bool,
    /// Polled while waiting: registers this waker for the task's cancellation, and reports it.
    cancel: SleepForever,
}

impl<T: Send + 'static> Future for Wait<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &mut *self;
        loop {
            if let Some(running) = this.running.as_mut() {
                if running.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.running = None;
            }
            let mut state = this.call.lock();
            if this.yielded {
                if let Some(outcome) = state.outcome.take() {
                    drop(state);
                    return Poll::Ready(this.finish(outcome));
                }
                if let Some(request) = state.requests.pop_front() {
                    drop(state);
                    match request {
                        Request::Sync(f) => f(),
                        Request::Async(request) => {
                            // The thread waits for this task now.
                            this.external = None;
                            this.running = Some(request.start());
                        }
                    }
                    continue;
                }
            }
            let ready = state.outcome.is_some() || !state.requests.is_empty();
            match &mut state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            let thread_runs_own_code = state.waiting_on_trio == 0;
            drop(state);
            if thread_runs_own_code != this.external.is_some() {
                this.external = if thread_runs_own_code {
                    ExternalWait::begin().ok()
                } else {
                    None
                };
            }
            if !this.yielded {
                this.yielded = true;
                if ready {
                    cx.waker().wake_by_ref();
                }
            }
            if !this.cancel_seen {
                // Registers this waker for the task's cancellation, or reports it.
                if let Poll::Ready(Err(error)) = Pin::new(&mut this.cancel).poll(cx) {
                    this.cancel_seen = true;
                    let Some(cancelled) = error.as_cancelled().cloned() else {
                        this.abandon(None);
                        return Poll::Ready(Err(error));
                    };
                    if this.call.abandon_on_cancel && this.abandon(Some(cancelled.clone())) {
                        return Poll::Ready(Err(error));
                    }
                    this.call.lock().cancelled.get_or_insert(cancelled);
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

impl<T> Wait<T> {
    /// The call is over: give the token back and return the outcome.
    fn finish(&mut self, outcome: Outcome<T>) -> Result<T> {
        self.external = None;
        let released = match self.held.take() {
            Some(held) => held.release(),
            None => Ok(()),
        };
        match outcome {
            Ok(value) => released.map(|()| value),
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Gives up on the thread unless its outcome is already in (then returns `false`): the
    /// thread runs on, and its token is released when it ends. Its queued `from_thread`
    /// calls run outside this task.
    fn abandon(&mut self, cancelled: Option<Cancelled>) -> bool {
        let mut state = self.call.lock();
        if state.outcome.is_some() {
            return false;
        }
        state.abandoned = true;
        state.waker = None;
        if let Some(cancelled) = cancelled {
            state.cancelled.get_or_insert(cancelled);
        }
        let requests = std::mem::take(&mut state.requests);
        drop(state);
        self.external = None;
        for request in requests {
            forward(&self.call.token, request);
        }
        if let Some(held) = self.held.take() {
            let id = self.call.id;
            // Outside a run (the run is being torn down) there is nothing left to release.
            let _ = ABANDONED.with(move |table| table.insert(id, held));
        }
        true
    }
}

/// Runs a request the host task will not run, outside it (soon, on the trio thread). If the
/// run is over, dropping the request tells its thread.
fn forward(token: &crate::lowlevel::TrioToken, request: Request) {
    let _ = token.run_sync_soon(move || run_outside_host(request));
}

impl<T> Drop for Wait<T> {
    fn drop(&mut self) {
        if self.held.is_none() {
            return;
        }
        let dropped = Cancelled::new(
            CancelSource::Nursery,
            Some("the task waiting for this thread was dropped".into()),
            None,
        );
        if !self.abandon(Some(dropped)) {
            // The outcome came in but was never taken: the thread is done.
            let outcome = self.call.lock().outcome.take();
            drop(outcome);
            if let Some(held) = self.held.take() {
                let _ = held.release();
            }
        }
    }
}

impl<T> std::fmt::Debug for Wait<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait").field("call", &self.call.id).finish()
    }
}
