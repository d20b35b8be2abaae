//! `trio::open_signal_receiver`: delivery from `raise` and from another process (`kill`),
//! coalescing and arrival order, nesting, previous dispositions restored on close and drop,
//! pending signals raised again at close, Ctrl-C taken from KeyboardInterrupt while a SIGINT
//! receiver is open, the errors, and no fd left behind.
//!
//! Signal dispositions are process-wide and receivers open only on the main thread, so this
//! file has its own harness (`harness = false`): `main` runs each test in turn on the main
//! thread. `cargo test -p trio --test signals [NAME]`.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use common::serial::{Test, run_tests};
use common::{assert_err, in_cancelled_scope, is_cancelled, yields};
use libc::{SIGHUP, SIGINT, SIGUSR1, SIGUSR2};
use trio::{
    BusyResourceError, ClosedResourceError, KeyboardInterrupt, SignalReceiver, UsageError,
    open_signal_receiver,
};

/// Runs `body` on a mock clock (autojump), without trio's Ctrl-C handler.
fn run<T: 'static>(body: impl Future<Output = trio::Result<T>> + 'static) -> T {
    common::run(body)
}

/// Runs `body` on the system clock (for waits on another process), failing after 10 s.
fn run_real<T: 'static>(body: impl Future<Output = trio::Result<T>> + 'static) -> T {
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(trio::fail_after(10.0, body))
        .expect("the run failed")
}

fn raise(signal: libc::c_int) {
    // SAFETY: raise takes a plain signal number.
    assert_eq!(unsafe { libc::raise(signal) }, 0);
}

/// Signals a test handler saw, in order.
static SEEN: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];
static SEEN_LEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record(signal: libc::c_int) {
    let i = SEEN_LEN.fetch_add(1, Ordering::SeqCst);
    if let Some(slot) = SEEN.get(i) {
        slot.store(signal, Ordering::SeqCst);
    }
}

fn recorder_address() -> libc::sighandler_t {
    record as extern "C" fn(libc::c_int) as libc::sighandler_t
}

fn seen() -> Vec<libc::c_int> {
    let n = SEEN_LEN.load(Ordering::SeqCst).min(SEEN.len());
    SEEN[..n].iter().map(|s| s.load(Ordering::SeqCst)).collect()
}

/// Installs `record` for `signal`, returning the disposition it replaced.
fn install_recorder(signal: libc::c_int) -> libc::sigaction {
    SEEN_LEN.store(0, Ordering::SeqCst);
    set_handler(signal, recorder_address())
}

fn set_handler(signal: libc::c_int, handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: zeroed sigactions are valid; `handler` is SIG_DFL, SIG_IGN or `record`, which
    // only touches atomics.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, &action, &mut old), 0);
        old
    }
}

fn restore(signal: libc::c_int, old: &libc::sigaction) {
    // SAFETY: `old` was filled in by sigaction.
    assert_eq!(
        unsafe { libc::sigaction(signal, old, std::ptr::null_mut()) },
        0
    );
}

fn handler_of(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a null new action only reads the current one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut current), 0);
        current.sa_sigaction
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn signals_raised_in_the_process_are_delivered() {
    run(async {
        let receiver = open_signal_receiver(&[SIGUSR1])?;
        raise(SIGUSR1);
        assert_eq!(receiver.next().await?, SIGUSR1);
        assert_eq!(receiver.pending_count(), 0);
        Ok(())
    });
}

fn signals_sent_by_another_process_are_delivered() {
    run_real(async {
        let receiver = open_signal_receiver(&[SIGUSR2, SIGHUP])?;
        let pid = std::process::id().to_string();
        for (name, number) in [("-USR2", SIGUSR2), ("-HUP", SIGHUP)] {
            let p = pid.clone();
            // The receiver waits in the reactor while `kill` runs.
            let status = trio::to_thread::run_sync(move || {
                Command::new("kill").args([name, p.as_str()]).status()
            })
            .await??;
            assert!(status.success());
            assert_eq!(receiver.next().await?, number);
        }
        Ok(())
    });
}

