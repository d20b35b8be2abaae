//! The reactor's contract, on socketpairs and pipes, through the public API only
//! (`wait_readable`, `wait_writable`, `notify_closing`, cancel scopes, nurseries, statistics).
//!
//! What a caller may rely on: a wait returns once the fd is ready in its direction (or was, in
//! an edge that nobody had taken yet), perhaps spuriously, so the caller retries its
//! non-blocking call; one task at a time waits in each direction of an fd (a second gets
//! `BusyResourceError`); `notify_closing` wakes both directions with `ClosedResourceError` and
//! forgets the fd; a cancelled or dropped wait leaves no registration behind and loses no
//! readiness; every wait is a checkpoint. Every test runs under a deadline on virtual time, so a wait that never returns
//! fails the test with `TooSlowError` (autojump reaches the deadline) instead of hanging it.

mod common;

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use common::{Log, assert_err, in_cancelled_scope, poll_once, run, yields};
use trio::lowlevel::{
    current_statistics, notify_closing, wait_all_tasks_blocked, wait_readable, wait_writable,
};
use trio::{BusyResourceError, ClosedResourceError, Event, Nursery};

/// Virtual seconds after which a test that is stuck in a wait fails.
const GUARD: f64 = 1000.0;

/// Runs `body` on virtual time under the [`GUARD`] deadline; panics on error.
fn run_io<F>(body: F)
where
    F: Future<Output = trio::Result<()>> + 'static,
{
    run(trio::fail_after(GUARD, body));
}

/// A connected pair of non-blocking Unix stream sockets.
fn socketpair() -> (Rc<UnixStream>, Rc<UnixStream>) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("set_nonblocking");
    b.set_nonblocking(true).expect("set_nonblocking");
    (Rc::new(a), Rc::new(b))
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (Rc<File>, Rc<File>) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe: {}", io::Error::last_os_error());
    for fd in fds {
        // SAFETY: fcntl on descriptors this function owns, with integer arguments only.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            assert!(flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
            assert_eq!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC), 0);
        }
    }
    // SAFETY: pipe() just created both descriptors and nothing else owns them.
    let (r, w) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    (Rc::new(r), Rc::new(w))
}

/// Makes fd number `target` refer to `source`'s open file, closing what `target` referred
/// to, atomically: a new fd that reuses a number, with no window in which another thread of
/// the test process could take the number.
fn dup_onto(source: &impl AsRawFd, target: RawFd) {
    // SAFETY: both descriptors are open and owned by the caller; dup2 only changes `target`.
    let rc = unsafe { libc::dup2(source.as_raw_fd(), target) };
    assert_eq!(rc, target, "dup2: {}", io::Error::last_os_error());
}

/// Writes until the kernel buffer is full; returns how many bytes went in.
fn fill(mut w: impl Write) -> usize {
    let chunk = [b'x'; 65536];
    let mut total = 0;
    loop {
        match w.write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("fill: {e}"),
        }
    }
}

/// Reads until the kernel buffer is empty (or end of file); returns how many bytes came out.
fn drain(mut r: impl Read) -> usize {
    let mut buf = [0; 65536];
    let mut total = 0;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("drain: {e}"),
        }
    }
}

/// Reads what is there right now, without waiting (`None`: it would block).
fn read_now(mut r: impl Read) -> Option<Vec<u8>> {
    let mut buf = [0; 64];
    match r.read(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("read: {e}"),
    }
}

fn io_waiters() -> usize {
    current_statistics().expect("inside a run").io_waiters
}

/// How a wait ended, for the log.
fn outcome(r: &trio::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) if e.is_cancelled() => "cancelled".into(),
        Err(e) if e.is::<ClosedResourceError>() => "closed".into(),
        Err(e) if e.is::<BusyResourceError>() => "busy".into(),
        Err(e) => format!("error: {e:?}"),
    }
}

