//! What every Unix provides through POSIX.

use std::io;
use std::os::fd::RawFd;

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`), as a float.
///
/// One `clock_gettime` (a vDSO call, no syscall) and a conversion: cheaper than
/// `Instant::elapsed`, whose checked `Duration` arithmetic costs more than the read itself,
/// and the run's clock is read on every entry into a scope with a relative deadline.
#[inline]
pub(crate) fn monotonic_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill in; CLOCK_MONOTONIC exists
    // on every supported platform, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Reads and discards everything in a non-blocking fd (a self-pipe), stopping at EAGAIN.
pub(crate) fn drain_pipe(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of its length; the fd is non-blocking, so the loop
    // ends at EAGAIN (or EOF, or any error).
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Writes one byte to a non-blocking fd, keeping `errno` as it was. Async-signal-safe: signal
/// handlers use it to wake the reactor through a self-pipe.
pub(crate) fn write_byte_preserving_errno(fd: RawFd) {
    let saved = super::errno();
    let byte = 1u8;
    // SAFETY: writing one byte from a valid stack location is async-signal-safe; a full pipe
    // only fails with EAGAIN, which is harmless (the reader is woken already).
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    super::set_errno(saved);
}

/// A SIGINT disposition saved by [`install_signal_handler`], to put back later.
pub(crate) struct SavedDisposition(libc::sigaction);

/// Whether `signal` has its default disposition now.
pub(crate) fn has_default_disposition(signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: a zeroed sigaction is a valid out-parameter.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current disposition into `current`.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(current.sa_sigaction == libc::SIG_DFL)
}

/// Installs `handler` for `signal` (with SA_RESTART and an empty mask) and returns the
/// disposition it replaced.
pub(crate) fn install_signal_handler(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int),
) -> io::Result<SavedDisposition> {
    // SAFETY: zeroed is a valid starting point; the handler, mask and flags are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: as above, an out-parameter.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid; the handler only does async-signal-safe work (the
    // caller's contract, which the `extern "C" fn` type cannot express).
    if unsafe { libc::sigaction(signal, &action, &mut previous) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SavedDisposition(previous))
}

/// Puts back a disposition saved by [`install_signal_handler`].
pub(crate) fn restore_signal_disposition(signal: libc::c_int, saved: &SavedDisposition) {
    // SAFETY: `saved.0` is a sigaction the kernel filled in.
    unsafe { libc::sigaction(signal, &saved.0, std::ptr::null_mut()) };
}

/// Whether `signal`'s disposition now is `handler` (and not something installed since).
pub(crate) fn handler_is_installed(
    signal: libc::c_int,
    handler: extern "C" fn(libc::c_int),
) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current disposition into `current`.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0 {
        return false;
    }
    current.sa_sigaction == handler as libc::sighandler_t
}

/// Sends `signal` to the calling thread; it is delivered (to the disposition in force) before
/// this returns, unless it is blocked.
pub(crate) fn raise_signal(signal: libc::c_int) -> io::Result<()> {
    // SAFETY: raise takes a plain integer; an invalid signal number is an error, not UB.
    if unsafe { libc::raise(signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes an fd this process owns (a pipe end trio created).
pub(crate) fn close_fd(fd: RawFd) {
    // SAFETY: the caller owns `fd` and nothing uses it after this call.
    unsafe { libc::close(fd) };
}
