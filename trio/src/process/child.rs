//! [`Process`] and [`open_process`]: spawning a child, waiting for it without a thread (a
//! pidfd on the reactor), signalling it, and reaping it on every path.
//!
//! # Waiting for a child
//! On Linux 5.3 and later the child's process fd (`pidfd_open`) becomes readable when the child
//! exits; [`Process::wait`] waits for that with [`wait_readable`] like any other fd, then reaps
//! the child with `waitpid(WNOHANG)`. Signals go through the pidfd too
//! (`pidfd_send_signal`), so they can never reach another process that reused the pid.
//!
//! Elsewhere (macOS), and on Linux when `pidfd_open` fails (older kernels, seccomp sandboxes
//! that filter it), a **waiter thread** per child blocks in `waitid(WEXITED | WNOWAIT)`, which
//! waits without reaping, and then closes the write end of a pipe whose read end the reactor
//! watches: the same wait for readability on the trio side. The child stays a zombie until
//! trio reaps it, so its pid cannot be reused while trio may still signal it.
//!
//! # Reaping on every path
//! - `wait`, `poll` and `returncode` reap the child once it has exited.
//! - A `Process` whose last handle is dropped while the child runs does not kill it (as
//!   Trio's, and std's and tokio's by default): the child runs on and is reaped when it exits,
//!   by a small thread (the pidfd case) or by its waiter thread, so it never stays a zombie.
//! - [`run_process`](crate::run_process) kills and reaps its child when it is cancelled, and
//!   also when its future is dropped mid-way (a panic unwinding through the caller, a run torn
//!   down): see `KillOnDrop` in `run.rs`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::command::{Command, StdioKind};
use super::pipe::{PipeReceiveStream, PipeSendStream};
use crate::lowlevel::{checkpoint, notify_closing, wait_readable};
use crate::stream::StapledStream;
use crate::sync::Lock;
use crate::{Error, Result, UsageError, sys};

/// Tests set this to run the waiter-thread fallback on Linux too.
static FORCE_WAITER_THREAD: AtomicBool = AtomicBool::new(false);

/// Makes every child spawned from now on use the waiter-thread fallback instead of a pidfd
/// (`true`), or go back to pidfds where the kernel has them (`false`). For tests of the
/// fallback on Linux.
pub(crate) fn force_waiter_thread(force: bool) {
    FORCE_WAITER_THREAD.store(force, Ordering::SeqCst);
}

/// Spawning a child failed: the program was not found, was not executable, the working
/// directory did not exist, ... Carries the command and the OS error.
#[derive(Debug)]
pub struct SpawnError {
    command: String,
    source: io::Error,
    /// The program name has whitespace in it: probably a command line passed as one string.
    spaced_program: bool,
}

