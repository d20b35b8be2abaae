//! Call back into a run from another thread (Trio's `trio.from_thread`).
//!
//! These functions block the calling thread until the run has done the work, so they are
//! for threads other than the run's own: calling one on the trio thread is a
//! [`UsageError`](crate::UsageError) (it would deadlock).
//!
//! **Which run.** Inside a worker started by [`to_thread::run_sync`] the run (and the task
//! that called it) is known: use [`run_sync`] and [`run`]. Any other thread passes the run's
//! [`TrioToken`] (from [`current_trio_token`](crate::lowlevel::current_trio_token)) to
//! [`run_sync_on`] and [`run_on`]. After the run has finished, every call fails with
//! [`RunFinishedError`].
//!
//! **Where it runs.** From a `to_thread` worker, the function runs *in the calling task*
//! (which is waiting for the worker anyway), so that task's cancel scopes and deadlines apply
//! to it, as in Trio. With an explicit token, or from a worker whose call may be abandoned
//! (`abandon_on_cancel`), a sync function runs between task steps and an async one as a
//! system task, outside any task's cancel scope; a system task is cancelled when the run's
//! main task ends.
//!
//! **Outcomes.** The function's value comes back as `Ok`; an async function's error comes
//! back as is (a `Cancelled` from its checkpoints too); a panic resumes in the calling thread.
//!
//! ```
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let answer = trio::to_thread::run_sync(|| {
//!         // Back on the trio thread, in the task that is waiting for this worker:
//!         let now = trio::from_thread::run_sync(|| trio::current_time())??;
//!         trio::from_thread::run(move || async move {
//!             trio::sleep(0.001).await?;
//!             Ok(now >= 0.0)
//!         })
//!     })
//!     .await??;
//!     assert!(answer);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! [`to_thread::run_sync`]: crate::to_thread::run_sync

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use super::link::{
    AsyncRequest, CatchUnwind, Host, Reply, ReplySender, Request, current_host, reply_channel,
};
use crate::lowlevel::{TrioToken, current_trio_token, spawn_system_task};
use crate::{CancelSource, Cancelled, Error, Result, RunFinishedError, UsageError};

/// Runs `f` on the trio thread of the run this worker thread belongs to, and returns its
/// value; blocks until it has run.
///
/// Only in a thread started by [`to_thread::run_sync`](crate::to_thread::run_sync): `f` runs
/// in the task that is waiting for this thread. Elsewhere use [`run_sync_on`]. `f` must not
/// block: the whole run waits for it.
///
/// Errors: [`UsageError`] on the trio thread or a thread not started by `to_thread`;
/// [`RunFinishedError`] after the run has finished. A panic in `f` resumes here.
pub fn run_sync<F, R>(f: F) -> Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (request, reply) = sync_request(f);
    send(None, request, reply, "trio::from_thread::run_sync")
}

/// Runs `f` on the trio thread of the run `token` belongs to, between task steps, and returns
/// its value; blocks until it has run.
///
/// Errors: [`UsageError`] on the trio thread; [`RunFinishedError`] after the run has
/// finished. A panic in `f` resumes here.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let token = trio::lowlevel::current_trio_token()?;
///     let thread = std::thread::spawn(move || {
///         trio::from_thread::run_sync_on(&token, || trio::current_time().is_ok())
///     });
///     // The run must keep going for the thread's call to be served.
///     while !thread.is_finished() {
///         trio::sleep(0.001).await?;
///     }
///     assert!(thread.join().expect("thread")?);
///     Ok(())
/// })
/// # }
/// ```
pub fn run_sync_on<F, R>(token: &TrioToken, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (request, reply) = sync_request(f);
    send(
        Some(token),
        request,
        reply,
        "trio::from_thread::run_sync_on",
    )
}

/// Calls `f` on the trio thread of the run this worker thread belongs to and runs the future
/// it returns to completion there; blocks until then and returns its result.
///
/// Only in a thread started by [`to_thread::run_sync`](crate::to_thread::run_sync): the
/// future runs in the task that is waiting for this thread, under its cancel scopes (a
/// cancelled task makes the future's checkpoints fail with `Cancelled`, which comes back
/// here). Elsewhere use [`run_on`].
///
/// Errors: those of the future; [`UsageError`] on the trio thread or a thread not started by
/// `to_thread`; [`RunFinishedError`] after the run has finished. A panic resumes here.
pub fn run<F, Fut, R>(f: F) -> Result<R>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: Send + 'static,
{
    let (request, reply) = async_request(f);
    send(None, request, reply, "trio::from_thread::run")
}

/// Calls `f` on the trio thread of the run `token` belongs to and runs the future it returns
/// as a system task; blocks until it has finished and returns its result.
///
/// The system task runs outside any other task's cancel scope, and is cancelled when the
/// run's main task ends. Errors: those of the future; [`UsageError`] on the trio thread;
/// [`RunFinishedError`] after the run has finished (or once it no longer starts system
/// tasks). A panic resumes here.
pub fn run_on<F, Fut, R>(token: &TrioToken, f: F) -> Result<R>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: Send + 'static,
{
    let (request, reply) = async_request(f);
    send(Some(token), request, reply, "trio::from_thread::run_on")
}

/// In a thread started by [`to_thread::run_sync`](crate::to_thread::run_sync): `Err` with
/// the `Cancelled` that reached the calling task while it waited for this thread, if one did.
///
/// A worker polls it to stop early: with the default `abandon_on_cancel(false)` its caller
/// waits for it, so stopping early is how a cancellation takes effect; an abandoned worker
/// learns that nobody wants its result. As in Trio, it reports a cancellation that reached
/// the task even if a shield was raised since. Elsewhere (the trio thread, other threads) it
/// is a [`UsageError`]. Not a checkpoint (it is not async).
pub fn check_cancelled() -> Result<()> {
    match current_host() {
        None => Err(Error::new(UsageError::new(
            "trio::from_thread::check_cancelled only works in a thread started by \
             trio::to_thread::run_sync (it checks the task that started the thread)",
        ))),
        Some(host) => match host.cancelled() {
            Some(cancelled) => Err(Error::new(cancelled)),
            None => Ok(()),
        },
    }
}

fn sync_request<F, R>(f: F) -> (Request, Arc<Reply<R>>)
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (sender, reply) = reply_channel();
    let request = Request::Sync(Box::new(move || {
        sender.send(catch_unwind(AssertUnwindSafe(f)).map(Ok));
    }));
    (request, reply)
}

