//! `serve_tcp` and `serve_listeners`: started with `Nursery::start`, handlers and their
//! streams, handler errors, and accept under `EMFILE` (in a child process with a low
//! `RLIMIT_NOFILE`).

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use common::run;
use trio::net::{ServeOptions, SocketListener, SocketStream, open_tcp_stream, serve_tcp};
use trio::stream::prelude::*;

async fn echo(stream: SocketStream) -> trio::Result<()> {
    loop {
        let data = stream.receive_some(65536).await?;
        if data.is_empty() {
            return Ok(());
        }
        stream.send_all(&data).await?;
    }
}

fn local() -> ServeOptions<SocketListener> {
    ServeOptions::new().host("127.0.0.1")
}

#[test]
fn serve_tcp_started_with_nursery_start_hands_back_its_listeners() {
    run(async {
        trio::open_nursery(|nursery| async move {
            let listeners: Vec<Rc<SocketListener>> = nursery
                .start(|status| serve_tcp(echo, 0, local().task_status(status)))
                .await?;
            assert_eq!(listeners.len(), 1);
            let port = listeners[0].local_addr()?.port();
            // Many connections at once.
            let mut clients = Vec::new();
            for i in 0..20u8 {
                let client = open_tcp_stream("127.0.0.1", port).await?;
                client.send_all(&[i; 3]).await?;
                clients.push(client);
            }
            for (i, client) in clients.iter().enumerate() {
                assert_eq!(client.receive_some(10).await?, [i as u8; 3]);
            }
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
}

#[test]
fn a_handler_that_returns_closes_its_stream() {
    run(async {
        trio::open_nursery(|nursery| async move {
            let listeners = nursery
                .start(|status| {
                    serve_tcp(
                        |stream: SocketStream| async move {
                            stream.send_all(b"bye").await?;
                            Ok(()) // no aclose: the stream is closed when dropped
                        },
                        0,
                        local().task_status(status),
                    )
                })
                .await?;
            let client = open_tcp_stream("127.0.0.1", listeners[0].local_addr()?.port()).await?;
            assert_eq!(client.receive_some(10).await?, b"bye");
            assert_eq!(client.receive_some(10).await?, b"");
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await
    });
}

#[test]
fn a_handler_error_ends_the_server_as_in_trio() {
    let err = common::try_run(async {
        trio::open_nursery(|nursery| async move {
            let listeners = nursery
                .start(|status| {
                    serve_tcp(
                        |_stream: SocketStream| async move {
                            Err(trio::Error::new(std::io::Error::other("handler failed")))
                        },
                        0,
                        local().task_status(status),
                    )
                })
                .await?;
            let _client = open_tcp_stream("127.0.0.1", listeners[0].local_addr()?.port()).await?;
            trio::sleep_forever().await
        })
        .await
    })
    .unwrap_err();
    let leaves = err.leaves();
    assert!(
        leaves.iter().any(|e| e.to_string() == "handler failed"),
        "{err:?}"
    );
}

#[test]
fn handlers_can_run_in_a_nursery_of_the_caller() {
    run(async {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let record = seen.clone();
        trio::open_nursery(|handlers| async move {
            let handler_nursery = handlers.clone();
            let listeners = handlers
                .start(move |status| {
                    let record = record.clone();
                    serve_tcp(
                        move |stream: SocketStream| {
                            let record = record.clone();
                            async move {
                                let task = trio::lowlevel::current_task()?;
                                record.borrow_mut().push(task.parent_nursery().is_some());
                                echo(stream).await
                            }
                        },
                        0,
                        local().task_status(status).handler_nursery(handler_nursery),
                    )
                })
                .await?;
            let client = open_tcp_stream("127.0.0.1", listeners[0].local_addr()?.port()).await?;
            client.send_all(b"x").await?;
            assert_eq!(client.receive_some(10).await?, b"x");
            handlers.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(*seen.borrow(), [true]);
        Ok(())
    });
}

/// The server half of the `EMFILE` test, run in a child process (see below): serves echo on
/// 127.0.0.1 with a file-descriptor limit that leaves room for two connections, and logs
/// through a subscriber that writes events to stderr.
#[test]
fn emfile_child() {
    if std::env::var_os("TRIO_EMFILE_CHILD").is_none() {
        return; // only runs when the parent test starts it
    }
    // Events as `LEVEL spans: target: message fields`, on stderr.
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
    trio::RunConfig::new()
        .ctrl_c(false)
        .run(async {
            let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
            let port = listeners[0].local_addr()?.port();
            // The limit caps fd numbers, not their count. The listing's own fd took the
            // lowest free number and is closed again; the next free number is the smallest
            // not listed. A limit just above it leaves room for two accepted connections.
            let used: Vec<u64> = std::fs::read_dir("/proc/self/fd")?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            let second = (0..).find(|n| !used.contains(n)).expect("a free fd number");
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: a valid rlimit on the stack, written by the call.
            assert_eq!(
                unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
                0
            );
            limit.rlim_cur = second + 1;
            // SAFETY: as above, read by the call.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            println!("port {port}");
            std::io::stdout().flush()?;
            trio::net::serve_listeners(echo, listeners, ServeOptions::new()).await
        })
        .expect("the server failed");
}

#[test]
#[cfg(target_os = "linux")]
fn serve_tcp_logs_emfile_and_keeps_serving_once_fds_free_up() {
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env("TRIO_EMFILE_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut stdout = child.stdout.take().expect("stdout");
    // The child prints `port N` once it serves, after libtest's own lines.
    let mut line = Vec::new();
    let mut byte = [0u8];
    let port: u16 = loop {
        assert_eq!(
            stdout.read(&mut byte).expect("read the port"),
            1,
            "child died"
        );
        if byte[0] != b'\n' {
            line.push(byte[0]);
            continue;
        }
        let text = String::from_utf8(std::mem::take(&mut line)).expect("utf-8");
        // libtest may have written "test emfile_child ... " on the same line.
        if let Some(i) = text.find("port ") {
            break text[i + 5..].trim().parse().expect("a port number");
        }
    };
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let round_trip = |mut s: &std::net::TcpStream, msg: &[u8]| {
        s.write_all(msg).unwrap();
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf).expect("echo");
        assert_eq!(buf, msg);
    };
    // Two connections fill the child's fd table.
    let first = connect();
    round_trip(&first, b"one");
    let second = connect();
    round_trip(&second, b"two");
    // The third waits in the backlog: accept fails with EMFILE, logged, retried.
    let mut third = connect();
    third.write_all(b"three").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // Closing the first frees an fd; the next retry accepts the third.
    drop(first);
    let mut buf = [0u8; 5];
    third
        .read_exact(&mut buf)
        .expect("the third connection is served");
    assert_eq!(&buf, b"three");
    round_trip(&second, b"still");
    child.kill().expect("kill the child");
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.lines().any(|line| line.starts_with("ERROR")
            && line.contains("trio::serve_listeners: accept returned")
            && line.contains("Too many open files")),
        "no EMFILE log in the child's stderr:\n{stderr}"
    );
}
