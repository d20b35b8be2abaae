//! Subprocess test cases (Trio's `test_subprocess.py`), shared by `process.rs` (pidfd waits
//! on Linux) and `process_waiter_thread.rs` (the waiter-thread fallback, forced on Linux).
//!
//! Each case holds `SERIAL` for its whole run: they count fds and look for zombie children in
//! `/proc`, which tests running at the same time in other threads of the binary would disturb.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use trio::process::{CalledProcessError, Command, Process, Stdio};
use trio::stream::prelude::*;
use trio::{CancelScope, ErrorGroup, Result, TaskStatus};
use trio_test::MockClock;

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the binary's process tests to one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `main` on the system clock (children take real time), without Ctrl-C handling.
pub fn run_real<F, T>(main: F) -> T
where
    F: std::future::Future<Output = Result<T>> + 'static,
    T: 'static,
{
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(main)
        .expect("the run failed")
}

/// Runs `main` on virtual time with autojump: sleeps inside trio take no real time, while
/// children still do (the run waits for them on the reactor).
pub fn run_autojump<F, T>(main: F) -> T
where
    F: std::future::Future<Output = Result<T>> + 'static,
    T: 'static,
{
    trio::RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .ctrl_c(false)
        .run(main)
        .expect("the run failed")
}

/// The fds this process has open.
pub fn open_fds() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// The state letter and parent pid of `pid` from `/proc/PID/stat`, if it exists.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Children of this process that are zombies (exited, not reaped).
pub fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| matches!(stat(*pid), Some(('Z', ppid)) if ppid == me))
        .collect()
}

/// Whether `pid` is still a child of this process (running or a zombie).
pub fn is_our_child(pid: u32) -> bool {
    matches!(stat(pid), Some((_, ppid)) if ppid == std::process::id())
}

/// Waits (really, in short steps) until `pid` is no child of ours any more; false if it
/// still is after 10 s.
pub fn eventually_gone(pid: u32) -> bool {
    for _ in 0..1000 {
        if !is_our_child(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// Asserts that `f` leaves no zombie and no fd behind.
pub fn no_leaks<T>(f: impl FnOnce() -> T) -> T {
    let fds = open_fds();
    let out = f();
    assert_eq!(open_fds(), fds, "fds leaked");
    assert_eq!(zombie_children(), Vec::<u32>::new(), "zombies left");
    out
}

pub fn sh(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script);
    command
}

pub fn sleep_forever_command() -> Command {
    Command::from(["sleep", "3600"])
}

/// Runs `command` with `run_process` as a task of a nursery, hands the running process to
/// `body`, then cancels the nursery (Trio's `run_process_in_nursery`).
pub async fn with_supervised<F, Fut>(command: Command, body: F) -> Result<Process>
where
    F: FnOnce(Process) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<()>> + 'static,
{
    let out = Rc::new(std::cell::RefCell::new(None));
    let out2 = out.clone();
    trio::open_nursery(|n| async move {
        let process = n
            .start(move |status: TaskStatus<Process>| {
                trio::run_process(command).check(false).task_status(status)
            })
            .await?;
        *out2.borrow_mut() = Some(process.clone());
        body(process).await?;
        n.cancel_scope().cancel();
        Ok(())
    })
    .await?;
    let process = out.borrow_mut().take().expect("started");
    Ok(process)
}

pub fn signal_of(process: &Process) -> Option<i32> {
    process.returncode().and_then(|s| s.signal())
}

// ---- the cases ----

pub fn exit_statuses() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let ok = trio::open_process("true").await?;
            let status = ok.wait().await?;
            assert!(status.success());
            assert_eq!(ok.returncode(), Some(status));
            assert!(format!("{ok:?}").contains("exited with status 0"), "{ok:?}");

            let three = trio::open_process(sh("exit 3")).await?;
            assert_eq!(three.wait().await?.code(), Some(3));
            assert_eq!(three.poll().and_then(|s| s.code()), Some(3));
            // Waiting again returns the same status.
            assert_eq!(three.wait().await?.code(), Some(3));

            let done = trio::run_process(sh("exit 5")).check(false).await?;
            assert_eq!(done.status.code(), Some(5));
            assert_eq!(done.command, "sh -c \"exit 5\"");
            Ok(())
        })
    });
}