/// Starts a task named `name` that waits once with `wait` on `fd` and logs
/// `"{name} {outcome}"`. A `Cancelled` goes on up (the nursery's scope absorbs it).
fn start_waiter<W>(
    nursery: &Nursery,
    name: &'static str,
    wait: fn(RawFd) -> W,
    fd: RawFd,
    log: &Log<String>,
) -> trio::Result<()>
where
    W: Future<Output = trio::Result<()>> + 'static,
{
    let log = log.clone();
    nursery.start_soon_named(name, async move {
        let r = wait(fd).await;
        log.push(format!("{name} {}", outcome(&r)));
        match r {
            Err(e) if e.is_cancelled() => Err(e),
            _ => Ok(()),
        }
    })
}

/// Starts a task that reads `fd` the way the contract asks (read, and wait only when the read
/// would block) and logs what it read, `"eof"` at the end of the stream.
fn start_reader(nursery: &Nursery, file: Rc<File>, log: &Log<String>) -> trio::Result<()> {
    let log = log.clone();
    nursery.start_soon(async move {
        for _ in 0..10 {
            match read_now(&*file) {
                Some(bytes) => {
                    log.push(match &bytes[..] {
                        b"" => "eof".into(),
                        data => String::from_utf8_lossy(data).into(),
                    });
                    return Ok(());
                }
                None => wait_readable(file.as_raw_fd()).await?,
            }
        }
        panic!("a wait keeps returning while the fd has nothing to read");
    })
}

// ---- readiness -------------------------------------------------------------------------

#[test]
fn a_read_wait_blocks_until_the_peer_writes() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        let log = Log::default();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &log)?;
            wait_all_tasks_blocked().await?;
            assert!(log.get().is_empty(), "nothing to read yet: {:?}", log.get());
            assert_eq!(io_waiters(), 1);
            (&*b).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["reader ok"]);
            assert_eq!(io_waiters(), 0);
            assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));
            Ok(())
        })
        .await
    });
}

#[test]
fn a_write_wait_on_an_empty_socket_returns() {
    run_io(async {
        let (a, _b) = socketpair();
        wait_writable(a.as_raw_fd()).await?;
        assert_eq!(io_waiters(), 0);
        Ok(())
    });
}

#[test]
fn a_write_wait_on_a_full_socket_blocks_until_the_peer_drains_it() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        assert!(fill(&*a) > 0);
        let log = Log::default();
        let writer_log = log.clone();
        let (writer, peer) = (a.clone(), b.clone());
        trio::open_nursery(|n| async move {
            // The caller's side of the contract: write, and wait only when it would block.
            n.start_soon(async move {
                let mut waits = 0;
                loop {
                    match (&*writer).write(b"y") {
                        Ok(_) => break,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            waits += 1;
                            assert!(waits < 10, "a wait keeps returning on a full socket");
                            wait_writable(fd).await?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                writer_log.push("wrote".to_string());
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert!(log.get().is_empty(), "the socket is full");
            assert_eq!(io_waiters(), 1);
            assert!(drain(&*peer) > 0);
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["wrote"]);
            Ok(())
        })
        .await?;
        assert_eq!(drain(&*b), 1, "the byte written after the drain");
        Ok(())
    });
}

#[test]
fn a_reader_and_a_writer_on_one_fd_wake_independently() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        fill(&*a);
        let log = Log::default();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &log)?;
            start_waiter(&n, "writer", wait_writable, fd, &log)?;
            wait_all_tasks_blocked().await?;
            assert!(log.get().is_empty());
            assert_eq!(io_waiters(), 2);
            (&*b).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["reader ok"]);
            drain(&*b);
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["reader ok", "writer ok"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn a_pipe_wakes_its_reader_on_data_and_on_hangup_and_its_writer_on_drain() {
    run_io(async {
        let (r, w) = pipe();
        let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, rfd, &l)?;
            wait_all_tasks_blocked().await?;
            assert!(l.get().is_empty());
            (&*w).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get(), ["reader ok"]);
            assert_eq!(read_now(&*r).as_deref(), Some(&b"x"[..]));

            // A full pipe blocks its writer until the reader takes the data out.
            fill(&*w);
            start_waiter(&n, "writer", wait_writable, wfd, &l)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get(), ["reader ok"]);
            assert!(drain(&*r) > 0);
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get(), ["reader ok", "writer ok"]);

            // Closing the write end is readiness for the reader: it reads the end of file.
            start_reader(&n, r, &l)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get().len(), 2, "nothing to read yet: {:?}", l.get());
            notify_closing(wfd);
            drop(w);
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get(), ["reader ok", "writer ok", "eof"]);
            Ok(())
        })
        .await
    });
}

