//! Errors: one opaque [`Error`] that carries any std error, plus trio's own kinds.
//!
//! Every fallible trio function returns [`Result<T>`](crate::Result), whose error is [`Error`].
//! `Error` works like `anyhow::Error`: any `std::error::Error + Send + Sync + 'static` converts
//! into it with `?`, and you get the concrete kind back with [`Error::downcast_ref`] or the
//! shortcuts [`Error::is_cancelled`], [`Error::as_group`] and friends. Because of that blanket
//! conversion `Error` itself does not implement `std::error::Error`; instead `?` turns it into
//! the error types of ordinary Rust code, as `anyhow` does:
//!
//! - `Box<dyn std::error::Error + Send + Sync>` and `Box<dyn std::error::Error>`: the error
//!   inside, unchanged, so it downcasts to its own type and keeps its `source()` chain (also
//!   [`Error::into_inner`]);
//! - [`std::io::Error`]: an `io::Error` inside comes out as itself; trio's kinds get the
//!   `io::ErrorKind` that says what they mean in I/O terms ([`Error::io_kind`]:
//!   `BrokenResourceError` is `BrokenPipe`, `TooSlowError` is `TimedOut`, ...; `Cancelled` is
//!   `Other`, never the retried `Interrupted`), with the trio error as the payload. Back with
//!   `?`, such an `io::Error` becomes the trio error again, so a `Cancelled` that went through
//!   I/O code is still absorbed by its scope.
//!
//! ```
//! use std::io;
//!
//! // Ordinary Rust code: `?` turns the trio::Error into an io::Error.
//! fn first_value() -> io::Result<u32> {
//!     let value = trio::run(async {
//!         let (tx, rx) = trio::open_memory_channel::<u32>(1);
//!         drop(tx); // every sender closed: receive fails with EndOfChannel
//!         rx.receive().await
//!     })?;
//!     Ok(value)
//! }
//!
//! let err = first_value().unwrap_err();
//! assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
//! assert!(err.get_ref().is_some_and(|e| e.is::<trio::EndOfChannel>()));
//! ```
//!
//! Trio's own kinds are ordinary std error types:
//! - [`Cancelled`]: a checkpoint ran inside a cancelled scope. Users cannot construct it; it
//!   travels up with `?` and is absorbed by the cancel scope that caused it.
//! - [`KeyboardInterrupt`]: what [`run`](crate::run) returns after Ctrl-C.
//! - [`TooSlowError`]: a [`fail_after`](crate::fail_after) deadline expired.
//! - [`ErrorGroup`]: the errors of a nursery's children (and body), its own `Cancelled` stripped.
//! - Resource errors ([`ClosedResourceError`], [`BusyResourceError`], [`BrokenResourceError`],
//!   [`WouldBlock`], [`EndOfChannel`]) and [`RunFinishedError`].
//! - [`UsageError`]: a call that the API rules forbid (a closed nursery, a reused cancel scope,
//!   a NaN deadline, a nested `run`, ...), with a message that says what was wrong.

use std::error::Error as StdError;
use std::fmt;

mod convert;

/// `Result<T, trio::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error type of every fallible trio function.
///
/// Like `anyhow::Error`: any `std::error::Error + Send + Sync + 'static` converts into it with
/// `?`, and [`Error::downcast_ref`], [`Error::is`], [`Error::is_cancelled`] and
/// [`Error::as_group`] give the concrete kind back. Trio's own kinds ([`Cancelled`],
/// [`KeyboardInterrupt`], [`TooSlowError`], [`ErrorGroup`], the resource errors and
/// [`UsageError`]) are ordinary std error types. Because of the blanket conversion `Error`
/// itself does not implement `std::error::Error`; [`Error::into_inner`] gives the boxed std
/// error when one is needed.
pub struct Error {
    inner: Box<dyn StdError + Send + Sync + 'static>,
}