impl SpawnError {
    /// The command that failed to start, as text.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The kind of the OS error (`NotFound`, `PermissionDenied`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot run `{}`: {}", self.command, self.source)?;
        if self.spaced_program && self.source.kind() == io::ErrorKind::NotFound {
            write!(
                f,
                " (the program name has a space in it: pass the arguments separately, as \
                 [\"ls\", \"-l\"])"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What tells the trio side that the child exited: an fd that becomes readable.
enum ExitFd {
    /// Linux: the process fd itself.
    Pidfd(OwnedFd),
    /// The fallback: the read end of a pipe whose write end the waiter thread closes.
    Thread {
        read_end: OwnedFd,
        shared: Arc<Mutex<ThreadState>>,
    },
}

impl ExitFd {
    fn raw_fd(&self) -> RawFd {
        match self {
            ExitFd::Pidfd(fd) => fd.as_raw_fd(),
            ExitFd::Thread { read_end, .. } => read_end.as_raw_fd(),
        }
    }
}

/// What the trio side and a waiter thread share. Whoever finds the child exited and the
/// `Process` gone reaps it; nobody reaps twice.
#[derive(Default)]
struct ThreadState {
    /// The pipe's write end: the thread closes it when the child exits (waking the trio side),
    /// or the trio side does once it no longer listens (it reaped the child, or the `Process`
    /// is gone), so no fd outlives the `Process` whatever the thread is doing.
    write_end: Option<OwnedFd>,
    /// The waiter thread saw the child exit.
    exited: bool,
    /// The trio side reaped the child.
    reaped: bool,
    /// Every handle to the `Process` is gone (the child was not reaped yet).
    abandoned: bool,
}

struct Inner {
    pid: libc::pid_t,
    command: String,
    status: Cell<Option<ExitStatus>>,
    exit_fd: RefCell<Option<ExitFd>>,
    stdin: RefCell<Option<PipeSendStream>>,
    stdout: RefCell<Option<PipeReceiveStream>>,
    stderr: RefCell<Option<PipeReceiveStream>>,
    wait_lock: Lock,
}

/// A child process (Trio's `trio.Process`; std's `Child`, async).
///
/// Get one from [`open_process`], or from [`run_process`](crate::run_process) started with
/// [`Nursery::start`](crate::Nursery::start) (which supervises the child while you use the
/// handle).
///
/// A cheap handle: clones refer to the same child. The exit status is updated whenever it is
/// asked for ([`returncode`](Self::returncode), [`poll`](Self::poll), [`wait`](Self::wait)).
/// Dropping the last handle while the child runs leaves it running; it is reaped in the
/// background when it exits (no zombie). See the [module docs](crate::process) for how a
/// child is waited for.
#[derive(Clone)]
pub struct Process {
    inner: Rc<Inner>,
}

impl Process {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid as u32
    }

    /// The command the child runs, as text.
    pub fn command(&self) -> &str {
        &self.inner.command
    }

    /// The exit status if the child has exited (reaping it then), else `None`. Not a
    /// checkpoint.
    ///
    /// On Unix a child killed by a signal has no exit code: `status.code()` is `None` and
    /// `std::os::unix::process::ExitStatusExt::signal` gives the signal. Where SIGCHLD is
    /// ignored, the kernel reaps children itself and their status is lost: it reads as
    /// success (exit code 0), as in Python.
    pub fn returncode(&self) -> Option<ExitStatus> {
        self.try_reap()
    }

    /// The same as [`returncode`](Self::returncode) (Trio has both, for code ported from
    /// `subprocess`).
    pub fn poll(&self) -> Option<ExitStatus> {
        self.try_reap()
    }

    /// Waits until the child exits and returns its exit status. Any number of tasks may wait
    /// at once; all get the status.
    ///
    /// # Checkpoint
    /// Yes, also when the child has exited already.
    ///
    /// # Cancel safety
    /// Safe: a cancelled wait only stops waiting; the child runs on.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let _turn = self.inner.wait_lock.lock().await?;
        loop {
            if let Some(status) = self.try_reap() {
                return Ok(status);
            }
            let fd = self.inner.exit_fd.borrow().as_ref().map(ExitFd::raw_fd);
            let Some(fd) = fd else {
                return Err(Error::usage(format!(
                    "process {} has no exit notification but was not reaped",
                    self.inner.pid
                )));
            };
            match wait_readable(fd).await {
                Ok(()) => {}
                // A `poll` in another task reaped the child and closed the fd.
                Err(e) if e.is_closed() => continue,
                Err(e) => return Err(e),
            }
            if let Some(status) = self.try_reap() {
                return Ok(status);
            }
            // The fd says the child exited, so the reap cannot block for long.
            return Ok(self.reap_blocking());
        }
    }

    /// Sends `signal` (`libc::SIGUSR1`, ...) to the child. Does nothing once the child has
    /// exited and been reaped (so a signal never reaches another process that reused its
    /// pid). Not a checkpoint.
    pub fn send_signal(&self, signal: i32) -> Result<()> {
        if self.try_reap().is_some() {
            return Ok(());
        }
        let sent = match &*self.inner.exit_fd.borrow() {
            Some(ExitFd::Pidfd(pidfd)) => sys::pidfd_send_signal(pidfd.as_fd(), signal),
            _ => sys::kill(self.inner.pid, signal),
        };
        match sent {
            // Exited between the reap above and the signal: nothing to signal.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(Error::new(UsageError::new(
                format!("{signal} is not a signal number"),
            ))),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(()),
        }
    }

    /// Asks the child to exit: SIGTERM, which a program may catch to clean up, or ignore.
    /// Not a checkpoint.
    pub fn terminate(&self) -> Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Kills the child: SIGKILL, which it cannot catch. It has exited once
    /// [`wait`](Self::wait) returns. Not a checkpoint.
    pub fn kill(&self) -> Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// A stream to the child's standard input, if it was [piped](super::Stdio::piped) (a
    /// handle: closing it sends the child end-of-file).
    pub fn stdin(&self) -> Option<PipeSendStream> {
        self.inner.stdin.borrow().clone()
    }

    /// A stream from the child's standard output, if it was [piped](super::Stdio::piped).
    pub fn stdout(&self) -> Option<PipeReceiveStream> {
        self.inner.stdout.borrow().clone()
    }

    /// A stream from the child's standard error, if it was [piped](super::Stdio::piped).
    pub fn stderr(&self) -> Option<PipeReceiveStream> {
        self.inner.stderr.borrow().clone()
    }

    /// One stream that sends to the child's stdin and receives from its stdout, if both are
    /// piped (Trio's `Process.stdio`); its `send_eof` closes stdin.
    pub fn stdio(&self) -> Option<StapledStream<PipeSendStream, PipeReceiveStream>> {
        Some(StapledStream::new(self.stdin()?, self.stdout()?))
    }

    /// Takes the stdin stream out of the process (`stdin()` is `None` afterwards).
    pub(crate) fn take_stdin(&self) -> Option<PipeSendStream> {
        self.inner.stdin.borrow_mut().take()
    }

    /// Takes the stdout stream out of the process.
    pub(crate) fn take_stdout(&self) -> Option<PipeReceiveStream> {
        self.inner.stdout.borrow_mut().take()
    }

    /// Takes the stderr stream out of the process.
    pub(crate) fn take_stderr(&self) -> Option<PipeReceiveStream> {
        self.inner.stderr.borrow_mut().take()
    }

    /// Reaps the child if it has exited; the status once known.
    fn try_reap(&self) -> Option<ExitStatus> {
        if let Some(status) = self.inner.status.get() {
            return Some(status);
        }
        match sys::waitpid_nohang(self.inner.pid) {
            Ok(None) => None,
            Ok(Some(raw)) => Some(self.inner.record(ExitStatus::from_raw(raw))),
            // Reaped by the kernel (SIGCHLD ignored): the status is gone.
            Err(_) => Some(self.inner.record(ExitStatus::from_raw(0))),
        }
    }

    /// Reaps the child, blocking the thread until it exits.
    fn reap_blocking(&self) -> ExitStatus {
        self.inner.reap_blocking()
    }

    /// Kills the child and reaps it, blocking the thread until it is gone (it cannot catch
    /// SIGKILL, so that is at once). What `run_process` does when its future is dropped.
    pub(crate) fn kill_and_reap_now(&self) {
        if self.try_reap().is_none() {
            let _ = self.kill();
            self.reap_blocking();
        }
    }
}