pub fn returncode_updates_without_wait() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let child = trio::open_process(sleep_forever_command()).await?;
            assert_eq!(child.returncode(), None);
            assert!(
                format!("{child:?}").contains("running with pid"),
                "{child:?}"
            );
            child.kill()?;
            // No wait: returncode reaps it once it is gone.
            let mut status = None;
            for _ in 0..1000 {
                status = child.returncode();
                if status.is_some() {
                    break;
                }
                trio::sleep(0.01).await?;
            }
            assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
            assert!(
                format!("{child:?}").contains("exited with signal 9"),
                "{child:?}"
            );
            // A wait after the fact returns at once with the same status.
            assert_eq!(child.wait().await?.signal(), Some(libc::SIGKILL));
            Ok(())
        })
    });
}

pub fn many_tasks_wait_at_once() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let child = trio::open_process(sleep_forever_command()).await?;
            // Waits tolerate being cancelled.
            let c = child.clone();
            trio::open_nursery(|n| async move {
                for _ in 0..3 {
                    let c = c.clone();
                    n.start_soon(async move { c.wait().await.map(drop) })?;
                }
                trio::lowlevel::wait_all_tasks_blocked().await?;
                n.cancel_scope().cancel();
                Ok(())
            })
            .await?;
            assert_eq!(child.returncode(), None);
            // Now for real: all three get the status.
            let seen = Rc::new(std::cell::Cell::new(0));
            let (c, seen2) = (child.clone(), seen.clone());
            trio::open_nursery(|n| async move {
                for _ in 0..3 {
                    let (c, seen) = (c.clone(), seen2.clone());
                    n.start_soon(async move {
                        assert_eq!(c.wait().await?.signal(), Some(libc::SIGKILL));
                        seen.set(seen.get() + 1);
                        Ok(())
                    })?;
                }
                trio::lowlevel::wait_all_tasks_blocked().await?;
                c.kill()
            })
            .await?;
            assert_eq!(seen.get(), 3);
            Ok(())
        })
    });
}

pub fn poll_in_one_task_wakes_a_waiter_in_another() {
    // Trio's regression test for #2209: a poll that reaps the child closes the fd a waiter
    // waits on; the waiter must wake and see the status.
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let child = trio::open_process(sleep_forever_command()).await?;
            let c = child.clone();
            trio::open_nursery(|n| async move {
                let waiter = c.clone();
                n.start_soon(async move {
                    assert_eq!(waiter.wait().await?.signal(), Some(libc::SIGTERM));
                    Ok(())
                })?;
                trio::lowlevel::wait_all_tasks_blocked().await?;
                c.terminate()?;
                // Reap without a checkpoint, from this task.
                while c.poll().is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(())
            })
            .await
        })
    });
}

pub fn signals() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            for (send, expected) in [
                (
                    (|p: &Process| p.kill()) as fn(&Process) -> Result<()>,
                    libc::SIGKILL,
                ),
                (|p: &Process| p.terminate(), libc::SIGTERM),
                (|p: &Process| p.send_signal(libc::SIGUSR1), libc::SIGUSR1),
            ] {
                let child = trio::open_process(sleep_forever_command()).await?;
                send(&child)?;
                assert_eq!(child.wait().await?.signal(), Some(expected));
                // Signalling a reaped child does nothing (its pid may belong to another).
                child.kill()?;
                child.send_signal(libc::SIGUSR1)?;
            }
            let child = trio::open_process(sleep_forever_command()).await?;
            let error = child.send_signal(12345).unwrap_err();
            assert!(error.is::<trio::UsageError>(), "{error:?}");
            child.kill()?;
            child.wait().await?;
            Ok(())
        })
    });
}