// ---- cached edges ----------------------------------------------------------------------

#[test]
fn readiness_that_arrives_while_nobody_waits_is_kept_for_the_next_wait() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        // The fd is known to the reactor before the readiness arrives.
        wait_writable(fd).await?;

        // Read direction: data arrives and the run loop goes idle (so the reactor has polled)
        // while no task waits to read.
        (&*b).write_all(b"x").expect("write");
        wait_all_tasks_blocked().await?;
        yields(wait_readable(fd)).await?;
        assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));

        // Write direction: the peer drains a full socket while no task waits to write. (The
        // first wait takes whatever writable edge the data's arrival left.)
        wait_writable(fd).await?;
        fill(&*a);
        wait_all_tasks_blocked().await?;
        drain(&*b);
        wait_all_tasks_blocked().await?;
        yields(wait_writable(fd)).await?;
        assert!((&*a).write(b"y").expect("writable") > 0);
        assert_eq!(io_waiters(), 0);
        Ok(())
    });
}

// ---- one waiter per direction ----------------------------------------------------------

#[test]
fn a_second_waiter_in_the_same_direction_gets_busy_resource_error() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        fill(&*a);
        let log = Log::default();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &log)?;
            start_waiter(&n, "writer", wait_writable, fd, &log)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(io_waiters(), 2);

            let e = assert_err::<BusyResourceError, _>(wait_readable(fd).await);
            assert!(e.to_string().contains(&fd.to_string()), "names the fd: {e}");
            assert_err::<BusyResourceError, _>(wait_writable(fd).await);
            // The first waiters are untouched: still waiting, and woken by readiness.
            wait_all_tasks_blocked().await?;
            assert!(log.get().is_empty(), "{:?}", log.get());
            assert_eq!(io_waiters(), 2);
            (&*b).write_all(b"x").expect("write");
            drain(&*b);
            wait_all_tasks_blocked().await?;
            let mut seen = log.get();
            seen.sort();
            assert_eq!(seen, ["reader ok", "writer ok"]);
            assert_eq!(io_waiters(), 0);
            // Once the first waiter is done, the direction is free again.
            (&*b).write_all(b"z").expect("write");
            wait_readable(fd).await
        })
        .await
    });
}

// ---- notify_closing --------------------------------------------------------------------

#[test]
fn notify_closing_wakes_a_reader_and_a_writer_with_closed_resource_error() {
    run_io(async {
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        fill(&*a);
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &l)?;
            start_waiter(&n, "writer", wait_writable, fd, &l)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(io_waiters(), 2);
            notify_closing(fd);
            // Not a checkpoint: the waiters run only when this task yields.
            assert!(l.get().is_empty());
            Ok(())
        })
        .await?;
        let mut seen = log.get();
        seen.sort();
        assert_eq!(seen, ["reader closed", "writer closed"]);
        assert_eq!(io_waiters(), 0);
        Ok(())
    });
}

#[test]
fn a_new_fd_that_reuses_a_notified_number_starts_fresh() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        // Leave state behind on `fd`: a registration, a cached readable edge, a closed waiter.
        wait_writable(fd).await?;
        fill(&*a);
        (&*b).write_all(b"old").expect("write");
        wait_all_tasks_blocked().await?;
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "old writer", wait_writable, fd, &l)?;
            wait_all_tasks_blocked().await?;
            notify_closing(fd);
            Ok(())
        })
        .await?;
        assert_eq!(log.get(), ["old writer closed"]);

        // The number now names a new socket (the old one is closed).
        let (c, d) = socketpair();
        dup_onto(&*c, fd);
        drop(c);
        let l = log.clone();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "new reader", wait_readable, fd, &l)?;
            wait_all_tasks_blocked().await?;
            assert_eq!(
                l.get().len(),
                1,
                "no readiness of the old fd: {:?}",
                l.get()
            );
            (&*d).write_all(b"new").expect("write");
            wait_all_tasks_blocked().await?;
            assert_eq!(l.get()[1..], ["new reader ok"]);
            assert_eq!(read_now(&*a).as_deref(), Some(&b"new"[..]));
            // Registered afresh for writing too.
            wait_writable(fd).await
        })
        .await
    });
}