impl Inner {
    /// Notes the exit status and lets go of the exit fd.
    fn record(&self, status: ExitStatus) -> ExitStatus {
        self.status.set(Some(status));
        if let Some(exit_fd) = self.exit_fd.borrow_mut().take() {
            // Wakes a task waiting on the fd (it finds the status) and makes the reactor forget
            // the fd before it is closed.
            notify_closing(exit_fd.raw_fd());
            if let ExitFd::Thread { shared, .. } = &exit_fd {
                let mut state = lock(shared);
                state.reaped = true;
                drop(state.write_end.take());
            }
        }
        status
    }

    fn reap_blocking(&self) -> ExitStatus {
        if let Some(status) = self.status.get() {
            return status;
        }
        let raw = sys::waitpid_blocking(self.pid).unwrap_or(0);
        self.record(ExitStatus::from_raw(raw))
    }
}

fn lock(shared: &Mutex<ThreadState>) -> std::sync::MutexGuard<'_, ThreadState> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        let exit_fd = self.exit_fd.get_mut().take();
        if let Some(exit_fd) = &exit_fd {
            notify_closing(exit_fd.raw_fd());
        }
        if self.status.get().is_some() {
            return;
        }
        let pid = self.pid;
        let reaped = !matches!(sys::waitpid_nohang(pid), Ok(None));
        match exit_fd {
            Some(ExitFd::Thread { shared, .. }) => {
                let mut state = lock(&shared);
                drop(state.write_end.take());
                if reaped {
                    state.reaped = true;
                } else if state.exited {
                    state.reaped = true;
                    drop(state);
                    let _ = sys::waitpid_blocking(pid);
                } else {
                    // The waiter thread reaps it when it exits.
                    state.abandoned = true;
                }
            }
            _ if reaped => {}
            _ => {
                // The child runs on; a thread reaps it when it exits. If no thread can be
                // started, the child stays a zombie until this process exits.
                let _ = std::thread::Builder::new()
                    .name("trio-reaper".into())
                    .spawn(move || sys::waitpid_blocking(pid));
            }
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.inner.status.get() {
            None => format!("running with pid {}", self.inner.pid),
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!("exited with signal {signal}"),
                (None, None) => format!("{status}"),
            },
        };
        f.debug_struct("Process")
            .field("command", &self.inner.command)
            .field("state", &state)
            .finish()
    }
}