fn repeats_coalesce_and_pending_signals_come_out_in_arrival_order() {
    run(async {
        let receiver = open_signal_receiver(&[SIGUSR1, SIGUSR2, SIGHUP])?;
        for signal in [SIGUSR2, SIGUSR1, SIGUSR2, SIGHUP, SIGUSR1, SIGUSR2] {
            raise(signal);
        }
        assert_eq!(receiver.pending_count(), 3);
        assert_eq!(receiver.next().await?, SIGUSR2);
        // A repeat of a pending signal keeps its place; one taken comes back at the end.
        raise(SIGHUP);
        raise(SIGUSR2);
        assert_eq!(receiver.next().await?, SIGUSR1);
        assert_eq!(receiver.next().await?, SIGHUP);
        assert_eq!(receiver.next().await?, SIGUSR2);
        assert_eq!(receiver.pending_count(), 0);
        // Trio's no-starvation check: two signals always pending alternate.
        let mut previous = None;
        for _ in 0..6 {
            raise(SIGUSR1);
            raise(SIGUSR2);
            let got = receiver.next().await?;
            assert_ne!(Some(got), previous);
            previous = Some(got);
        }
        while receiver.pending_count() > 0 {
            receiver.next().await?;
        }
        Ok(())
    });
}

fn next_is_a_checkpoint_and_loses_nothing_when_cancelled() {
    run(async {
        let receiver = std::rc::Rc::new(open_signal_receiver(&[SIGUSR1])?);
        raise(SIGUSR1);
        let r = receiver.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(r.next().await));
            Ok(())
        })
        .await?;
        assert_eq!(receiver.pending_count(), 1);
        assert_eq!(yields(receiver.next()).await?, SIGUSR1);
        // Waiting, then cancelled by a deadline (autojump).
        let waited = trio::move_on_after(1.0, receiver.next()).await?;
        assert!(waited.is_none());
        Ok(())
    });
}