fn async_request<F, Fut, R>(f: F) -> (Request, Arc<Reply<R>>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: Send + 'static,
{
    let (sender, reply) = reply_channel();
    (Request::Async(Box::new(AsyncCall { f, sender })), reply)
}

struct AsyncCall<F, R> {
    f: F,
    sender: ReplySender<R>,
}

impl<F, Fut, R> AsyncRequest for AsyncCall<F, R>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<R>> + 'static,
    R: Send + 'static,
{
    fn start(self: Box<Self>) -> Pin<Box<dyn Future<Output = ()>>> {
        let AsyncCall { f, sender } = *self;
        Box::pin(async move {
            let outcome = CatchUnwind::new(async move { f().await }).await;
            sender.send(outcome);
        })
    }

    fn fail(self: Box<Self>, error: Error) {
        let AsyncCall { sender, .. } = *self;
        sender.send(Ok(Err(error)));
    }
}

/// Runs a request on the trio thread outside the calling task (from a `run_sync_soon`
/// callback): a sync function right away, an async one as a system task.
pub(super) fn run_outside_host(request: Request) {
    match request {
        Request::Sync(f) => f(),
        Request::Async(request) => {
            // Kept where a failed spawn can still take it back and reply.
            let slot = Rc::new(Cell::new(Some(request)));
            let taken = slot.clone();
            let spawned = spawn_system_task("trio::from_thread::run", async move {
                if let Some(request) = taken.take() {
                    request.start().await;
                }
                Ok(())
            });
            if spawned.is_err() {
                if let Some(request) = slot.take() {
                    request.fail(Error::new(RunFinishedError));
                }
            }
        }
    }
}

fn usage(message: String) -> Error {
    Error::new(UsageError::new(message))
}

/// Sends `request` to the run (to the waiting task of this worker's call when `token` is
/// `None`) and blocks until its reply.
fn send<R>(
    token: Option<&TrioToken>,
    request: Request,
    reply: Arc<Reply<R>>,
    what: &str,
) -> Result<R> {
    let host = current_host();
    // A worker thread is not a trio thread, so the (costlier) check is only made elsewhere.
    if (token.is_some() || host.is_none()) && current_trio_token().is_ok() {
        return Err(usage(format!(
            "{what} blocks until the trio run has done the work, so it cannot be called from \
             the run's own thread (it would deadlock); call it from another thread, e.g. in \
             trio::to_thread::run_sync"
        )));
    }
    let (token, in_host) = match (token, &host) {
        (Some(token), _) => (token.clone(), false),
        (None, Some(host)) => (host.token().clone(), !host.abandon_on_cancel()),
        (None, None) => {
            return Err(usage(format!(
                "{what}: this thread was not started by trio::to_thread::run_sync, so it does \
                 not know which run to call; pass the run's TrioToken to the `_on` form"
            )));
        }
    };
    let mut pending = Some(request);
    if in_host {
        if let (Some(host), Some(request)) = (&host, pending.take()) {
            pending = host.submit(request).err();
        }
    }
    // Outside the host task: while it runs, this worker waits for the run, and the task that
    // waits for the worker should not count it as external work.
    let counted: Option<&Arc<dyn Host>> = match (&pending, &host) {
        (Some(_), Some(host)) if *host.token() == token => Some(host),
        _ => None,
    };
    if let Some(request) = pending {
        if let Some(host) = counted {
            host.waiting_on_trio(1);
        }
        if token
            .run_sync_soon(move || run_outside_host(request))
            .is_err()
        {
            if let Some(host) = counted {
                host.waiting_on_trio(-1);
            }
            return Err(Error::new(RunFinishedError));
        }
    }
    let outcome = reply.wait();
    if let Some(host) = counted {
        host.waiting_on_trio(-1);
    }
    match outcome {
        Some(Ok(result)) => result,
        Some(Err(payload)) => resume_unwind(payload),
        // The request was dropped unanswered: the run ended with it queued, or the task
        // running it was dropped.
        None if token.run_sync_soon(|| {}).is_err() => Err(Error::new(RunFinishedError)),
        None => Err(Error::new(Cancelled::new(
            CancelSource::Nursery,
            Some("the trio task running this call was dropped before it finished".into()),
            None,
        ))),
    }
}
