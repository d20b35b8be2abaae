//! [`run_process`]: run a child to completion inside a task, with Trio's options, and with
//! cancellation that kills the child and waits for it.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::ExitStatus;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::child::{Process, open_process};
use super::command::{Command, Stdio};
use super::pipe::{PipeReceiveStream, PipeSendStream};
use crate::stream::{AsyncResourceExt, ReceiveStreamExt, SendStreamExt};
use crate::{BrokenResourceError, CancelScope, Error, Result, TaskStatus, open_nursery, sleep};

type DeliverCancel = Box<dyn FnOnce(Process) -> Pin<Box<dyn Future<Output = Result<()>>>>>;

/// Runs `command` in a child process and waits for it to exit (Trio's `trio.run_process`;
/// std's `Command::output`, async).
///
/// Returns a future that is also the builder of Trio's options; await it to run the command:
///
/// ```no_run
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let done = trio::run_process(["git", "rev-parse", "HEAD"])
///         .capture_stdout()
///         .await?;
///     println!("at {}", String::from_utf8_lossy(&done.stdout).trim());
///     Ok(())
/// })
/// # }
/// ```
///
/// - **Input:** the child's stdin is empty (end-of-file at once) unless
///   [`stdin`](RunProcess::stdin) gives it bytes, which are fed through a pipe and followed
///   by end-of-file; or the command sets it ([`Command::stdin`], for example to
///   [`Stdio::inherit`] to read this process's stdin).
/// - **Output:** stdout and stderr go where this process's go, unless captured
///   ([`capture_stdout`](RunProcess::capture_stdout),
///   [`capture_stderr`](RunProcess::capture_stderr)) into the result, or redirected by the
///   command ([`Stdio::same_as_stdout`](super::Stdio::same_as_stdout) for stderr captures
///   both, interleaved, with `capture_stdout`).
/// - **Errors:** with [`check`](RunProcess::check) on (the default), a child that does not
///   exit successfully is a [`CalledProcessError`] carrying its exit status and what was
///   captured (its stderr, say). [`SpawnError`](super::SpawnError) when it cannot be started.
/// - **Cancellation:** cancelled, `run_process` delivers the cancellation to the child
///   (SIGTERM, then SIGKILL if the child is still there 5 seconds later, with a warning
///   through `tracing`, target `trio::run_process`; or whatever
///   [`deliver_cancel`](RunProcess::deliver_cancel) does), waits until the child has exited,
///   and then returns `Cancelled`. If its future is dropped instead (a panic unwinding, a run
///   torn down), it kills the child with SIGKILL and reaps it before the drop returns. On
///   every path the child is reaped and the pipes trio made for it are closed.
///
/// **As a task:** with [`Nursery::start`](crate::Nursery::start) and
/// [`task_status`](RunProcess::task_status), `start` returns the running [`Process`] (to send
/// it signals, or read a stream the command pipes), and the task supervises the child as above:
///
/// ```
/// use trio::process::{Command, Stdio};
/// use trio::stream::prelude::*;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     trio::open_nursery(|nursery| async move {
///         let mut command = Command::new("yes");
///         command.stdout(Stdio::piped());
///         let child = nursery
///             .start(|status| trio::run_process(&command).check(false).task_status(status))
///             .await?;
///         let first = child.stdout().unwrap().receive_some(2).await?;
///         assert_eq!(first, b"y\n");
///         nursery.cancel_scope().cancel(); // the child gets SIGTERM and is reaped
///         Ok(())
///     })
///     .await
/// })
/// # }
/// ```
///
/// **Ctrl-C:** a child in the terminal's foreground process group (the default) gets the
/// terminal's SIGINT at the same time as this process. Trio's run turns that into
/// cancellation, so `run_process` then delivers its cancellation too (SIGTERM to a child that
/// is probably exiting already) and waits for the child before the run ends. A child in a
/// process group of its own ([`Command::process_group`]) does not see the Ctrl-C and is
/// stopped by the cancellation alone.
pub fn run_process(command: impl Into<Command>) -> RunProcess {
    RunProcess {
        state: RunState::Options(Options {
            command: command.into(),
            input: None,
            capture_stdout: false,
            capture_stderr: false,
            check: true,
            deliver_cancel: None,
        }),
    }
}

