//! What `#[trio::main]` and `#[trio::test]` expand to: run the body, turn its outcome into
//! the process's end (main) or the test's verdict (test).

use std::any::Any;
use std::error::Error as StdError;
use std::fmt::{self, Debug};
use std::future::Future;
use std::io::Write;

use super::bounds::{MainOutput, TestOutput};
use crate::{Cancelled, DeadlockError, Error, KeyboardInterrupt, RunConfig};

impl MainOutput for () {
    fn into_run_result(self) -> crate::Result<()> {
        Ok(())
    }
}

impl<E: Debug + 'static> MainOutput for Result<(), E> {
    fn into_run_result(self) -> crate::Result<()> {
        self.map_err(body_error)
    }
}

/// The error a main or test body returned, as a `trio::Error`. trio's own error (and the
/// std error boxes that `?` makes of it) stays what it is, so that a `Cancelled` that reached
/// the top after Ctrl-C is recognised as the interruption itself and not as a failure;
/// anything else keeps its `Debug` text.
fn body_error<E: Debug + 'static>(error: E) -> Error {
    let mut slot = Some(error);
    if let Some(error) = take_as::<Error, E>(&mut slot) {
        return error;
    }
    if let Some(boxed) = take_as::<Box<dyn StdError + Send + Sync>, E>(&mut slot) {
        return Error::from_boxed(boxed);
    }
    if let Some(io) = take_as::<std::io::Error, E>(&mut slot) {
        return match io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Cancelled>())
        {
            Some(cancelled) => Error::new(cancelled.clone()),
            None => Error::new(io),
        };
    }
    if let Some(boxed) = take_as::<Box<dyn StdError>, E>(&mut slot) {
        if let Some(cancelled) = boxed.downcast_ref::<Cancelled>() {
            return Error::new(cancelled.clone());
        }
        return Error::new(ReturnedError(format!("{boxed:?}")));
    }
    // `slot` still holds the error: no `take_as` matched.
    Error::new(ReturnedError(
        slot.map_or_else(String::new, |e| format!("{e:?}")),
    ))
}

/// Moves the value out of `slot` if it is a `T`.
fn take_as<T: 'static, E: 'static>(slot: &mut Option<E>) -> Option<T> {
    (slot as &mut dyn Any).downcast_mut::<Option<T>>()?.take()
}

/// An error of a type trio does not know, returned by a main or test body: its `Debug` text.
struct ReturnedError(String);

impl Debug for ReturnedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ReturnedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ReturnedError {}

/// The body of a `#[trio::main]` function: runs it with Ctrl-C wiring and turns the outcome
/// into the end of the process. Success returns; an error is printed to stderr (`Error:` and
/// its `Debug` text, as Rust's own `main` does) and the process exits with status 1. After
/// Ctrl-C, the error of a failed cleanup is printed, then the process dies by SIGINT.
#[track_caller]
pub fn run_main<F, R>(fut: F)
where
    F: Future<Output = R> + 'static,
    R: MainOutput,
{
    run_main_with(RunConfig::new(), fut)
}

/// Runs `main` as `#[trio::main]` does, with a configuration of your own: an error is printed
/// to stderr and the process exits with status 1; after Ctrl-C (and shielded cleanup) the
/// process dies by SIGINT, so a calling shell stops too. For a `fn main` that wants, say,
/// `RunConfig::dump_on_signal`:
///
/// ```no_run
/// # #[allow(clippy::needless_doctest_main)]
/// fn main() {
///     trio::run_main_with(trio::RunConfig::new().dump_on_signal(true), async {
///         trio::sleep_forever().await
///     })
/// }
/// ```
#[track_caller]
pub fn run_main_with<F, R>(config: RunConfig, fut: F)
where
    F: Future<Output = R> + 'static,
    R: MainOutput,
{
    let Err(error) = config.run(async move { fut.await.into_run_result() }) else {
        return;
    };
    match error.downcast::<KeyboardInterrupt>() {
        Ok(interrupt) => {
            if let Some(cleanup) = interrupt.cleanup_error() {
                eprintln!("Error: interrupted by Ctrl-C, then the cleanup failed: {cleanup}");
            }
            die_by_sigint()
        }
        Err(error) => {
            eprintln!("Error: {error:?}");
            std::process::exit(1);
        }
    }
}

/// Ends the process as an uncaught SIGINT does, so that the parent's `waitpid` sees death by
/// SIGINT and a calling shell script stops too (a shell that sees `exit(130)` assumes the
/// program handled Ctrl-C and carries on). Python does the same since 3.8.
fn die_by_sigint() -> ! {
    // Death by signal skips the buffers' flush at exit.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: a zeroed sigaction is a valid value to fill in; `sa_mask` is a valid sigset_t
    // for sigemptyset; sigaction only reads `action`.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
    // SAFETY: a zeroed sigset_t is valid to initialise with sigemptyset; the calls only read
    // and write `set`. Unblocking makes the raise below take effect at once.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGINT);
    }
    // Only reached if another thread installed a SIGINT handler in between.
    std::process::exit(130)
}

/// The configuration `#[trio::test]` starts from: deadlock detection on, no Ctrl-C handler.
pub fn test_config() -> RunConfig {
    RunConfig::new().fail_on_deadlock(true).ctrl_c(false)
}

/// The body of a `#[trio::test]` function: panics (failing the test) on an error, a
/// deadlock (with a task dump) or an `Err` return. `#[track_caller]`: the failure points at
/// the test function, and the dump's main task was spawned there.
#[track_caller]
pub fn run_test<F, R>(config: RunConfig, fut: F)
where
    F: Future<Output = R> + 'static,
    R: TestOutput,
{
    match config.run(async move { Ok(fut.await.into_run_result()) }) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("test returned an error: {error:?}"),
        Err(e) => match e.downcast_ref::<DeadlockError>() {
            Some(deadlock) => panic!(
                "test deadlocked: every task is blocked and nothing can wake one\n{}",
                deadlock.task_dump()
            ),
            None => panic!("trio run failed: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CancelSource;

    fn cancelled() -> Cancelled {
        Cancelled::new(CancelSource::KeyboardInterrupt, None, None)
    }

    #[test]
    fn trio_errors_stay_recognisable_through_the_body_error() {
        assert!(body_error(Error::new(cancelled())).is_cancelled());
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(cancelled());
        assert!(body_error(boxed).is_cancelled());
        let boxed: Box<dyn StdError> = Box::new(cancelled());
        assert!(body_error(boxed).is_cancelled());
        assert!(body_error(std::io::Error::other(cancelled())).is_cancelled());
        let io = body_error(std::io::Error::other("disk full"));
        assert!(io.is::<std::io::Error>(), "{io:?}");
    }

    #[test]
    fn other_errors_keep_their_debug_text() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum AppError {
            Config(&'static str),
        }
        let error = body_error(AppError::Config("no port"));
        assert_eq!(format!("{error:?}"), r#"Config("no port")"#);
        assert_eq!(error.to_string(), r#"Config("no port")"#);
        assert_eq!(format!("{:?}", body_error("plain")), r#""plain""#);
    }
}
