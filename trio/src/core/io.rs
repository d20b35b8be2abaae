//! The reactor: mio readiness for file descriptors, and the low-level waits built on it.
//!
//! Each fd is registered with mio once (edge-triggered, read and write interest) on its first
//! wait, and stays registered until [`notify_closing`]. Readiness that arrives while nobody
//! waits is cached, so an edge is never lost: the next wait in that direction consumes it and
//! returns after a schedule point (the caller then retries its non-blocking call; if that says
//! "would block" again it waits again, for the next edge).
//!
//! One task at a time may wait in each direction of an fd; a second gets
//! [`BusyResourceError`]. [`notify_closing`] wakes both waiters with [`ClosedResourceError`]
//! and forgets the fd: call it before closing an fd that trio has waited on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll as MioPoll, Token};

use super::run::{Runner, not_in_run};
use crate::error::{BusyResourceError, ClosedResourceError, Error, Result};

pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
pub(crate) const CTRL_C_TOKEN: Token = Token(usize::MAX - 1);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WaitState {
    Waiting,
    Ready,
    Closed,
}

struct Waiter {
    waker: Waker,
    state: Rc<Cell<WaitState>>,
}

#[derive(Default)]
struct FdState {
    /// Readiness seen while nobody waited: [read, write].
    cached: [bool; 2],
    waiters: [Option<Waiter>; 2],
}

/// What a reactor poll saw besides fd readiness.
#[derive(Default)]
pub(crate) struct PollEvents {
    pub(crate) ctrl_c: bool,
    pub(crate) entry: bool,
}

pub(crate) struct Reactor {
    poll: RefCell<MioPoll>,
    events: RefCell<Events>,
    fds: RefCell<HashMap<RawFd, FdState>>,
    waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            poll: RefCell::new(MioPoll::new()?),
            events: RefCell::new(Events::with_capacity(1024)),
            fds: RefCell::new(HashMap::new()),
            waiters: Cell::new(0),
        })
    }

    pub(crate) fn make_waker(&self) -> Result<mio::Waker> {
        Ok(mio::Waker::new(self.poll.borrow().registry(), WAKER_TOKEN)?)
    }

    pub(crate) fn register_raw(&self, fd: RawFd, token: Token) -> io::Result<()> {
        self.poll
            .borrow()
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
    }

    pub(crate) fn deregister_raw(&self, fd: RawFd) {
        let _ = self.poll.borrow().registry().deregister(&mut SourceFd(&fd));
    }

    /// Whether any task waits for I/O.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.get() > 0
    }

    pub(crate) fn waiter_count(&self) -> usize {
        self.waiters.get()
    }

    /// Waits up to `timeout` seconds (infinite: until an event) and wakes the waiters of every
    /// ready fd.
    pub(crate) fn poll(&self, timeout: f64, runner: &Runner) -> PollEvents {
        let timeout = if timeout.is_finite() {
            Some(Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0)))
        } else {
            None
        };
        let mut events = self.events.borrow_mut();
        let mut seen = PollEvents::default();
        if let Err(e) = self.poll.borrow_mut().poll(&mut events, timeout) {
            // EINTR means a signal arrived; the Ctrl-C pipe (if any) reports it next time.
            if e.kind() != io::ErrorKind::Interrupted {
                runner.crash(format!("polling for I/O failed: {e}"));
            }
            return seen;
        }
        let mut to_wake = Vec::new();
        let mut fds = self.fds.borrow_mut();
        for event in events.iter() {
            match event.token() {
                WAKER_TOKEN => seen.entry = true,
                CTRL_C_TOKEN => seen.ctrl_c = true,
                Token(t) => {
                    let Some(state) = fds.get_mut(&(t as RawFd)) else {
                        continue;
                    };
                    let read = event.is_readable() || event.is_read_closed() || event.is_error();
                    let write = event.is_writable() || event.is_write_closed() || event.is_error();
                    for (dir, ready) in [(0, read), (1, write)] {
                        if !ready {
                            continue;
                        }
                        match state.waiters[dir].take() {
                            Some(waiter) => {
                                waiter.state.set(WaitState::Ready);
                                to_wake.push(waiter.waker);
                            }
                            None => state.cached[dir] = true,
                        }
                    }
                }
            }
        }
        drop(fds);
        drop(events);
        self.waiters.set(self.waiters.get() - to_wake.len());
        for waker in to_wake {
            waker.wake();
        }
        seen
    }

    fn remove_waiter(&self, fd: RawFd, dir: usize, state: &Rc<Cell<WaitState>>) {
        let mut fds = self.fds.borrow_mut();
        if let Some(fd_state) = fds.get_mut(&fd) {
            if fd_state.waiters[dir]
                .as_ref()
                .is_some_and(|w| Rc::ptr_eq(&w.state, state))
            {
                fd_state.waiters[dir] = None;
                self.waiters.set(self.waiters.get() - 1);
            }
        }
    }

    fn notify_closing(&self, fd: RawFd) {
        let Some(state) = self.fds.borrow_mut().remove(&fd) else {
            return;
        };
        self.deregister_raw(fd);
        for waiter in state.waiters.into_iter().flatten() {
            self.waiters.set(self.waiters.get() - 1);
            waiter.state.set(WaitState::Closed);
            waiter.waker.wake();
        }
    }
}

