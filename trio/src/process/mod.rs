//! Child processes (Trio's `trio.run_process`, `trio.lowlevel.open_process`, `trio.Process`).
//!
//! - [`run_process`] runs a command to completion like a function call:
//!   input bytes in, captured output out, a non-zero exit as an error
//!   ([`CalledProcessError`]), and cancellation that stops the child and waits for it. Started
//!   with [`Nursery::start`](crate::Nursery::start), it hands back the running [`Process`]
//!   while it supervises it.
//! - [`open_process`] starts a child and hands it over unsupervised: a
//!   [`Process`] with [`wait`](Process::wait), [`returncode`](Process::returncode),
//!   [`send_signal`](Process::send_signal), [`terminate`](Process::terminate),
//!   [`kill`](Process::kill), and the piped standard streams as trio streams
//!   ([`PipeSendStream`], [`PipeReceiveStream`]: the [`stream`](crate::stream) traits, so the
//!   code that talks to a socket talks to a child too).
//! - [`Command`] says what to run; [`Stdio`] where each standard stream goes.
//!
//! ```no_run
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let done = trio::run_process(["tr", "a-z", "A-Z"])
//!         .stdin("hello")
//!         .capture_stdout()
//!         .await?;
//!     assert_eq!(done.stdout, b"HELLO");
//!
//!     let failed = trio::run_process(["ls", "/does/not/exist"]).capture_stderr().await;
//!     let error = failed.unwrap_err();
//!     let failure = error.downcast_ref::<trio::process::CalledProcessError>().unwrap();
//!     assert_eq!(failure.status().code(), Some(2));
//!     assert!(!failure.stderr().is_empty());
//!     Ok(())
//! })
//! # }
//! ```
//!
//! # How a child is waited for
//! Without a thread per child where the kernel allows: on Linux 5.3 and later, trio opens the
//! child's process fd (`pidfd_open`) and waits for it to become readable on the reactor, like
//! a socket; signals go through it too, so they cannot reach a process that reused the pid.
//! On macOS, and on Linux where `pidfd_open` is refused (old kernels, some sandboxes), a
//! small thread per child blocks in `waitid(WNOWAIT)` (which does not reap the child) and
//! then wakes the reactor through a pipe. Either way trio reaps the child itself, with
//! `waitpid`, and never waits for any child but its own (no `SIGCHLD` handler, no
//! `waitpid(-1)`), so it coexists with other code that spawns processes.
//!
//! # No zombies, no leaked fds
//! A child is reaped by whichever comes first: [`Process::wait`], [`Process::returncode`] /
//! [`Process::poll`] after it exited, `run_process` (on every path: normal, error,
//! cancellation, or its future dropped, which kills the child), or, when every handle to an
//! unsupervised `Process` is dropped while the child runs, a thread that reaps it when it
//! exits (the child is not killed: as in Trio and std). The pipes trio makes are
//! close-on-exec, so other children do not inherit them, and are closed when their streams
//! are closed or dropped; `run_process` closes those it uses before it returns.

mod child;
mod command;
mod pipe;
mod run;

pub use child::{Process, SpawnError, open_process};
pub use command::{Command, Stdio};
pub use pipe::{PipeReceiveStream, PipeSendStream, pipe};
pub use run::{CalledProcessError, CompletedProcess, RunProcess, RunProcessTask, run_process};

pub(crate) use child::force_waiter_thread;