impl Error {
    /// Wraps any std error.
    ///
    /// An `io::Error` that carries one of trio's own errors (an `Error` turned into an
    /// `io::Error`) gives that error back.
    pub fn new<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        Error::from_std(error)
    }

    /// Wraps an already boxed std error (as [`Error::new`]).
    pub fn from_boxed(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        Error::from_boxed_std(error)
    }

    /// Gives back the boxed std error.
    pub fn into_inner(self) -> Box<dyn StdError + Send + Sync + 'static> {
        self.inner
    }

    /// Whether the error is of kind `E`.
    pub fn is<E: StdError + 'static>(&self) -> bool {
        self.inner.is::<E>()
    }

    /// The error as kind `E`, if it is one.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// The error as kind `E`, or the error back.
    pub fn downcast<E: StdError + 'static>(self) -> std::result::Result<E, Error> {
        match self.inner.downcast::<E>() {
            Ok(e) => Ok(*e),
            Err(inner) => Err(Error { inner }),
        }
    }

    /// Whether this is a [`Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.is::<Cancelled>()
    }

    /// The [`Cancelled`] inside, if this is one.
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        self.downcast_ref::<Cancelled>()
    }

    /// Whether this is a [`ClosedResourceError`]: the handle used was closed (by this task or,
    /// while it waited, by another).
    pub fn is_closed(&self) -> bool {
        self.is::<ClosedResourceError>()
    }

    /// Whether this is a [`BrokenResourceError`]: the other side went away (every receiver of
    /// a channel closed, a lock's owner exited holding it, ...).
    pub fn is_broken(&self) -> bool {
        self.is::<BrokenResourceError>()
    }

    /// Whether this is a [`BusyResourceError`]: another task is using a resource that allows
    /// one user at a time.
    pub fn is_busy(&self) -> bool {
        self.is::<BusyResourceError>()
    }

    /// Whether this is a [`WouldBlock`]: a `try_` operation could not be done without waiting.
    pub fn is_would_block(&self) -> bool {
        self.is::<WouldBlock>()
    }

    /// Whether this is an [`EndOfChannel`]: every sender is closed and the buffer is drained
    /// (from `receive` and `try_receive`; `recv` returns `Ok(None)` instead).
    pub fn is_end_of_channel(&self) -> bool {
        self.is::<EndOfChannel>()
    }

    /// Whether this is a [`TooSlowError`]: a [`fail_after`](crate::fail_after) /
    /// [`fail_at`](crate::fail_at) deadline expired.
    pub fn is_too_slow(&self) -> bool {
        self.is::<TooSlowError>()
    }

    /// The [`ErrorGroup`] inside, if this is one.
    pub fn as_group(&self) -> Option<&ErrorGroup> {
        self.downcast_ref::<ErrorGroup>()
    }

    /// Every non-group error inside, depth first (a non-group error yields itself).
    pub fn leaves(&self) -> Vec<&Error> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Error>) {
        match self.as_group() {
            Some(group) => group.errors().iter().for_each(|e| e.collect_leaves(out)),
            None => out.push(self),
        }
    }

    /// Shorthand for `Error::new(UsageError::new(message))`.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(UsageError::new(message))
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl AsRef<dyn StdError + Send + Sync + 'static> for Error {
    fn as_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }
}

/// What cancelled a scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelSource {
    /// [`CancelScope::cancel`](crate::CancelScope::cancel) was called.
    Explicit,
    /// The scope's deadline expired.
    Deadline,
    /// A nursery cancelled its children because one of them (or its body) failed.
    Nursery,
    /// Ctrl-C (SIGINT) arrived while `run` had its handler installed.
    KeyboardInterrupt,
}

impl fmt::Display for CancelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelSource::Explicit => "explicit",
            CancelSource::Deadline => "deadline",
            CancelSource::Nursery => "nursery",
            CancelSource::KeyboardInterrupt => "KeyboardInterrupt",
        })
    }
}

/// A checkpoint ran inside a cancelled scope.
///
/// Only the runtime creates it. Let it travel with `?`: the cancel scope that caused it absorbs
/// it. Catching it yourself and going on is allowed but rarely right (the next checkpoint in
/// the same scope fails again: cancellation is level-triggered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    source: CancelSource,
    reason: Option<String>,
    source_task: Option<String>,
}

