//! `?` from trio code into ordinary Rust code: [`Error`] into `Box<dyn std::error::Error>`
//! (with or without `Send + Sync`) and into [`std::io::Error`], and an `io::Error` that
//! carries one of trio's own errors back into that error.
//!
//! The boxed forms are the error inside, unchanged: it downcasts to its own type and its
//! `source()` chain is its own. The `io::Error` form is the `io::Error` inside if there is
//! one (its kind and OS code kept), else an `io::Error` whose payload is the error inside and
//! whose kind says what trio's kind means in I/O terms:
//!
//! | trio error | `io::ErrorKind` |
//! | --- | --- |
//! | [`BrokenResourceError`] | `BrokenPipe` |
//! | [`ClosedResourceError`] | `NotConnected` |
//! | [`BusyResourceError`] | `ResourceBusy` |
//! | [`WouldBlock`] | `WouldBlock` |
//! | [`EndOfChannel`] | `UnexpectedEof` |
//! | [`TooSlowError`] | `TimedOut` |
//! | [`UsageError`] | `InvalidInput` |
//! | [`DeadlockError`] | `Deadlock` |
//! | [`ErrorGroup`] | the kind its errors share, else `Other` |
//! | an error whose `source()` is an `io::Error` (trio's `SpawnError`, `FsError`) | that error's kind |
//! | [`Cancelled`], [`KeyboardInterrupt`], anything else | `Other` |
//!
//! `Cancelled` and `KeyboardInterrupt` are deliberately not `Interrupted`: std's I/O loops
//! (`read_exact`, `write_all`, ...) retry an `Interrupted` error, and a retried cancellation
//! fails again forever (it is level-triggered) while a retried Ctrl-C is a Ctrl-C ignored.
//!
//! Back with `?`, an `io::Error` whose payload is one of trio's own error types becomes that
//! error again, so a `Cancelled` that went through I/O code is still absorbed by its scope.

use std::any::TypeId;
use std::error::Error as StdError;
use std::io;

use super::{
    BrokenResourceError, BusyResourceError, Cancelled, ClosedResourceError, DeadlockError,
    EndOfChannel, Error, ErrorGroup, KeyboardInterrupt, RunFinishedError, TaskPanicked,
    TooSlowError, TrioInternalError, UsageError, WouldBlock,
};

impl From<Error> for Box<dyn StdError + Send + Sync + 'static> {
    /// The error inside, unchanged (it downcasts to its own type; its `source()` is its own).
    fn from(error: Error) -> Self {
        error.into_inner()
    }
}

impl From<Error> for Box<dyn StdError + 'static> {
    /// The error inside, unchanged (it downcasts to its own type; its `source()` is its own).
    fn from(error: Error) -> Self {
        error.into_inner()
    }
}

impl From<Error> for io::Error {
    /// The `io::Error` inside as it is, or an `io::Error` carrying the error inside, of the
    /// kind [`Error::io_kind`] gives.
    fn from(error: Error) -> Self {
        let kind = io_kind(error.as_ref());
        match error.into_inner().downcast::<io::Error>() {
            Ok(io) => *io,
            Err(other) => io::Error::new(kind, other),
        }
    }
}

impl Error {
    /// The [`io::ErrorKind`] this error has as an `io::Error` (what `io::Error::from` gives
    /// it): an `io::Error`'s own kind, or what trio's kind means in I/O terms:
    ///
    /// | trio error | `io::ErrorKind` |
    /// | --- | --- |
    /// | [`BrokenResourceError`] | `BrokenPipe` |
    /// | [`ClosedResourceError`] | `NotConnected` |
    /// | [`BusyResourceError`] | `ResourceBusy` |
    /// | [`WouldBlock`] | `WouldBlock` |
    /// | [`EndOfChannel`] | `UnexpectedEof` |
    /// | [`TooSlowError`] | `TimedOut` |
    /// | [`UsageError`] | `InvalidInput` |
    /// | [`DeadlockError`] | `Deadlock` |
    /// | [`ErrorGroup`] | the kind its errors share, else `Other` |
    /// | an error whose `source()` is an `io::Error` | that error's kind |
    /// | [`Cancelled`], [`KeyboardInterrupt`], anything else | `Other` |
    ///
    /// `Cancelled` and `KeyboardInterrupt` are not `Interrupted`, which std's I/O loops
    /// (`read_exact`, `write_all`, ...) retry: a retried cancellation fails again forever, and a
    /// retried Ctrl-C is one ignored.
    pub fn io_kind(&self) -> io::ErrorKind {
        io_kind(self.as_ref())
    }
}

