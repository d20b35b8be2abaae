//! The subprocess cases of `process.rs` on the waiter-thread fallback (what macOS uses, and
//! Linux without pidfds), forced on Linux: every child here is waited for by a thread that
//! blocks in `waitid(WNOWAIT)` and wakes the reactor through a pipe.

mod process_cases;

fn forced() {
    trio::__private::force_process_waiter_thread(true);
}

#[test]
fn exit_statuses() {
    forced();
    process_cases::exit_statuses();
}

#[test]
fn returncode_updates_without_wait() {
    forced();
    process_cases::returncode_updates_without_wait();
}

#[test]
fn many_tasks_wait_at_once() {
    forced();
    process_cases::many_tasks_wait_at_once();
}

#[test]
fn poll_in_one_task_wakes_a_waiter_in_another() {
    forced();
    process_cases::poll_in_one_task_wakes_a_waiter_in_another();
}

#[test]
fn signals() {
    forced();
    process_cases::signals();
}

#[test]
fn signals_through_run_process_in_a_nursery() {
    forced();
    process_cases::signals_through_run_process_in_a_nursery();
}

#[test]
fn check_error_carries_status_and_stderr() {
    forced();
    process_cases::check_error_carries_status_and_stderr();
}

#[test]
fn failing_run_process_in_a_nursery_reports_its_error() {
    forced();
    process_cases::failing_run_process_in_a_nursery_reports_its_error();
}

#[test]
fn stdin_bytes_and_captured_output() {
    forced();
    process_cases::stdin_bytes_and_captured_output();
}

#[test]
fn large_data_both_ways_does_not_deadlock() {
    forced();
    process_cases::large_data_both_ways_does_not_deadlock();
}

#[test]
fn interactive_pipes_with_open_process() {
    forced();
    process_cases::interactive_pipes_with_open_process();
}

#[test]
fn stderr_into_stdout_and_stdio() {
    forced();
    process_cases::stderr_into_stdout_and_stdio();
}

#[test]
fn spawn_errors_are_typed() {
    forced();
    process_cases::spawn_errors_are_typed();
}

#[test]
fn option_conflicts_are_usage_errors() {
    forced();
    process_cases::option_conflicts_are_usage_errors();
}

#[test]
fn cancel_delivers_sigterm_and_waits() {
    forced();
    process_cases::cancel_delivers_sigterm_and_waits();
}

#[test]
fn cancel_escalates_to_sigkill_after_five_seconds() {
    forced();
    process_cases::cancel_escalates_to_sigkill_after_five_seconds();
}

#[test]
fn custom_deliver_cancel_is_cancelled_once_the_child_exits() {
    forced();
    process_cases::custom_deliver_cancel_is_cancelled_once_the_child_exits();
}

#[test]
fn failing_deliver_cancel_still_kills_the_child() {
    forced();
    process_cases::failing_deliver_cancel_still_kills_the_child();
}

#[test]
fn a_panic_in_the_caller_still_reaps_the_child() {
    forced();
    process_cases::a_panic_in_the_caller_still_reaps_the_child();
}

#[test]
fn a_dropped_run_process_kills_and_reaps_the_child() {
    forced();
    process_cases::a_dropped_run_process_kills_and_reaps_the_child();
}

#[test]
fn a_dropped_process_runs_on_and_is_reaped_when_it_exits() {
    forced();
    process_cases::a_dropped_process_runs_on_and_is_reaped_when_it_exits();
}

#[test]
fn cancellation_at_random_points_leaves_nothing_behind() {
    forced();
    process_cases::cancellation_at_random_points_leaves_nothing_behind();
}

/// Each child has its waiter thread while it runs, and the thread ends with the child.
#[test]
fn one_waiter_thread_per_running_child() {
    forced();
    let _serial = process_cases::serial();
    fn waiters() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "trio-child-wait")
            .count()
    }
    process_cases::run_real(async {
        let mut children = Vec::new();
        for _ in 0..3 {
            children.push(trio::open_process(process_cases::sleep_forever_command()).await?);
        }
        // A thread names itself once it runs.
        for _ in 0..500 {
            if waiters() == 3 {
                break;
            }
            trio::sleep(0.01).await?;
        }
        let seen = waiters();
        for child in &children {
            child.kill()?;
            child.wait().await?;
        }
        // A waiter thread exits right after it saw its child exit.
        for _ in 0..500 {
            if waiters() == 0 {
                break;
            }
            trio::sleep(0.01).await?;
        }
        assert_eq!(seen, 3);
        assert_eq!(waiters(), 0);
        Ok(())
    });
}
