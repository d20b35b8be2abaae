//! Ctrl-C as cancellation.
//!
//! Starts three tasks that sleep forever and prints `ready`. Press Ctrl-C: trio cancels
//! everything, each task runs its cleanup in a shielded cancel scope (cleanup that must finish
//! even though the task is being cancelled) and prints `task N cleaned up`, and then the
//! process dies by SIGINT, as a program killed by Ctrl-C does (a shell reports status 130, and
//! a shell script running it stops). A second Ctrl-C during cleanup ends it at once.
//!
//! ```text
//! cargo run --example ctrl_c
//! ```
//!
//! With `TRIO_EXAMPLE_SLOW_CLEANUP=1` the cleanup takes a minute, which shows the second
//! Ctrl-C. With `TRIO_EXAMPLE_FAILING_CLEANUP=1` the cleanup of task 2 fails: the error is
//! printed (nothing is lost to the interruption), then the process dies by SIGINT all the same.

use trio::{CancelScope, Nursery};

async fn sleeper(n: u32, nursery_ready: trio::TaskStatus<()>) -> trio::Result<()> {
    nursery_ready.started(())?;
    let outcome = trio::sleep_forever().await;
    // We are being cancelled. Cleanup that needs checkpoints goes in a shielded scope: the
    // cancellation outside cannot reach in.
    let slow = std::env::var_os("TRIO_EXAMPLE_SLOW_CLEANUP").is_some();
    let failing = std::env::var_os("TRIO_EXAMPLE_FAILING_CLEANUP").is_some();
    CancelScope::new()
        .shielded(true)
        .run(async {
            trio::sleep(if slow { 60.0 } else { 0.01 }).await?;
            if failing && n == 2 {
                return Err(std::io::Error::other("task 2 could not save its state").into());
            }
            println!("task {n} cleaned up");
            Ok(())
        })
        .await?;
    outcome
}

async fn start_sleepers(nursery: &Nursery) -> trio::Result<()> {
    for n in 1..=3 {
        // `start` returns once the task is running, so `ready` below is true.
        nursery.start(move |status| sleeper(n, status)).await?;
    }
    Ok(())
}

#[trio::main]
async fn main() -> trio::Result<()> {
    trio::open_nursery(|nursery| async move {
        start_sleepers(&nursery).await?;
        println!("ready");
        Ok(())
    })
    .await
}