/// Starts a waiter thread for `pid`; returns the read end that becomes readable when the
/// child has exited.
fn start_waiter_thread(pid: libc::pid_t) -> io::Result<ExitFd> {
    let (read_end, write_end) = sys::owned_nonblocking_pipe()?;
    let shared = Arc::new(Mutex::new(ThreadState {
        write_end: Some(write_end),
        ..ThreadState::default()
    }));
    let thread_shared = shared.clone();
    std::thread::Builder::new()
        .name("trio-child-wait".into())
        .spawn(move || {
            // Not reaped by the trio side yet: wait (an error means there is nothing to
            // wait for, which the trio side finds out when it reaps).
            if !lock(&thread_shared).reaped {
                let _ = sys::wait_exited_without_reaping(pid);
            }
            let mut state = lock(&thread_shared);
            drop(state.write_end.take());
            state.exited = true;
            if state.abandoned && !state.reaped {
                state.reaped = true;
                drop(state);
                let _ = sys::waitpid_blocking(pid);
            }
        })?;
    Ok(ExitFd::Thread { read_end, shared })
}

/// How the child learns it exited: a pidfd where the kernel has them, else a waiter thread.
fn exit_fd_for(pid: libc::pid_t) -> io::Result<ExitFd> {
    if !FORCE_WAITER_THREAD.load(Ordering::SeqCst) {
        if let Ok(pidfd) = sys::pidfd_open(pid) {
            return Ok(ExitFd::Pidfd(pidfd));
        }
    }
    start_waiter_thread(pid)
}

/// The std stdio for one of trio's settings (`None`: std's default, inherit).
fn std_stdio(kind: &StdioKind, which: &str) -> Result<std::process::Stdio> {
    Ok(match kind {
        StdioKind::Inherit => std::process::Stdio::inherit(),
        StdioKind::Null => std::process::Stdio::null(),
        StdioKind::Piped => std::process::Stdio::piped(),
        StdioKind::Fd(fd) => std::process::Stdio::from(fd.try_clone()?),
        StdioKind::SameAsStdout => {
            return Err(Error::usage(format!(
                "Stdio::same_as_stdout() is for stderr only, not {which}"
            )));
        }
    })
}

