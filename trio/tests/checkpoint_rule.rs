//! The checkpoint rule, checked at run time (beside `#[checkpoint]`'s guarantee at compile
//! time): every public async fn of trio, and every public fn returning a future, is a cancel
//! point and a schedule point on every normal return (`trio_test::assert_checkpoints`), on
//! the path where it succeeds at once and on the path where it has to wait.
//!
//! One line per operation and path:
//! - `immediate!(op)`: `op` succeeds without waiting for anything;
//! - `blocking!(handles => op, then { unblock })`: `op` runs in a task of its own (with clones
//!   of `handles`), must still be waiting once every task is blocked, and must succeed after
//!   `unblock` runs in this task (an empty `unblock` for a sleep, which the clock ends).
//!
//! A new async fn gets a line in the test of its area (`every_async_fn_of_trio_has_a_line_here`
//! scans trio's sources and fails for one that has none). What is deliberately not a checkpoint
//! is listed in `the_documented_exceptions`, with what it is instead; known violations are
//! asserted as they are (`known_violation!`, `blocking!(..., without "...")`), so that their
//! fix fails the line and moves it among the others.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::run;
use futures_core::Stream as _;
use trio::lowlevel::{
    ParkingLot, cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled, sleep_forever,
    wait_all_tasks_blocked, wait_readable, wait_writable,
};
use trio::stream::prelude::*;
use trio::{
    AsyncResource, CancelScope, CapacityLimiter, Condition, Event, Listener, Lock, Semaphore,
    StrictFIFOLock,
};
use trio_test::{
    assert_checkpoints, assert_no_checkpoints, lockstep_stream_pair, memory_stream_pair,
};

/// `op` succeeds at once and is a checkpoint.
macro_rules! immediate {
    ($op:expr) => {
        assert_checkpoints($op).await?
    };
}

/// `op` waits until `unblock` has run, then succeeds, and is a checkpoint. With `without
/// "..."` at the end: a known violation, asserted as it is (see `known_violation!`).
macro_rules! blocking {
    ($($handle:ident),* => $op:expr, then $unblock:block) => {
        blocking!(@ assert_checkpoints, $($handle),* => $op, then $unblock)
    };
    ($($handle:ident),* => $op:expr, then $unblock:block, without $missing:literal) => {
        blocking!(@ |op| violates(line!(), $missing, op), $($handle),* => $op, then $unblock)
    };
    (@ $check:expr, $($handle:ident),* => $op:expr, then $unblock:block) => {{
        let handles = ($($handle.clone(),)*);
        let op = ($check)(async move {
            #[allow(unused_variables)]
            let ($($handle,)*) = handles;
            $op.await
        });
        blocks_until(concat!(file!(), ":", line!()), op, async {
            $unblock
            Ok(())
        })
        .await?
    }};
}

/// A known violation of the rule: `op` returns `Ok` without `missing` ("a cancel point" or
/// "a schedule point"). Asserted as it is, so that the fix makes this line fail, and the line
/// then moves to `immediate!` (or loses its `without`).
macro_rules! known_violation {
    ($op:expr, without $missing:literal) => {
        violates(line!(), $missing, $op).await?
    };
}

/// Awaits `op`, which must return `Ok` missing exactly `missing` of a checkpoint.
async fn violates<T, E: std::fmt::Debug>(
    line: u32,
    missing: &'static str,
    op: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let task = trio::lowlevel::current_task().expect("in a task");
    let before = (task.cancel_points(), task.schedule_points());
    let out = op.await;
    let after = (task.cancel_points(), task.schedule_points());
    let found = match (after.0 != before.0, after.1 != before.1) {
        (true, true) => "nothing",
        (true, false) => "a schedule point",
        (false, true) => "a cancel point",
        (false, false) => "a cancel point and a schedule point",
    };
    assert!(out.is_ok(), "line {line}: {:?}", out.as_ref().err());
    assert_eq!(
        found, missing,
        "line {line}: the known violation changed (fixed? then check it as the rule says)"
    );
    out
}

/// Runs `op` in a task of its own; it must still wait once every task is blocked, and succeed
/// once `unblock` has run.
async fn blocks_until<T, E: std::fmt::Debug>(
    case: &'static str,
    op: impl Future<Output = Result<T, E>> + 'static,
    unblock: impl Future<Output = trio::Result<()>>,
) -> trio::Result<()> {
    let done = Rc::new(Cell::new(false));
    let finished = done.clone();
    trio::open_nursery(|nursery| async move {
        nursery.start_soon(async move {
            if let Err(e) = op.await {
                panic!("{case}: the operation failed: {e:?}");
            }
            finished.set(true);
            Ok(())
        })?;
        wait_all_tasks_blocked().await?;
        assert!(!done.get(), "{case}: the operation did not wait");
        unblock.await
    })
    .await
}

