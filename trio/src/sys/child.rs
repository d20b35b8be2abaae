//! Child-process calls: reaping (`waitpid`), waiting without reaping (`waitid` with
//! `WNOWAIT`), signals, and on Linux the process fd (`pidfd_open`, `pidfd_send_signal`) that
//! lets the reactor watch a child like any other fd.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// Reaps `pid` if it has exited: `Ok(Some(raw wait status))`, or `Ok(None)` while it runs.
/// `ECHILD` (the child was reaped elsewhere, or SIGCHLD is ignored so the kernel reaped it)
/// comes back as an error.
pub(crate) fn waitpid_nohang(pid: libc::pid_t) -> io::Result<Option<libc::c_int>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-parameter.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        match r {
            0 => return Ok(None),
            r if r > 0 => return Ok(Some(status)),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

/// Reaps `pid`, blocking the calling thread until it exits. Errors as [`waitpid_nohang`].
pub(crate) fn waitpid_blocking(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-parameter.
        if unsafe { libc::waitpid(pid, &mut status, 0) } > 0 {
            return Ok(status);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Blocks the calling thread until `pid` has exited, without reaping it (`waitid` with
/// `WEXITED | WNOWAIT`): the child stays a zombie, so its pid cannot be reused until someone
/// reaps it. Errors (`ECHILD`) mean there is nothing to wait for.
pub(crate) fn wait_exited_without_reaping(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-parameter; the flags ask only to wait.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Sends `signal` to `pid` with `kill(2)`.
pub(crate) fn kill(pid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A process fd for `pid` (close-on-exec), readable once the process has exited. Linux 5.3
/// and later; older kernels (and sandboxes that filter the call) give `ENOSYS` or `EPERM`,
/// and the caller falls back to a waiter thread.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: the syscall takes two integers and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// No process fds outside Linux: the caller uses its waiter thread.
#[cfg(not(target_os = "linux"))]
pub(crate) fn pidfd_open(_pid: libc::pid_t) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Sends `signal` through a process fd, which names the process itself, not a pid that the
/// kernel may have given to another process since.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a null siginfo asks the kernel to fill in the usual kill() information.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// No process fds outside Linux (never called there: no pidfd is ever opened).
#[cfg(not(target_os = "linux"))]
pub(crate) fn pidfd_send_signal(_pidfd: BorrowedFd<'_>, _signal: libc::c_int) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
