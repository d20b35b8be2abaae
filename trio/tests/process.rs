//! Subprocesses (Trio's `test_subprocess.py`): exit statuses, signals, check errors with
//! stderr, piping large data both ways, cancellation (SIGTERM, SIGKILL after 5 s, custom
//! delivery), and no zombie or fd left behind on any path. On Linux the children are waited
//! for through pidfds; `process_waiter_thread.rs` runs the same cases on the fallback.

mod process_cases;

use process_cases::*;
use trio::process::Stdio;
use trio::stream::prelude::*;

#[test]
fn exit_statuses() {
    process_cases::exit_statuses();
}

#[test]
fn returncode_updates_without_wait() {
    process_cases::returncode_updates_without_wait();
}

#[test]
fn many_tasks_wait_at_once() {
    process_cases::many_tasks_wait_at_once();
}

#[test]
fn poll_in_one_task_wakes_a_waiter_in_another() {
    process_cases::poll_in_one_task_wakes_a_waiter_in_another();
}

#[test]
fn signals() {
    process_cases::signals();
}

#[test]
fn signals_through_run_process_in_a_nursery() {
    process_cases::signals_through_run_process_in_a_nursery();
}

#[test]
fn check_error_carries_status_and_stderr() {
    process_cases::check_error_carries_status_and_stderr();
}

#[test]
fn failing_run_process_in_a_nursery_reports_its_error() {
    process_cases::failing_run_process_in_a_nursery_reports_its_error();
}

#[test]
fn stdin_bytes_and_captured_output() {
    process_cases::stdin_bytes_and_captured_output();
}

#[test]
fn large_data_both_ways_does_not_deadlock() {
    process_cases::large_data_both_ways_does_not_deadlock();
}

#[test]
fn interactive_pipes_with_open_process() {
    process_cases::interactive_pipes_with_open_process();
}

#[test]
fn stderr_into_stdout_and_stdio() {
    process_cases::stderr_into_stdout_and_stdio();
}

#[test]
fn spawn_errors_are_typed() {
    process_cases::spawn_errors_are_typed();
}

#[test]
fn option_conflicts_are_usage_errors() {
    process_cases::option_conflicts_are_usage_errors();
}

#[test]
fn cancel_delivers_sigterm_and_waits() {
    process_cases::cancel_delivers_sigterm_and_waits();
}

#[test]
fn cancel_escalates_to_sigkill_after_five_seconds() {
    process_cases::cancel_escalates_to_sigkill_after_five_seconds();
}

#[test]
fn custom_deliver_cancel_is_cancelled_once_the_child_exits() {
    process_cases::custom_deliver_cancel_is_cancelled_once_the_child_exits();
}

#[test]
fn failing_deliver_cancel_still_kills_the_child() {
    process_cases::failing_deliver_cancel_still_kills_the_child();
}

#[test]
fn a_panic_in_the_caller_still_reaps_the_child() {
    process_cases::a_panic_in_the_caller_still_reaps_the_child();
}

#[test]
fn a_dropped_run_process_kills_and_reaps_the_child() {
    process_cases::a_dropped_run_process_kills_and_reaps_the_child();
}

#[test]
fn a_dropped_process_runs_on_and_is_reaped_when_it_exits() {
    process_cases::a_dropped_process_runs_on_and_is_reaped_when_it_exits();
}

#[test]
fn cancellation_at_random_points_leaves_nothing_behind() {
    process_cases::cancellation_at_random_points_leaves_nothing_behind();
}

/// The pidfd path: on a kernel that has pidfds, a child costs no thread.
#[cfg(target_os = "linux")]
#[test]
fn waiting_uses_no_thread_per_child() {
    let _serial = serial();
    // Other tests' threads come and go (libtest runs them at once, waiting on SERIAL): count
    // the waiter threads by name.
    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "trio-child-wait")
            .count()
    }
    run_real(async {
        let children: Vec<_> = {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(trio::open_process(sleep_forever_command()).await?);
            }
            v
        };
        assert_eq!(threads(), 0, "a thread per child");
        for child in &children {
            child.kill()?;
            child.wait().await?;
        }
        Ok(())
    });
}

/// Trio's `test_warn_on_cancel_SIGKILL_escalation`: the default `deliver_cancel` warns when a
/// child ignored SIGTERM for 5 seconds (here through `tracing`, target `trio::run_process`),
/// and `run_process` still ends with the cancellation alone.
#[test]
fn the_sigkill_escalation_is_a_warning() {
    let _serial = serial();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        no_leaks(|| {
            run_autojump(async {
                let mut command = sh("trap '' TERM; echo ready; exec sleep 3600");
                command.stdout(Stdio::piped());
                let child = with_supervised(command, |p| async move {
                    assert_eq!(p.stdout().unwrap().receive_some(10).await?, b"ready\n");
                    Ok(())
                })
                .await?;
                assert_eq!(signal_of(&child), Some(libc::SIGKILL));
                Ok(())
            })
        })
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("UTF-8");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with("WARN") && line.contains("trio::run_process:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(
        warnings[0].contains("ignored SIGTERM for 5 seconds"),
        "{text}"
    );
}

/// What a `tracing_subscriber::fmt` subscriber writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
