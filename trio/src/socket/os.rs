//! A system socket: its fd, owned, and its registration with the reactor.
//!
//! The fd is owned through a `Cell<RawFd>` (-1 once closed) rather than a `socket2::Socket`,
//! because Trio closes a socket through a shared reference (`close()` while another task waits
//! on it) and `Socket` must stay `Send` (no `RefCell` around an owner that moves out). Each
//! call borrows the fd as a `socket2::Socket` that is never dropped (`Sys`), for the length of
//! one system call: nothing in between can close it, since no user code runs there. The one
//! borrow that outlives a call, [`Socket2Ref`], is counted, and a close during it defers the
//! `close(2)` until the last borrow ends, so the fd number is never reused under a borrower.
//!
//! Readiness follows tokio's protocol over [`FdRegistration`]: a poll method tries the call
//! only while the direction is known to be ready, and clears the readiness when the call says
//! "would block" or when a stream socket gives a short read or write (on epoll and kqueue that
//! proves the kernel buffer drained or filled; the next edge sets it again). The Trio-layer
//! futures pass `try_first`, which makes the first attempt without consulting readiness while
//! the fd is not registered yet (it is registered lazily, at its first wait), as Trio does: so
//! an error (no `listen` before `accept`) is reported at once instead of after a wait that may
//! never end. Once registered, the reactor's readiness decides, as for poll-level callers.

use std::cell::{Cell, OnceCell};
use std::io::{self, IoSlice};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::Deref;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::task::{Context, Poll};

use socket2::{Domain, Protocol, SockAddr, Type};

use super::{Dir, closed_error};
use crate::lowlevel::{FdRegistration, notify_closing};
use crate::{Error, Result};

/// `send` flags: no `SIGPIPE` for a peer that is gone (macOS sets `SO_NOSIGPIPE` instead).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: libc::c_int = 0;

pub(crate) struct OsSocket {
    fd: Cell<RawFd>,
    reg: OnceCell<FdRegistration>,
    ty: Type,
    /// `SOCK_STREAM`: a short read or write proves the buffer drained or filled.
    stream: bool,
    /// Per direction (`Dir::bit`): the last call in that direction succeeded and nothing
    /// since said the buffer drained or filled, so the next call tries the system call
    /// without asking the reactor first (it would find the direction ready). A hint only:
    /// a call that then would block clears it and waits as usual.
    hot: Cell<u8>,
    /// Live [`Socket2Ref`]s.
    borrows: Cell<u32>,
    /// An fd closed while borrowed, waiting for the last borrow to end.
    deferred: Cell<RawFd>,
}

/// The fd as a `socket2::Socket` that does not close it.
struct Sys(ManuallyDrop<socket2::Socket>);

impl Sys {
    /// # Safety
    /// `fd` is an open socket that stays open while the value lives.
    unsafe fn new(fd: RawFd) -> Sys {
        // SAFETY: the caller keeps `fd` open; `ManuallyDrop` keeps this value from closing it.
        Sys(ManuallyDrop::new(unsafe {
            socket2::Socket::from_raw_fd(fd)
        }))
    }
}

impl Deref for Sys {
    type Target = socket2::Socket;
    fn deref(&self) -> &socket2::Socket {
        &self.0
    }
}

/// The system socket of a [`Socket`](super::Socket), borrowed (see
/// [`Socket::socket2`](super::Socket::socket2)). Derefs to `socket2::Socket`.
pub struct Socket2Ref<'a> {
    owner: &'a OsSocket,
    sys: Sys,
}

impl Deref for Socket2Ref<'_> {
    type Target = socket2::Socket;
    fn deref(&self) -> &socket2::Socket {
        &self.sys
    }
}

impl std::fmt::Debug for Socket2Ref<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket2Ref")
            .field("fd", &self.owner.deferred_or_current())
            .finish()
    }
}

impl Drop for Socket2Ref<'_> {
    fn drop(&mut self) {
        let left = self.owner.borrows.get() - 1;
        self.owner.borrows.set(left);
        if left == 0 {
            let fd = self.owner.deferred.replace(-1);
            if fd >= 0 {
                close_fd(fd);
            }
        }
    }
}

fn close_fd(fd: RawFd) {
    // SAFETY: the fd is owned by the socket that is closing it, and no borrow of it is alive
    // (the callers check); it is closed exactly once, since its owner forgot it first.
    drop(unsafe { socket2::Socket::from_raw_fd(fd) });
}

