//! What the end-to-end tests of the examples share.

// Each test file uses a part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The path of a built example, building it if `cargo test` did not.
pub fn example(name: &str) -> PathBuf {
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

/// Waits for `child` to exit. Past `limit` it kills the child (and its process group, when
/// the child leads one) and fails the test.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            // SAFETY: kill has no memory preconditions; a group that is not the child's own
            // does not exist, and the call then fails harmlessly.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            panic!("the example did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
