//! More of Trio's `test_highlevel_serve_listeners.py` (accept errors: which are retried, how
//! often, and which end the server) and `test_highlevel_open_unix_stream.py`.

mod common;

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use trio::net::{ServeOptions, open_unix_socket, serve_listeners};
use trio::stream::prelude::*;
use trio_test::MemoryStapledStream;

/// A listener whose every accept fails with `error()` (Trio's `MemoryListener` with an
/// `accept_hook` that raises).
struct FailingListener {
    error: fn() -> trio::Error,
    accepts: Cell<usize>,
    closed: Cell<bool>,
}

impl FailingListener {
    fn new(error: fn() -> trio::Error) -> Rc<FailingListener> {
        Rc::new(FailingListener {
            error,
            accepts: Cell::new(0),
            closed: Cell::new(false),
        })
    }
}

impl AsyncResource for FailingListener {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.closed.set(true);
        Poll::Ready(Ok(()))
    }
}

impl Listener for FailingListener {
    type Stream = MemoryStapledStream;

    fn poll_accept(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<MemoryStapledStream>> {
        self.accepts.set(self.accepts.get() + 1);
        Poll::Ready(Err((self.error)()))
    }
}

async fn never(_stream: MemoryStapledStream) -> trio::Result<()> {
    unreachable!("no connection is ever accepted")
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Trio's `test_serve_listeners_accept_capacity_error`: `EMFILE` is logged and retried every
/// 100 ms, so in 950 ms it is tried (and logged) 10 times; the listener is closed at the end.
#[trio::test(autojump)]
async fn capacity_errors_are_logged_and_retried_every_100_ms() -> trio::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let listener = FailingListener::new(|| io::Error::from_raw_os_error(libc::EMFILE).into());
    let outcome = trio::move_on_after(
        0.95,
        serve_listeners(never, vec![listener.clone()], ServeOptions::new()),
    )
    .await?;
    assert!(outcome.is_none(), "it only stops when cancelled");
    assert_eq!(listener.accepts.get(), 10);
    let log = String::from_utf8(captured.0.lock().expect("not poisoned").clone())?;
    // Only serve_listeners' events (trio's `tracing` feature adds events of its own).
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("trio::serve_listeners"))
        .collect();
    assert_eq!(lines.len(), 10, "{log}");
    for line in lines {
        assert!(
            line.contains("ERROR") && line.contains("retrying"),
            "{line}"
        );
        assert!(line.contains(&format!("errno={}", libc::EMFILE)), "{line}");
    }
    assert!(listener.closed.get());
    Ok(())
}

/// Trio's `test_serve_listeners_accept_unrecognized_error`: any other accept error (a
/// `ECONNABORTED` from a listener that does not hide it, or an error of any kind) ends the
/// server with that error, and the listener is closed.
#[trio::test]
async fn other_accept_errors_end_the_server() -> trio::Result<()> {
    let errors: [fn() -> trio::Error; 2] = [
        || io::Error::from_raw_os_error(libc::ECONNABORTED).into(),
        || trio::Error::new(trio::UsageError::new("a listener bug")),
    ];
    for error in errors {
        let listener = FailingListener::new(error);
        let err = serve_listeners(never, vec![listener.clone()], ServeOptions::new())
            .await
            .unwrap_err();
        let group = err.as_group().expect("a nursery's group");
        assert_eq!(group.len(), 1, "{err}");
        assert_eq!(group.errors()[0].to_string(), error().to_string());
        assert_eq!(listener.accepts.get(), 1);
        assert!(listener.closed.get());
    }
    Ok(())
}

/// Trio's `test_open_bad_socket`: a path where nothing listens is the system's "not found".
#[trio::test]
async fn open_unix_socket_to_a_missing_path_is_not_found() -> trio::Result<()> {
    let dir = std::env::temp_dir().join(format!("trio-netaudit-{}", std::process::id()));
    let err = open_unix_socket(dir.join("nothing-here"))
        .await
        .unwrap_err();
    let io = err.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), io::ErrorKind::NotFound, "{err}");
    Ok(())
}

/// Trio's `test_open_unix_socket`: a path as `&Path` or `&str`, against a blocking std
/// listener.
#[trio::test]
async fn open_unix_socket_talks_to_a_std_listener() -> trio::Result<()> {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    let dir = std::env::temp_dir().join(format!("trio-netaudit-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for by_str in [false, true] {
        let path = dir.join(format!("sock-{by_str}"));
        let _ = std::fs::remove_file(&path);
        let server = UnixListener::bind(&path)?;
        let stream = match by_str {
            true => open_unix_socket(path.to_str().expect("a UTF-8 path")).await?,
            false => open_unix_socket(&path).await?,
        };
        let (mut client, _) = server.accept()?;
        stream.send_all(b"test").await?;
        let mut got = [0; 4];
        client.read_exact(&mut got)?;
        assert_eq!(&got, b"test");
        client.write_all(b"response")?;
        assert_eq!(stream.receive_some(2048).await?, b"response");
        stream.aclose().await?;
        std::fs::remove_file(&path)?;
    }
    std::fs::remove_dir(&dir)?;
    Ok(())
}