/// Spawns the child (synchronously: fork/exec or posix_spawn, as std does) and wraps it.
fn spawn(command: &Command) -> Result<Process> {
    let text = command.to_string();
    if command.program.is_empty() {
        return Err(Error::usage(
            "cannot run an empty command (no program given)",
        ));
    }
    let mut std_command = command.to_std();
    if let Some(stdin) = &command.stdin {
        std_command.stdin(std_stdio(&stdin.0, "stdin")?);
    }
    let stdout_kind = command.stdout.as_ref().map(|s| &s.0);
    let merged = matches!(
        command.stderr.as_ref().map(|s| &s.0),
        Some(StdioKind::SameAsStdout)
    );
    // With stderr merged into a piped stdout, trio makes the pipe itself so that both of the
    // child's streams can get its write end.
    let mut merged_read_end = None;
    match (stdout_kind, merged) {
        (Some(kind), false) => {
            std_command.stdout(std_stdio(kind, "stdout")?);
        }
        (None, false) => {}
        (Some(StdioKind::Piped), true) => {
            let (read, write) = sys::blocking_pipe()?;
            std_command.stdout(std::process::Stdio::from(write.try_clone()?));
            std_command.stderr(std::process::Stdio::from(write));
            merged_read_end = Some(read);
        }
        (None | Some(StdioKind::Inherit), true) => {
            let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
            std_command.stderr(std::process::Stdio::from(stdout));
        }
        (Some(kind), true) => {
            std_command.stdout(std_stdio(kind, "stdout")?);
            std_command.stderr(std_stdio(kind, "stdout")?);
        }
    }
    if !merged {
        if let Some(stderr) = &command.stderr {
            std_command.stderr(std_stdio(&stderr.0, "stderr")?);
        }
    }
    let mut child = std_command.spawn().map_err(|source| SpawnError {
        command: text.clone(),
        source,
        spaced_program: command
            .program
            .to_string_lossy()
            .contains(char::is_whitespace),
    })?;
    // Dropping std's `Child` neither kills nor waits: from here on the `Process` owns the
    // child, and the guard makes sure an error below does not leave it unreaped.
    let pid = child.id() as libc::pid_t;
    let stdin = child.stdin.take().map(OwnedFd::from);
    let stdout = child.stdout.take().map(OwnedFd::from).or(merged_read_end);
    let stderr = child.stderr.take().map(OwnedFd::from);
    drop(child);
    let process = Process {
        inner: Rc::new(Inner {
            pid,
            command: text,
            status: Cell::new(None),
            exit_fd: RefCell::new(None),
            stdin: RefCell::new(None),
            stdout: RefCell::new(None),
            stderr: RefCell::new(None),
            wait_lock: Lock::new(),
        }),
    };
    let wrapped = (|| -> Result<()> {
        *process.inner.exit_fd.borrow_mut() = Some(exit_fd_for(pid)?);
        if let Some(fd) = stdin {
            *process.inner.stdin.borrow_mut() = Some(PipeSendStream::from_fd(fd)?);
        }
        if let Some(fd) = stdout {
            *process.inner.stdout.borrow_mut() = Some(PipeReceiveStream::from_fd(fd)?);
        }
        if let Some(fd) = stderr {
            *process.inner.stderr.borrow_mut() = Some(PipeReceiveStream::from_fd(fd)?);
        }
        Ok(())
    })();
    if let Err(e) = wrapped {
        process.kill_and_reap_now();
        return Err(e);
    }
    Ok(process)
}

/// Starts `command` in a child process and returns it at once (Trio's
/// `trio.lowlevel.open_process`; std's `Command::spawn`).
///
/// Its standard streams go where the command says; each stream set to
/// [`Stdio::piped`](super::Stdio::piped) is offered as a trio stream
/// ([`Process::stdin`], [`Process::stdout`], [`Process::stderr`]). Unset streams are
/// inherited.
///
/// Nothing supervises the child: wait for it, kill it, or let it run on. To run a child as
/// part of a task, with cancellation killing it, use [`run_process`](crate::run_process)
/// (with [`Nursery::start`](crate::Nursery::start) to get the `Process` while it runs).
///
/// ```
/// use trio::process::{Command, Stdio};
/// use trio::stream::prelude::*;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let mut command = Command::new("sort");
///     command.stdin(Stdio::piped()).stdout(Stdio::piped());
///     let child = trio::open_process(&command).await?;
///     let (stdin, stdout) = (child.stdin().unwrap(), child.stdout().unwrap());
///     stdin.send_all(b"pear\napple\n").await?;
///     stdin.aclose().await?; // end-of-file for sort
///     let mut sorted = Vec::new();
///     loop {
///         let chunk = stdout.receive_some(4096).await?;
///         if chunk.is_empty() {
///             break;
///         }
///         sorted.extend(chunk);
///     }
///     assert_eq!(sorted, b"apple\npear\n");
///     assert!(child.wait().await?.success());
///     Ok(())
/// })
/// # }
/// ```
///
/// Errors: [`SpawnError`] when the program cannot be started (not found, not executable, a
/// missing working directory), [`UsageError`] for a command that makes no sense (empty, or
/// [`Stdio::same_as_stdout`](super::Stdio::same_as_stdout) given for stdin or stdout).
///
/// # Checkpoint
/// Yes: a checkpoint, then the spawn (which does not wait).
///
/// # Cancel safety
/// Safe: cancelled at its checkpoint, it has started nothing; once the child is spawned it
/// returns without waiting again.
pub async fn open_process(command: impl Into<Command>) -> Result<Process> {
    let command = command.into();
    checkpoint().await?;
    spawn(&command)
}