impl Cancelled {
    pub(crate) fn new(
        source: CancelSource,
        reason: Option<String>,
        source_task: Option<String>,
    ) -> Self {
        Cancelled {
            source,
            reason,
            source_task,
        }
    }

    /// What cancelled the scope.
    pub fn source(&self) -> CancelSource {
        self.source
    }

    /// The reason given to `cancel_with_reason`, or the nursery's explanation.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The name of the task that called `cancel`, when a task did; for a nursery's
    /// cancellation, the task whose failure caused it.
    pub fn source_task(&self) -> Option<&str> {
        self.source_task.as_deref()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled ({})", self.source)?;
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        // A nursery's reason names the task that failed already.
        if let Some(task) = &self.source_task
            && self.source != CancelSource::Nursery
        {
            write!(f, " by task {task:?}")?;
        }
        Ok(())
    }
}

impl StdError for Cancelled {}

macro_rules! simple_error {
    ($(#[$doc:meta])* $name:ident, $message:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($message)
            }
        }

        impl StdError for $name {}
    };
}

simple_error!(
    /// A [`fail_after`](crate::fail_after) / [`fail_at`](crate::fail_at) deadline expired.
    TooSlowError,
    "the operation did not finish before its deadline"
);
simple_error!(
    /// A [`TrioToken`](crate::lowlevel::TrioToken) was used after its run finished.
    RunFinishedError,
    "the trio run this token belongs to has finished"
);
simple_error!(
    /// A non-blocking operation could not be done without waiting.
    WouldBlock,
    "the operation would block"
);
simple_error!(
    /// A receive channel's senders are all closed and its buffer is empty.
    EndOfChannel,
    "end of channel: every sender is closed"
);

/// Ctrl-C arrived: [`run`](crate::run) cancelled everything and returns this.
///
/// When the run's main task ended with an error of its own after the interruption (typically
/// cleanup that failed while everything was being cancelled), that error is not lost: it is
/// [`cleanup_error`](Self::cleanup_error), the [`source`](StdError::source) of this error, and
/// part of its message. `#[trio::main]` prints it, then ends the process by SIGINT. As in
/// Trio, where the `KeyboardInterrupt` carries the main task's error as its context.
#[derive(Debug, Default)]
pub struct KeyboardInterrupt {
    cleanup: Option<Error>,
}

impl KeyboardInterrupt {
    /// A plain interruption, with no error from the cleanup.
    pub fn new() -> Self {
        KeyboardInterrupt { cleanup: None }
    }

    /// The interruption, carrying the error the main task ended with after it. A `Cancelled`
    /// (the interruption itself, which reached the top) is no cleanup error and is dropped.
    pub(crate) fn carrying(main_error: Error) -> Self {
        let cleanup = (!main_error.leaves().iter().all(|e| e.is_cancelled())).then_some(main_error);
        KeyboardInterrupt { cleanup }
    }

    /// The error the run's main task ended with after Ctrl-C, if any: what its cleanup failed
    /// with (an [`ErrorGroup`] when a nursery's tasks failed).
    pub fn cleanup_error(&self) -> Option<&Error> {
        self.cleanup.as_ref()
    }

    /// The cleanup error, by value.
    pub fn into_cleanup_error(self) -> Option<Error> {
        self.cleanup
    }
}

impl fmt::Display for KeyboardInterrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyboardInterrupt: the run was interrupted by Ctrl-C")?;
        if let Some(cleanup) = &self.cleanup {
            write!(f, ", then its cleanup failed: {cleanup}")?;
        }
        Ok(())
    }
}

impl StdError for KeyboardInterrupt {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let cleanup: &(dyn StdError + 'static) = self.cleanup.as_ref()?.as_ref();
        Some(cleanup)
    }
}

/// A resource was closed (by this task, or by another task while this one was using it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedResourceError {
    message: String,
}

