//! End-to-end checks of `examples/process.rs`: output streamed line by line, the exit status
//! shown, the timeout stopping the child, and Ctrl-C (SIGINT to the whole process group, as a
//! terminal sends it) stopping both the example and its child, which is reaped.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{example, wait_with_deadline};

/// Runs the example with `args` in a process group of its own (as a shell job is).
fn spawn(args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(example("process"))
        .args(args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdout)
}

fn rest_of(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read stdout");
    rest
}

/// Reads lines until one contains `want`; returns it.
fn line_containing(stdout: &mut BufReader<ChildStdout>, want: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "the example closed stdout before printing {want:?}");
        if line.contains(want) {
            return line;
        }
    }
}

/// The pid in a "started `...` (pid N)" line.
fn pid_in(line: &str) -> libc::pid_t {
    let start = line.rfind("(pid ").expect("a pid") + 5;
    line[start..]
        .trim_end()
        .trim_end_matches(')')
        .parse()
        .expect("a number")
}

fn exists(pid: libc::pid_t) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn streams_lines_and_shows_the_exit_status() {
    let (mut child, mut stdout) =
        spawn(&["sh", "-c", "echo one; echo two >&2; printf three; exit 3"]);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let out = rest_of(&mut stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("started `sh -c"), "{out}");
    assert!(lines[1].ends_with("| one"), "{out}");
    assert!(lines[2].ends_with("| two"), "{out}");
    assert!(lines[3].ends_with("| three"), "{out}");
    assert!(lines[4].ends_with("exited with status 3"), "{out}");
}

#[test]
fn the_timeout_stops_the_child() {
    let (mut child, mut stdout) =
        spawn(&["--timeout", "0.3", "sh", "-c", "echo ready; exec sleep 100"]);
    let started = line_containing(&mut stdout, "started");
    let grandchild = pid_in(&started);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let out = rest_of(&mut stdout);
    assert!(out.contains("| ready"), "{out}");
    assert!(out.contains("timed out after 0.3 s"), "{out}");
    assert!(out.contains("killed by signal 15"), "{out}");
    assert!(!exists(grandchild), "the child outlived the example");
}

#[test]
fn ctrl_c_stops_the_example_and_its_child() {
    // The child ignores SIGINT, so it is trio's cancellation (SIGTERM) that stops it; the
    // example then dies by SIGINT.
    let (mut child, mut stdout) = spawn(&["sh", "-c", "trap '' INT; echo ready; exec sleep 100"]);
    let started = line_containing(&mut stdout, "started");
    let grandchild = pid_in(&started);
    line_containing(&mut stdout, "| ready");
    let group = child.id() as libc::pid_t;
    // SAFETY: kill has no memory preconditions; the group is our child's own.
    assert_eq!(unsafe { libc::kill(-group, libc::SIGINT) }, 0);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(stderr, "", "a plain Ctrl-C prints nothing");
    assert!(!exists(grandchild), "the child outlived the example");
}
