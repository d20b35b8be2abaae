//! `cat`: copies files (or stdin) to stdout, with trio's files.
//!
//! ```text
//! cargo run --example cat -- Cargo.toml README.md
//! echo hello | cargo run --example cat
//! cargo run --example cat -- /does/not/exist Cargo.toml   # an error, then the file; status 1
//! ```
//!
//! The copy is one function over the stream traits, `ReceiveStream` in and `SendStream` out:
//! the same code would copy a socket or a child's output. A `trio::fs::File` is both; its
//! reads and writes run in worker threads (a file has no readiness to wait for), and sequential
//! reads read ahead. Stdin and stdout are wrapped as files (`trio::wrap_file` on duplicates of
//! fds 0 and 1) rather than as pipes: a pipe stream would put the fd in non-blocking mode,
//! which the terminal shares with the shell.

use std::os::fd::AsFd;

use trio::fs::File;
use trio::stream::prelude::*;

/// Copies everything from `from` to `to`; returns how many bytes.
async fn copy(from: &dyn ReceiveStream, to: &dyn SendStream) -> trio::Result<u64> {
    let mut total = 0;
    loop {
        let chunk = from.receive_some(64 * 1024).await?;
        if chunk.is_empty() {
            return Ok(total);
        }
        total += chunk.len() as u64;
        to.send_all(&chunk).await?;
    }
}

/// A trio file over a duplicate of one of this process's standard streams.
fn standard(stream: impl AsFd) -> trio::Result<File> {
    let fd = stream.as_fd().try_clone_to_owned()?;
    Ok(trio::wrap_file(std::fs::File::from(fd)))
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let stdout = standard(std::io::stdout())?;
    let mut failed = false;
    let result: trio::Result<()> = async {
        if paths.is_empty() {
            copy(&standard(std::io::stdin())?, &stdout).await?;
        }
        for path in &paths {
            // A missing or unreadable file is reported (the error names the path) and skipped.
            let file = match File::open(path).await {
                Ok(file) => file,
                Err(error) if error.is::<trio::fs::FsError>() => {
                    eprintln!("cat: {error}");
                    failed = true;
                    continue;
                }
                Err(error) => return Err(error),
            };
            copy(&file, &stdout).await?;
            file.aclose().await?;
        }
        stdout.aclose().await
    }
    .await;
    match result {
        // The reader went away (`cat big | head`): nothing left to do.
        Err(error) if error.io_kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(error),
        Ok(()) if failed => std::process::exit(1),
        Ok(()) => Ok(()),
    }
}
