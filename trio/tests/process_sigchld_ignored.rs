//! Children where SIGCHLD is ignored (Trio's `test_wait_reapable_fails`): the kernel reaps
//! them itself, so their exit status is lost; waiting still returns, with success (as Python
//! does), on the pidfd path and on the waiter-thread path. A binary of its own: the
//! disposition is process-wide.

use std::os::unix::process::ExitStatusExt;

fn ignore_sigchld() {
    // SAFETY: setting a standard disposition; nothing else in this binary relies on SIGCHLD.
    let previous = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR);
}

fn check_waits_return() {
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(async {
            let child = trio::open_process(["sleep", "3600"]).await?;
            let waiter = child.clone();
            trio::open_nursery(|n| async move {
                n.start_soon(async move {
                    let status = waiter.wait().await?;
                    assert!(status.success(), "{status:?}");
                    assert_eq!(status.signal(), None);
                    Ok(())
                })?;
                trio::lowlevel::wait_all_tasks_blocked().await?;
                child.kill()
            })
            .await?;
            let done = trio::run_process(["sh", "-c", "exit 3"]).await?;
            assert!(done.status.success());
            Ok(())
        })
        .expect("the run failed");
}

#[test]
fn waits_return_when_the_kernel_reaps_children() {
    ignore_sigchld();
    check_waits_return();
    trio::__private::force_process_waiter_thread(true);
    check_waits_return();
}