/// A new system socket: non-blocking and close-on-exec (and no `SIGPIPE` on macOS).
fn new_sys(domain: Domain, ty: Type, protocol: Option<Protocol>) -> io::Result<socket2::Socket> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket2::Socket::new(domain, ty.nonblocking(), protocol)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let socket = socket2::Socket::new(domain, ty, protocol)?;
        socket.set_nonblocking(true)?;
        Ok(socket)
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl OsSocket {
    pub(crate) fn new(domain: Domain, ty: Type, protocol: Option<Protocol>) -> Result<OsSocket> {
        Ok(Self::own(new_sys(domain, ty, protocol)?, ty))
    }

    pub(crate) fn pair(
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> Result<(OsSocket, OsSocket)> {
        let (a, b) = socket2::Socket::pair(domain, ty, protocol)?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((Self::own(a, ty), Self::own(b, ty)))
    }

    pub(crate) fn wrap(socket: socket2::Socket) -> Result<OsSocket> {
        socket.set_nonblocking(true)?;
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        socket.set_nosigpipe(true)?;
        let ty = socket.r#type()?;
        Ok(Self::own(socket, ty))
    }

    fn own(socket: socket2::Socket, ty: Type) -> OsSocket {
        OsSocket {
            fd: Cell::new(socket.into_raw_fd()),
            reg: OnceCell::new(),
            ty,
            stream: ty == Type::STREAM,
            hot: Cell::new(0),
            borrows: Cell::new(0),
            deferred: Cell::new(-1),
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.get()
    }

    fn deferred_or_current(&self) -> RawFd {
        match self.fd.get() {
            -1 => self.deferred.get(),
            fd => fd,
        }
    }

    pub(crate) fn socket_type(&self) -> Type {
        self.ty
    }

    /// Runs one sync call on the socket.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&socket2::Socket) -> io::Result<T>) -> Result<T> {
        let fd = self.fd.get();
        if fd < 0 {
            return Err(closed_error());
        }
        // SAFETY: `fd` is open and owned by `self`; `f` is a socket2 call, which cannot close
        // it (only `self.close()` does, and `f` cannot reach `self`).
        let sys = unsafe { Sys::new(fd) };
        f(&sys).map_err(Error::new)
    }

    pub(crate) fn borrow(&self) -> Result<Socket2Ref<'_>> {
        let fd = self.fd.get();
        if fd < 0 {
            return Err(closed_error());
        }
        self.borrows.set(self.borrows.get() + 1);
        Ok(Socket2Ref {
            owner: self,
            // SAFETY: the borrow count keeps `close` from closing the fd until this value is
            // dropped (it defers the close to the last borrow's drop).
            sys: unsafe { Sys::new(fd) },
        })
    }

    /// Takes the fd out (for `into_socket2`): deregistered, not closed.
    pub(crate) fn take(&self) -> Result<socket2::Socket> {
        if self.borrows.get() > 0 {
            return Err(Error::usage(
                "into_socket2: the socket is still borrowed through socket2()",
            ));
        }
        let fd = self.fd.replace(-1);
        if fd < 0 {
            return Err(closed_error());
        }
        self.forget_registration(fd);
        // SAFETY: `self` owned the fd and has just forgotten it, so ownership moves.
        Ok(unsafe { socket2::Socket::from_raw_fd(fd) })
    }

    fn forget_registration(&self, fd: RawFd) {
        match self.reg.get() {
            Some(reg) => reg.deregister(),
            // Someone may have waited on the raw fd (`lowlevel::wait_readable`).
            None => notify_closing(fd),
        }
    }

    pub(crate) fn close(&self) {
        let fd = self.fd.replace(-1);
        if fd < 0 {
            return;
        }
        self.forget_registration(fd);
        if self.borrows.get() > 0 {
            self.deferred.set(fd);
        } else {
            close_fd(fd);
        }
    }

    fn registration(&self, fd: RawFd) -> Result<&FdRegistration> {
        if let Some(reg) = self.reg.get() {
            return Ok(reg);
        }
        let reg = FdRegistration::new(fd)?;
        Ok(self.reg.get_or_init(move || reg))
    }

    /// Ready when `dir` is ready: a cached edge, or the next one (the waker is stored).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Dir) -> Poll<Result<()>> {
        let fd = self.fd.get();
        if fd < 0 {
            return Poll::Ready(Err(closed_error()));
        }
        match self.registration(fd) {
            Ok(reg) => poll_reg(reg, cx, dir),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Ready when `dir` is ready right now: the cached readiness, confirmed by a
    /// zero-timeout `poll` (readiness may be stale when someone used the fd directly).
    pub(crate) fn poll_ready_now(&self, cx: &mut Context<'_>, dir: Dir) -> Poll<Result<()>> {
        loop {
            match self.poll_ready(cx, dir) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            match crate::sys::net::ready_now(self.fd.get(), dir == Dir::Write) {
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => self.clear_ready(dir),
                Err(e) => return Poll::Ready(Err(Error::new(e))),
            }
        }
    }

    /// `Pending` only when a read is certain to wait: the fd is registered, the last read
    /// did not prove data left, and the reactor's read readiness is cleared (the waker is
    /// stored for the next edge). `Ready` otherwise, including "unknown": no system call.
    pub(crate) fn poll_read_hint(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.fd.get() < 0 || self.hot.get() & Dir::Read.bit() != 0 {
            return Poll::Ready(Ok(()));
        }
        match self.reg.get() {
            Some(reg) => poll_reg(reg, cx, Dir::Read),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Forgets the readiness of `dir` (the last call used it up).
    #[inline]
    pub(crate) fn clear_ready(&self, dir: Dir) {
        self.hot.set(self.hot.get() & !dir.bit());
        if let Some(reg) = self.reg.get() {
            match dir {
                Dir::Read => reg.clear_read_ready(),
                Dir::Write => reg.clear_write_ready(),
            }
        }
    }

    /// The readiness loop around the non-blocking `op` (see the module docs).
    #[inline]
    pub(crate) fn poll_io<T>(
        &self,
        cx: &mut Context<'_>,
        dir: Dir,
        try_first: bool,
        mut op: impl FnMut(&socket2::Socket) -> io::Result<T>,
    ) -> Poll<Result<T>> {
        let fd = self.fd.get();
        if fd < 0 {
            return Poll::Ready(Err(closed_error()));
        }
        // SAFETY: `fd` is open and owned by `self`; `op` makes system calls on it and cannot
        // reach `self` to close it.
        let sys = unsafe { Sys::new(fd) };
        // `try_first` matters only while the reactor knows nothing of the fd: once it is
        // registered, its readiness says whether the call could succeed, and a direction that a
        // short read, a short write or "would block" proved drained waits for the next edge
        // without a system call that would only say "would block" again.
        let mut need_ready =
            self.hot.get() & dir.bit() == 0 && (!try_first || self.reg.get().is_some());
        loop {
            if need_ready {
                let reg = match self.registration(fd) {
                    Ok(reg) => reg,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                match poll_reg(reg, cx, dir) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match op(&sys) {
                Ok(value) => {
                    self.hot.set(self.hot.get() | dir.bit());
                    return Poll::Ready(Ok(value));
                }
                Err(e) if would_block(&e) => {
                    self.clear_ready(dir);
                    need_ready = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(Error::new(e))),
            }
        }
    }

    #[inline]
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
        try_first: bool,
    ) -> Poll<Result<usize>> {
        let len = buf.len();
        let polled = self.poll_io(cx, Dir::Read, try_first, |s| s.recv(buf));
        if let Poll::Ready(Ok(n)) = polled {
            if self.stream && n > 0 && n < len {
                self.clear_ready(Dir::Read);
            }
        }
        polled
    }

    pub(crate) fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
        try_first: bool,
    ) -> Poll<Result<(usize, SockAddr)>> {
        self.poll_io(cx, Dir::Read, try_first, |s| s.recv_from(buf))
    }

    #[inline]
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        try_first: bool,
    ) -> Poll<Result<usize>> {
        let polled = self.poll_io(cx, Dir::Write, try_first, |s| {
            s.send_with_flags(buf, SEND_FLAGS)
        });
        self.after_send(polled, buf.len())
    }

    pub(crate) fn poll_send_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        try_first: bool,
    ) -> Poll<Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        let polled = self.poll_io(cx, Dir::Write, try_first, |s| {
            s.send_vectored_with_flags(bufs, SEND_FLAGS)
        });
        self.after_send(polled, len)
    }

    fn after_send(&self, polled: Poll<Result<usize>>, len: usize) -> Poll<Result<usize>> {
        if let Poll::Ready(Ok(n)) = polled {
            if self.stream && n < len {
                self.clear_ready(Dir::Write);
            }
        }
        polled
    }

    pub(crate) fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        addr: &SockAddr,
        try_first: bool,
    ) -> Poll<Result<usize>> {
        self.poll_io(cx, Dir::Write, try_first, |s| {
            s.send_to_with_flags(buf, addr, SEND_FLAGS)
        })
    }

    pub(crate) fn poll_sendmsg(
        &self,
        cx: &mut Context<'_>,
        msg: &socket2::MsgHdr<'_, '_, '_>,
        flags: i32,
        try_first: bool,
    ) -> Poll<Result<usize>> {
        self.poll_io(cx, Dir::Write, try_first, |s| {
            s.sendmsg(msg, flags | SEND_FLAGS)
        })
    }

    pub(crate) fn poll_recvmsg(
        &self,
        cx: &mut Context<'_>,
        msg: &mut socket2::MsgHdrMut<'_, '_, '_>,
        flags: i32,
        try_first: bool,
    ) -> Poll<Result<usize>> {
        self.poll_io(cx, Dir::Read, try_first, |s| s.recvmsg(msg, flags))
    }

    pub(crate) fn poll_accept(
        &self,
        cx: &mut Context<'_>,
        try_first: bool,
    ) -> Poll<Result<(OsSocket, SockAddr)>> {
        let ty = self.ty;
        self.poll_io(cx, Dir::Read, try_first, accept_sys)
            .map_ok(|(socket, addr)| (Self::own(socket, ty), addr))
    }

    /// Starts a non-blocking connect: `Ok(true)` if it finished at once, `Ok(false)` if it
    /// is in progress (wait for writability, then [`finish_connect`](Self::finish_connect)).
    pub(crate) fn start_connect(&self, addr: &SockAddr) -> Result<bool> {
        let fd = self.fd.get();
        if fd < 0 {
            return Err(closed_error());
        }
        // SAFETY: as in `with`.
        let sys = unsafe { Sys::new(fd) };
        match sys.connect(addr) {
            Ok(()) => Ok(true),
            Err(e) if connect_in_progress(&e) => Ok(false),
            // Connected already (a retry after the wait that raced with completion).
            Err(e) if e.raw_os_error() == Some(libc::EISCONN) => Ok(true),
            Err(e) => Err(Error::new(e)),
        }
    }

    /// After writability: the connect's outcome (`SO_ERROR`), `Ok(false)` if the wake-up was
    /// early and the connect still runs.
    pub(crate) fn finish_connect(&self, addr: &SockAddr) -> Result<bool> {
        if let Some(e) = self.with(|s| s.take_error())? {
            return Err(Error::new(e));
        }
        match self.with(|s| s.peer_addr()) {
            Ok(_) => Ok(true),
            Err(e)
                if e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.raw_os_error() == Some(libc::ENOTCONN)) =>
            {
                // Not connected and no error: either the readiness was stale, or (a Unix
                // socket whose listener's queue was full) the connect never started. Asking
                // again tells which.
                self.clear_ready(Dir::Write);
                self.start_connect(addr)
            }
            Err(e) => Err(e),
        }
    }
}

fn connect_in_progress(e: &io::Error) -> bool {
    would_block(e)
        || matches!(
            e.raw_os_error(),
            Some(libc::EINPROGRESS) | Some(libc::EALREADY) | Some(libc::EINTR)
        )
}

fn accept_sys(s: &socket2::Socket) -> io::Result<(socket2::Socket, SockAddr)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        s.accept4(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (socket, addr) = s.accept()?;
        socket.set_nonblocking(true)?;
        Ok((socket, addr))
    }
}

#[inline]
fn poll_reg(reg: &FdRegistration, cx: &mut Context<'_>, dir: Dir) -> Poll<Result<()>> {
    match dir {
        Dir::Read => reg.poll_read_ready(cx),
        Dir::Write => reg.poll_write_ready(cx),
    }
}

impl Drop for OsSocket {
    fn drop(&mut self) {
        self.close();
        // A `Socket2Ref` cannot outlive `self`, so nothing is deferred now.
        let fd = self.deferred.replace(-1);
        if fd >= 0 {
            close_fd(fd);
        }
    }
}
