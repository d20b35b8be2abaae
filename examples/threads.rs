//! Blocking work in worker threads: hashes the files named on the command line.
//!
//! ```text
//! cargo run --example threads -- Cargo.toml README.md /dev/zero
//! ```
//!
//! Each file is read and hashed (64-bit FNV-1a) by `trio::to_thread::run_sync` in a worker
//! thread, at most four at once (a `CapacityLimiter`), and a line `HASH  PATH` is printed as
//! each one finishes, as `sha256sum` does. A file that cannot be read gets a line on stderr
//! and makes the exit status 1.
//!
//! Ctrl-C cancels cleanly. The calls are abandonable (reading and hashing a file has no
//! side effects, so nothing is lost by not waiting for it), so they return at once; the
//! workers check `trio::from_thread::check_cancelled` between chunks and stop soon after.
//! The process then dies by SIGINT, as a program stopped by Ctrl-C does. Try it with
//! `/dev/zero`, which never ends.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Runs in a worker thread: blocking reads are fine here.
fn hash_file(path: &Path) -> trio::Result<u64> {
    let mut file = File::open(path)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut hash = FNV_OFFSET;
    loop {
        // Stop early once nobody waits for the result (Ctrl-C, or any cancellation).
        trio::from_thread::check_cancelled()?;
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hash);
        }
        for &byte in &buffer[..n] {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
    }
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: threads FILE...");
        std::process::exit(2);
    }
    let limiter = trio::CapacityLimiter::new(4);
    let failures = std::rc::Rc::new(std::cell::Cell::new(0));
    let failed = failures.clone();
    trio::open_nursery(|nursery| async move {
        for path in paths {
            let (limiter, failed) = (limiter.clone(), failed.clone());
            nursery.start_soon(async move {
                let p = path.clone();
                let hashed = trio::to_thread::Options::new()
                    .thread_name("hash")
                    .limiter(limiter)
                    .abandon_on_cancel(true)
                    .run_sync(move || hash_file(&p))
                    .await?;
                match hashed {
                    Ok(hash) => println!("{hash:016x}  {}", path.display()),
                    Err(e) if e.is_cancelled() => return Err(e),
                    Err(e) => {
                        eprintln!("threads: {}: {e}", path.display());
                        failed.set(failed.get() + 1);
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    })
    .await?;
    match failures.get() {
        0 => Ok(()),
        n => Err(std::io::Error::other(format!("{n} file(s) could not be hashed")).into()),
    }
}