pub fn signals_through_run_process_in_a_nursery() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let child = with_supervised(sleep_forever_command(), |p| async move {
                p.send_signal(libc::SIGUSR1)?;
                assert_eq!(p.wait().await?.signal(), Some(libc::SIGUSR1));
                Ok(())
            })
            .await?;
            assert_eq!(signal_of(&child), Some(libc::SIGUSR1));
            Ok(())
        })
    });
}

pub fn check_error_carries_status_and_stderr() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let script = "echo out; echo 'it went wrong' >&2; exit 4";
            let error = trio::run_process(sh(script))
                .capture_stderr()
                .await
                .unwrap_err();
            let failed = error
                .downcast_ref::<CalledProcessError>()
                .expect("a CalledProcessError");
            assert_eq!(failed.status().code(), Some(4));
            assert_eq!(failed.stderr(), b"it went wrong\n");
            assert_eq!(failed.stdout(), b"");
            assert!(failed.command().starts_with("sh -c"));
            let message = error.to_string();
            assert!(message.contains("exited with status 4"), "{message}");
            assert!(message.contains("it went wrong"), "{message}");

            let error = trio::run_process(sh(script))
                .capture_stdout()
                .capture_stderr()
                .await
                .unwrap_err();
            let failed = error.downcast_ref::<CalledProcessError>().unwrap();
            assert_eq!(failed.stdout(), b"out\n");

            // Killed by a signal.
            let error = trio::run_process(sh("kill -9 $$")).await.unwrap_err();
            let failed = error.downcast_ref::<CalledProcessError>().unwrap();
            assert_eq!(failed.status().signal(), Some(libc::SIGKILL));
            assert!(error.to_string().contains("killed by signal 9"), "{error}");

            // check(false): the status is the caller's to look at.
            let done = trio::run_process(sh(script))
                .capture_stdout()
                .capture_stderr()
                .check(false)
                .await?;
            assert_eq!(done.status.code(), Some(4));
            assert_eq!(done.stdout, b"out\n");
            assert_eq!(done.stderr, b"it went wrong\n");
            Ok(())
        })
    });
}

pub fn failing_run_process_in_a_nursery_reports_its_error() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let slot = Rc::new(std::cell::RefCell::new(None));
            let slot2 = slot.clone();
            let result = trio::open_nursery(|n| async move {
                let p = n
                    .start(|status| trio::run_process("false").task_status(status))
                    .await?;
                *slot2.borrow_mut() = Some(p);
                Ok(())
            })
            .await;
            let error = result.unwrap_err();
            let group = error.downcast_ref::<ErrorGroup>().expect("a group");
            assert!(group.errors()[0].is::<CalledProcessError>());
            let p = slot.borrow_mut().take().unwrap();
            assert_eq!(p.returncode().and_then(|s| s.code()), Some(1));
            Ok(())
        })
    });
}

pub fn stdin_bytes_and_captured_output() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let data: Vec<u8> = (0..(1 << 18)).map(|i: u32| (i * 7 % 256) as u8).collect();
            let done = trio::run_process("cat")
                .stdin(data.clone())
                .capture_stdout()
                .capture_stderr()
                .await?;
            assert!(done.status.success());
            assert_eq!(done.stdout, data);
            assert_eq!(done.stderr, b"");

            // The default stdin is empty.
            let done = trio::run_process("cat").capture_stdout().await?;
            assert_eq!(done.stdout, b"");

            // A child that does not read its stdin is fine.
            let done = trio::run_process("true").stdin(vec![b'x'; 1 << 20]).await?;
            assert!(done.status.success());
            Ok(())
        })
    });
}

pub fn large_data_both_ways_does_not_deadlock() {
    // The child copies stdin to stdout and stderr at once: 4 MiB each way, far beyond the
    // pipe buffers, so the feeder and both readers must all run at the same time.
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let data: Vec<u8> = (0..(4 << 20)).map(|i: u32| (i % 253) as u8).collect();
            let done = trio::run_process(["tee", "/dev/stderr"])
                .stdin(data.clone())
                .capture_stdout()
                .capture_stderr()
                .await?;
            assert_eq!(done.stdout.len(), data.len());
            assert!(done.stdout == data);
            assert!(done.stderr == data);
            Ok(())
        })
    });
}