/// The future of [`run_process`], and the builder of its options: set them, then await it.
///
/// # Checkpoint
/// Yes: it spawns after a checkpoint and waits for the child.
///
/// # Cancel safety
/// Cancelled, it stops the child ([`RunProcess::deliver_cancel`]), waits for it to exit, and
/// returns `Cancelled`; what was captured is lost. Dropped, it kills the child with SIGKILL
/// and reaps it before the drop returns.
#[must_use = "run_process does nothing unless awaited"]
pub struct RunProcess {
    state: RunState,
}

enum RunState {
    Options(Options),
    Running(Pin<Box<dyn Future<Output = Result<CompletedProcess>>>>),
    /// An option was set after the first poll: the next poll reports it.
    Misused(&'static str),
    Done,
}

struct Options {
    command: Command,
    input: Option<Vec<u8>>,
    capture_stdout: bool,
    capture_stderr: bool,
    check: bool,
    deliver_cancel: Option<DeliverCancel>,
}

impl fmt::Debug for RunProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RunState::Options(options) = &self.state else {
            return f.write_str("RunProcess(running)");
        };
        f.debug_struct("RunProcess")
            .field("command", &options.command)
            .field("stdin_bytes", &options.input.as_ref().map(Vec::len))
            .field("capture_stdout", &options.capture_stdout)
            .field("capture_stderr", &options.capture_stderr)
            .field("check", &options.check)
            .field("custom_deliver_cancel", &options.deliver_cancel.is_some())
            .finish()
    }
}

impl RunProcess {
    /// Feeds `data` to the child's stdin through a pipe, then closes it (end-of-file). A child
    /// that exits or closes its stdin before reading everything is fine: the rest is dropped.
    /// Conflicts with a stdin set on the command.
    pub fn stdin(self, data: impl Into<Vec<u8>>) -> Self {
        self.set("stdin", |o| o.input = Some(data.into()))
    }

    /// Captures what the child writes to stdout into [`CompletedProcess::stdout`] (and
    /// [`CalledProcessError::stdout`]). Conflicts with a stdout set on the command.
    pub fn capture_stdout(self) -> Self {
        self.set("capture_stdout", |o| o.capture_stdout = true)
    }

    /// Captures what the child writes to stderr into [`CompletedProcess::stderr`] (and
    /// [`CalledProcessError::stderr`]). Conflicts with a stderr set on the command.
    pub fn capture_stderr(self) -> Self {
        self.set("capture_stderr", |o| o.capture_stderr = true)
    }

    /// Whether a child that does not exit successfully is an error ([`CalledProcessError`]);
    /// on by default (errors should never pass silently). With `false`, look at
    /// [`CompletedProcess::status`].
    pub fn check(self, check: bool) -> Self {
        self.set("check", |o| o.check = check)
    }