#[test]
fn sleeps_and_timeouts() {
    run(async {
        immediate!(trio::sleep(0));
        immediate!(trio::sleep_until(trio::current_time()?));
        immediate!(trio::sleep_until(trio::current_time()? - 1.0));
        blocking!(=> trio::sleep(1), then {});
        blocking!(=> trio::sleep(Duration::from_millis(10)), then {});
        blocking!(=> trio::sleep_until(trio::current_time()? + 5.0), then {});
        // Timeouts are as much a checkpoint as their body: around a checkpoint, they are one,
        // whether the body finishes or the timeout ends it.
        immediate!(trio::move_on_after(1, checkpoint()));
        immediate!(trio::move_on_at(trio::current_time()? + 1.0, checkpoint()));
        immediate!(trio::fail_after(1, checkpoint()));
        immediate!(trio::fail_at(trio::current_time()? + 1.0, checkpoint()));
        immediate!(trio::move_on_after(0, checkpoint()));
        // A deadline passed already: `sleep_forever` yields before it raises (Trio's rule),
        // so the timeout that absorbs the `Cancelled` is a checkpoint all the same.
        immediate!(trio::move_on_at(
            trio::current_time()? - 1.0,
            sleep_forever()
        ));
        blocking!(=> trio::move_on_after(1, sleep_forever()), then {});
        blocking!(=> trio::move_on_at(trio::current_time()? + 1.0, sleep_forever()), then {});
        Ok(())
    });
}

#[test]
fn nurseries_and_scopes() {
    run(async {
        immediate!(trio::open_nursery(|_| checkpoint()));
        // Waiting for the children is a cancel point (Trio's wait in `__aexit__` counts one).
        immediate!(trio::open_nursery(|n| async move {
            n.start_soon(async { Ok(()) })
        }));
        let event = Event::new();
        blocking!(event => trio::open_nursery(|n| async move {
            n.start_soon(async move { event.wait().await })
        }), then { event.set(); });
        // Documented exception, as in Trio: a nursery with nothing to wait for and a body that
        // made no checkpoint is a schedule point only (Trio's is a cancel-shielded checkpoint).
        known_violation!(trio::open_nursery(|_| async { Ok(()) }), without "a cancel point");
        // `start` checkpoints only as its nursery does (the task's own points are its own).
        immediate!(trio::open_nursery(|n| async move {
            n.start(|status: trio::TaskStatus<u32>| async move { status.started(7) })
                .await?;
            checkpoint().await
        }));
        // `Nursery::start` waits for `started`: a cancel point, as Trio's inner nursery is.
        trio::open_nursery(|n| async move {
            immediate!(n.start(|status: trio::TaskStatus<u32>| async move { status.started(7) }));
            immediate!(n.start(|status: trio::TaskStatus<()>| async move {
                checkpoint().await?;
                status.started(())
            }));
            immediate!(
                n.start_named("named", |status: trio::TaskStatus<u32>| async move {
                    status.started(7)
                })
            );
            Ok(())
        })
        .await?;
        immediate!(CancelScope::new().run(checkpoint()));
        immediate!(trio::lowlevel::wchan("label", checkpoint()));
        Ok(())
    });
}

#[test]
fn concurrency_in_one_task() {
    run(async {
        let ready = || async { Ok::<_, trio::Error>(1) };
        immediate!(trio::join((ready(), ready())));
        immediate!(trio::join(trio::join_all([ready(), ready()])));
        immediate!(trio::join(trio::join_all(Vec::<
            std::future::Ready<trio::Result<()>>,
        >::new())));
        immediate!(trio::race((ready(), ready())));
        immediate!(trio::race(trio::race_all([ready(), ready()])));
        let event = Event::new();
        blocking!(event => trio::join((event.wait(), checkpoint())), then { event.set(); });
        let event = Event::new();
        blocking!(event => trio::race((event.wait(), sleep_forever())), then { event.set(); });
        let event = Event::new();
        blocking!(event => trio::race(trio::race_all([event.wait(), event.wait()])), then {
            event.set();
        });
        Ok(())
    });
}

