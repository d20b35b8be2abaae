//! The async methods of [`Socket`]: Trio's `_nonblocking_helper` as one future type.
//!
//! [`SocketOp`] claims the operation's direction (a second task gets `BusyResourceError`),
//! makes a cancel point, tries the operation once (the system call itself, not readiness),
//! makes a cancel-shielded schedule point if that succeeded, and otherwise waits; after each
//! wake-up it checks for cancellation *before* trying again, so a cancelled receive has
//! received nothing. Operations that take something from the socket (receives, `accept`)
//! make their schedule point before the first attempt instead: what a success takes is
//! returned at once, never held across a yield where a dropped future would lose it.
//!
//! Those steps are [`Nonblocking`], which the Trio-layer stream futures (`stream/ext.rs`) run
//! too, with a stream's conflict detector as the claim.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{Claim, Dir, Repr, SockAddr, Socket};
use crate::lowlevel::{
    CancelShieldedCheckpoint, cancel_shielded_checkpoint, checkpoint_if_cancelled,
};
use crate::{Error, Result, UsageError};

/// Where a [`Nonblocking`] operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not polled yet, or its first cancel point yielded before raising.
    Start,
    /// A taking operation's schedule point, before its first attempt.
    YieldingFirst,
    /// An attempt returned `Pending`, or a taking operation waits before its first attempt.
    Waiting,
    /// The first attempt succeeded at once; in the schedule point.
    Yielding,
    /// Returned its result.
    Done,
}

/// One operation as Trio's `_nonblocking_helper` runs it (see the module docs): the claim of
/// its resource (`G`, a guard, held until the result), a cancel point, one attempt, a
/// schedule point if that succeeded at once, else a wait and a cancel point before each
/// retry. A taking operation makes its schedule point before its first attempt.
pub(crate) struct Nonblocking<T, G> {
    phase: Phase,
    guard: Option<G>,
    /// The value of an attempt that succeeded at once, held over the schedule point.
    ready: Option<T>,
    yield_point: CancelShieldedCheckpoint,
    /// Make the schedule point before the first attempt rather than after it.
    yield_first: bool,
}

impl<T, G> Nonblocking<T, G> {
    /// An operation that puts something in (a send, a connect): Trio's order, the attempt and
    /// then its schedule point.
    pub(crate) fn new() -> Self {
        Nonblocking {
            phase: Phase::Start,
            guard: None,
            ready: None,
            yield_point: cancel_shielded_checkpoint(),
            yield_first: false,
        }
    }

