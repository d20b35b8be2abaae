//! Platform calls, one module per platform family.
//!
//! Everything that differs between operating systems lives here, behind a small safe API, so
//! that a new platform is a new file rather than an edit everywhere (mio's `sys/` is the model).
//! `unix.rs` holds what POSIX gives every Unix (with `fd.rs`, pipes and fd I/O, and `child.rs`,
//! child processes: reaping, signals, and Linux's process fds behind `cfg`); `linux.rs` and
//! `apple.rs` hold the rest. The rest of trio calls only the functions re-exported below.
//!
//! Unsafe code: every function here wraps a libc call. The invariants are local to each call
//! (valid pointers to live stack values, fds that the caller owns); each block says which.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(unix)]
mod child;
#[cfg(unix)]
pub(crate) use child::*;

#[cfg(unix)]
mod fd;
#[cfg(unix)]
pub(crate) use fd::*;

#[cfg(unix)]
pub(crate) mod net;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(any(target_os = "macos", target_os = "ios"))]
mod apple;
#[cfg(any(target_os = "macos", target_os = "ios"))]
pub(crate) use apple::*;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "ios")))]
compile_error!(
    "trio supports Linux and macOS; a new platform adds a file to trio/src/sys/ (see its docs)"
);