#[test]
fn lowlevel() {
    run(async {
        immediate!(checkpoint());
        immediate!(wait_all_tasks_blocked());
        immediate!(wait_all_tasks_blocked().cushion(0.01));
        let lot = ParkingLot::new();
        blocking!(lot => lot.park(), then { lot.unpark_one(); });
        let data_lot = ParkingLot::<u32>::new();
        blocking!(data_lot => data_lot.park_with(1), then { data_lot.unpark_one(); });
        // A blocking primitive in a scope cancelled already yields before it raises, so the
        // scope absorbing that `Cancelled` is a checkpoint too.
        let cancelled = CancelScope::new();
        cancelled.cancel();
        immediate!(cancelled.run(lot.park()));
        let (mut writer, reader) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        immediate!(wait_writable(writer.as_raw_fd()));
        let fd = reader.as_raw_fd();
        blocking!(fd => wait_readable(fd), then {
            writer.write_all(b"x").expect("write to the socketpair");
        });
        immediate!(wait_readable(fd));
        // Fill the socket's buffer, so that writing has to wait for the reader.
        writer.set_nonblocking(true).expect("nonblocking");
        while writer.write(&[0; 4096]).is_ok() {}
        let wfd = writer.as_raw_fd();
        let mut reader = reader;
        blocking!(wfd => wait_writable(wfd), then {
            let mut buf = vec![0; 1 << 20];
            std::io::Read::read(&mut reader, &mut buf).expect("read from the socketpair");
        });
        // A foreign future made cancellable: ready at once, or waiting for its own wake-up.
        immediate!(trio::compat::cancellable(async { 1 }));
        let flag = Flag::default();
        blocking!(flag => trio::compat::cancellable(flag.wait()), then { flag.set(); });
        Ok(())
    });
}

/// The scoped hyper clients (feature `hyper-client`), over a memory stream: the handshake
/// needs no answer, and the body returns at once (the connection's task is then cancelled).
#[cfg(feature = "hyper-client")]
#[test]
fn hyper_clients() {
    use hyper::client::conn::{http1, http2};
    use trio::compat::{Io, http1_client, http2_client};
    run(async {
        let (client, _server) = memory_stream_pair();
        immediate!(http1_client(
            Io::new(client),
            |_| {},
            |_: http1::SendRequest<String>| async { Ok(()) }
        ));
        let (client, _server) = memory_stream_pair();
        immediate!(http2_client(
            Io::new(client),
            |_| {},
            |_: http2::SendRequest<String>| async { Ok(()) }
        ));
        Ok(())
    });
}

