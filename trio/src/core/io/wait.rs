//! Trio's low-level I/O waits: [`wait_readable`], [`wait_writable`], [`notify_closing`].
//!
//! A wait takes a raw fd. The fd is registered with the run's reactor on its first wait and
//! stays registered until [`notify_closing`] (or until it is found closed and reused). A wait
//! returns when the fd is ready in its direction: at once (after a schedule point) if
//! readiness arrived while nobody waited, otherwise when the next event comes. Before it
//! blocks, a wait re-arms the registration, so the poller reports readiness that is there
//! now even if an earlier wait already used up its edge: calling `wait_readable` twice
//! without reading in between does not hang.
//!
//! One task at a time may wait in each direction of an fd; a second gets
//! [`BusyResourceError`]. [`notify_closing`] wakes both waiters with [`ClosedResourceError`]
//! and forgets the fd: call it before closing an fd that trio has waited on.

use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::reactor::{Direction, IoKey, Readiness};
use crate::core::blocked::BlockedOn;
use crate::core::run::{Runner, not_in_run};
use crate::error::{BusyResourceError, ClosedResourceError, Error, Result};

enum Stage {
    Start,
    /// Readiness was there already and the direction is claimed: the schedule point is
    /// done; the next poll takes the readiness and returns. Dropped before that, the wait
    /// leaves the readiness for the next one.
    Yielding(IoKey),
    /// Claimed the direction and stored a waker.
    Waiting(IoKey),
    Done,
}

/// The future of [`wait_readable`] and [`wait_writable`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitIo {
    fd: RawFd,
    dir: Direction,
    stage: Stage,
}

impl std::fmt::Debug for WaitIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitIo")
            .field("fd", &self.fd)
            .field("until", &self.dir.describe())
            .finish()
    }
}

impl WaitIo {
    /// The first poll: a cancel point, then either a cached readiness (after a schedule
    /// point) or a claim of the direction and a stored waker.
    fn start(&self, cx: &Context<'_>) -> Result<Stage> {
        let (fd, dir) = (self.fd, self.dir);
        Runner::with_current_task(|runner, task| {
            match task.entry_cancel_point(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                // Cancelled: yield first; the next poll starts over and raises.
                Poll::Pending => return Ok(Stage::Start),
            }
            let reactor = runner.reactor();
            let key = match reactor.key_of(fd) {
                Some(key) => key,
                None => reactor.register(fd)?,
            };
            if reactor.is_claimed(key, dir) {
                return Err(Error::new(BusyResourceError::new(format!(
                    "another task is already waiting for fd {fd} to become {}",
                    dir.describe()
                ))));
            }
            if reactor.is_ready(key, dir) {
                reactor.claim(key, dir);
                return Ok(Stage::Yielding(key));
            }
            let key = reactor.rearm(key)?;
            reactor.claim(key, dir);
            match reactor.poll_ready(key, dir, cx.waker()) {
                Poll::Ready(Readiness::Ready) => return Ok(Stage::Yielding(key)),
                Poll::Ready(Readiness::Gone) => return Err(closed_error(fd)),
                Poll::Pending => {}
            }
            runner.loop_needs_attention();
            task.register_cancel_waker(cx.waker());
            task.note_blocked(BlockedOn::Io {
                fd,
                writable: matches!(dir, Direction::Write),
            });
            Ok(Stage::Waiting(key))
        })
        .unwrap_or_else(|| Err(not_in_run("wait_readable/wait_writable")))
    }

    /// A later poll while waiting: done if the event came, gone if the fd was closed,
    /// `Cancelled` if the task's scope was cancelled (readiness wins over cancellation).
    fn resume(&self, key: IoKey, cx: &Context<'_>) -> Poll<Result<()>> {
        let (fd, dir) = (self.fd, self.dir);
        Runner::with_current_task(|runner, task| {
            let reactor = runner.reactor();
            if reactor.take_ready(key, dir) {
                reactor.release(key, dir);
                return Poll::Ready(Ok(()));
            }
            match reactor.poll_ready(key, dir, cx.waker()) {
                Poll::Ready(Readiness::Gone) => return Poll::Ready(Err(closed_error(fd))),
                // Raced in since the check above: nothing can, on one thread.
                Poll::Ready(Readiness::Ready) => {}
                Poll::Pending => {}
            }
            let status = task.current_status.borrow().clone();
            if status.is_cancelled() {
                reactor.release(key, dir);
                return Poll::Ready(Err(Error::new(status.cancelled_error())));
            }
            task.register_cancel_waker(cx.waker());
            task.note_blocked(BlockedOn::Io {
                fd,
                writable: matches!(dir, Direction::Write),
            });
            Poll::Pending
        })
        .unwrap_or_else(|| Poll::Ready(Err(not_in_run("wait_readable/wait_writable"))))
    }
}

fn closed_error(fd: RawFd) -> Error {
    Error::new(ClosedResourceError::new(format!(
        "fd {fd} was closed while a task waited for it"
    )))
}

impl Future for WaitIo {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Done => Poll::Ready(Err(Error::usage("I/O wait polled after it finished"))),
            Stage::Yielding(key) => {
                let dir = self.dir;
                Runner::with_current(|runner| {
                    runner.reactor().take_ready(key, dir);
                    runner.reactor().release(key, dir);
                });
                Poll::Ready(Ok(()))
            }
            Stage::Start => match self.start(cx) {
                Err(e) => Poll::Ready(Err(e)),
                Ok(stage) => {
                    if matches!(stage, Stage::Yielding(_)) {
                        crate::core::run::schedule_point(cx);
                    }
                    self.stage = stage;
                    Poll::Pending
                }
            },
            Stage::Waiting(key) => {
                let polled = self.resume(key, cx);
                if polled.is_pending() {
                    self.stage = Stage::Waiting(key);
                }
                polled
            }
        }
    }
}

impl Drop for WaitIo {
    fn drop(&mut self) {
        // Readiness that arrived (or was found) but not yet returned stays for the next wait.
        if let Stage::Waiting(key) | Stage::Yielding(key) = self.stage {
            let dir = self.dir;
            Runner::with_current(|runner| runner.reactor().release(key, dir));
        }
    }
}

/// Waits until `fd` is readable.
///
/// Returns at once (after a schedule point) if readiness arrived since the last wait;
/// otherwise blocks until the poller reports the fd readable. A waiting task that is
/// cancelled leaves the wait. The fd stays registered with the run until
/// [`notify_closing`].
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always yields at least once.
///
/// # Cancel safety
/// Safe: cancelling or dropping the wait unregisters it, and readiness it saw but did not
/// return stays for the next wait.
pub fn wait_readable(fd: RawFd) -> WaitIo {
    WaitIo {
        fd,
        dir: Direction::Read,
        stage: Stage::Start,
    }
}

/// Waits until `fd` is writable. See [`wait_readable`].
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always yields at least once.
///
/// # Cancel safety
/// Safe, as [`wait_readable`].
pub fn wait_writable(fd: RawFd) -> WaitIo {
    WaitIo {
        fd,
        dir: Direction::Write,
        stage: Stage::Start,
    }
}

/// Tells trio that `fd` is about to be closed: tasks waiting on it get
/// [`ClosedResourceError`], and the fd is forgotten (so a new fd with the same number starts
/// fresh). Not a checkpoint. Does nothing outside a run or for an fd trio never waited on.
pub fn notify_closing(fd: RawFd) {
    Runner::with_current(|runner| {
        let reactor = runner.reactor();
        if let Some(key) = reactor.key_of(fd) {
            reactor.deregister(key);
        }
    });
}
