//! Runs a command, streams its output line by line with a timeout, and shows how it exited.
//!
//! ```text
//! cargo run --example process -- ping -c 3 localhost
//! cargo run --example process -- --timeout 2 ping localhost
//! cargo run --example process -- --own-group sh -c 'trap "" INT; ping localhost'
//! ```
//!
//! Each line the child writes (stdout and stderr, interleaved) is printed with the time since
//! the start. The child runs under `trio::run_process`, started with `Nursery::start` so that
//! this program gets the `Process` while it runs and reads its output through a pipe stream.
//! After `--timeout SECONDS` (default 10) the nursery is cancelled: `run_process` sends the
//! child SIGTERM, then SIGKILL if it is still there 5 seconds later, and waits for it, so the
//! status printed at the end is always the child's real one and no zombie is left.
//!
//! **Ctrl-C stops both.** The terminal sends SIGINT to its whole foreground process group: to
//! this program and, unless `--own-group` was given, to the child as well. Most children die of
//! it at once. In this program, trio turns the SIGINT into cancellation of everything: the
//! nursery is cancelled, `run_process` delivers SIGTERM to the child (harmless if it is gone
//! already) and waits until it has exited and been reaped; then the program dies by SIGINT
//! itself, as programs stopped by Ctrl-C do (a shell sees status 130). A child that ignores
//! SIGINT (the `trap` above) is stopped by the SIGTERM; one that ignores SIGTERM too gets
//! SIGKILL 5 seconds later. A second Ctrl-C during that wait ends this program at once; a
//! child that survived both signals then runs on, orphaned. With `--own-group` the child is in
//! a process group of its own and never sees the terminal's Ctrl-C: trio's cancellation is
//! what stops it.

use std::cell::RefCell;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;

use trio::process::{Command, Process, Stdio};
use trio::stream::prelude::*;

struct Args {
    timeout: f64,
    own_group: bool,
    command: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1).peekable();
    let mut parsed = Args {
        timeout: 10.0,
        own_group: false,
        command: Vec::new(),
    };
    while let Some(arg) = args.next_if(|a| a.starts_with("--")) {
        match arg.as_str() {
            "--timeout" => {
                let value = args.next().ok_or("--timeout needs a number of seconds")?;
                parsed.timeout = value
                    .parse()
                    .map_err(|_| format!("--timeout {value}: not a number of seconds"))?;
            }
            "--own-group" => parsed.own_group = true,
            "--" => break,
            other => return Err(format!("unknown option {other}")),
        }
    }
    parsed.command = args.collect();
    if parsed.command.is_empty() {
        return Err("usage: process [--timeout SECONDS] [--own-group] COMMAND [ARGS...]".into());
    }
    Ok(parsed)
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Prints the child's output a line at a time, with the seconds since `start`.
async fn print_lines(child: &Process, start: f64) -> trio::Result<()> {
    let output = child.stdout().expect("stdout is piped");
    let mut pending = Vec::new();
    loop {
        let chunk = output.receive_some(64 * 1024).await?;
        let at_end = chunk.is_empty();
        pending.extend(chunk);
        while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            let elapsed = trio::current_time()? - start;
            println!(
                "{elapsed:7.3} | {}",
                String::from_utf8_lossy(&line).trim_end()
            );
        }
        if at_end {
            if !pending.is_empty() {
                let elapsed = trio::current_time()? - start;
                println!("{elapsed:7.3} | {}", String::from_utf8_lossy(&pending));
            }
            return Ok(());
        }
    }
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    match run(args).await {
        // Ctrl-C (a cancellation here) goes on out of `main`, which then dies by SIGINT.
        Err(error) if !error.is_cancelled() => {
            // A failure inside the nursery comes in a group: show the errors themselves.
            for leaf in error.leaves() {
                eprintln!("process: {leaf}");
            }
            std::process::exit(1);
        }
        outcome => outcome,
    }
}

async fn run(args: Args) -> trio::Result<()> {
    let mut command = Command::from(&args.command[..]);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::same_as_stdout());
    if args.own_group {
        command.process_group(0);
    }

    let start = trio::current_time()?;
    let child_slot: Rc<RefCell<Option<Process>>> = Rc::default();
    let slot = child_slot.clone();
    let finished = trio::move_on_after(
        args.timeout,
        trio::open_nursery(|nursery| async move {
            let child = nursery
                .start(|status| trio::run_process(&command).check(false).task_status(status))
                .await?;
            println!("started `{}` (pid {})", child.command(), child.pid());
            *slot.borrow_mut() = Some(child.clone());
            print_lines(&child, start).await?;
            child.wait().await?;
            Ok(())
        }),
    )
    .await?;

    if finished.is_none() {
        println!("timed out after {} s: the child was stopped", args.timeout);
    }
    let child = child_slot.borrow_mut().take();
    if let Some(status) = child.as_ref().and_then(Process::returncode) {
        println!("`{}` {}", child.unwrap().command(), describe(status));
    }
    Ok(())
}