    /// An operation that takes something out (received bytes, a connection): its schedule
    /// point comes before its first attempt, as a success held across a yield would be lost
    /// with a future dropped there (by a `select`, say). Dropped at any point, such an
    /// operation has taken nothing, or has returned it.
    pub(crate) fn taking() -> Self {
        Nonblocking {
            yield_first: true,
            ..Nonblocking::new()
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    fn finish(&mut self, result: Result<T>) -> Poll<Result<T>> {
        self.phase = Phase::Done;
        self.guard = None;
        Poll::Ready(result)
    }

    /// One poll of the operation `what`. `claim` claims the resource on the first poll (`None`:
    /// nothing to claim); `probe`, for a taking operation's first attempt, is `Pending` when
    /// the attempt is certain to wait (the wait is then its schedule point); `attempt` makes
    /// one try. A success at once gets its schedule point; an error at once returns at once.
    ///
    /// Always inlined: it is the whole of each operation's poll, with its closures.
    #[inline(always)]
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        what: &str,
        claim: impl FnOnce() -> Result<Option<G>>,
        probe: impl FnOnce(&mut Context<'_>) -> Poll<Result<()>>,
        attempt: impl FnOnce(&mut Context<'_>) -> Poll<Result<T>>,
    ) -> Poll<Result<T>> {
        match self.phase {
            // The guard is there already when the cancel point below yielded first.
            Phase::Start if self.guard.is_none() => match claim() {
                Ok(guard) => self.guard = guard,
                Err(e) => return self.finish(Err(e)),
            },
            Phase::Start | Phase::Waiting => {}
            Phase::YieldingFirst => {
                ready!(Pin::new(&mut self.yield_point).poll(cx));
                // Yielded already: a success below returns at once. The cancel point comes
                // again, as a cancel delivered during the yield did not wake the task.
                self.phase = Phase::Waiting;
            }
            Phase::Yielding => {
                ready!(Pin::new(&mut self.yield_point).poll(cx));
                return match self.ready.take() {
                    Some(value) => self.finish(Ok(value)),
                    None => self.finish(Err(polled_after_completion(what))),
                };
            }
            Phase::Done => return Poll::Ready(Err(polled_after_completion(what))),
        }
        // The cancel point: before the first attempt, and before every retry after a wake-up
        // (so a cancelled receive has taken nothing).
        match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return self.finish(Err(e)),
            // Cancelled: the cancel point yields before it raises; the next poll raises.
            Poll::Pending => return Poll::Pending,
        }
        if self.yield_first && self.phase == Phase::Start {
            // Certain to wait: the wait is the schedule point, and nothing is held across it.
            if probe(cx).is_pending() {
                self.phase = Phase::Waiting;
                return Poll::Pending;
            }
            self.phase = Phase::YieldingFirst;
            if Pin::new(&mut self.yield_point).poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.phase = Phase::Waiting;
        }
        match attempt(cx) {
            Poll::Ready(Ok(value)) if self.phase == Phase::Start => {
                self.phase = Phase::Yielding;
                match Pin::new(&mut self.yield_point).poll(cx) {
                    Poll::Ready(()) => self.finish(Ok(value)),
                    Poll::Pending => {
                        self.ready = Some(value);
                        Poll::Pending
                    }
                }
            }
            Poll::Ready(result) => self.finish(result),
            Poll::Pending => {
                self.phase = Phase::Waiting;
                Poll::Pending
            }
        }
    }
}

/// A system socket's failed `connect`, with the address it was for (Trio's "Error
/// connecting to {address}: {strerror}", python-trio/trio#1810). It travels inside an
/// `io::Error` of the original's kind; the original (with its errno) is its `source`.
#[derive(Debug)]
struct ConnectFailed {
    addr: String,
    error: io::Error,
}

impl fmt::Display for ConnectFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error connecting to {}: {}", self.addr, self.error)
    }
}

impl std::error::Error for ConnectFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Names `addr` in a system error of `connect`; other errors (a closed socket) pass as they
/// are.
fn connect_error(addr: &SockAddr, e: Error) -> Error {
    match e.downcast::<io::Error>() {
        Ok(error) => {
            let addr = match (addr.as_socket(), addr.as_pathname()) {
                (Some(ip), _) => ip.to_string(),
                (None, Some(path)) => path.display().to_string(),
                (None, None) => format!("{addr:?}"),
            };
            Error::new(io::Error::new(error.kind(), ConnectFailed { addr, error }))
        }
        Err(e) => e,
    }
}

pub(crate) fn polled_after_completion(what: &str) -> Error {
    Error::new(UsageError::new(format!("{what} polled after it finished")))
}

/// One Trio-layer socket operation: `op(socket, cx, first)` makes one attempt, `first` on the
/// attempt that must not wait for readiness before its system call.
struct SocketOp<'a, T, F> {
    socket: &'a Socket,
    dir: Dir,
    /// A cancelled (or abandoned) connect closes the socket.
    close_on_cancel: bool,
    /// The attempt's outcome is the value, unless it is `Cancelled`: a failure at once gets
    /// its schedule point too (Trio's `_try_sync`), while a `Cancelled` from a custom socket
    /// was a checkpoint's already.
    checkpoints: Nonblocking<Result<T>, Claim<'a>>,
    /// An attempt was made: later ones may consult readiness first.
    tried: bool,
    /// Ask the reactor whether the first attempt would wait (see `taking`).
    probe: bool,
    op: F,
}

// Nothing is pinned: the closure is called through `&mut`, the value is moved out.
impl<T, F> Unpin for SocketOp<'_, T, F> {}