pub fn interactive_pipes_with_open_process() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let mut command = Command::new("cat");
            command.stdin(Stdio::piped()).stdout(Stdio::piped());
            let child = trio::open_process(&command).await?;
            assert!(child.stderr().is_none());
            let (stdin, stdout) = (child.stdin().unwrap(), child.stdout().unwrap());
            for line in [&b"one\n"[..], b"two\n", b"three\n"] {
                stdin.send_all(line).await?;
                let mut got = Vec::new();
                while got.len() < line.len() {
                    got.extend(stdout.receive_some(100).await?);
                }
                assert_eq!(got, line);
            }
            stdin.aclose().await?;
            assert_eq!(stdout.receive_some(10).await?, b"");
            assert!(child.wait().await?.success());
            stdout.aclose().await?;
            Ok(())
        })
    });
}

pub fn stderr_into_stdout_and_stdio() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let mut command = sh("cat; echo err >&2");
            command.stderr(Stdio::same_as_stdout());
            let done = trio::run_process(&command)
                .stdin("in\n")
                .capture_stdout()
                .await?;
            assert_eq!(done.stdout, b"in\nerr\n");
            assert_eq!(done.stderr, b"");

            // Process::stdio staples stdin and stdout; send_eof closes stdin.
            let mut command = sh("cat; echo err >&2");
            command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::same_as_stdout());
            let child = trio::open_process(&command).await?;
            let stdio = child.stdio().expect("stdin and stdout are piped");
            stdio.send_all(b"1234").await?;
            stdio.send_eof().await?;
            let mut got = Vec::new();
            loop {
                let chunk = stdio.receive_some(16).await?;
                if chunk.is_empty() {
                    break;
                }
                got.extend(chunk);
            }
            assert_eq!(got, b"1234err\n");
            assert!(child.wait().await?.success());
            stdio.aclose().await?;

            // Into a file.
            let dir = std::env::temp_dir().join(format!("trio-proc-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("out.txt");
            let file = std::fs::File::create(&path)?;
            let mut command = sh("echo out; echo err >&2");
            command.stdout(file).stderr(Stdio::same_as_stdout());
            trio::run_process(&command).await?;
            assert_eq!(std::fs::read(&path)?, b"out\nerr\n");
            std::fs::remove_dir_all(&dir)?;
            Ok(())
        })
    });
}

pub fn spawn_errors_are_typed() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let error = trio::run_process("/does/not/exist").await.unwrap_err();
            let spawn = error
                .downcast_ref::<trio::process::SpawnError>()
                .expect("a SpawnError");
            assert_eq!(spawn.kind(), std::io::ErrorKind::NotFound);
            assert_eq!(spawn.command(), "/does/not/exist");
            assert!(error.to_string().contains("/does/not/exist"), "{error}");
            assert_eq!(error.io_kind(), std::io::ErrorKind::NotFound);

            let error = trio::open_process("ls -l").await.unwrap_err();
            assert!(
                error.to_string().contains("pass the arguments separately"),
                "{error}"
            );

            let error = trio::open_process("/dev/null").await.unwrap_err();
            let spawn = error.downcast_ref::<trio::process::SpawnError>().unwrap();
            assert_eq!(spawn.kind(), std::io::ErrorKind::PermissionDenied);

            let mut command = Command::new("true");
            command.current_dir("/does/not/exist");
            let error = trio::open_process(&command).await.unwrap_err();
            assert!(error.is::<trio::process::SpawnError>(), "{error:?}");

            let empty: [&str; 0] = [];
            let error = trio::open_process(empty).await.unwrap_err();
            assert!(error.is::<trio::UsageError>(), "{error:?}");
            Ok(())
        })
    });
}

