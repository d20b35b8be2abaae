//! End-to-end checks of Ctrl-C handling, on the example binaries: the first SIGINT cancels
//! the run and shielded cleanup runs before exit status 130; a second SIGINT during cleanup
//! exits at once; after `run` returns, SIGINT has its default effect again.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The path of a built example, building it if `cargo test` did not.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

fn spawn(name: &str, envs: &[(&str, &str)]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(example(name))
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn example");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    (child, stdout)
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

fn wait_with_deadline(child: &mut Child, limit: Duration) -> (ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_runs_shielded_cleanup_and_exits_130() {
    let (mut child, mut stdout) = spawn("ctrl_c", &[]);
    wait_for_line(&mut stdout, "ready");
    sigint(&child);
    let (status, elapsed) = wait_with_deadline(&mut child, Duration::from_secs(10));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read rest");
    assert_eq!(
        status.code(),
        Some(130),
        "status {status:?}, output {rest:?}"
    );
    for n in 1..=3 {
        assert!(
            rest.contains(&format!("task {n} cleaned up")),
            "missing cleanup of task {n}: {rest:?}"
        );
    }
    assert!(elapsed < Duration::from_secs(1), "exit took {elapsed:?}");
}

#[test]
fn second_ctrl_c_exits_at_once() {
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
    let (status, _) = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "status {status:?}");
}

#[test]
fn sigint_has_its_default_effect_after_run() {
    let (mut child, mut stdout) = spawn("sigint_restored", &[]);
    wait_for_line(&mut stdout, "run finished");
    sigint(&child);
    let (status, _) = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGINT), "status {status:?}");
}