#[test]
fn an_fd_closed_after_notify_closing_does_not_disturb_later_waits() {
    run_io(async {
        for _ in 0..3 {
            let (a, b) = socketpair();
            let fd = a.as_raw_fd();
            wait_writable(fd).await?;
            (&*b).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            notify_closing(fd);
            drop(a);
            drop(b);
            // The run goes idle with the closed fd gone, then new fds (often with the same
            // numbers) work as usual.
            wait_all_tasks_blocked().await?;
            let (c, d) = socketpair();
            let log = Log::default();
            let cfd = c.as_raw_fd();
            trio::open_nursery(|n| async move {
                start_waiter(&n, "reader", wait_readable, cfd, &log)?;
                wait_all_tasks_blocked().await?;
                assert!(log.get().is_empty());
                (&*d).write_all(b"y").expect("write");
                wait_all_tasks_blocked().await?;
                assert_eq!(log.get(), ["reader ok"]);
                wait_writable(cfd).await
            })
            .await?;
            assert_eq!(read_now(&*c).as_deref(), Some(&b"y"[..]));
            notify_closing(cfd);
        }
        assert_eq!(io_waiters(), 0);
        Ok(())
    });
}

#[test]
fn notify_closing_of_an_unknown_fd_or_outside_a_run_does_nothing() {
    let (a, b) = socketpair();
    notify_closing(a.as_raw_fd());
    run_io(async move {
        notify_closing(a.as_raw_fd());
        notify_closing(-1);
        (&*b).write_all(b"x").expect("write");
        wait_readable(a.as_raw_fd()).await?;
        assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));
        Ok(())
    });
}

// ---- cancellation and dropping ---------------------------------------------------------

#[test]
fn a_cancelled_wait_fails_with_cancelled_and_leaves_the_fd_free() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        fill(&*a);
        for (name, wait) in [
            ("reader", wait_readable as fn(_) -> _),
            ("writer", wait_writable),
        ] {
            let log = Log::default();
            let l = log.clone();
            trio::open_nursery(|n| async move {
                start_waiter(&n, name, wait, fd, &l)?;
                wait_all_tasks_blocked().await?;
                assert_eq!(io_waiters(), 1);
                n.cancel_scope().cancel();
                Ok(())
            })
            .await?;
            assert_eq!(log.get(), [format!("{name} cancelled")]);
            assert_eq!(io_waiters(), 0);

            // A deadline cancels a wait as well.
            assert_eq!(trio::move_on_after(5.0, wait(fd)).await?, None);
            assert_eq!(io_waiters(), 0);
        }

        // The same fd, both directions: waited on again as usual (not busy, not stale).
        let log = Log::default();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &log)?;
            start_waiter(&n, "writer", wait_writable, fd, &log)?;
            wait_all_tasks_blocked().await?;
            assert!(log.get().is_empty());
            (&*b).write_all(b"x").expect("write");
            drain(&*b);
            wait_all_tasks_blocked().await?;
            let mut seen = log.get();
            seen.sort();
            assert_eq!(seen, ["reader ok", "writer ok"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn dropping_a_waiting_future_unregisters_it() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        let mut wait = wait_readable(fd);
        assert!(poll_once(&mut wait).await.is_pending());
        assert_eq!(io_waiters(), 1);
        drop(wait);
        assert_eq!(io_waiters(), 0);

        let log = Log::default();
        trio::open_nursery(|n| async move {
            start_waiter(&n, "reader", wait_readable, fd, &log)?;
            wait_all_tasks_blocked().await?;
            assert!(
                log.get().is_empty(),
                "not busy, and blocked: {:?}",
                log.get()
            );
            (&*b).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            assert_eq!(log.get(), ["reader ok"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn a_dropped_wait_that_was_woken_leaves_the_readiness_for_the_next() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        wait_writable(fd).await?;
        let release = Rc::new(Event::new());
        let (r, peer) = (release.clone(), b.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let mut wait = wait_readable(fd);
                assert!(poll_once(&mut wait).await.is_pending());
                // Readiness arrives while the wait is registered; the wait is then dropped
                // without being polled again, as a combinator drops the branch that lost.
                r.wait().await?;
                drop(wait);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(io_waiters(), 1);
            (&*peer).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            release.set();
            Ok(())
        })
        .await?;
        // The data is there and nobody read it: the next wait must see the fd as readable.
        trio::fail_after(5.0, wait_readable(fd)).await?;
        assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));
        Ok(())
    });
}