pub fn option_conflicts_are_usage_errors() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let mut piped_in = Command::new("cat");
            piped_in.stdin(Stdio::piped());
            let mut piped_out = Command::new("cat");
            piped_out.stdout(Stdio::piped());
            let mut null_err = Command::new("cat");
            null_err.stderr(Stdio::null());
            let mut same_in = Command::new("cat");
            same_in.stdin(Stdio::same_as_stdout());
            let cases: Vec<(trio::process::RunProcess, &str)> = vec![
                (
                    trio::run_process(&piped_in),
                    "only valid with Nursery::start",
                ),
                (
                    trio::run_process(&piped_out),
                    "only valid with Nursery::start",
                ),
                (
                    trio::run_process(&null_err).capture_stderr(),
                    "capture_stderr",
                ),
                (trio::run_process(&piped_in).stdin("x"), "stdin bytes"),
                (
                    trio::run_process(&piped_out).capture_stdout(),
                    "capture_stdout",
                ),
                (trio::run_process(&same_in), "for stderr only"),
            ];
            for (run, expected) in cases {
                let error = run.await.unwrap_err();
                assert!(error.is::<trio::UsageError>(), "{error:?}");
                assert!(error.to_string().contains(expected), "{error} / {expected}");
            }
            Ok(())
        })
    });
}

pub fn cancel_delivers_sigterm_and_waits() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let child = with_supervised(sleep_forever_command(), |_| async { Ok(()) }).await?;
            assert_eq!(signal_of(&child), Some(libc::SIGTERM));

            // A direct run_process under a timeout: Cancelled is absorbed by the timeout's
            // scope, and the child is gone by then.
            let outcome =
                trio::move_on_after(0.05, trio::run_process(sleep_forever_command())).await?;
            assert!(outcome.is_none());
            Ok(())
        })
    });
}

pub fn cancel_escalates_to_sigkill_after_five_seconds() {
    let _serial = serial();
    no_leaks(|| {
        run_autojump(async {
            // The child ignores SIGTERM (an ignored signal stays ignored across exec) and says
            // so before the cancellation comes.
            let mut command = sh("trap '' TERM; echo ready; exec sleep 3600");
            command.stdout(Stdio::piped());
            let start = trio::current_time()?;
            let child = with_supervised(command, |p| async move {
                let ready = p.stdout().unwrap().receive_some(10).await?;
                assert_eq!(ready, b"ready\n");
                Ok(())
            })
            .await?;
            assert_eq!(signal_of(&child), Some(libc::SIGKILL));
            let waited = trio::current_time()? - start;
            assert!(waited >= 5.0, "SIGKILL came after {waited} s");
            Ok(())
        })
    });
}

pub fn custom_deliver_cancel_is_cancelled_once_the_child_exits() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let log = Rc::new(std::cell::RefCell::new(Vec::new()));
            let log2 = log.clone();
            let scope = CancelScope::new();
            let scope2 = scope.clone();
            let outcome = scope
                .run(async move {
                    trio::open_nursery(|n| async move {
                        n.start_soon(async move {
                            trio::run_process(sleep_forever_command())
                                .deliver_cancel(move |p: Process| async move {
                                    log2.borrow_mut().push("deliver");
                                    p.send_signal(libc::SIGUSR1)?;
                                    let slept = trio::sleep_forever().await;
                                    // Cancelled only once the child is gone.
                                    assert!(p.returncode().is_some());
                                    log2.borrow_mut().push("cancelled");
                                    slept
                                })
                                .await
                                .map(drop)
                        })?;
                        trio::lowlevel::wait_all_tasks_blocked().await?;
                        scope2.cancel();
                        Ok(())
                    })
                    .await
                })
                .await?;
            assert!(outcome.is_none());
            assert_eq!(*log.borrow(), ["deliver", "cancelled"]);
            Ok(())
        })
    });
}

