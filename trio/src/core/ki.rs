//! Ctrl-C as cancellation.
//!
//! While a run is active on the main thread, and SIGINT still has its default disposition,
//! trio installs its own SIGINT handler. The first Ctrl-C sets a flag and writes a byte to a
//! self-pipe that the reactor watches; the run loop then cancels the root cancel scope with
//! source `KeyboardInterrupt`, shielded cleanup runs, and `run` returns
//! `Err(KeyboardInterrupt)`. A second Ctrl-C before the run has finished unwinding ends the
//! process at once by SIGINT itself (default disposition restored, signal raised again), so the
//! parent sees death by SIGINT and a calling shell script stops too.
//!
//! Why raw `sigaction` and not signal-hook's registry: DESIGN.md requires the handler to be
//! *removed* when `run` returns, so that a later Ctrl-C kills the process as usual. A
//! signal-hook registration can be unregistered, but its process-wide handler stays installed
//! and no longer falls back to the default action. Trio restores the previous handler; so do
//! we, by saving the old `sigaction` and putting it back. signal-hook still provides the
//! async-signal-safe death by the default action used for the second Ctrl-C.
//!
//! The handler only touches atomics and `write(2)`s to the pipe, both async-signal-safe. The
//! pipe is created once per process and never closed, so a handler running on another thread
//! while a run ends can never write to a recycled fd.

use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::io::{CTRL_C_TOKEN, Reactor};

static PENDING: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static PIPE: OnceLock<Option<(RawFd, RawFd)>> = OnceLock::new();

extern "C" fn on_sigint(_signal: libc::c_int) {
    if !ACTIVE.load(Ordering::SeqCst) {
        return;
    }
    if PENDING.swap(true, Ordering::SeqCst) {
        // Restores SIG_DFL, unblocks SIGINT and raises it (all async-signal-safe): the process
        // dies by SIGINT here. It returns only if it did not know SIGINT; then `_exit(130)`.
        let _ = signal_hook::low_level::emulate_default_handler(libc::SIGINT);
        signal_hook::low_level::exit(130);
    }
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: errno is thread-local; the handler saves and restores it so the interrupted
        // code never sees the `write` below change it. `__errno_location` is always valid.
        let errno = unsafe { *libc::__errno_location() };
        let byte = 1u8;
        // SAFETY: `fd` is the write end of a pipe that is never closed; writing one byte from
        // a valid stack location is async-signal-safe. A full pipe just fails with EAGAIN.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
    }
}

fn pipe() -> Option<(RawFd, RawFd)> {
    *PIPE.get_or_init(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill in.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        (rc == 0).then_some((fds[0], fds[1]))
    })
}

fn is_main_thread() -> bool {
    // SAFETY: getpid and gettid have no preconditions.
    unsafe { libc::getpid() == libc::gettid() }
}

/// An installed Ctrl-C handler; `uninstall` puts the previous disposition back.
pub(crate) struct CtrlC {
    previous: libc::sigaction,
    read_fd: RawFd,
}

impl CtrlC {
    /// Installs the handler if this is the main thread and SIGINT has its default disposition.
    pub(crate) fn install(reactor: &Reactor) -> Option<CtrlC> {
        if !is_main_thread() || ACTIVE.load(Ordering::SeqCst) {
            return None;
        }
        let (read_fd, write_fd) = pipe()?;
        // SAFETY: a zeroed sigaction is a valid "query" argument; sigaction with a null new
        // action only reads the current disposition into `current`.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: see above; both pointers are valid for the call.
        if unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) } != 0 {
            return None;
        }
        if current.sa_sigaction != libc::SIG_DFL {
            return None;
        }
        drain(read_fd);
        reactor.register_raw(read_fd, CTRL_C_TOKEN).ok()?;
        PIPE_WRITE.store(write_fd, Ordering::SeqCst);
        PENDING.store(false, Ordering::SeqCst);
        ACTIVE.store(true, Ordering::SeqCst);
        // SAFETY: zeroed is a valid starting point for a sigaction; we fill in the handler, an
        // empty mask and SA_RESTART before passing it.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        let mut previous = current;
        // SAFETY: both pointers are valid; the handler is an `extern "C" fn(c_int)` that only
        // does async-signal-safe work.
        if unsafe { libc::sigaction(libc::SIGINT, &action, &mut previous) } != 0 {
            ACTIVE.store(false, Ordering::SeqCst);
            reactor.deregister_raw(read_fd);
            return None;
        }
        Some(CtrlC { previous, read_fd })
    }

    /// Whether a Ctrl-C arrived (one atomic load: the loop checks this every batch, so a busy
    /// run that never waits for I/O still notices Ctrl-C).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        PENDING.load(Ordering::Relaxed)
    }

    /// Whether a Ctrl-C arrived since the last call (drains the pipe).
    pub(crate) fn take_pending(&self) -> bool {
        drain(self.read_fd);
        PENDING.load(Ordering::SeqCst)
    }

    /// Restores the disposition SIGINT had before `install`.
    pub(crate) fn uninstall(self, reactor: &Reactor) {
        // SAFETY: `previous` is the sigaction the kernel gave us in `install`.
        unsafe { libc::sigaction(libc::SIGINT, &self.previous, std::ptr::null_mut()) };
        ACTIVE.store(false, Ordering::SeqCst);
        PENDING.store(false, Ordering::SeqCst);
        reactor.deregister_raw(self.read_fd);
        drain(self.read_fd);
    }
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for 64 bytes; the fd is non-blocking so this stops at EAGAIN.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}
