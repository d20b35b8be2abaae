//! Shows that trio gives Ctrl-C back when `run` returns: after the run below has finished,
//! SIGINT has its default effect again and ends the process. `tests/ctrl_c.rs` checks this.
//!
//! ```text
//! cargo run --example sigint_restored   # prints "run finished", then waits for Ctrl-C
//! ```

use std::io::Write;

fn main() -> trio::Result<()> {
    trio::run(async {
        trio::sleep(0.001).await?;
        Ok(())
    })?;
    println!("run finished");
    std::io::stdout().flush().ok();
    // Wait for a signal (bounded, so a broken build cannot hang forever).
    std::thread::sleep(std::time::Duration::from_secs(30));
    println!("no signal arrived");
    Ok(())
}
