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
//! While a signal receiver for SIGINT is open (`trio::open_signal_receiver`), its handler
//! replaces this one and Ctrl-C goes to the receiver; closing the receiver puts this handler
//! back. If the run ends first, `uninstall` leaves the receiver's handler alone, and this
//! handler, put back later when no run is active, acts as the default disposition.
//!
//! The handler only touches atomics and `write(2)`s to the pipe, both async-signal-safe. The
//! pipe is created once per process and never closed, so a handler running on another thread
//! while a run ends can never write to a recycled fd.

use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::io::reactor::{CTRL_C_TOKEN, Reactor};
use crate::sys;

static PENDING: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static PIPE: OnceLock<Option<(RawFd, RawFd)>> = OnceLock::new();

extern "C" fn on_sigint(_signal: libc::c_int) {
    if !ACTIVE.load(Ordering::SeqCst) {
        // Installed but stale: put back by someone who saved it while a run was active (a
        // signal receiver closed after its run ended). Outside a run Ctrl-C has its default
        // effect, so act as the default would (as for a second Ctrl-C below).
        let _ = signal_hook::low_level::emulate_default_handler(libc::SIGINT);
        signal_hook::low_level::exit(130);
    }
    if PENDING.swap(true, Ordering::SeqCst) {
        // Restores SIG_DFL, unblocks SIGINT and raises it (all async-signal-safe): the process
        // dies by SIGINT here. It returns only if it did not know SIGINT; then `_exit(130)`.
        let _ = signal_hook::low_level::emulate_default_handler(libc::SIGINT);
        signal_hook::low_level::exit(130);
    }
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        sys::write_byte_preserving_errno(fd);
    }
}

fn pipe() -> Option<(RawFd, RawFd)> {
    *PIPE.get_or_init(|| sys::nonblocking_pipe().ok())
}

/// An installed Ctrl-C handler; `uninstall` puts the previous disposition back.
pub(crate) struct CtrlC {
    previous: sys::SavedDisposition,
    read_fd: RawFd,
}

impl CtrlC {
    /// Installs the handler if this is the main thread and SIGINT has its default disposition.
    pub(crate) fn install(reactor: &Reactor) -> Option<CtrlC> {
        if !sys::is_main_thread() || ACTIVE.load(Ordering::SeqCst) {
            return None;
        }
        let (read_fd, write_fd) = pipe()?;
        if !sys::has_default_disposition(libc::SIGINT).ok()? {
            return None;
        }
        sys::drain_pipe(read_fd);
        reactor.register_raw(read_fd, CTRL_C_TOKEN).ok()?;
        PIPE_WRITE.store(write_fd, Ordering::SeqCst);
        PENDING.store(false, Ordering::SeqCst);
        ACTIVE.store(true, Ordering::SeqCst);
        match sys::install_signal_handler(libc::SIGINT, on_sigint) {
            Ok(previous) => Some(CtrlC { previous, read_fd }),
            Err(_) => {
                ACTIVE.store(false, Ordering::SeqCst);
                reactor.deregister_raw(read_fd);
                None
            }
        }
    }

    /// Whether a Ctrl-C arrived (one atomic load: the loop checks this every batch, so a busy
    /// run that never waits for I/O still notices Ctrl-C).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        PENDING.load(Ordering::Relaxed)
    }

    /// Whether a Ctrl-C arrived since the last call (drains the pipe).
    pub(crate) fn take_pending(&self) -> bool {
        sys::drain_pipe(self.read_fd);
        PENDING.load(Ordering::SeqCst)
    }

    /// Restores the disposition SIGINT had before `install`, unless something replaced this
    /// handler meanwhile (a signal receiver for SIGINT that is still open: that one stays, and
    /// puts this handler back when it closes, which then acts as the default). Returns whether
    /// a Ctrl-C had arrived (one that came while the run was being torn down counts too: it
    /// must not be lost). A SIGINT after this has SIGINT's old disposition.
    pub(crate) fn uninstall(self, reactor: &Reactor) -> bool {
        if sys::handler_is_installed(libc::SIGINT, on_sigint) {
            sys::restore_signal_disposition(libc::SIGINT, &self.previous);
        }
        ACTIVE.store(false, Ordering::SeqCst);
        let pending = PENDING.swap(false, Ordering::SeqCst);
        reactor.deregister_raw(self.read_fd);
        sys::drain_pipe(self.read_fd);
        pending
    }
}
