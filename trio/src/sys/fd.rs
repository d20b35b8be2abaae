//! File-descriptor calls for pipes: non-blocking mode, reads into uninitialised memory,
//! writes, pipes whose ends block. POSIX, so one file for every Unix.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Puts `fd` in non-blocking mode (`O_NONBLOCK` on its open file description: every fd that
/// shares the description sees it).
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on an fd only read and set its flags; a bad fd gives EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK == 0
            && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `read(2)` into possibly uninitialised memory; returns how many bytes it wrote (all of them
/// initialised now). `Interrupted` and `WouldBlock` come back as errors for the caller to handle.
pub(crate) fn read_uninit(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length; read writes only initialised bytes,
    // at most `buf.len()` of them.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `write(2)`; returns how many bytes the kernel took.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A close-on-exec pipe whose ends block: (read end, write end). For a child's standard
/// streams, where the child's end must block.
pub(crate) fn blocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = super::nonblocking_pipe()?;
    // SAFETY: both fds were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) };
    for fd in [&read, &write] {
        use std::os::fd::AsRawFd;
        let fd = fd.as_raw_fd();
        // SAFETY: as in `set_nonblocking`: the flags of an fd we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok((read, write))
}

/// A non-blocking, close-on-exec pipe as owned fds: (read end, write end).
pub(crate) fn owned_nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = super::nonblocking_pipe()?;
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(read), OwnedFd::from_raw_fd(write)) })
}
