//! [`PipeSendStream`] and [`PipeReceiveStream`]: trio streams over the ends of a pipe (a
//! child's standard streams, or any pipe or FIFO fd), on the reactor through
//! [`FdRegistration`].
//!
//! Unsafe code: `poll_receive` reads into the uninitialised part of its `ReceiveBuf`
//! (`unfilled_mut`, then `assume_init` of what `read(2)` reported written). The invariant is
//! local: the count comes from the kernel and never exceeds the slice handed to it.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::lowlevel::FdRegistration;
use crate::stream::{AsyncResource, ConflictDetector, ReceiveBuf, ReceiveStream, SendStream};
use crate::{BrokenResourceError, ClosedResourceError, Error, Result, sys};

/// An open pipe end: the registration goes first when dropped, so the reactor forgets the fd
/// (waking its waiters) before the fd is closed.
struct Open {
    registration: FdRegistration,
    fd: OwnedFd,
}

struct PipeEnd {
    open: RefCell<Option<Open>>,
    detector: ConflictDetector,
}

impl PipeEnd {
    fn new(fd: OwnedFd, detector: ConflictDetector) -> Result<Rc<Self>> {
        sys::set_nonblocking(fd.as_raw_fd())?;
        let registration = FdRegistration::new(fd.as_raw_fd())?;
        Ok(Rc::new(PipeEnd {
            open: RefCell::new(Some(Open { registration, fd })),
            detector,
        }))
    }

    fn close(&self) {
        let open = self.open.borrow_mut().take();
        drop(open);
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.open.borrow().as_ref().map(|o| o.fd.as_raw_fd())
    }

    fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(name);
        match self.raw_fd() {
            Some(fd) => d.field("fd", &fd),
            None => d.field("closed", &true),
        };
        d.finish()
    }
}

fn closed(what: &str) -> Error {
    Error::new(ClosedResourceError::new(format!(
        "{what} on a pipe that was closed"
    )))
}

/// The sending end of a pipe as a [`SendStream`] (Trio's `FdStream` used for writing): a
/// child's stdin ([`Process::stdin`](crate::process::Process::stdin)), or any pipe, FIFO or
/// character device fd through [`from_fd`](Self::from_fd).
///
/// A cheap handle: clones share the pipe end, and closing one closes it for all. The fd closes
/// when it is closed ([`aclose`](crate::AsyncResourceExt::aclose)) or the last clone is
/// dropped. Sending after the reader closed its end fails with
/// [`BrokenResourceError`].
#[derive(Clone)]
pub struct PipeSendStream {
    end: Rc<PipeEnd>,
}

impl PipeSendStream {
    /// Wraps the write end of a pipe (or any fd that supports non-blocking writes and
    /// `poll`). Puts it in non-blocking mode, which every fd sharing its open file
    /// description sees (a terminal shared with other processes, for one); registers it with
    /// the current run. Fails outside a run.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Ok(PipeSendStream {
            end: PipeEnd::new(
                fd,
                ConflictDetector::new("another task is already sending on this pipe"),
            )?,
        })
    }

    /// The fd, while the stream is open.
    pub fn as_raw_fd(&self) -> Option<RawFd> {
        self.end.raw_fd()
    }
}

impl fmt::Debug for PipeSendStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.end.fmt("PipeSendStream", f)
    }
}

impl AsyncResource for PipeSendStream {
    /// Closes the pipe end at once (a pipe has nothing to flush): tasks blocked on it get
    /// [`ClosedResourceError`], and the reader sees end-of-file once it has read what was sent.
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.end.close();
        Poll::Ready(Ok(()))
    }
}

/// The stream error for an OS error of a read or write (Trio's `FdStream`): `EBADF` is
/// [`ClosedResourceError`], any other is [`BrokenResourceError`] (naming the OS error), so a
/// stream user meets only the stream errors. Errors that are not OS errors (`Cancelled`, a
/// closed registration) pass through.
fn stream_error(error: Error, what: &str) -> Error {
    match error.downcast::<io::Error>() {
        Ok(io) if io.raw_os_error() == Some(libc::EBADF) => Error::new(ClosedResourceError::new(
            format!("{what} on a pipe whose fd was already closed"),
        )),
        Ok(io) if io.kind() == io::ErrorKind::BrokenPipe => Error::new(BrokenResourceError::new(
            "the pipe's reading end was closed",
        )),
        Ok(io) => Error::new(BrokenResourceError::new(format!(
            "{what} on a pipe failed: {io}"
        ))),
        Err(error) => error,
    }
}

