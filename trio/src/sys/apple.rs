//! macOS and iOS calls.

use std::io;
use std::os::fd::RawFd;

pub(crate) fn errno() -> libc::c_int {
    // SAFETY: `__error` always returns a valid pointer to this thread's errno.
    unsafe { *libc::__error() }
}

pub(crate) fn set_errno(value: libc::c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__error() = value };
}

/// A non-blocking, close-on-exec pipe: (read end, write end). There is no `pipe2`, so the
/// flags are set after creation; trio creates its pipes before it starts threads of its own,
/// and the fds are close-on-exec before any `exec` of trio's can run.
pub(crate) fn nonblocking_pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe to fill in.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for fd in fds {
        // SAFETY: `fd` was just returned by pipe and is owned here.
        let ok = unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
                && libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) == 0
        };
        if !ok {
            let error = io::Error::last_os_error();
            // SAFETY: both fds are owned here and closed once.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            return Err(error);
        }
    }
    Ok((fds[0], fds[1]))
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_main_np() == 1 }
}

/// The longest OS thread name, in bytes (macOS: 64 with the terminating NUL).
pub(crate) const MAX_THREAD_NAME: usize = 63;

/// Sets the calling thread's OS name (what Activity Monitor, lldb and Instruments show); the
/// caller has cut `name` to [`MAX_THREAD_NAME`] bytes.
pub(crate) fn set_current_thread_name(name: &std::ffi::CStr) {
    // SAFETY: `name` is a valid NUL-terminated string of at most 64 bytes; on macOS the call
    // names the calling thread.
    unsafe { libc::pthread_setname_np(name.as_ptr()) };
}
