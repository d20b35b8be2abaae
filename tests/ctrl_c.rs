//! End-to-end checks of Ctrl-C handling, on the example binaries: the first SIGINT cancels
//! the run and shielded cleanup runs, then the process dies by SIGINT (so a shell script
//! running it stops); an error of the cleanup is printed first; a second SIGINT during cleanup
//! ends the process at once, by SIGINT too; after `run` returns, SIGINT has its default effect
//! again.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{example, wait_with_deadline};

fn spawn(name: &str, envs: &[(&str, &str)]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(example(name))
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdout)
}

/// Everything the (exited) child wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        std::io::Read::read_to_string(&mut stderr, &mut text).expect("read child stderr");
    }
    text
}

fn wait_for_line(stdout: &mut BufReader<std::process::ChildStdout>, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child closed stdout before printing {want:?}");
        if line.trim_end() == want {
            return;
        }
    }
}

fn sigint(child: &Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child's.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(SIGINT) failed");
}

#[test]
fn ctrl_c_runs_shielded_cleanup_then_dies_by_sigint() {
    let (mut child, mut stdout) = spawn("ctrl_c", &[]);
    wait_for_line(&mut stdout, "ready");
    sigint(&child);
    let waited = Instant::now();
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    let elapsed = waited.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
    assert_eq!(
        status.signal(),
        Some(libc::SIGINT),
        "not killed by SIGINT: {status:?}, output {rest:?}"
    );
    assert_eq!(status.code(), None, "{status:?}");
    for n in 1..=3 {
        assert!(
            rest.contains(&format!("task {n} cleaned up")),
            "missing cleanup of task {n}: {rest:?}"
        );
    }
    assert_eq!(stderr_of(&mut child), "", "a plain Ctrl-C prints nothing");
    assert!(elapsed < Duration::from_secs(1), "exit took {elapsed:?}");
}

#[test]
fn second_ctrl_c_dies_by_sigint_at_once() {
    let (mut child, mut stdout) = spawn("ctrl_c", &[("TRIO_EXAMPLE_SLOW_CLEANUP", "1")]);
    wait_for_line(&mut stdout, "ready");
    sigint(&child);
    // The cleanup now sleeps 60 s in a shielded scope; give the first signal a moment to land.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "exited on the first Ctrl-C"
    );
    sigint(&child);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGINT), "status {status:?}");
}

#[test]
fn a_failed_cleanup_is_reported_then_the_program_dies_by_sigint() {
    let (mut child, mut stdout) = spawn("ctrl_c", &[("TRIO_EXAMPLE_FAILING_CLEANUP", "1")]);
    wait_for_line(&mut stdout, "ready");
    sigint(&child);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
    let stderr = stderr_of(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGINT), "status {status:?}");
    assert!(
        stderr.starts_with("Error: interrupted by Ctrl-C, then the cleanup failed: "),
        "{stderr:?}"
    );
    assert!(
        stderr.contains("task 2 could not save its state"),
        "{stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(rest.contains("task 1 cleaned up"), "{rest:?}");
    assert!(rest.contains("task 3 cleaned up"), "{rest:?}");
    assert!(!rest.contains("task 2 cleaned up"), "{rest:?}");
}

/// Ctrl-C at a terminal goes to the whole foreground process group: here a shell running the
/// example three times in a loop. Bash waits for its child and stops the loop (dying by SIGINT
/// itself) only if the child died by SIGINT; had the child exited with status 130, bash would
/// take it as handled and run the next iteration.
#[test]
fn ctrl_c_stops_a_shell_loop() {
    let mut shell = Command::new("bash")
        .arg("-c")
        .arg(r#"for i in 1 2 3; do "$0"; done; echo "loop ran to the end""#)
        .arg(example("ctrl_c"))
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn bash");
    let mut stdout = BufReader::new(shell.stdout.take().expect("piped stdout"));
    wait_for_line(&mut stdout, "ready");
    let group = shell.id() as libc::pid_t;
    // SAFETY: kill has no memory-safety preconditions; the group is our child's own.
    let rc = unsafe { libc::kill(-group, libc::SIGINT) };
    assert_eq!(rc, 0, "kill(-pgid, SIGINT) failed");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = shell.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            // SAFETY: as above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = shell.wait();
            panic!("the shell loop went on after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
    assert!(!rest.contains("ready"), "a second iteration ran: {rest:?}");
    assert!(!rest.contains("loop ran to the end"), "{rest:?}");
    assert_eq!(status.signal(), Some(libc::SIGINT), "bash: {status:?}");
}

#[test]
fn sigint_has_its_default_effect_after_run() {
    let (mut child, mut stdout) = spawn("sigint_restored", &[]);
    wait_for_line(&mut stdout, "run finished");
    sigint(&child);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGINT), "status {status:?}");
}
