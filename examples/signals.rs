//! Signals as a stream: the reload-on-SIGHUP convention of Unix daemons.
//!
//! ```text
//! cargo run --example signals
//! kill -HUP <pid>     # prints "reloaded"
//! kill -TERM <pid>    # or Ctrl-C: prints "stopping on SIGTERM" and exits with status 0
//! ```
//!
//! Prints `ready` once it listens. While the receiver is open, SIGHUP, SIGTERM and SIGINT do
//! not take their usual action (and Ctrl-C is not a KeyboardInterrupt): they arrive here, one
//! at a time, in the order they came.

#[trio::main]
async fn main() -> trio::Result<()> {
    let signals = trio::open_signal_receiver(&[libc::SIGHUP, libc::SIGTERM, libc::SIGINT])?;
    println!("ready (pid {})", std::process::id());
    loop {
        let signal = signals.next().await?;
        if signal == libc::SIGHUP {
            // A real daemon would read its configuration again here.
            println!("reloaded");
            continue;
        }
        let name = if signal == libc::SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        };
        println!("stopping on {name}");
        // Signals still pending when the receiver closes are raised again (so that none is
        // lost); this program is stopping anyway, so it takes them here.
        while signals.pending_count() > 0 {
            signals.next().await?;
        }
        return Ok(());
    }
}