impl ClosedResourceError {
    /// A closed-resource error with a message that says what was closed.
    pub fn new(message: impl Into<String>) -> Self {
        ClosedResourceError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ClosedResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource closed: {}", self.message)
    }
}

impl StdError for ClosedResourceError {}

/// Two tasks tried to use a resource that allows one user at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusyResourceError {
    message: String,
}

impl BusyResourceError {
    /// A busy-resource error with a message that says what was busy.
    pub fn new(message: impl Into<String>) -> Self {
        BusyResourceError {
            message: message.into(),
        }
    }
}

impl fmt::Display for BusyResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource busy: {}", self.message)
    }
}

impl StdError for BusyResourceError {}

/// A resource is broken: its peer went away, or its owner exited without releasing it.
///
/// It may carry the error that broke it as its [`source`](StdError::source) (a TLS stream's
/// handshake failure carries the TLS library's error: Trio's `raise BrokenResourceError from
/// exc`).
#[derive(Clone, Debug)]
pub struct BrokenResourceError {
    message: String,
    source: Option<std::sync::Arc<dyn StdError + Send + Sync + 'static>>,
}

impl BrokenResourceError {
    /// A broken-resource error with a message that says what broke it.
    pub fn new(message: impl Into<String>) -> Self {
        BrokenResourceError {
            message: message.into(),
            source: None,
        }
    }

    /// A broken-resource error with a message, and the error that caused it as its
    /// [`source`](StdError::source).
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        BrokenResourceError {
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// What broke the resource.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Equal when the messages are, and the sources (if any) read the same.
impl PartialEq for BrokenResourceError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
            && self.source.as_ref().map(ToString::to_string)
                == other.source.as_ref().map(ToString::to_string)
    }
}

impl Eq for BrokenResourceError {}

impl fmt::Display for BrokenResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "resource broken: {}", self.message)
    }
}

impl StdError for BrokenResourceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// The API was used in a way its rules forbid; the message says how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    message: String,
}

impl UsageError {
    /// A usage error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
        }
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for UsageError {}

/// The errors of a nursery: every child's (and the body's) error except `Cancelled`.
///
/// A nursery whose tasks failed returns a group even when just one failed (Trio's strict
/// exception groups), so callers handle one shape. Use [`Error::leaves`] to walk nested groups.
#[derive(Debug)]
pub struct ErrorGroup {
    errors: Vec<Error>,
    /// Who failed with each error (`task "name"`, the nursery's body), when known.
    origins: Vec<String>,
}

impl ErrorGroup {
    #[cfg(test)]
    pub(crate) fn new(errors: Vec<Error>) -> Self {
        ErrorGroup {
            errors,
            origins: Vec::new(),
        }
    }

    /// A group whose `origins[i]` says who failed with `errors[i]`.
    pub(crate) fn with_origins(errors: Vec<Error>, origins: Vec<String>) -> Self {
        debug_assert_eq!(errors.len(), origins.len());
        ErrorGroup { errors, origins }
    }

    /// The errors, in the order the tasks failed.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// Who failed with the `i`th error: `task "name"` for a child task, `the nursery's body`
    /// for the code that opened the nursery. `None` when unknown.
    pub fn origin(&self, i: usize) -> Option<&str> {
        self.origins.get(i).map(String::as_str)
    }

    /// The errors, by value.
    pub fn into_errors(self) -> Vec<Error> {
        self.errors
    }

    /// How many errors the group holds.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether the group is empty (a nursery never returns an empty one).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ErrorGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(f, "{n} error{} in a nursery", if n == 1 { "" } else { "s" })?;
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            match self.origin(i) {
                Some(who) => write!(f, "{who} failed: {e}")?,
                None => write!(f, "{e}")?,
            }
        }
        Ok(())
    }
}

impl StdError for ErrorGroup {}

/// A task panicked inside a nursery; the panic resumes in the parent once all children ended.
/// This type is what [`run`](crate::run) reports when a panic reaches the top of the run while
/// the caller asked for errors instead of unwinding (see `RunConfig`).
#[derive(Debug)]
pub struct TaskPanicked {
    pub(crate) message: String,
}

