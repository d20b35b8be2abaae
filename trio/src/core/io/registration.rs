//! [`FdRegistration`]: poll-level readiness of one fd, for the types built on the reactor
//! (sockets, pipes, process handles).
//!
//! The protocol is the readiness-bit one of tokio's `PollEvented`: try the non-blocking call
//! while the direction is ready; when the call says "would block", clear the readiness and
//! wait for the next edge. [`FdRegistration::poll_io`] does that loop. A short read also
//! proves the kernel buffer drained, so callers may clear readiness after one as well.
//!
//! A registration holds only plain data (the fd, its key in the reactor, the run's id), so the
//! types that own one can be `Send`; used from another run, it fails with a `UsageError`
//! rather than touching a stranger's registration.

use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};

use super::reactor::{Direction, IoKey, Readiness};
use crate::core::blocked::BlockedOn;
use crate::core::run::{Runner, not_in_run};
use crate::error::{ClosedResourceError, Error, Result};

/// An fd registered with the current run's reactor, for poll-level I/O.
///
/// Register an fd you own (non-blocking) when you wrap it; drop the registration (or call
/// [`deregister`](Self::deregister)) before you close the fd. Tasks blocked on it then get a
/// `ClosedResourceError`.
#[derive(Debug)]
pub struct FdRegistration {
    fd: RawFd,
    key: IoKey,
    run_id: u64,
}

impl FdRegistration {
    /// Registers `fd` with the current run's reactor (or takes over the registration an
    /// earlier `wait_readable` made). Fails outside a run, or if the poller refuses the fd.
    /// Not a checkpoint.
    pub fn new(fd: RawFd) -> Result<Self> {
        Runner::with_current(|runner| {
            let reactor = runner.reactor();
            let key = match reactor.key_of(fd) {
                // An earlier wait registered this fd number, or an fd closed without being
                // deregistered left it behind (its poller registration is gone): re-arming
                // finds out, and registers the fd afresh in the second case.
                Some(key) => reactor.rearm(key)?,
                None => reactor.register(fd)?,
            };
            Ok(FdRegistration {
                fd,
                key,
                run_id: runner.run_id,
            })
        })
        .unwrap_or_else(|| Err(not_in_run("FdRegistration::new")))
    }

    /// The registered fd.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `f` with the reactor of the run this registration belongs to.
    fn with_runner<R>(&self, f: impl FnOnce(&Runner) -> Result<R>) -> Result<R> {
        Runner::with_current(|runner| {
            if runner.run_id != self.run_id {
                return Err(Error::usage(format!(
                    "fd {} is registered with another trio run; an I/O object belongs to the \
                     run that created it",
                    self.fd
                )));
            }
            f(runner)
        })
        .unwrap_or_else(|| Err(not_in_run("I/O on a trio object")))
    }

    fn poll_ready(&self, cx: &Context<'_>, dir: Direction) -> Poll<Result<()>> {
        let polled = self.with_runner(|runner| {
            Ok(
                match runner.reactor().poll_ready(self.key, dir, cx.waker()) {
                    Poll::Ready(Readiness::Ready) => Poll::Ready(Ok(())),
                    Poll::Ready(Readiness::Gone) => Poll::Ready(Err(Error::new(
                        ClosedResourceError::new(format!("fd {} was deregistered", self.fd)),
                    ))),
                    Poll::Pending => {
                        runner.loop_needs_attention();
                        runner.with_polled_task(|task| {
                            task.register_cancel_waker(cx.waker());
                            task.note_blocked(BlockedOn::FdReady {
                                fd: self.fd,
                                writable: matches!(dir, Direction::Write),
                            });
                        });
                        Poll::Pending
                    }
                },
            )
        });
        match polled {
            Ok(poll) => poll,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// `Ready(Ok)` while the fd is readable (an edge came and was not cleared); otherwise
    /// stores `cx`'s waker (replacing an earlier one) for the next edge. Cancellation of the
    /// polling task wakes `cx`'s waker too.
    pub fn poll_read_ready(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        self.poll_ready(cx, Direction::Read)
    }

    /// As [`poll_read_ready`](Self::poll_read_ready), for writing.
    pub fn poll_write_ready(&self, cx: &Context<'_>) -> Poll<Result<()>> {
        self.poll_ready(cx, Direction::Write)
    }

    /// Forgets the read readiness: the fd said "would block".
    pub fn clear_read_ready(&self) {
        let _ = self.with_runner(|runner| {
            runner.reactor().clear_ready(self.key, Direction::Read);
            Ok(())
        });
    }

    /// Forgets the write readiness: the fd said "would block".
    pub fn clear_write_ready(&self) {
        let _ = self.with_runner(|runner| {
            runner.reactor().clear_ready(self.key, Direction::Write);
            Ok(())
        });
    }

    /// Runs the non-blocking `op` while the fd is ready for `writing` (else reading); clears
    /// the readiness and waits whenever `op` says `WouldBlock`. `Interrupted` is retried.
    pub fn poll_io<T>(
        &self,
        cx: &Context<'_>,
        writing: bool,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> Poll<Result<T>> {
        let dir = if writing {
            Direction::Write
        } else {
            Direction::Read
        };
        loop {
            match self.poll_ready(cx, dir) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            match op() {
                Ok(value) => return Poll::Ready(Ok(value)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = self.with_runner(|runner| {
                        runner.reactor().clear_ready(self.key, dir);
                        Ok(())
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(Error::new(e))),
            }
        }
    }

    /// Deregisters the fd: tasks waiting on it get `ClosedResourceError`. Idempotent; also
    /// done on drop. Call it before closing the fd.
    pub fn deregister(&self) {
        let _ = self.with_runner(|runner| {
            runner.reactor().deregister(self.key);
            Ok(())
        });
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        self.deregister();
    }
}