const DIRECTION: [&str; 2] = ["readable", "writable"];

enum Stage {
    Start,
    Yielding,
    Waiting(Rc<Cell<WaitState>>),
    Done,
}

/// The future of [`wait_readable`] and [`wait_writable`].
#[must_use = "futures do nothing unless awaited"]
pub struct WaitIo {
    fd: RawFd,
    dir: usize,
    stage: Stage,
}

impl Future for WaitIo {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let (fd, dir) = (self.fd, self.dir);
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Done => Poll::Ready(Err(Error::usage("I/O wait polled after it finished"))),
            Stage::Yielding => Poll::Ready(Ok(())),
            Stage::Start => {
                let started = Runner::with_current_task(|runner, task| {
                    let status = task.current_status.borrow().clone();
                    if status.is_cancelled() {
                        return Err(Error::new(status.cancelled_error()));
                    }
                    let reactor = &runner.reactor;
                    let mut fds = reactor.fds.borrow_mut();
                    let state = match fds.entry(fd) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            // Registered once, for both directions (edge-triggered).
                            reactor.poll.borrow().registry().register(
                                &mut SourceFd(&fd),
                                Token(fd as usize),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            e.insert(FdState::default())
                        }
                    };
                    if std::mem::take(&mut state.cached[dir]) {
                        return Ok(Stage::Yielding);
                    }
                    if state.waiters[dir].is_some() {
                        return Err(Error::new(BusyResourceError::new(format!(
                            "another task is already waiting for fd {fd} to become {}",
                            DIRECTION[dir]
                        ))));
                    }
                    let wait = Rc::new(Cell::new(WaitState::Waiting));
                    state.waiters[dir] = Some(Waiter {
                        waker: cx.waker().clone(),
                        state: wait.clone(),
                    });
                    reactor.waiters.set(reactor.waiters.get() + 1);
                    runner.loop_needs_attention();
                    task.register_cancel_waker(cx.waker());
                    Ok(Stage::Waiting(wait))
                });
                match started {
                    None => Poll::Ready(Err(not_in_run("wait_readable/wait_writable"))),
                    Some(Err(e)) => Poll::Ready(Err(e)),
                    Some(Ok(stage)) => {
                        if matches!(stage, Stage::Yielding) {
                            cx.waker().wake_by_ref();
                        }
                        self.stage = stage;
                        Poll::Pending
                    }
                }
            }
            Stage::Waiting(wait) => match wait.get() {
                WaitState::Ready => Poll::Ready(Ok(())),
                WaitState::Closed => Poll::Ready(Err(Error::new(ClosedResourceError::new(
                    format!("fd {fd} was closed while a task waited for it"),
                )))),
                WaitState::Waiting => {
                    let cancelled = Runner::with_current_task(|runner, task| {
                        let status = task.current_status.borrow().clone();
                        if status.is_cancelled() {
                            runner.reactor.remove_waiter(fd, dir, &wait);
                            return Some(status.cancelled_error());
                        }
                        let mut fds = runner.reactor.fds.borrow_mut();
                        if let Some(Some(waiter)) = fds.get_mut(&fd).map(|s| &mut s.waiters[dir]) {
                            if !waiter.waker.will_wake(cx.waker()) {
                                waiter.waker = cx.waker().clone();
                            }
                        }
                        drop(fds);
                        task.register_cancel_waker(cx.waker());
                        None
                    })
                    .flatten();
                    match cancelled {
                        Some(c) => Poll::Ready(Err(Error::new(c))),
                        None => {
                            self.stage = Stage::Waiting(wait);
                            Poll::Pending
                        }
                    }
                }
            },
        }
    }
}

impl Drop for WaitIo {
    fn drop(&mut self) {
        if let Stage::Waiting(wait) = &self.stage {
            if wait.get() == WaitState::Waiting {
                Runner::with_current(|runner| {
                    runner.reactor.remove_waiter(self.fd, self.dir, wait)
                });
            }
        }
    }
}

/// Waits until `fd` is readable (or has a cached readable edge).
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always yields at least once.
///
/// # Cancel safety
/// Safe: cancelling or dropping the wait unregisters it; no readiness is consumed that the
/// next wait would have needed, except a cached edge, which is harmless (the caller retries).
pub fn wait_readable(fd: RawFd) -> WaitIo {
    WaitIo {
        fd,
        dir: 0,
        stage: Stage::Start,
    }
}

/// Waits until `fd` is writable. See [`wait_readable`].
///
/// # Checkpoint
/// Yes: a cancel point on entry, and it always yields at least once.
///
/// # Cancel safety
/// Safe, as [`wait_readable`].
pub fn wait_writable(fd: RawFd) -> WaitIo {
    WaitIo {
        fd,
        dir: 1,
        stage: Stage::Start,
    }
}

/// Tells trio that `fd` is about to be closed: tasks waiting on it get
/// [`ClosedResourceError`], and the fd is forgotten (so a new fd with the same number starts
/// fresh). Not a checkpoint. Does nothing outside a run or for an fd trio never waited on.
pub fn notify_closing(fd: RawFd) {
    Runner::with_current(|runner| runner.reactor.notify_closing(fd));
}