/// A one-shot flag that knows nothing of trio: its future stores the waker it is polled with.
#[derive(Clone, Default)]
struct Flag {
    set: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl Flag {
    fn set(&self) {
        self.set.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn wait(&self) -> impl Future<Output = ()> + use<> {
        let flag = self.clone();
        std::future::poll_fn(move |cx| {
            if flag.set.get() {
                return Poll::Ready(());
            }
            *flag.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

#[test]
fn sync_primitives() {
    run(async {
        let event = Event::new();
        blocking!(event => event.wait(), then { event.set(); });
        immediate!(event.wait());

        let lock = Lock::new();
        immediate!(lock.acquire());
        blocking!(lock => lock.acquire().map_ok_then(|| lock.release()), then { lock.release()?; });
        drop(immediate!(lock.lock()));
        lock.acquire().await?;
        blocking!(lock => lock.lock(), then { lock.release()?; });
        let fifo = StrictFIFOLock::new();
        drop(immediate!(fifo.lock()));

        let sem = Semaphore::new(1);
        immediate!(sem.acquire());
        blocking!(sem => sem.acquire(), then { sem.release()?; });
        blocking!(sem => sem.acquire_guard(), then { sem.release()?; });
        sem.release()?;
        drop(immediate!(sem.acquire_guard()));

        let limiter = CapacityLimiter::new(1);
        immediate!(limiter.acquire());
        blocking!(limiter => limiter.acquire().map_ok_then(|| limiter.release()), then {
            limiter.release()?;
        });
        immediate!(limiter.acquire_on_behalf_of(1u64));
        blocking!(limiter => limiter.acquire_on_behalf_of(2u64), then {
            limiter.release_on_behalf_of(1u64)?;
        });
        limiter.release_on_behalf_of(2u64)?;
        drop(immediate!(limiter.acquire_guard()));
        drop(immediate!(limiter.acquire_guard_on_behalf_of(3u64)));
        limiter.acquire().await?;
        blocking!(limiter => limiter.acquire_guard(), then { limiter.release()?; });
        limiter.acquire().await?;
        blocking!(limiter => limiter.acquire_guard_on_behalf_of(4u64), then {
            limiter.release()?;
        });

        let cond = Condition::new();
        immediate!(cond.acquire());
        cond.release()?;
        drop(immediate!(cond.lock()));
        cond.acquire().await?;
        blocking!(cond => cond.acquire().map_ok_then(|| cond.release()), then { cond.release()?; });
        cond.acquire().await?;
        blocking!(cond => cond.lock(), then { cond.release()?; });
        // `wait` always waits: for a notification, then for the lock.
        blocking!(cond => async {
            let _guard = cond.lock().await?;
            assert_checkpoints(cond.wait()).await
        }, then {
            let _guard = cond.lock().await?;
            cond.notify_all()?;
        });
        Ok(())
    });
}

#[test]
fn channels() {
    run(async {
        let (tx, rx) = trio::open_memory_channel::<u32>(1);
        immediate!(tx.send(1));
        blocking!(tx => tx.send(2), then { assert_eq!(rx.try_receive()?, 1); });
        immediate!(rx.receive());
        blocking!(rx => rx.receive(), then { tx.try_send(3)?; });
        tx.try_send(4)?;
        immediate!(rx.recv());
        blocking!(rx => rx.recv(), then { tx.try_send(5)?; });
        let (tx0, rx0) = trio::open_memory_channel::<u32>(0);
        blocking!(tx0 => tx0.send(6), then { assert_eq!(rx0.receive().await?, 6); });
        blocking!(rx0 => rx0.recv(), then { tx0.send(7).await?; });
        immediate!(tx.clone().aclose());
        immediate!(tx.aclose());
        // The end of the channel is a normal return of `recv`.
        immediate!(rx.recv());
        immediate!(rx.aclose());
        let (unbounded_tx, _unbounded_rx) = trio::open_unbounded_memory_channel::<u32>();
        immediate!(unbounded_tx.send(8));

        // A receive channel as a `futures_core::Stream`: each item is a receive.
        let (tx, mut rx) = trio::open_memory_channel::<u32>(1);
        tx.try_send(9)?;
        immediate!(next_item(&mut rx));
        blocking!(rx => async move {
            let mut rx = rx;
            next_item(&mut rx).await
        }, then { tx.try_send(10)?; });
        tx.close();
        immediate!(next_item(&mut rx)); // the end

        // as_safe_channel: each receive asks the producer, whose send returns at the next request.
        let got = immediate!(trio::as_safe_channel(
            |tx: trio::SafeChannelSender<u32>| async move { tx.send(11).await },
            |rx| async move { Ok((rx.receive().await?, rx.recv().await?)) },
        ));
        assert_eq!(got, (11, None));
        let go = Event::new();
        blocking!(go => trio::as_safe_channel(
            |tx: trio::SafeChannelSender<u32>| async move { tx.send(12).await },
            |rx| async move {
                go.wait().await?;
                rx.receive().await
            },
        ), then { go.set(); });
        Ok(())
    });
}

#[test]
// Idle workers stay cached after the test (as in Trio), which Miri reports as a leak.
#[cfg_attr(miri, ignore = "the worker-thread cache outlives the test")]
fn threads_and_signals() {
    run(async {
        // The call waits for its worker thread (not for another task).
        immediate!(trio::to_thread::run_sync(|| 1));
        immediate!(
            trio::to_thread::Options::new()
                .abandon_on_cancel(true)
                .run_sync(|| 1)
        );
        // Waiting for a limiter token first.
        let limiter = CapacityLimiter::new(0);
        blocking!(limiter => trio::to_thread::Options::new().limiter(limiter).run_sync(|| 1), then {
            limiter.set_total_tokens(1);
        });
        immediate!(trio::to_thread::wait_all_threads_completed());
        // Waiting for a call in progress, whose thread waits for the run (an event).
        thread_local! { static GATE: Event = Event::new(); }
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async {
                trio::to_thread::run_sync(|| {
                    trio::from_thread::run(|| async { GATE.with(Event::clone).wait().await })
                })
                .await?
            })?;
            wait_all_tasks_blocked().await?;
            blocking!(=> trio::to_thread::wait_all_threads_completed(), then {
                GATE.with(Event::set);
            });
            Ok(())
        })
        .await?;
        // `SignalReceiver::next` (`receiver.next()`) is checked in tests/signals.rs
        // (`next_is_a_checkpoint_and_loses_nothing_when_cancelled`): receivers open only on
        // the main thread, and these tests do not run there.
        Ok(())
    });
}

#[test]
#[cfg_attr(miri, ignore = "spawns processes")]
fn processes() {
    run(async {
        // Waiting for a child is waiting for the OS (as a thread is), not for another task.
        let child = immediate!(trio::open_process("true"));
        child.wait().await?;
        immediate!(child.wait()); // exited already
        let child = trio::open_process(["sleep", "3600"]).await?;
        blocking!(child => child.wait(), then {
            child.kill()?;
        });
        immediate!(trio::run_process("true"));
        trio::open_nursery(|nursery| async move {
            nursery
                .start(|status| async move {
                    immediate!(trio::run_process("true").task_status(status));
                    Ok(())
                })
                .await
                .map(drop)
        })
        .await?;
        Ok(())
    });
}

#[test]
#[cfg_attr(miri, ignore = "files go through worker threads")]
fn files() {
    let dir = std::env::temp_dir().join(format!("trio-rule-fs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    let root = dir.clone();
    run(async move {
        use std::io::SeekFrom;
        use trio::fs;
        let path = root.join("f");
        let other = root.join("g");
        immediate!(fs::write(&path, "0123456789"));
        let options = std::fs::OpenOptions::new().read(true).write(true).clone();
        let file = immediate!(trio::open_file(&path, &options));
        immediate!(file.read(2));
        immediate!(file.read(2)); // sequential: reads two chunks ahead
        immediate!(file.read_into(&mut [0; 2])); // from the read-ahead: no thread
        immediate!(file.read_to_end());
        immediate!(file.seek(SeekFrom::Start(0)));
        immediate!(file.write_all("ab"));
        immediate!(file.flush());
        immediate!(file.sync_all());
        immediate!(file.sync_data());
        immediate!(file.set_len(8));
        immediate!(file.metadata());
        immediate!(file.into_std());
        immediate!(fs::File::open(&path));
        immediate!(fs::File::create(&other));
        immediate!(fs::read(&path));
        immediate!(fs::read_to_string(&path));
        immediate!(fs::metadata(&path));
        immediate!(fs::symlink_metadata(&path));
        immediate!(fs::try_exists(&path));
        immediate!(fs::canonicalize(&path));
        let permissions = std::fs::metadata(&path)?.permissions();
        immediate!(fs::set_permissions(&path, permissions));
        immediate!(fs::copy(&path, &other));
        immediate!(fs::rename(&other, root.join("h")));
        immediate!(fs::hard_link(root.join("h"), root.join("i")));
        std::os::unix::fs::symlink(&path, root.join("link"))?;
        immediate!(fs::read_link(root.join("link")));
        immediate!(fs::remove_file(root.join("i")));
        immediate!(fs::create_dir(root.join("d")));
        immediate!(fs::create_dir_all(root.join("d/e")));
        immediate!(fs::remove_dir(root.join("d/e")));
        let mut entries = immediate!(fs::read_dir(&root));
        immediate!(entries.next()); // fetches a batch in a thread
        immediate!(entries.next()); // from the batch
        immediate!(fs::remove_dir_all(root.join("d")));
        Ok(())
    });
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}

#[test]
#[cfg_attr(miri, ignore = "paths go through worker threads")]
fn paths() {
    let dir = std::env::temp_dir().join(format!("trio-rule-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    let root = trio::Path::new(&dir);
    run(async move {
        let path = root.join("f");
        immediate!(path.write("0123456789"));
        immediate!(path.touch());
        immediate!(path.read());
        immediate!(path.read_to_string());
        immediate!(path.metadata());
        immediate!(path.symlink_metadata());
        immediate!(path.exists());
        immediate!(path.try_exists());
        immediate!(path.is_file());
        immediate!(path.is_dir());
        immediate!(path.is_symlink());
        immediate!(path.canonicalize());
        immediate!(path.absolute());
        immediate!(trio::Path::cwd());
        immediate!(trio::Path::home());
        immediate!(path.open(std::fs::OpenOptions::new().read(true)));
        let permissions = std::fs::metadata(&path)?.permissions();
        immediate!(path.set_permissions(permissions));
        immediate!(path.copy(root.join("g")));
        let moved = immediate!(root.join("g").rename(root.join("h")));
        immediate!(root.join("i").hard_link_to(&moved));
        immediate!(root.join("i").same_file(&moved));
        immediate!(root.join("link").symlink_to(&path));
        immediate!(root.join("link").read_link());
        immediate!(root.join("i").remove_file());
        immediate!(root.join("d").create_dir());
        immediate!(root.join("d/e").create_dir_all());
        immediate!(root.join("d/e").remove_dir());
        let mut entries = immediate!(root.read_dir());
        immediate!(entries.next());
        immediate!(root.join("d").remove_dir_all());
        Ok(())
    });
    std::fs::remove_dir_all(&dir).expect("remove the temp dir");
}

#[test]
fn stream_methods_over_memory_and_lockstep_streams() {
    run(async {
        // Shared (`Rc`) so that a task can hold one end: the methods take `&self`.
        let (a, b) = memory_stream_pair();
        let (a, b) = (Rc::new(a), Rc::new(b));
        immediate!(a.send_all(b"hello"));
        immediate!(a.wait_send_all_might_not_block());
        immediate!(b.receive_some(10));
        let mut buf = [0; 4];
        a.send_all(b"abc").await?;
        immediate!(b.receive_into(&mut buf));
        blocking!(b => b.receive_some(10), then { a.send_all(b"x").await?; });
        blocking!(b => async move {
            let mut buf = [0; 4];
            b.receive_into(&mut buf).await
        }, then { a.send_all(b"y").await?; });
        immediate!(a.send_eof());
        immediate!(b.receive_some(10)); // the end: an empty read
        immediate!(a.aclose());
        immediate!(trio::aclose_forcefully(&b));

        let (c, d) = lockstep_stream_pair();
        let (c, d) = (Rc::new(c), Rc::new(d));
        blocking!(c => c.send_all(b"z"), then { d.receive_some(10).await?; });
        blocking!(c => c.wait_send_all_might_not_block(), then {
            trio::move_on_after(1, d.receive_some(10)).await?;
        });
        immediate!(c.aclose());

        let listener = QueueListener::default();
        listener.push(7);
        immediate!(listener.accept());
        blocking!(listener => listener.accept(), then { listener.push(8); });
        Ok(())
    });
}

/// `#[trio::checkpoint]` makes an async fn a checkpoint by construction; the run-time check
/// agrees, whatever the body does.
#[test]
fn checkpoint_attribute() {
    #[trio::checkpoint]
    async fn does_nothing() -> trio::Result<u32> {
        Ok(1)
    }

    #[trio::checkpoint]
    async fn waits(event: Event) -> trio::Result<()> {
        event.wait().await
    }

    run(async {
        immediate!(does_nothing());
        let event = Event::new();
        blocking!(event => waits(event), then { event.set(); });
        Ok(())
    });
}

/// The deliberate halves and combinators: each is documented as what it is.
#[test]
fn sockets() {
    use std::io::IoSlice;
    use std::net::SocketAddr;
    use trio::socket::{
        AddrInfoHints, Domain, MsgHdr, MsgHdrMut, NI_NUMERICHOST, NI_NUMERICSERV, SockAddr, Socket,
        Type, getaddrinfo, getnameinfo,
    };
    run(async {
        // Stream sockets: each receive once with data there, once waiting for it.
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM, None)?;
        let (a, b) = (Rc::new(a), Rc::new(b));
        immediate!(a.send(b"x"));
        immediate!(b.recv(10));
        blocking!(b => b.recv(10), then { a.send(b"y").await?; });
        immediate!(a.send_vectored(&[IoSlice::new(b"z")]));
        immediate!(b.recv_into(&mut [0u8; 4]));
        blocking!(b => b.recv_into(&mut [0u8; 4]), then { a.send(b"w").await?; });
        // Datagrams.
        let local: SockAddr = "127.0.0.1:0".parse::<SocketAddr>()?.into();
        let (u, v) = (
            Rc::new(Socket::new(Domain::IPV4, Type::DGRAM, None)?),
            Rc::new(Socket::new(Domain::IPV4, Type::DGRAM, None)?),
        );
        u.bind(&local)?;
        v.bind(&local)?;
        let v_addr = Rc::new(v.local_addr()?);
        immediate!(u.send_to(b"1", &v_addr));
        immediate!(v.recv_from(10));
        blocking!(v => v.recv_from(10), then { u.send_to(b"2", &v_addr).await?; });
        immediate!(u.send_to(b"3", &v_addr));
        immediate!(v.recv_from_into(&mut [0u8; 4]));
        blocking!(v => v.recv_from_into(&mut [0u8; 4]), then { u.send_to(b"4", &v_addr).await?; });
        let (d, e) = Socket::pair(Domain::UNIX, Type::DGRAM, None)?;
        let bufs = [IoSlice::new(b"m")];
        immediate!(d.sendmsg(&MsgHdr::new().with_buffers(&bufs), 0));
        let mut storage = [std::mem::MaybeUninit::<u8>::uninit(); 8];
        let mut slices = [socket2::MaybeUninitSlice::new(&mut storage)];
        immediate!(e.recvmsg(&mut MsgHdrMut::new().with_buffers(&mut slices), 0));
        // Connect and accept.
        let listener = Rc::new(Socket::new(Domain::IPV4, Type::STREAM, None)?);
        listener.bind(&local)?;
        listener.listen(8)?;
        let addr = listener.local_addr()?;
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        immediate!(client.connect(&addr));
        immediate!(listener.accept());
        let port = addr.as_socket().expect("an IP address").port();
        blocking!(listener => listener.accept(), then {
            std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        });
        // Name resolution: numbers in this thread, names (and getnameinfo) in a worker.
        immediate!(getaddrinfo(Some("127.0.0.1"), 80, AddrInfoHints::stream()));
        immediate!(getaddrinfo(Some("localhost"), 80, AddrInfoHints::stream()));
        let flags = NI_NUMERICHOST | NI_NUMERICSERV;
        immediate!(getnameinfo("127.0.0.1:80".parse()?, flags));
        Ok(())
    });
}

#[test]
fn networking() {
    use trio::net::{
        ConnectOptions, open_tcp_listeners, open_tcp_listeners_with, open_tcp_stream,
        open_tcp_stream_with, open_unix_listener, open_unix_socket,
    };
    run(async {
        let listeners = immediate!(open_tcp_listeners(0, Some("127.0.0.1")));
        immediate!(open_tcp_listeners_with(0, Some("127.0.0.1"), Some(16)));
        let port = listeners[0].local_addr()?.port();
        immediate!(open_tcp_stream("127.0.0.1", port));
        immediate!(open_tcp_stream_with(
            "127.0.0.1",
            port,
            &ConnectOptions::new()
        ));
        let path = std::env::temp_dir().join(format!("trio-rule-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let _unix_listener = open_unix_listener(&path)?;
        immediate!(open_unix_socket(&path));
        std::fs::remove_file(&path)?;
        Ok(())
    });
}

/// TLS (trio's `tls` feature): the handshake's two paths, the TCP helpers; the server, as
/// `serve_tcp`, only ever ends cancelled.
#[cfg(feature = "tls")]
#[test]
fn tls() {
    use std::sync::Arc;
    use trio::tls::{SslStream, open_ssl_over_tcp_listeners, open_ssl_over_tcp_stream};
    run(async {
        let ca = trio_test::TestCa::new()?;
        let client_config = Arc::new(ca.client_config()?);
        let server_config = Arc::new(ca.issue_cert(["127.0.0.1"])?.server_config()?);
        let (a, b) = memory_stream_pair();
        let client = Rc::new(SslStream::client(a, client_config.clone(), "127.0.0.1")?);
        let server = SslStream::server(b, server_config.clone())?;
        blocking!(client => client.do_handshake(), then { server.do_handshake().await?; });
        immediate!(client.do_handshake());
        // `unwrap` waits for the peer's close_notify, and returns at once when it is there.
        let server = Rc::new(server);
        let Ok(client) = Rc::try_unwrap(client) else {
            unreachable!("the handshake's tasks are done")
        };
        let peer = server.clone();
        blocking!(=> client.unwrap(), then {
            assert_eq!(peer.receive_some(10).await?, b"");
            peer.aclose().await?;
        });
        let (a, b) = memory_stream_pair();
        let client = SslStream::client(a, client_config.clone(), "127.0.0.1")?;
        let server = SslStream::server(b, server_config.clone())?;
        let peer = Rc::new(server);
        let closer = peer.clone();
        trio::open_nursery(|n| async move {
            // close_notify with the transport left open (TLS 1.3's half-close).
            n.start_soon(async move { closer.send_eof().await })?;
            assert_eq!(client.receive_some(10).await?, b"");
            immediate!(client.unwrap());
            Ok(())
        })
        .await?;
        let config = server_config.clone();
        let listeners = immediate!(open_ssl_over_tcp_listeners(0, config, Some("127.0.0.1")));
        let port = listeners[0].transport_listener().local_addr()?.port();
        immediate!(open_ssl_over_tcp_stream(
            "127.0.0.1",
            port,
            client_config.clone()
        ));
        let options = trio::net::ConnectOptions::new();
        let host = "127.0.0.1";
        immediate!(trio::tls::open_ssl_over_tcp_stream_with(
            host,
            port,
            client_config,
            &options
        ));
        let echo = |_stream: SslStream<trio::net::SocketStream>| async { Ok(()) };
        let scope = CancelScope::new();
        scope.cancel();
        let options = trio::net::ServeOptions::new().host("127.0.0.1");
        let serve = trio::tls::serve_ssl_over_tcp(echo, 0, server_config, options);
        assert!(scope.run(serve).await?.is_none());
        Ok(())
    });
}

#[test]
fn the_documented_exceptions() {
    run(async {
        // The two halves of a checkpoint: each is one half, and both together a checkpoint.
        let task = trio::lowlevel::current_task()?;
        let points = || (task.cancel_points(), task.schedule_points());
        let (cancel, schedule) = points();
        checkpoint_if_cancelled().await?;
        assert_eq!(points(), (cancel + 1, schedule), "a cancel point only");
        cancel_shielded_checkpoint().await;
        assert_eq!(
            points(),
            (cancel + 1, schedule + 1),
            "a schedule point only"
        );
        immediate!(async {
            checkpoint_if_cancelled().await?;
            cancel_shielded_checkpoint().await;
            Ok::<_, trio::Error>(())
        });
        // A scope, `wchan` and a timeout add no checkpoint of their own: with a body that is
        // none, they are none.
        assert_no_checkpoints(CancelScope::new().run(async { Ok(()) })).await?;
        assert_no_checkpoints(trio::lowlevel::wchan("label", async {})).await;
        assert_no_checkpoints(trio::move_on_after(1, async { Ok(()) })).await?;
        // `sleep_forever` never returns normally: it ends with `Cancelled`.
        let scope = CancelScope::new();
        scope.cancel();
        assert!(scope.run(sleep_forever()).await?.is_none());
        // Nor do the servers: cancelled, they end with `Cancelled` (absorbed by their scope).
        let echo = |_stream: trio::net::SocketStream| async { Ok(()) };
        let scope = CancelScope::new();
        scope.cancel();
        let options = trio::net::ServeOptions::new().host("127.0.0.1");
        assert!(
            scope
                .run(trio::net::serve_tcp(echo, 0, options))
                .await?
                .is_none()
        );
        let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let scope = CancelScope::new();
        scope.cancel();
        let serve = trio::net::serve_listeners(echo, listeners, trio::net::ServeOptions::new());
        assert!(scope.run(serve).await?.is_none());
        Ok(())
    });
}

/// The next item of a receive channel used as a `futures_core::Stream`.
async fn next_item<T>(rx: &mut trio::MemoryReceiveChannel<T>) -> trio::Result<Option<T>> {
    std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx))
        .await
        .transpose()
}

/// `.map_ok_then(f)`: after `Ok`, calls `f` (a release, so that the task ends clean).
trait MapOkThen: Future<Output = trio::Result<()>> + Sized {
    async fn map_ok_then(self, f: impl FnOnce() -> trio::Result<()>) -> trio::Result<()> {
        self.await?;
        f()
    }
}

impl<F: Future<Output = trio::Result<()>>> MapOkThen for F {}

/// A listener handing out numbers pushed into it: enough to drive `accept`'s two paths.
#[derive(Clone, Default)]
struct QueueListener {
    queue: Rc<RefCell<VecDeque<u32>>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

impl QueueListener {
    fn push(&self, n: u32) {
        self.queue.borrow_mut().push_back(n);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// What `QueueListener` accepts.
struct Number;

impl AsyncResource for Number {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncResource for QueueListener {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Listener for QueueListener {
    type Stream = Number;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<trio::Result<Number>> {
        match self.queue.borrow_mut().pop_front() {
            Some(_) => Poll::Ready(Ok(Number)),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Every public async fn of trio, and every public fn returning one of trio's futures, has a
/// line in this file: a new one that has none fails here, naming itself. (By name: methods of
/// the same name on several types, `acquire` for one, are one entry.)
#[test]
fn every_async_fn_of_trio_has_a_line_here() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: Vec<(std::path::PathBuf, String)> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            (path, text)
        })
        .collect();
    // The types that are futures: `impl ... Future for Name`.
    let futures: Vec<String> = sources
        .iter()
        .flat_map(|(_, text)| text.lines())
        .filter(|line| line.trim_start().starts_with("impl"))
        .filter_map(|line| line.split("Future for ").nth(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    let this_file = std::fs::read_to_string(file!())
        .or_else(|_| std::fs::read_to_string(std::path::Path::new("..").join(file!())))
        .expect("read this test's source");
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for (path, text) in &sources {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim_start();
            let is_async = line.starts_with("pub async fn ");
            // Trait methods (the stream extensions) are public without `pub`.
            if !(is_async || line.starts_with("pub fn ") || line.starts_with("fn ")) {
                continue;
            }
            // The signature, up to its body or `where`.
            let signature: String = lines[i..lines.len().min(i + 12)]
                .iter()
                .map(|l| l.trim())
                .take_while(|l| !l.starts_with('{') && !l.starts_with("where"))
                .collect::<Vec<_>>()
                .join(" ");
            let signature = signature.split(" where").next().unwrap_or_default();
            let returns = signature.split("->").nth(1).map(str::trim).unwrap_or("");
            let returned: String = returns
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !(is_async || returns.starts_with("impl Future") || futures.contains(&returned)) {
                continue;
            }
            let name: String = line
                .split("fn ")
                .nth(1)
                .unwrap_or_default()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push(name.clone());
            let called = [".", "::", " ", "("]
                .iter()
                .any(|before| this_file.contains(&format!("{before}{name}(")));
            if !called {
                missing.push(format!("{name} ({})", path.display()));
            }
        }
    }
    // The scan itself works: it finds fns of every kind (async, named future, trait method).
    for known in [
        "sleep",
        "open_nursery",
        "send",
        "receive_some",
        "park_with",
        "wait_readable",
    ] {
        assert!(
            found.iter().any(|f| f == known),
            "the scan missed {known}: {found:?}"
        );
    }
    assert!(
        missing.is_empty(),
        "async fns with no line in checkpoint_rule.rs (add one per path): {missing:?}"
    );
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
