//! The echo server example end to end: its first line names its address, it echoes many
//! connections at once until each closes, and Ctrl-C ends it by SIGINT.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use common::example;

/// Starts the example and reads its first line, `listening on 127.0.0.1:PORT`.
fn start_server() -> (Child, BufReader<ChildStdout>, u16) {
    let mut child = Command::new(example("echo_server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo_server");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("first line");
    let port = first
        .trim_end()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    (child, stdout, port)
}

#[test]
fn echo_server_serves_many_connections_until_ctrl_c() {
    let (mut child, _stdout, port) = start_server();
    assert_ne!(port, 0);

    // 50 clients at once, each with several round trips, then a half-close.
    let clients: Vec<_> = (0..50u8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                for round in 0..5u8 {
                    let message = [i, round, b'x', b'y'];
                    stream.write_all(&message).unwrap();
                    let mut back = [0u8; 4];
                    stream.read_exact(&mut back).expect("echo");
                    assert_eq!(back, message);
                }
                stream.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).expect("EOF from the server");
                assert!(rest.is_empty());
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }

    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

#[test]
fn echo_server_prints_its_task_dump_on_sigusr1() {
    let (mut child, _stdout, port) = start_server();
    // A connection, so that a handler task is blocked in a receive.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(b"hi").unwrap();
    let mut back = [0u8; 2];
    stream.read_exact(&mut back).expect("echo");
    // The handler may still be on its way back to its receive when the signal comes: ask
    // again until the dump shows it blocked there.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut handler = String::new();
    for _ in 0..20 {
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
        let mut dump = String::new();
        let mut line = String::new();
        // The dump ends with the handler's line (it is the deepest task).
        while stderr.read_line(&mut line).expect("stderr") > 0 {
            dump.push_str(&line);
            if line.contains("\"echo\" (spawned") {
                break;
            }
            line.clear();
        }
        assert!(dump.contains("task dump at"), "{dump}");
        handler = line;
        if handler.contains("blocked") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        handler.contains("fd readable"),
        "the handler, named after its fn, waits for its socket to become readable: {handler}"
    );
    // Still serving after the dump.
    stream.write_all(b"yo").unwrap();
    stream.read_exact(&mut back).expect("echo after the dump");
    assert_eq!(&back, b"yo");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGINT));
}