impl fmt::Display for TaskPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a task panicked: {}", self.message)
    }
}

impl StdError for TaskPanicked {}

/// Every task of a run is blocked, and nothing (no deadline the clock can reach, no I/O, no
/// thread or token) can ever wake one: the run would hang. Only reported when the run was
/// configured with `fail_on_deadlock` (as `#[trio::test]` does); the message holds a task dump.
#[derive(Debug)]
pub struct DeadlockError {
    pub(crate) dump: String,
}

impl DeadlockError {
    /// The task tree at the moment the deadlock was found.
    pub fn task_dump(&self) -> &str {
        &self.dump
    }
}

impl fmt::Display for DeadlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "deadlock: every task is blocked and nothing can wake one\n{}",
            self.dump
        )
    }
}

impl StdError for DeadlockError {}

/// A system task failed or a callback passed to `run_sync_soon` panicked: trio cannot keep
/// its guarantees, so the run was torn down.
#[derive(Debug)]
pub struct TrioInternalError {
    pub(crate) message: String,
}

impl fmt::Display for TrioInternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trio internal error: {}", self.message)
    }
}

impl StdError for TrioInternalError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_resource_error_with_a_source() {
        let io = || std::io::Error::other("handshake alert");
        let e = BrokenResourceError::with_source("TLS handshake failed", io());
        assert_eq!(e.to_string(), "resource broken: TLS handshake failed");
        assert_eq!(e.message(), "TLS handshake failed");
        let source = StdError::source(&e).expect("a source");
        assert_eq!(source.to_string(), "handshake alert");
        assert!(source.is::<std::io::Error>());
        assert_eq!(e.clone(), e, "a clone shares the source");
        assert_ne!(e, BrokenResourceError::new("TLS handshake failed"));
        let other = BrokenResourceError::with_source("TLS handshake failed", io());
        assert_eq!(e, other, "sources compare by what they say");
        assert!(StdError::source(&BrokenResourceError::new("gone")).is_none());
    }

    #[test]
    fn conversions_and_downcasts() {
        let e: Error = std::io::Error::other("boom").into();
        assert!(e.is::<std::io::Error>());
        assert!(!e.is_cancelled());
        assert_eq!(e.to_string(), "boom");
        let c: Error = Cancelled::new(CancelSource::Deadline, None, None).into();
        assert_eq!(
            c.as_cancelled().map(Cancelled::source),
            Some(CancelSource::Deadline)
        );
        let g = Error::new(ErrorGroup::new(vec![
            e,
            Error::new(ErrorGroup::new(vec![Error::new(TooSlowError)])),
        ]));
        assert_eq!(g.leaves().len(), 2);
        assert!(g.leaves()[1].is::<TooSlowError>());
        assert!(g.to_string().starts_with("2 errors in a nursery: boom; "));
    }

    #[test]
    fn a_keyboard_interrupt_keeps_the_error_of_the_cleanup() {
        let cancelled = Error::new(Cancelled::new(CancelSource::KeyboardInterrupt, None, None));
        let plain = KeyboardInterrupt::carrying(cancelled);
        assert!(
            plain.cleanup_error().is_none(),
            "a Cancelled is no cleanup error"
        );
        assert_eq!(plain.to_string(), KeyboardInterrupt::new().to_string());
        let group = Error::new(ErrorGroup::new(vec![Error::new(UsageError::new("boom"))]));
        let interrupt = KeyboardInterrupt::carrying(group);
        assert_eq!(
            interrupt.to_string(),
            "KeyboardInterrupt: the run was interrupted by Ctrl-C, then its cleanup failed: \
             1 error in a nursery: boom"
        );
        let source = StdError::source(&interrupt).expect("the cleanup error is the source");
        assert!(source.is::<ErrorGroup>());
        let cleanup = interrupt.into_cleanup_error().expect("kept");
        assert!(cleanup.leaves()[0].is::<UsageError>());
    }
}
