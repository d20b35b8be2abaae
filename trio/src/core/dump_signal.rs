//! A task dump on a signal (`RunConfig::dump_on_signal`): SIGUSR1 by default.
//!
//! As Ctrl-C's handler (`ki.rs`), the handler only sets an atomic flag and writes a byte to a
//! self-pipe that the reactor watches, both async-signal-safe, so a run blocked in the reactor
//! wakes up; the loop also reads the flag on its slow path, so a busy run notices too. The run
//! loop prints the dump. The handler is raw `sigaction`, saved and put back when the run ends
//! (`ki.rs` says why not signal-hook's registry). One run at a time in a process handles the
//! signal; the pipe is made once per process and never closed, so a handler that runs on
//! another thread while a run ends never writes to a recycled fd.
//!
//! A driver: it knows nothing of the run.

use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::io::reactor::{DUMP_TOKEN, Reactor};
use crate::sys;

static PENDING: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
static PIPE: OnceLock<Option<(RawFd, RawFd)>> = OnceLock::new();

extern "C" fn on_signal(signal: libc::c_int) {
    if !ACTIVE.load(Ordering::SeqCst) {
        // Installed but stale: put back by someone who saved it while a run was active (a
        // signal receiver closed after its run ended). Outside a run the signal has its
        // default effect.
        let _ = signal_hook::low_level::emulate_default_handler(signal);
        return;
    }
    PENDING.store(true, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        sys::write_byte_preserving_errno(fd);
    }
}

/// An installed dump handler; `uninstall` puts the previous disposition back.
pub(crate) struct DumpSignal {
    signal: libc::c_int,
    previous: sys::SavedDisposition,
    read_fd: RawFd,
}

impl DumpSignal {
    /// Installs the handler for `signal`; `None` if another run of this process has it or
    /// the system refuses.
    pub(crate) fn install(reactor: &Reactor, signal: libc::c_int) -> Option<DumpSignal> {
        if ACTIVE.swap(true, Ordering::SeqCst) {
            return None;
        }
        let installed = (|| {
            let (read_fd, write_fd) = (*PIPE.get_or_init(|| sys::nonblocking_pipe().ok()))?;
            sys::drain_pipe(read_fd);
            reactor.register_raw(read_fd, DUMP_TOKEN).ok()?;
            PIPE_WRITE.store(write_fd, Ordering::SeqCst);
            PENDING.store(false, Ordering::SeqCst);
            match sys::install_signal_handler(signal, on_signal) {
                Ok(previous) => Some(DumpSignal {
                    signal,
                    previous,
                    read_fd,
                }),
                Err(_) => {
                    reactor.deregister_raw(read_fd);
                    None
                }
            }
        })();
        if installed.is_none() {
            ACTIVE.store(false, Ordering::SeqCst);
        }
        installed
    }

    /// Whether the signal arrived since the last call (drains the pipe).
    pub(crate) fn take_pending(&self) -> bool {
        if !PENDING.load(Ordering::Relaxed) {
            return false;
        }
        sys::drain_pipe(self.read_fd);
        PENDING.swap(false, Ordering::SeqCst)
    }

    /// Restores the signal's previous disposition.
    pub(crate) fn uninstall(self, reactor: &Reactor) {
        // Something that replaced the handler meanwhile (a signal receiver still open)
        // restores it itself when it closes.
        if sys::handler_is_installed(self.signal, on_signal) {
            sys::restore_signal_disposition(self.signal, &self.previous);
        }
        reactor.deregister_raw(self.read_fd);
        sys::drain_pipe(self.read_fd);
        PENDING.store(false, Ordering::SeqCst);
        ACTIVE.store(false, Ordering::SeqCst);
    }
}
