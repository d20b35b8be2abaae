//! The trait bounds the macro expansions rely on, each with a compiler message that names the
//! fix (`#[diagnostic::on_unimplemented]`). The UI tests of trio-macros hold the exact text.
//!
//! A bound on a trait of our own reports our message even when its blanket impl is what fails
//! (`CheckpointError` for a type without `From<trio::Error>`), as long as the failing bound is
//! on the same type: the compiler then reports the outer obligation's message.

use crate::{Clock, Error, RunConfig};

/// The return type of a `#[checkpoint]` function: a `Result`.
#[diagnostic::on_unimplemented(
    message = "`#[checkpoint]` functions return a `Result`, not `{Self}`",
    label = "not a `Result`",
    note = "a checkpoint returns `Err(Cancelled)` when it runs in a cancelled scope: return \
            `trio::Result<T>`, or `Result<T, E>` with `E: From<trio::Error>`"
)]
pub trait CheckpointReturn: Sized {
    /// The error type.
    type Err;
    /// Whether this is `Ok`.
    fn is_ok(&self) -> bool;
    /// `Err(error)`.
    fn from_err(error: Self::Err) -> Self;
}

impl<T, E> CheckpointReturn for Result<T, E> {
    type Err = E;

    fn is_ok(&self) -> bool {
        Result::is_ok(self)
    }

    fn from_err(error: E) -> Self {
        Err(error)
    }
}

/// The error type of a `#[checkpoint]` function: one that can carry a `trio::Error`.
#[diagnostic::on_unimplemented(
    message = "`#[checkpoint]` functions need an error type that can carry `Cancelled`, and \
               `{Self}` can't",
    label = "`{Self}` has no `From<trio::Error>`",
    note = "a checkpoint cancelled on entry returns the `trio::Error` holding `Cancelled`, \
            converted with `From`: add `impl From<trio::Error> for {Self}` (say, an enum \
            variant holding the `trio::Error`), or return `trio::Result<T>`"
)]
pub trait CheckpointError: Sized {
    /// Converts the `trio::Error`.
    fn from_trio(error: Error) -> Self;
}

impl<E: From<Error>> CheckpointError for E {
    fn from_trio(error: Error) -> Self {
        E::from(error)
    }
}

/// `Err(cancelled)` as the return type `R` of a `#[checkpoint]` function.
pub fn checkpoint_cancelled<R>(cancelled: Error) -> R
where
    R: CheckpointReturn,
    R::Err: CheckpointError,
{
    R::from_err(CheckpointError::from_trio(cancelled))
}

/// What the `async fn` under `#[trio::main]` may return.
#[diagnostic::on_unimplemented(
    message = "`#[trio::main]` functions return `()` or `Result<(), E>` with `E: Debug`, not \
               `{Self}`",
    label = "not `()` or `Result<(), E>`",
    note = "return `trio::Result<()>`, or `Result<(), E>` with an error type `E: Debug`"
)]
pub trait MainOutput: 'static {
    /// `Ok(())`, or the error: a `trio::Error` as it is (so that `run` recognises a
    /// `Cancelled`), any other error as its `Debug` text.
    fn into_run_result(self) -> crate::Result<()>;
}

/// What the `async fn` under `#[trio::test]` may return.
#[diagnostic::on_unimplemented(
    message = "`#[trio::test]` functions return `()` or `Result<(), E>` with `E: Debug`, not \
               `{Self}`",
    label = "not `()` or `Result<(), E>`",
    note = "return `trio::Result<()>`, or `Result<(), E>` with an error type `E: Debug`"
)]
pub trait TestOutput: MainOutput {}

impl<R: MainOutput> TestOutput for R {}

/// What `#[trio::test(clock = EXPR)]` takes.
#[diagnostic::on_unimplemented(
    message = "`clock = ...` takes a `trio::Clock`, and `{Self}` is not one",
    label = "not a `trio::Clock`",
    note = "use `trio_test::MockClock::new()` (virtual time; \
            `.with_autojump_threshold(0).unwrap()` for autojump), `trio::SystemClock::new()`, \
            or a type of your own that implements `trio::Clock`"
)]
pub trait TestClock: Clock + 'static {}

impl<C: Clock + 'static> TestClock for C {}

/// `config` running on `clock` (the `clock = EXPR` option).
pub fn test_clock<C: TestClock>(config: RunConfig, clock: C) -> RunConfig {
    config.clock(clock)
}