    /// How a cancelled `run_process` stops the child, in place of the default (SIGTERM, 5
    /// seconds, SIGKILL). `deliver` gets the process and runs in a task of its own, shielded
    /// from the cancellation; once the child has exited, that task is cancelled, so a
    /// `deliver` that is still sleeping never reaches its next step. `run_process` waits for
    /// the child to exit whatever `deliver` does; if `deliver` fails, the child is killed
    /// with SIGKILL and the error is reported with the cancellation.
    ///
    /// ```no_run
    /// # async fn f() -> trio::Result<()> {
    /// // Ask nicely with SIGINT first, as a terminal would.
    /// trio::run_process(["my-server"])
    ///     .deliver_cancel(|process| async move {
    ///         process.send_signal(libc::SIGINT)?;
    ///         trio::sleep(10).await?;
    ///         process.kill()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn deliver_cancel<F, Fut>(self, deliver: F) -> Self
    where
        F: FnOnce(Process) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        self.set("deliver_cancel", |o| {
            o.deliver_cancel = Some(Box::new(move |process| Box::pin(deliver(process))));
        })
    }

    fn set(mut self, name: &'static str, f: impl FnOnce(&mut Options)) -> Self {
        match &mut self.state {
            RunState::Options(options) => f(options),
            _ => self.state = RunState::Misused(name),
        }
        self
    }

    /// The form for [`Nursery::start`](crate::Nursery::start): the task reports the running
    /// [`Process`] to `start` once the child is spawned, then supervises it as `run_process`
    /// does; it ends (with `Ok(())`, or the error `run_process` would return) when the child
    /// has exited. Only in this form may the command pipe a stream
    /// ([`Stdio::piped`](super::Stdio::piped)) that the caller then reads or writes.
    ///
    /// # Checkpoint
    /// Yes, as `run_process`.
    ///
    /// # Cancel safety
    /// As `run_process`: cancelled, it stops the child and waits for it; dropped, it kills
    /// and reaps it.
    pub fn task_status(self, status: TaskStatus<Process>) -> RunProcessTask {
        let inner: Pin<Box<dyn Future<Output = Result<()>>>> = match self.state {
            RunState::Options(options) => {
                Box::pin(async move { run(options, Some(status)).await.map(drop) })
            }
            _ => Box::pin(std::future::ready(Err(Error::usage(
                "run_process: task_status() on a future that was already polled",
            )))),
        };
        RunProcessTask { inner }
    }
}

impl Future for RunProcess {
    type Output = Result<CompletedProcess>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                RunState::Options(_) => {
                    let RunState::Options(options) =
                        std::mem::replace(&mut this.state, RunState::Done)
                    else {
                        unreachable!("matched just above");
                    };
                    this.state = RunState::Running(Box::pin(run(options, None)));
                }
                RunState::Running(running) => {
                    let polled = running.as_mut().poll(cx);
                    if polled.is_ready() {
                        this.state = RunState::Done;
                    }
                    return polled;
                }
                RunState::Misused(name) => {
                    let name = *name;
                    // Dropping the running future (if any) kills and reaps its child.
                    this.state = RunState::Done;
                    return Poll::Ready(Err(Error::usage(format!(
                        "run_process: the option {name} was set after the future was first \
                         polled"
                    ))));
                }
                RunState::Done => {
                    return Poll::Ready(Err(Error::usage("run_process polled after it finished")));
                }
            }
        }
    }
}

/// The future of [`RunProcess::task_status`], for [`Nursery::start`](crate::Nursery::start).
#[must_use = "futures do nothing unless awaited"]
pub struct RunProcessTask {
    inner: Pin<Box<dyn Future<Output = Result<()>>>>,
}

impl fmt::Debug for RunProcessTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunProcessTask")
    }
}

impl Future for RunProcessTask {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// A child that ran to completion (Python's `subprocess.CompletedProcess`).
#[derive(Clone, Debug)]
pub struct CompletedProcess {
    /// The command, as text.
    pub command: String,
    /// How the child exited.
    pub status: ExitStatus,
    /// What the child wrote to stdout, if captured (else empty).
    pub stdout: Vec<u8>,
    /// What the child wrote to stderr, if captured (else empty).
    pub stderr: Vec<u8>,
}

/// A child run with [`check`](RunProcess::check) on did not exit successfully (Python's
/// `subprocess.CalledProcessError`). Carries the exit status and whatever was captured.
#[derive(Clone, Debug)]
pub struct CalledProcessError {
    command: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl CalledProcessError {
    /// The command, as text.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// How the child exited: an exit code other than 0 (`status.code()`), or a signal
    /// (`std::os::unix::process::ExitStatusExt::signal`).
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// What the child wrote to stdout, if [captured](RunProcess::capture_stdout) (else empty).
    pub fn stdout(&self) -> &[u8] {
        &self.stdout
    }

    /// What the child wrote to stderr, if [captured](RunProcess::capture_stderr) (else empty).
    pub fn stderr(&self) -> &[u8] {
        &self.stderr
    }
}

/// How much of a captured stderr the message shows (its end, where the error usually is).
const STDERR_IN_MESSAGE: usize = 2000;

impl fmt::Display for CalledProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command `{}` ", self.command)?;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}")?,
            (None, Some(signal)) => write!(f, "was killed by signal {signal}")?,
            (None, None) => write!(f, "failed ({})", self.status)?,
        }
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr = stderr.trim_end();
        if !stderr.is_empty() {
            let mut start = stderr.len().saturating_sub(STDERR_IN_MESSAGE);
            while !stderr.is_char_boundary(start) {
                start += 1;
            }
            let elided = if start > 0 { "..." } else { "" };
            write!(f, "; its stderr: {elided}{}", &stderr[start..])?;
        }
        Ok(())
    }
}