pub fn failing_deliver_cancel_still_kills_the_child() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let slot = Rc::new(std::cell::RefCell::new(None));
            let slot2 = slot.clone();
            let result = trio::open_nursery(|n| async move {
                let p = n
                    .start(|status| {
                        trio::run_process(sleep_forever_command())
                            .deliver_cancel(|_| async {
                                Err(std::io::Error::other("could not deliver").into())
                            })
                            .task_status(status)
                    })
                    .await?;
                *slot2.borrow_mut() = Some(p);
                n.cancel_scope().cancel();
                Ok(())
            })
            .await;
            let error = result.unwrap_err();
            assert!(error.to_string().contains("could not deliver"), "{error}");
            let p = slot.borrow_mut().take().unwrap();
            assert_eq!(signal_of(&p), Some(libc::SIGKILL));
            Ok(())
        })
    });
}

pub fn a_panic_in_the_caller_still_reaps_the_child() {
    let _serial = serial();
    no_leaks(|| {
        let pid = Rc::new(std::cell::Cell::new(0));
        let pid2 = pid.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_real(async move {
                trio::open_nursery(|n| async move {
                    let p = n
                        .start(|status| {
                            trio::run_process(sleep_forever_command()).task_status(status)
                        })
                        .await?;
                    pid2.set(p.pid());
                    panic!("the caller panics");
                })
                .await
            })
        }));
        assert!(outcome.is_err());
        assert!(pid.get() > 0);
        assert!(!is_our_child(pid.get()), "the child outlived the panic");
    });
}

pub fn a_dropped_run_process_kills_and_reaps_the_child() {
    let _serial = serial();
    no_leaks(|| {
        run_real(async {
            let slot = Rc::new(std::cell::RefCell::new(None));
            let slot2 = slot.clone();
            // Run the nursery until run_process is waiting for its child, then drop the
            // nursery's future (as a select that lost interest would): its tasks are dropped
            // with it, run_process's included.
            let mut nursery = Box::pin(trio::open_nursery(|n| async move {
                let p = n
                    .start(|status| trio::run_process(sleep_forever_command()).task_status(status))
                    .await?;
                *slot2.borrow_mut() = Some(p);
                trio::sleep_forever().await
            }));
            while slot.borrow().is_none() {
                assert!(poll_once(&mut nursery).await.is_pending());
                trio::lowlevel::checkpoint().await?;
            }
            let p = slot.borrow_mut().take().expect("started");
            drop(nursery);
            // Reaped by the drop: the status is known at once.
            assert_eq!(signal_of(&p), Some(libc::SIGKILL));
            assert!(!is_our_child(p.pid()));
            Ok(())
        })
    });
}

async fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

pub fn a_dropped_process_runs_on_and_is_reaped_when_it_exits() {
    let _serial = serial();
    let fds = open_fds();
    let pid = run_real(async {
        let child = trio::open_process(sleep_forever_command()).await?;
        Ok(child.pid())
    });
    // Still running after the run ended and the Process was dropped...
    assert!(is_our_child(pid));
    assert_eq!(open_fds(), fds);
    // ... and reaped in the background once it exits.
    // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert!(eventually_gone(pid), "the orphan was never reaped");
}

pub fn cancellation_at_random_points_leaves_nothing_behind() {
    let _serial = serial();
    let data: Rc<Vec<u8>> = Rc::new((0..(1 << 20)).map(|i: u32| (i % 249) as u8).collect());
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 0..40 {
        // xorshift: delays spread over 0..20 ms, so cancellation lands before the spawn, while
        // input is fed, while output is read, while waiting, and after the child exited.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = (rng % 20_000) as f64 * 1e-6;
        let data = data.clone();
        no_leaks(|| {
            trio::RunConfig::new()
                .ctrl_c(false)
                .seed(round)
                .run(async move {
                    let run = trio::run_process(sh("cat; echo done >&2"))
                        .stdin((*data).clone())
                        .capture_stdout()
                        .capture_stderr();
                    // Finished in time: everything arrived. Cancelled: no_leaks checks the rest.
                    if let Some(done) = trio::move_on_after(delay, run).await? {
                        assert!(done.stdout == *data);
                        assert_eq!(done.stderr, b"done\n");
                    }
                    Ok(())
                })
                .expect("the run failed")
        });
    }
}
