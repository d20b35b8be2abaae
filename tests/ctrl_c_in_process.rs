//! `trio::run` after Ctrl-C, in this process: SIGINT is raised (`libc::raise`) while `run`'s
//! handler is installed. A test binary of its own, without the libtest harness: trio installs
//! its handler only on the main thread, and libtest runs tests on other threads.

use std::error::Error as _;

use trio::lowlevel::wait_all_tasks_blocked;
use trio::{CancelScope, KeyboardInterrupt};

fn ctrl_c() {
    // SAFETY: raise has no memory-safety preconditions; run's handler only sets a flag.
    let rc = unsafe { libc::raise(libc::SIGINT) };
    assert_eq!(rc, 0, "raise(SIGINT) failed");
}

/// Runs two tasks that wait forever, presses Ctrl-C once both are blocked, and gives each
/// task's shielded cleanup the outcome `cleanup(n)`.
fn interrupted_run(cleanup: fn(u32) -> trio::Result<()>) -> trio::Result<()> {
    trio::run(async move {
        trio::open_nursery(|nursery| async move {
            for n in 1..=2 {
                nursery.start_soon(async move {
                    let outcome = trio::sleep_forever().await;
                    CancelScope::new()
                        .shielded(true)
                        .run(async move { cleanup(n) })
                        .await?;
                    outcome
                })?;
            }
            wait_all_tasks_blocked().await?;
            ctrl_c();
            trio::sleep_forever().await
        })
        .await
    })
}

fn the_cleanup_error_travels_in_the_keyboard_interrupt() {
    let error = interrupted_run(|n| match n {
        2 => Err(std::io::Error::other("could not flush the log").into()),
        _ => Ok(()),
    })
    .expect_err("Ctrl-C ends the run with an error");
    let interrupt = error
        .downcast_ref::<KeyboardInterrupt>()
        .unwrap_or_else(|| panic!("not a KeyboardInterrupt: {error:?}"));
    let cleanup = interrupt
        .cleanup_error()
        .expect("the cleanup error is kept");
    let leaves = cleanup.leaves();
    assert_eq!(leaves.len(), 1, "{cleanup:?}");
    assert!(leaves[0].is::<std::io::Error>(), "{cleanup:?}");
    assert_eq!(leaves[0].to_string(), "could not flush the log");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "KeyboardInterrupt: the run was interrupted by Ctrl-C, then its cleanup failed: "
        ),
        "{message}"
    );
    assert!(message.contains("could not flush the log"), "{message}");
    let source = interrupt.source().expect("the cleanup error is the source");
    assert_eq!(source.to_string(), cleanup.to_string());
}

fn a_clean_interruption_carries_no_error() {
    let error = interrupted_run(|_| Ok(())).expect_err("Ctrl-C ends the run with an error");
    let interrupt = error
        .downcast_ref::<KeyboardInterrupt>()
        .unwrap_or_else(|| panic!("not a KeyboardInterrupt: {error:?}"));
    assert!(interrupt.cleanup_error().is_none(), "{interrupt:?}");
    assert!(interrupt.source().is_none());
    assert_eq!(
        error.to_string(),
        "KeyboardInterrupt: the run was interrupted by Ctrl-C"
    );
}

/// Raises SIGINT from `after_run`: after the main task ended, before `run` returns.
struct CtrlCInTeardown;

impl trio::Instrument for CtrlCInTeardown {
    fn after_run(&self) {
        ctrl_c();
    }
}

fn a_ctrl_c_during_teardown_is_not_swallowed() {
    let result = trio::RunConfig::new()
        .instrument(CtrlCInTeardown)
        .run(async { Ok(42) });
    let error = result.expect_err("the Ctrl-C came before run returned");
    assert!(error.is::<KeyboardInterrupt>(), "{error:?}");
}

fn main() {
    the_cleanup_error_travels_in_the_keyboard_interrupt();
    a_clean_interruption_carries_no_error();
    a_ctrl_c_during_teardown_is_not_swallowed();
    println!("ctrl_c_in_process: 3 checks passed");
}