#[test]
fn a_dropped_wait_that_took_a_cached_edge_leaves_it_for_the_next() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        wait_writable(fd).await?;
        (&*b).write_all(b"x").expect("write");
        wait_all_tasks_blocked().await?;
        let mut wait = wait_readable(fd);
        // Its first poll takes the cached edge; it would return after a schedule point.
        assert!(poll_once(&mut wait).await.is_pending());
        drop(wait);
        trio::fail_after(5.0, wait_readable(fd)).await?;
        assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));
        Ok(())
    });
}

// ---- checkpoints -----------------------------------------------------------------------

#[test]
fn a_wait_in_a_cancelled_scope_fails_at_once_and_takes_nothing() {
    run_io(async {
        let (a, b) = socketpair();
        let fd = a.as_raw_fd();
        // Readable and writable, with edges pending: the cancel point still comes first.
        wait_writable(fd).await?;
        (&*b).write_all(b"x").expect("write");
        wait_all_tasks_blocked().await?;
        let out = in_cancelled_scope(async {
            for wait in [wait_readable as fn(_) -> _, wait_writable] {
                let r = wait(fd).await;
                assert!(
                    r.as_ref().is_err_and(|e| e.is_cancelled()),
                    "{:?}",
                    outcome(&r)
                );
                assert_eq!(io_waiters(), 0);
            }
            Ok(())
        })
        .await?;
        assert_eq!(out, Some(()));
        // The readiness is still there for a wait outside the scope.
        wait_readable(fd).await?;
        assert_eq!(read_now(&*a).as_deref(), Some(&b"x"[..]));
        Ok(())
    });
}

#[test]
fn a_wait_always_yields() {
    run_io(async {
        // Ready at the first wait on a new fd: writable, and readable with data already in.
        let (a, b) = socketpair();
        (&*b).write_all(b"x").expect("write");
        yields(wait_writable(a.as_raw_fd())).await?;
        yields(wait_readable(a.as_raw_fd())).await?;
        // Ready from an edge cached while nobody waited.
        (&*b).write_all(b"y").expect("write");
        wait_all_tasks_blocked().await?;
        yields(wait_readable(a.as_raw_fd())).await?;
        // Ready only after blocking.
        let (c, d) = socketpair();
        let cfd = c.as_raw_fd();
        trio::open_nursery(|n| async move {
            n.start_soon(async move { yields(wait_readable(cfd)).await })?;
            wait_all_tasks_blocked().await?;
            (&*d).write_all(b"x").expect("write");
            Ok(())
        })
        .await
    });
}

// ---- misuse ----------------------------------------------------------------------------

#[test]
fn waiting_on_an_invalid_fd_is_an_error() {
    run_io(async {
        // Numbers that are never open: negative, and far above any descriptor limit.
        for fd in [-1, 1 << 30] {
            for wait in [wait_readable as fn(_) -> _, wait_writable] {
                let r = wait(fd).await;
                assert_err::<io::Error, _>(r);
                assert_eq!(io_waiters(), 0);
            }
        }
        Ok(())
    });
}

