//! End-to-end checks of `examples/cat.rs`: files and stdin copied to stdout through the stream
//! traits, a missing file reported with its path (and status 1), a closed stdout tolerated.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::example;

#[test]
fn copies_files_and_reports_missing_ones() {
    let dir = std::env::temp_dir().join(format!("trio-cat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&a, b"first\n").unwrap();
    std::fs::write(&b, &big).unwrap();
    let missing = dir.join("missing");
    let out = Command::new(example("cat"))
        .arg(&a)
        .arg(&missing)
        .arg(&b)
        .output()
        .expect("run cat");
    assert_eq!(out.status.code(), Some(1));
    let mut expected = b"first\n".to_vec();
    expected.extend(&big);
    assert!(out.stdout == expected, "stdout differs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "cat: cannot open `{}`: No such file or directory (os error 2)",
            missing.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn copies_stdin_and_tolerates_a_closed_stdout() {
    let mut child = Command::new(example("cat"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"from stdin\n");

    // A reader that goes away early: cat ends quietly, successfully.
    let dir = std::env::temp_dir().join(format!("trio-cat-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big");
    std::fs::write(&big, vec![b'x'; 8 << 20]).unwrap();
    let mut child = Command::new(example("cat"))
        .arg(&big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cat");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    std::fs::remove_dir_all(&dir).unwrap();
}