impl<'a, T, F> SocketOp<'a, T, F>
where
    F: FnMut(&Socket, &mut Context<'_>, bool) -> Poll<Result<T>>,
{
    fn new(socket: &'a Socket, dir: Dir, op: F) -> Self {
        SocketOp {
            socket,
            dir,
            close_on_cancel: false,
            checkpoints: Nonblocking::new(),
            tried: false,
            probe: false,
            op,
        }
    }

    /// An operation that takes something from the socket: its schedule point comes first,
    /// unless `probe` and the reactor says it will wait (the wait is its schedule point).
    /// A stream receive of zero bytes does not probe: it returns at once with no data.
    fn taking(socket: &'a Socket, probe: bool, op: F) -> Self {
        SocketOp {
            socket,
            dir: Dir::Read,
            close_on_cancel: false,
            checkpoints: Nonblocking::taking(),
            tried: false,
            probe,
            op,
        }
    }
}

impl<T, F> Future for SocketOp<'_, T, F>
where
    F: FnMut(&Socket, &mut Context<'_>, bool) -> Poll<Result<T>>,
{
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let (socket, dir, probe) = (this.socket, this.dir, this.probe);
        let (tried, op) = (&mut this.tried, &mut this.op);
        let polled = this.checkpoints.poll(
            cx,
            "socket operation",
            || socket.claim(dir).map(Some),
            |cx| match probe {
                true => socket.poll_read_hint(cx),
                false => Poll::Ready(Ok(())),
            },
            |cx| {
                let first = !*tried;
                *tried = true;
                op(socket, cx, first).map(|outcome| match outcome {
                    Err(e) if e.is_cancelled() => Err(e),
                    outcome => Ok(outcome),
                })
            },
        );
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(outcome)) => Poll::Ready(outcome),
            Poll::Ready(Err(e)) => {
                if this.close_on_cancel && e.is_cancelled() {
                    socket.close();
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<T, F> Drop for SocketOp<'_, T, F> {
    fn drop(&mut self) {
        // A connect abandoned mid-way leaves the socket in an unknown state.
        if self.close_on_cancel && self.checkpoints.phase() == Phase::Waiting {
            self.socket.close();
        }
    }
}

/// The attempts of the async methods: `first` makes the system call before consulting
/// readiness.
impl Socket {
    fn recv_attempt(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
        first: bool,
    ) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_recv(cx, buf, first),
            Repr::Custom(_) => self.poll_recv(cx, buf),
        }
    }

    fn recv_from_attempt(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
        first: bool,
    ) -> Poll<Result<(usize, SockAddr)>> {
        match &self.repr {
            Repr::Os(os) => os.poll_recv_from(cx, buf, first),
            Repr::Custom(_) => self.poll_recv_from(cx, buf),
        }
    }

    fn send_attempt(&self, cx: &mut Context<'_>, buf: &[u8], first: bool) -> Poll<Result<usize>> {
        match &self.repr {
            Repr::Os(os) => os.poll_send(cx, buf, first),
            Repr::Custom(_) => self.poll_send(cx, buf),
        }
    }

    /// Connects to `addr` (Trio's `connect`). For a stream socket this waits until the
    /// connection is established; the outcome is the socket's `SO_ERROR`.
    ///
    /// Errors: a system socket's failure is an `io::Error` of the system error's kind that
    /// names the address ("Error connecting to 127.0.0.1:2: Connection refused ...", as
    /// Trio's); the system error itself, with its errno, is its
    /// [`source`](std::error::Error::source). [`ClosedResourceError`](crate::ClosedResourceError)
    /// for a closed socket.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first; a schedule point when it finished at once; a cancel point
    /// after each wait.
    ///
    /// # Cancel safety
    /// Cancelled (or dropped) before it finished, it **closes the socket**, as Trio does: a
    /// connect cannot be taken back, and the socket's state is unknown.
    pub fn connect<'a>(&'a self, addr: &'a SockAddr) -> impl Future<Output = Result<()>> + 'a {
        let mut started = false;
        let mut op = SocketOp::new(
            self,
            Dir::Write,
            move |s: &Socket, cx: &mut Context<'_>, _| match &s.repr {
                Repr::Os(os) => {
                    if !started {
                        started = true;
                        if os.start_connect(addr).map_err(|e| connect_error(addr, e))? {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    ready!(os.poll_ready(cx, Dir::Write))?;
                    if os
                        .finish_connect(addr)
                        .map_err(|e| connect_error(addr, e))?
                    {
                        return Poll::Ready(Ok(()));
                    }
                    // Still in progress after a wake-up that was early. Poll again soon
                    // rather than loop here: a socket registered before its connect may
                    // have reported a hang-up that keeps it "writable".
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Repr::Custom(custom) => custom.get()?.poll_connect(cx, addr),
            },
        );
        op.close_on_cancel = true;
        op
    }

    /// Accepts a connection on a listening socket (Trio's `accept`): the new socket (non-
    /// blocking, close-on-exec) and the peer's address.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, then a schedule point before the first attempt, and a
    /// cancel point after each wait.
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it accepted nothing.
    pub fn accept(&self) -> impl Future<Output = Result<(Socket, SockAddr)>> + '_ {
        SocketOp::taking(
            self,
            true,
            |s: &Socket, cx: &mut Context<'_>, first| match &s.repr {
                Repr::Os(os) => os
                    .poll_accept(cx, first)
                    .map_ok(|(os, addr)| (Socket::from_os(os), addr)),
                Repr::Custom(_) => s.poll_accept(cx),
            },
        )
    }

    /// Receives at most `max_bytes` (Trio's `recv`). An empty result from a stream socket is
    /// end-of-file, or `max_bytes` was 0: that returns at once, after the checkpoint, with no
    /// system call (as Python's `recv(0)`; Linux would say "would block").
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, then a schedule point before the first attempt (a success
    /// returns at once, holding nothing across a yield), and a cancel point after each wait.
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it received nothing.
    pub fn recv(&self, max_bytes: usize) -> impl Future<Output = Result<Vec<u8>>> + '_ {
        let mut buf = Vec::new();
        SocketOp::taking(
            self,
            max_bytes > 0,
            move |s: &Socket, cx: &mut Context<'_>, first| {
                if max_bytes == 0 {
                    return Poll::Ready(Ok(Vec::new()));
                }
                reserve(&mut buf, max_bytes)?;
                let n =
                    ready!(s.recv_attempt(cx, &mut buf.spare_capacity_mut()[..max_bytes], first))?;
                // SAFETY: the receive wrote `n` bytes at the start of the spare capacity.
                unsafe { buf.set_len(n) };
                Poll::Ready(Ok(std::mem::take(&mut buf)))
            },
        )
    }

    /// Receives into `buf` (Trio's `recv_into`); returns how many bytes. An empty `buf` returns 0
    /// at once, after the checkpoint, as [`recv`](Self::recv)`(0)` does.
    ///
    /// # Checkpoint
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it received nothing.
    pub fn recv_into<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::taking(
            self,
            !buf.is_empty(),
            move |s: &Socket, cx: &mut Context<'_>, first| {
                if buf.is_empty() {
                    return Poll::Ready(Ok(0));
                }
                s.recv_attempt(cx, as_uninit(buf), first)
            },
        )
    }

    /// Receives a datagram of at most `max_bytes` and its sender (Trio's `recvfrom`).
    ///
    /// # Checkpoint
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it received nothing.
    pub fn recv_from(
        &self,
        max_bytes: usize,
    ) -> impl Future<Output = Result<(Vec<u8>, SockAddr)>> + '_ {
        let mut buf = Vec::new();
        SocketOp::taking(
            self,
            true,
            move |s: &Socket, cx: &mut Context<'_>, first| {
                reserve(&mut buf, max_bytes)?;
                let spare = &mut buf.spare_capacity_mut()[..max_bytes];
                let (n, addr) = ready!(s.recv_from_attempt(cx, spare, first))?;
                // SAFETY: the receive wrote `n` bytes at the start of the spare capacity.
                unsafe { buf.set_len(n) };
                Poll::Ready(Ok((std::mem::take(&mut buf), addr)))
            },
        )
    }

    /// Receives a datagram into `buf` (Trio's `recvfrom_into`): its length and its sender.
    ///
    /// # Checkpoint
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it received nothing.
    pub fn recv_from_into<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = Result<(usize, SockAddr)>> + 'a {
        SocketOp::taking(
            self,
            true,
            move |s: &Socket, cx: &mut Context<'_>, first| {
                s.recv_from_attempt(cx, as_uninit(buf), first)
            },
        )
    }

    /// Receives a message with ancillary data (`recvmsg`; Trio's `recvmsg_into`): the buffers,
    /// control buffer and address slot are in `msg`. Returns the number of bytes received.
    ///
    /// # Checkpoint
    /// As [`recv`](Self::recv).
    ///
    /// # Cancel safety
    /// Safe: cancelled or dropped before it returned, it received nothing.
    pub fn recvmsg<'a>(
        &'a self,
        msg: &'a mut super::MsgHdrMut<'_, '_, '_>,
        flags: i32,
    ) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::taking(
            self,
            false,
            move |s: &Socket, cx: &mut Context<'_>, first| match &s.repr {
                Repr::Os(os) => os.poll_recvmsg(cx, msg, flags, first),
                Repr::Custom(_) => Poll::Ready(Err(custom_unsupported("recvmsg"))),
            },
        )
    }

    /// Sends some of `data` (Trio's `send`); returns how many bytes were sent.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it sent at once, a cancel point after
    /// each wait.
    ///
    /// # Cancel safety
    /// Safe: cancelled, it sent nothing.
    pub fn send<'a>(&'a self, data: &'a [u8]) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::new(
            self,
            Dir::Write,
            move |s: &Socket, cx: &mut Context<'_>, first| s.send_attempt(cx, data, first),
        )
    }

    /// Sends some of the concatenation of `bufs` with one gather write; returns how many
    /// bytes were sent.
    ///
    /// # Checkpoint
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Safe: cancelled, it sent nothing.
    pub fn send_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'a>],
    ) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::new(
            self,
            Dir::Write,
            move |s: &Socket, cx: &mut Context<'_>, first| match &s.repr {
                Repr::Os(os) => os.poll_send_vectored(cx, bufs, first),
                Repr::Custom(_) => s.poll_send_vectored(cx, bufs),
            },
        )
    }

    /// Sends the datagram `data` to `addr` (Trio's `sendto`); returns how many bytes.
    ///
    /// # Checkpoint
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Safe: cancelled, it sent nothing.
    pub fn send_to<'a>(
        &'a self,
        data: &'a [u8],
        addr: &'a SockAddr,
    ) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::new(
            self,
            Dir::Write,
            move |s: &Socket, cx: &mut Context<'_>, first| match &s.repr {
                Repr::Os(os) => os.poll_send_to(cx, data, addr, first),
                Repr::Custom(_) => s.poll_send_to(cx, data, addr),
            },
        )
    }

    /// Sends a message with ancillary data (`sendmsg`; Trio's `sendmsg`); returns how many
    /// bytes were sent.
    ///
    /// # Checkpoint
    /// As [`send`](Self::send).
    ///
    /// # Cancel safety
    /// Safe: cancelled, it sent nothing.
    pub fn sendmsg<'a>(
        &'a self,
        msg: &'a super::MsgHdr<'_, '_, '_>,
        flags: i32,
    ) -> impl Future<Output = Result<usize>> + 'a {
        SocketOp::new(
            self,
            Dir::Write,
            move |s: &Socket, cx: &mut Context<'_>, first| match &s.repr {
                Repr::Os(os) => os.poll_sendmsg(cx, msg, flags, first),
                Repr::Custom(_) => Poll::Ready(Err(custom_unsupported("sendmsg"))),
            },
        )
    }
}

fn custom_unsupported(what: &str) -> Error {
    Error::new(UsageError::new(format!(
        "{what} is not available on a custom socket"
    )))
}

fn reserve(buf: &mut Vec<u8>, max_bytes: usize) -> Result<()> {
    if buf.capacity() < max_bytes && buf.try_reserve_exact(max_bytes).is_err() {
        return Err(Error::new(UsageError::new(format!(
            "recv({max_bytes}): cannot allocate a buffer that large"
        ))));
    }
    Ok(())
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the receive writes only initialised
    // bytes into it, so the slice stays initialised for its owner.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}
