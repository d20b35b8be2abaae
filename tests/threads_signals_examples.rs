//! End-to-end checks of the `threads` and `signals` examples: files hashed in worker threads
//! with a line each, Ctrl-C cancelling a hash that never ends (death by SIGINT); `ready`, then
//! `reloaded` per SIGHUP, and a clean exit (status 0) on SIGTERM or Ctrl-C.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::{example, wait_with_deadline};

fn spawn(name: &str, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdout)
}

/// Reads lines until one starts with `prefix`; returns it.
fn wait_for_line(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).expect("read child stdout");
        assert!(n > 0, "child closed stdout before printing {prefix:?}");
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child's.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill failed");
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trio-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn threads_example_hashes_each_file_in_a_worker() {
    let dir = temp_dir("hash");
    let mut expected = Vec::new();
    for (i, size) in [0usize, 10, 200_000].into_iter().enumerate() {
        let path = dir.join(format!("file{i}"));
        let data: Vec<u8> = (0..size).map(|n| (n * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        expected.push(format!("{:016x}  {}", fnv1a(&data), path.display()));
    }
    let output = Command::new(example("threads"))
        .args(
            expected
                .iter()
                .map(|line| line.split_once("  ").expect("line").1),
        )
        .output()
        .expect("run example");
    assert!(output.status.success(), "{output:?}");
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    expected.sort();
    assert_eq!(lines, expected);
    // A file that cannot be read: a line on stderr, status 1, the others still hashed.
    let missing = dir.join("missing");
    let output = Command::new(example("threads"))
        .arg(&missing)
        .arg(dir.join("file1"))
        .output()
        .expect("run example");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn threads_example_stops_on_ctrl_c() {
    let dir = temp_dir("ctrl-c");
    let small = dir.join("small");
    std::fs::write(&small, b"hello").expect("write");
    // /dev/zero never ends: only the cancellation stops its worker.
    let (mut child, mut stdout) = spawn("threads", &[small.to_str().expect("utf-8"), "/dev/zero"]);
    let line = wait_for_line(&mut stdout, &format!("{:016x}", fnv1a(b"hello")));
    assert!(line.ends_with("small"), "{line}");
    signal(&child, libc::SIGINT);
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    // As a program stopped by Ctrl-C: death by SIGINT.
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("read rest");
    assert!(!rest.contains("/dev/zero"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signals_example_reloads_on_sighup_and_stops_cleanly() {
    for (stop, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let (mut child, mut stdout) = spawn("signals", &[]);
        wait_for_line(&mut stdout, "ready");
        for _ in 0..2 {
            signal(&child, libc::SIGHUP);
            wait_for_line(&mut stdout, "reloaded");
        }
        signal(&child, stop);
        assert_eq!(
            wait_for_line(&mut stdout, "stopping"),
            format!("stopping on {name}")
        );
        let status = wait_with_deadline(&mut child, Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
}
