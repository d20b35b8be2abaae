//! Linux-only calls.

use std::io;
use std::os::fd::RawFd;

pub(crate) fn errno() -> libc::c_int {
    // SAFETY: `__errno_location` always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

pub(crate) fn set_errno(value: libc::c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn nonblocking_pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill in.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: getpid and gettid have no preconditions.
    unsafe { libc::getpid() == libc::gettid() }
}

/// The longest OS thread name, in bytes (Linux: 16 with the terminating NUL).
pub(crate) const MAX_THREAD_NAME: usize = 15;

/// Sets the calling thread's OS name (what `ps -T`, `top -H`, gdb and perf show); the caller
/// has cut `name` to [`MAX_THREAD_NAME`] bytes.
pub(crate) fn set_current_thread_name(name: &std::ffi::CStr) {
    // SAFETY: `name` is a valid NUL-terminated string of at most 16 bytes, as the call needs.
    unsafe { libc::pthread_setname_np(libc::pthread_self(), name.as_ptr()) };
}