#[test]
fn an_unnotified_close_leaves_waits_cancellable_and_the_run_alive() {
    // Closing an fd without notify_closing breaks the contract; Trio's rule for it holds:
    // a wait may return, fail with an OS error, or block until cancelled, but it never
    // blocks uncancellably and never crashes the run.
    fn acceptable(r: &trio::Result<()>) -> bool {
        match r {
            Ok(()) => true,
            Err(e) => e.is_cancelled() || e.is::<io::Error>(),
        }
    }
    /// A wait's result as the waiting task's: a `Cancelled` goes on up to the nursery.
    fn cancelled_only(r: trio::Result<()>) -> trio::Result<()> {
        match r {
            Err(e) if e.is_cancelled() => Err(e),
            _ => Ok(()),
        }
    }
    run_io(async {
        // A registered fd whose socket is closed under a waiting task and whose number is
        // taken over by a new, readable socket. (dup2 does both at once, and keeps the number
        // ours, so no later fd of this test can get it.)
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        let log = Log::default();
        let l = log.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let r = wait_readable(fd).await;
                assert!(acceptable(&r), "{}", outcome(&r));
                l.push(outcome(&r));
                cancelled_only(r)
            })?;
            wait_all_tasks_blocked().await?;
            let (c, d) = socketpair();
            dup_onto(&*c, fd);
            (&*d).write_all(b"x").expect("write");
            wait_all_tasks_blocked().await?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(log.get().len(), 1);
        assert_eq!(io_waiters(), 0);
        // A new wait on the reused number.
        let r = trio::move_on_after(5.0, wait_readable(fd))
            .await
            .map(|_| ());
        assert!(acceptable(&r), "{}", outcome(&r));
        assert_eq!(io_waiters(), 0);

        // Other fds are not affected.
        let (e, f) = socketpair();
        (&*f).write_all(b"x").expect("write");
        wait_readable(e.as_raw_fd()).await?;

        // A plain close under a waiting task (last: a later fd of this run could reuse the
        // number).
        let (g, _h) = socketpair();
        let gfd = g.as_raw_fd();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let r = wait_readable(gfd).await;
                assert!(acceptable(&r), "{}", outcome(&r));
                cancelled_only(r)
            })?;
            wait_all_tasks_blocked().await?;
            drop(g);
            wait_all_tasks_blocked().await?;
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(io_waiters(), 0);
        notify_closing(fd);
        drop(a);
        Ok(())
    });
}

#[test]
fn waiting_twice_without_reading_returns_both_times() {
    // A wait re-arms the fd before it blocks: readiness that an earlier wait used up, but
    // that is still there (nothing was read), is reported again rather than waited for.
    run_io(async {
        let (a, b) = socketpair();
        (&*b).write_all(b"x").expect("write");
        for _ in 0..3 {
            wait_readable(a.as_raw_fd()).await?;
        }
        assert_eq!(read_now(&*a), Some(b"x".to_vec()));
        notify_closing(a.as_raw_fd());
        Ok(())
    });
}

#[test]
fn a_number_reused_after_an_unnotified_close_is_registered_afresh() {
    // The fd is closed without notify_closing and its number reused (dup2 does both at
    // once): the reactor notices the poller forgot the old file and registers the new one,
    // so a wait on the new file returns when it is readable.
    run_io(async {
        let (a, _b) = socketpair();
        let fd = a.as_raw_fd();
        let (c, d) = socketpair();
        (&*d).write_all(b"1").expect("write");
        // Register `fd` with the old file: a write wait returns at once.
        wait_writable(fd).await?;
        dup_onto(&*c, fd);
        wait_readable(fd).await?;
        assert_eq!(read_now(&*a), Some(b"1".to_vec()));
        notify_closing(fd);
        Ok(())
    });
}

#[test]
fn a_second_waiter_while_the_first_returns_a_cached_edge_is_busy() {
    run_io(async {
        let (a, b) = socketpair();
        (&*b).write_all(b"x").expect("write");
        wait_readable(a.as_raw_fd()).await?;
        assert_eq!(read_now(&*a), Some(b"x".to_vec()));
        (&*b).write_all(b"y").expect("write");
        wait_all_tasks_blocked().await?;
        // The edge of "y" is cached; the first wait takes it and yields before returning.
        let mut first = Box::pin(wait_readable(a.as_raw_fd()));
        assert!(poll_once(&mut first).await.is_pending());
        assert_err::<BusyResourceError, _>(wait_readable(a.as_raw_fd()).await);
        first.await?;
        notify_closing(a.as_raw_fd());
        Ok(())
    });
}