fn one_task_at_a_time_waits_on_a_receiver() {
    run(async {
        let receiver = std::rc::Rc::new(open_signal_receiver(&[SIGUSR1])?);
        let r = receiver.clone();
        trio::open_nursery(|nursery| async move {
            let first = r.clone();
            nursery.start_soon(async move {
                assert_eq!(first.next().await?, SIGUSR1);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert_err::<BusyResourceError, _>(r.next().await);
            raise(SIGUSR1);
            Ok(())
        })
        .await?;
        drop(receiver);
        Ok(())
    });
}

fn a_closed_receiver_fails_with_closed_resource_error() {
    run(async {
        let receiver = std::rc::Rc::new(open_signal_receiver(&[SIGUSR1])?);
        let r = receiver.clone();
        trio::open_nursery(|nursery| async move {
            let waiting = r.clone();
            nursery.start_soon(async move {
                assert_err::<ClosedResourceError, _>(waiting.next().await);
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            r.close();
            Ok(())
        })
        .await?;
        assert!(receiver.is_closed());
        assert_err::<ClosedResourceError, _>(receiver.next().await);
        receiver.close();
        Ok(())
    });
}

fn closing_and_dropping_restore_the_previous_disposition() {
    let old = install_recorder(SIGUSR1);
    let recorder = handler_of(SIGUSR1);
    run(async move {
        let receiver = open_signal_receiver(&[SIGUSR1, SIGUSR2])?;
        assert_ne!(handler_of(SIGUSR1), recorder);
        raise(SIGUSR1);
        assert_eq!(receiver.next().await?, SIGUSR1);
        assert!(
            seen().is_empty(),
            "the previous handler saw a signal the receiver had"
        );
        receiver.close();
        assert_eq!(handler_of(SIGUSR1), recorder);
        assert_eq!(handler_of(SIGUSR2), libc::SIG_DFL);
        raise(SIGUSR1);
        assert_eq!(seen(), [SIGUSR1]);
        // Dropped instead of closed; and a receiver listing a signal twice.
        drop(open_signal_receiver(&[SIGUSR1, SIGUSR1])?);
        assert_eq!(handler_of(SIGUSR1), recorder);
        Ok(())
    });
    restore(SIGUSR1, &old);
}

fn signals_pending_at_close_are_raised_again_in_arrival_order() {
    let old1 = install_recorder(SIGUSR1);
    let old2 = set_handler(SIGUSR2, recorder_address());
    run(async {
        let receiver = open_signal_receiver(&[SIGUSR1, SIGUSR2])?;
        raise(SIGUSR2);
        raise(SIGUSR1);
        raise(SIGUSR2);
        assert_eq!(receiver.pending_count(), 2);
        drop(receiver);
        // Coalesced as they were, in the order they arrived, to the previous handlers.
        assert_eq!(seen(), [SIGUSR2, SIGUSR1]);
        Ok(())
    });
    restore(SIGUSR1, &old1);
    restore(SIGUSR2, &old2);
}

fn receivers_nest_and_closing_the_inner_one_gives_the_signal_back() {
    run(async {
        let outer = open_signal_receiver(&[SIGUSR1, SIGUSR2])?;
        // Arrived while the outer receiver owned it: the outer one's, even after the inner
        // one opens.
        raise(SIGUSR1);
        let inner = open_signal_receiver(&[SIGUSR1])?;
        assert_eq!(inner.pending_count(), 0);
        assert_eq!(outer.next().await?, SIGUSR1);
        raise(SIGUSR1);
        raise(SIGUSR2);
        assert_eq!(inner.next().await?, SIGUSR1);
        assert_eq!(outer.next().await?, SIGUSR2);
        // Pending in the inner receiver when it closes: raised again, so the outer gets it.
        raise(SIGUSR1);
        inner.close();
        assert_eq!(outer.next().await?, SIGUSR1);
        raise(SIGUSR1);
        assert_eq!(outer.next().await?, SIGUSR1);
        Ok(())
    });
    assert_eq!(handler_of(SIGUSR1), libc::SIG_DFL);
}

fn receivers_closed_out_of_order_still_restore_every_disposition() {
    let old = install_recorder(SIGUSR1);
    let recorder = handler_of(SIGUSR1);
    run(async move {
        let first = open_signal_receiver(&[SIGUSR1])?;
        let second = open_signal_receiver(&[SIGUSR1])?;
        drop(first);
        raise(SIGUSR1);
        assert_eq!(second.next().await?, SIGUSR1);
        drop(second);
        assert_eq!(handler_of(SIGUSR1), recorder);
        Ok(())
    });
    restore(SIGUSR1, &old);
}

fn bad_arguments_and_places_are_usage_errors() {
    // Outside a run.
    assert_err::<UsageError, _>(open_signal_receiver(&[SIGUSR1]));
    assert_eq!(handler_of(SIGUSR1), libc::SIG_DFL);
    run(async {
        let e = assert_err::<UsageError, _>(open_signal_receiver(&[]));
        assert!(e.to_string().contains("at least one signal"), "{e}");
        for bad in [0, -3, 1234567] {
            let e = assert_err::<UsageError, _>(open_signal_receiver(&[SIGUSR1, bad]));
            assert!(e.to_string().contains("not a signal"), "{e}");
        }
        for forbidden in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGFPE] {
            let e = assert_err::<UsageError, _>(open_signal_receiver(&[forbidden]));
            assert!(e.to_string().contains("cannot take signal SIG"), "{e}");
        }
        assert_eq!(handler_of(SIGUSR1), libc::SIG_DFL);
        Ok(())
    });
    // Off the main thread, inside a run there.
    let off_main = std::thread::spawn(|| run(async { Ok(open_signal_receiver(&[SIGUSR1]).err()) }))
        .join()
        .expect("thread");
    let e = off_main.expect("an error off the main thread");
    assert!(
        e.is::<UsageError>() && e.to_string().contains("main thread"),
        "{e}"
    );
}

#[cfg(target_os = "linux")]
fn a_failed_install_leaves_every_disposition_as_it_was() {
    run(async {
        // glibc keeps signal 32 for itself: sigaction refuses it.
        let e = open_signal_receiver(&[SIGUSR1, SIGUSR2, 32]).expect_err("32 is refused");
        assert!(e.to_string().contains("32"), "{e}");
        assert_eq!(handler_of(SIGUSR1), libc::SIG_DFL);
        assert_eq!(handler_of(SIGUSR2), libc::SIG_DFL);
        let receiver = open_signal_receiver(&[SIGUSR1])?;
        raise(SIGUSR1);
        assert_eq!(receiver.next().await?, SIGUSR1);
        Ok(())
    });
}

fn a_sigint_receiver_takes_ctrl_c_from_keyboard_interrupt() {
    let result = trio::RunConfig::new()
        .clock(
            trio_test::MockClock::new()
                .with_autojump_threshold(0.0)
                .expect("a valid threshold"),
        )
        .ctrl_c(true)
        .run(async {
            let trio_handler = handler_of(SIGINT);
            assert_ne!(
                trio_handler,
                libc::SIG_DFL,
                "trio's Ctrl-C handler is installed"
            );
            let receiver = open_signal_receiver(&[SIGINT])?;
            raise(SIGINT);
            assert_eq!(receiver.next().await?, SIGINT);
            // Not a KeyboardInterrupt: the run goes on.
            trio::sleep(1.0).await?;
            drop(receiver);
            assert_eq!(handler_of(SIGINT), trio_handler);
            raise(SIGINT);
            trio::sleep_forever().await?;
            Ok(())
        });
    assert_err::<KeyboardInterrupt, _>(result);
    assert_eq!(handler_of(SIGINT), libc::SIG_DFL);
}

fn a_receiver_that_outlives_its_run_still_restores_on_drop() {
    let old = install_recorder(SIGUSR1);
    let recorder = handler_of(SIGUSR1);
    let receiver: SignalReceiver = run(async { open_signal_receiver(&[SIGUSR1]) });
    raise(SIGUSR1);
    assert_eq!(receiver.pending_count(), 1);
    // Outside any run: the disposition comes back and the pending signal goes to it.
    drop(receiver);
    assert_eq!(handler_of(SIGUSR1), recorder);
    assert_eq!(seen(), [SIGUSR1]);
    restore(SIGUSR1, &old);
}

/// In a child process: a SIGINT receiver returned out of a run with trio's Ctrl-C handler;
/// once it is dropped, Ctrl-C has its default effect (death by SIGINT).
fn child_stale_sigint() {
    let receiver = trio::RunConfig::new()
        .ctrl_c(true)
        .run(async { open_signal_receiver(&[SIGINT]) })
        .expect("run");
    // The run is over; the receiver still has SIGINT.
    raise(SIGINT);
    assert_eq!(receiver.pending_count(), 1);
    // Closing raises the pending SIGINT again, with trio's (now stale) handler back: it
    // acts as the default and the process dies by SIGINT.
    drop(receiver);
    unreachable!("SIGINT should have ended the process");
}

fn after_its_run_a_stale_ctrl_c_handler_acts_as_the_default() {
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .env(CHILD, "stale_sigint")
        .status()
        .expect("child");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(SIGINT), "{status:?}");
}

fn no_fd_is_left_behind() {
    let before = open_fds();
    for _ in 0..3 {
        run(async {
            for _ in 0..5 {
                let receiver = open_signal_receiver(&[SIGUSR1, SIGHUP])?;
                raise(SIGHUP);
                assert_eq!(receiver.next().await?, SIGHUP);
            }
            Ok(())
        });
    }
    assert_eq!(open_fds(), before);
}

const CHILD: &str = "TRIO_SIGNALS_TEST_CHILD";

const TESTS: &[Test] = &[
    (
        "signals_raised_in_the_process_are_delivered",
        signals_raised_in_the_process_are_delivered,
    ),
    (
        "signals_sent_by_another_process_are_delivered",
        signals_sent_by_another_process_are_delivered,
    ),
    (
        "repeats_coalesce_and_pending_signals_come_out_in_arrival_order",
        repeats_coalesce_and_pending_signals_come_out_in_arrival_order,
    ),
    (
        "next_is_a_checkpoint_and_loses_nothing_when_cancelled",
        next_is_a_checkpoint_and_loses_nothing_when_cancelled,
    ),
    (
        "one_task_at_a_time_waits_on_a_receiver",
        one_task_at_a_time_waits_on_a_receiver,
    ),
    (
        "a_closed_receiver_fails_with_closed_resource_error",
        a_closed_receiver_fails_with_closed_resource_error,
    ),
    (
        "closing_and_dropping_restore_the_previous_disposition",
        closing_and_dropping_restore_the_previous_disposition,
    ),
    (
        "signals_pending_at_close_are_raised_again_in_arrival_order",
        signals_pending_at_close_are_raised_again_in_arrival_order,
    ),
    (
        "receivers_nest_and_closing_the_inner_one_gives_the_signal_back",
        receivers_nest_and_closing_the_inner_one_gives_the_signal_back,
    ),
    (
        "receivers_closed_out_of_order_still_restore_every_disposition",
        receivers_closed_out_of_order_still_restore_every_disposition,
    ),
    (
        "bad_arguments_and_places_are_usage_errors",
        bad_arguments_and_places_are_usage_errors,
    ),
    #[cfg(target_os = "linux")]
    (
        "a_failed_install_leaves_every_disposition_as_it_was",
        a_failed_install_leaves_every_disposition_as_it_was,
    ),
    (
        "a_sigint_receiver_takes_ctrl_c_from_keyboard_interrupt",
        a_sigint_receiver_takes_ctrl_c_from_keyboard_interrupt,
    ),
    (
        "a_receiver_that_outlives_its_run_still_restores_on_drop",
        a_receiver_that_outlives_its_run_still_restores_on_drop,
    ),
    (
        "after_its_run_a_stale_ctrl_c_handler_acts_as_the_default",
        after_its_run_a_stale_ctrl_c_handler_acts_as_the_default,
    ),
    ("no_fd_is_left_behind", no_fd_is_left_behind),
];

fn main() {
    if std::env::var(CHILD).as_deref() == Ok("stale_sigint") {
        return child_stale_sigint();
    }
    run_tests(TESTS);
}