fn io_kind(error: &(dyn StdError + 'static)) -> io::ErrorKind {
    use io::ErrorKind as K;
    if let Some(io) = error.downcast_ref::<io::Error>() {
        return io.kind();
    }
    if let Some(group) = error.downcast_ref::<ErrorGroup>() {
        let mut kinds = group.errors().iter().map(Error::io_kind);
        let first = kinds.next().unwrap_or(K::Other);
        return if kinds.all(|k| k == first) {
            first
        } else {
            K::Other
        };
    }
    if error.is::<BrokenResourceError>() {
        K::BrokenPipe
    } else if error.is::<ClosedResourceError>() {
        K::NotConnected
    } else if error.is::<BusyResourceError>() {
        K::ResourceBusy
    } else if error.is::<WouldBlock>() {
        K::WouldBlock
    } else if error.is::<EndOfChannel>() {
        K::UnexpectedEof
    } else if error.is::<TooSlowError>() {
        K::TimedOut
    } else if error.is::<UsageError>() {
        K::InvalidInput
    } else if error.is::<DeadlockError>() {
        K::Deadlock
    } else if let Some(io) = error.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        // An error that wraps an OS error with context (a path, a command) has its kind.
        io.kind()
    } else {
        K::Other
    }
}

/// Whether `error` is one of trio's own error types.
fn is_trio_kind(error: &(dyn StdError + Send + Sync + 'static)) -> bool {
    error.is::<Cancelled>()
        || error.is::<KeyboardInterrupt>()
        || error.is::<TooSlowError>()
        || error.is::<ErrorGroup>()
        || error.is::<BrokenResourceError>()
        || error.is::<ClosedResourceError>()
        || error.is::<BusyResourceError>()
        || error.is::<WouldBlock>()
        || error.is::<EndOfChannel>()
        || error.is::<UsageError>()
        || error.is::<RunFinishedError>()
        || error.is::<TaskPanicked>()
        || error.is::<DeadlockError>()
        || error.is::<TrioInternalError>()
}

/// An `io::Error` carrying one of trio's own errors gives that error back; any other error
/// (an `io::Error` too) comes back as it is.
fn unwrap_io(io: io::Error) -> Result<Box<dyn StdError + Send + Sync + 'static>, io::Error> {
    if !io.get_ref().is_some_and(is_trio_kind) {
        return Err(io);
    }
    io.into_inner()
        .ok_or_else(|| io::Error::other("an io::Error lost its payload"))
}

impl Error {
    /// `Error::new`: boxes the error, except that an `io::Error` carrying a trio error gives
    /// that error back.
    ///
    /// The type test is on the static type, so for every other error type it is
    /// folded away and `Error::new` stays one `Box::new` (a test through `dyn Any` here
    /// would cost every channel round trip).
    pub(super) fn from_std<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        if TypeId::of::<E>() == TypeId::of::<io::Error>() {
            return Error::from_io(Box::new(error));
        }
        Error {
            inner: Box::new(error),
        }
    }

    /// `Error::from_boxed` for a box that may hold an `io::Error` carrying a trio error.
    pub(super) fn from_boxed_std(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        if error.is::<io::Error>() {
            return Error::from_io(error);
        }
        Error { inner: error }
    }

    /// A boxed `io::Error`, unwrapped if it carries one of trio's own errors.
    #[cold]
    #[inline(never)]
    fn from_io(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        match error.downcast::<io::Error>() {
            Ok(io) => match unwrap_io(*io) {
                Ok(inner) => Error { inner },
                Err(io) => Error {
                    inner: Box::new(io),
                },
            },
            Err(inner) => Error { inner },
        }
    }
}