impl std::error::Error for CalledProcessError {}

/// Kills and reaps the child if `run_process`'s future is dropped before the child was
/// reaped; does nothing once it was.
struct KillOnDrop(Process);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill_and_reap_now();
    }
}

/// The default `deliver_cancel`: SIGTERM, then SIGKILL after 5 seconds (Trio's POSIX
/// default). As in Trio it never fails: the escalation and a failed signal are warnings
/// (through `tracing`, target `trio::run_process`), and a failed SIGTERM is followed by a
/// SIGKILL at once, so the wait for the child still ends.
async fn terminate_then_kill(process: Process) -> Result<()> {
    let failed = match process.terminate() {
        Ok(()) => {
            sleep(5).await?;
            tracing::warn!(
                target: "trio::run_process",
                pid = process.pid(),
                "process `{}` ignored SIGTERM for 5 seconds (maybe pass a custom \
                 deliver_cancel?); trying SIGKILL",
                process.command(),
            );
            process.kill().err()
        }
        Err(e) => Some(e),
    };
    if let Some(e) = failed {
        tracing::warn!(
            target: "trio::run_process",
            pid = process.pid(),
            "tried to kill process `{}`, but failed with: {e}",
            process.command(),
        );
        let _ = process.kill();
    }
    Ok(())
}

async fn feed_input(stdin: PipeSendStream, data: Vec<u8>) -> Result<()> {
    let sent = match stdin.send_all(&data).await {
        Err(e) if e.is::<BrokenResourceError>() => Ok(()),
        other => other,
    };
    stdin.aclose().await?;
    sent
}

async fn read_output(stream: PipeReceiveStream, into: Rc<RefCell<Vec<u8>>>) -> Result<()> {
    loop {
        let chunk = stream.receive_some(64 * 1024).await?;
        if chunk.is_empty() {
            break;
        }
        let mut buffer = into.borrow_mut();
        if buffer.is_empty() {
            *buffer = chunk;
        } else {
            buffer.extend_from_slice(&chunk);
        }
    }
    stream.aclose().await
}

fn check_options(spec: &Options, starting: bool) -> Result<()> {
    let command = &spec.command;
    if spec.input.is_some() && command.stdin.is_some() {
        return Err(Error::usage(
            "run_process: both stdin bytes and Command::stdin were given; choose one",
        ));
    }
    if spec.capture_stdout && command.stdout.is_some() {
        return Err(Error::usage(
            "run_process: both capture_stdout and Command::stdout were given; choose one",
        ));
    }
    if spec.capture_stderr && command.stderr.is_some() {
        return Err(Error::usage(
            "run_process: both capture_stderr and Command::stderr were given; choose one",
        ));
    }
    if !starting {
        for (name, stdio) in [
            ("stdin", &command.stdin),
            ("stdout", &command.stdout),
            ("stderr", &command.stderr),
        ] {
            if stdio.as_ref().is_some_and(Stdio::is_piped) {
                return Err(Error::usage(format!(
                    "run_process: {name} set to Stdio::piped() is only valid with \
                     Nursery::start and task_status, the only way to reach the pipe; use \
                     those, or run_process's own stdin/capture options"
                )));
            }
        }
    }
    Ok(())
}

