//! The task dump on a signal (issue 15): a child process runs a stuck program with
//! `dump_on_signal(true)`; `kill -USR1` makes it print its task tree to stderr, every time.
//!
//! The child is this test binary again, running `stuck_program_child` with an environment
//! variable set (libtest runs it like any test; without the variable it returns at once).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use trio::lowlevel::sleep_forever;
use trio::sync::Event;

const CHILD_VAR: &str = "TRIO_DEBUG_SIGNAL_CHILD";

#[test]
fn stuck_program_child() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let _ = trio::RunConfig::new()
        .ctrl_c(false)
        .dump_on_signal(true)
        .run(async {
            trio::open_nursery(|nursery| async move {
                let never = Event::new();
                nursery.start_soon_named("stuck", async move { never.wait().await })?;
                trio::lowlevel::wait_all_tasks_blocked().await?;
                println!("ready");
                sleep_forever().await
            })
            .await
        });
}

/// Reads `reader` line by line into a channel, on a thread.
fn lines_of(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The lines of one dump: from its header to the stuck task's line.
fn next_dump(stderr: &mpsc::Receiver<String>) -> Vec<String> {
    let mut dump = Vec::new();
    loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no dump on stderr; so far: {dump:#?}"));
        let done = line.contains("\"stuck\"");
        if line.starts_with("trio: task dump on signal") || !dump.is_empty() {
            dump.push(line);
        }
        if done {
            return dump;
        }
    }
}

#[test]
fn sigusr1_prints_the_task_dump() {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "stuck_program_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    loop {
        let line = stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("the child says it is ready");
        if line.ends_with("ready") {
            break;
        }
    }
    let pid = child.id() as libc::pid_t;
    for _ in 0..2 {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
        let dump = next_dump(&stderr);
        assert_eq!(
            dump[0],
            format!("trio: task dump on signal (process {pid})"),
            "{dump:#?}"
        );
        assert!(dump[1].starts_with("task dump at t="), "{dump:#?}");
        assert!(
            dump[2].starts_with(r#"task 0 "<init>" (trio's own system task): blocked in nursery"#),
            "{dump:#?}"
        );
        let main = dump
            .iter()
            .find(|l| l.trim_start().starts_with(r#"task 1 "<main>""#))
            .unwrap();
        assert!(main.ends_with(": blocked in sleep_forever"), "{dump:#?}");
        let stuck = dump.last().unwrap();
        assert!(
            stuck.starts_with(r#"        task 2 "stuck" (spawned at trio/tests/debug_signal.rs:"#),
            "{dump:#?}"
        );
        assert!(stuck.ends_with(": blocked in Event::wait"), "{dump:#?}");
    }
    child.kill().expect("kill the child");
    let _ = child.wait();
}