impl SendStream for PipeSendStream {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let open = self.end.open.borrow();
        let Some(open) = open.as_ref() else {
            return Poll::Ready(Err(closed("send")));
        };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let fd = open.fd.as_raw_fd();
        open.registration
            .poll_io(cx, true, || sys::write(fd, buf))
            .map_err(|e| stream_error(e, "send"))
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let open = self.end.open.borrow();
        let Some(open) = open.as_ref() else {
            return Poll::Ready(Err(closed("wait_send_all_might_not_block")));
        };
        open.registration.poll_write_ready(cx)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.end.detector)
    }
}

/// The receiving end of a pipe as a [`ReceiveStream`] (Trio's `FdStream` used for reading): a
/// child's stdout or stderr ([`Process::stdout`](crate::process::Process::stdout)), or any
/// pipe, FIFO or character device fd through [`from_fd`](Self::from_fd).
///
/// A cheap handle, as [`PipeSendStream`]. Receiving gives end-of-file once every writer has
/// closed its end (for a child's output: the child and every process that inherited it
/// exited or closed it).
#[derive(Clone)]
pub struct PipeReceiveStream {
    end: Rc<PipeEnd>,
}

impl PipeReceiveStream {
    /// Wraps the read end of a pipe (or any fd that supports non-blocking reads and `poll`),
    /// as [`PipeSendStream::from_fd`].
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Ok(PipeReceiveStream {
            end: PipeEnd::new(
                fd,
                ConflictDetector::new("another task is already receiving on this pipe"),
            )?,
        })
    }

    /// The fd, while the stream is open.
    pub fn as_raw_fd(&self) -> Option<RawFd> {
        self.end.raw_fd()
    }
}

impl fmt::Debug for PipeReceiveStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.end.fmt("PipeReceiveStream", f)
    }
}

impl AsyncResource for PipeReceiveStream {
    /// Closes the pipe end at once: tasks blocked on it get [`ClosedResourceError`], and a
    /// writer's next send fails with [`BrokenResourceError`].
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.end.close();
        Poll::Ready(Ok(()))
    }
}

impl ReceiveStream for PipeReceiveStream {
    /// `Pending` when the reactor says the pipe has nothing to read (no system call).
    fn poll_receive_ready(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.end.open.borrow().as_ref() {
            Some(open) => open.registration.poll_read_ready(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let open = self.end.open.borrow();
        let Some(open) = open.as_ref() else {
            return Poll::Ready(Err(closed("receive")));
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let fd = open.fd.as_raw_fd();
        let polled = open.registration.poll_io(cx, false, || {
            // SAFETY: read(2) writes only initialised bytes into the slice.
            let unfilled = unsafe { buf.unfilled_mut() };
            sys::read_uninit(fd, unfilled)
        });
        match polled {
            Poll::Ready(Ok(n)) => {
                // SAFETY: the kernel wrote `n` bytes into the unfilled part.
                unsafe { buf.assume_init(n) };
                if let Err(e) = buf.advance(n) {
                    return Poll::Ready(Err(e));
                }
                // Readiness stays after a short read: the pipe may be drained of data while
                // the writer's hangup (end-of-file) came with the same edge, and no new edge
                // would announce it.
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(stream_error(e, "receive"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.end.detector)
    }
}

/// A new pipe as a pair of trio streams: (sending end, receiving end). Both ends are
/// close-on-exec; fails outside a run.
pub fn pipe() -> Result<(PipeSendStream, PipeReceiveStream)> {
    let (read, write) = sys::owned_nonblocking_pipe()?;
    Ok((
        PipeSendStream::from_fd(write)?,
        PipeReceiveStream::from_fd(read)?,
    ))
}