async fn run(spec: Options, task_status: Option<TaskStatus<Process>>) -> Result<CompletedProcess> {
    check_options(&spec, task_status.is_some())?;
    let Options {
        mut command,
        input,
        capture_stdout,
        capture_stderr,
        check,
        deliver_cancel,
    } = spec;
    match input {
        Some(_) => {
            command.stdin(Stdio::piped());
        }
        // Trio's default is empty input; /dev/null gives the same end-of-file without a pipe.
        None if command.stdin.is_none() => {
            command.stdin(Stdio::null());
        }
        None => {}
    }
    if capture_stdout {
        command.stdout(Stdio::piped());
    }
    if capture_stderr {
        command.stderr(Stdio::piped());
    }
    let deliver_cancel = deliver_cancel
        .unwrap_or_else(|| Box::new(|process| Box::pin(terminate_then_kill(process))));

    let process = open_process(command).await?;
    let _reap = KillOnDrop(process.clone());
    let stdout = Rc::new(RefCell::new(Vec::new()));
    let stderr = Rc::new(RefCell::new(Vec::new()));
    let feed = input.and_then(|data| Some((process.take_stdin()?, data)));
    let read_stdout = capture_stdout.then(|| process.take_stdout()).flatten();
    let read_stderr = capture_stderr.then(|| process.take_stderr()).flatten();

    if feed.is_none() && read_stdout.is_none() && read_stderr.is_none() && task_status.is_none() {
        // Nothing runs beside the wait: no nursery needed (the common `run_process(cmd)`).
        if let Err(error) = process.wait().await {
            stop(&process, deliver_cancel).await?;
            return Err(error);
        }
    } else {
        open_nursery(|nursery| {
            let (process, stdout, stderr) = (process.clone(), stdout.clone(), stderr.clone());
            async move {
                let running = async {
                    if let Some((stdin, data)) = feed {
                        nursery.start_soon(feed_input(stdin, data))?;
                    }
                    if let Some(stream) = read_stdout {
                        nursery.start_soon(read_output(stream, stdout))?;
                    }
                    if let Some(stream) = read_stderr {
                        nursery.start_soon(read_output(stream, stderr))?;
                    }
                    if let Some(status) = task_status {
                        status.started(process.clone())?;
                    }
                    process.wait().await.map(drop)
                }
                .await;
                if let Err(error) = running {
                    // Cancelled, or a reader failed (which cancels this body).
                    stop(&process, deliver_cancel).await?;
                    return Err(error);
                }
                Ok(())
            }
        })
        .await?;
    }

    let status = process.returncode().ok_or_else(|| {
        Error::usage(format!(
            "run_process: `{}` was not reaped",
            process.command()
        ))
    })?;
    let stdout = std::mem::take(&mut *stdout.borrow_mut());
    let stderr = std::mem::take(&mut *stderr.borrow_mut());
    let command = process.command().to_string();
    if check && !status.success() {
        return Err(Error::new(CalledProcessError {
            command,
            status,
            stdout,
            stderr,
        }));
    }
    Ok(CompletedProcess {
        command,
        status,
        stdout,
        stderr,
    })
}

/// Stops the child after `run_process` was cancelled (or failed): runs `deliver` in a task
/// and waits for the child to exit, all shielded from the cancellation; once the child is
/// gone, `deliver` is cancelled. Fails if `deliver` did (the child was killed then).
async fn stop(process: &Process, deliver: DeliverCancel) -> Result<()> {
    let process = process.clone();
    CancelScope::new()
        .shielded(true)
        .run(open_nursery(|nursery| async move {
            let killer = CancelScope::new();
            let delivery = killer.run(deliver_with_fallback(deliver, process.clone()));
            nursery.start_soon(async move { delivery.await.map(drop) })?;
            process.wait().await?;
            killer.cancel();
            Ok(())
        }))
        .await
        .map(drop)
}

/// Runs `deliver`; if it fails, kills the child so that the wait for it ends, and reports the
/// failure.
async fn deliver_with_fallback(deliver: DeliverCancel, process: Process) -> Result<()> {
    let delivered = deliver(process.clone()).await;
    if delivered.is_err() {
        let _ = process.kill();
    }
    delivered
}
