//! The I/O driver: mio's poller, one registration slot per file descriptor, and readiness.
//!
//! Each registered fd owns a slot in a slab, found again by its [`IoKey`] (index and
//! generation, so a key kept after the fd was deregistered finds nothing instead of a stranger).
//! The fd is registered with mio once, edge-triggered, for both directions. Per direction the
//! slot keeps:
//!
//! - a readiness bit, set by an event and cleared only by its user: a poll-level user clears
//!   it when the fd says "would block" (the edge it saw is used up), a Trio-level wait
//!   consumes it when it returns. Readiness that arrives while nobody waits is kept, so an
//!   edge is never lost.
//! - one waker, woken (and taken) by the next event in that direction. A new waker replaces
//!   the old one (tokio's "last waker wins"), which is what poll-level callers expect.
//! - an `exclusive` flag held by a Trio-level wait (`wait_readable`), so that a second such
//!   wait in the same direction fails with `BusyResourceError` instead of stealing the first
//!   one's wake-up.
//!
//! The driver knows nothing of tasks or the runner: it stores wakers and wakes them, and
//! reports what else an event poll saw (the entry queue's waker, the Ctrl-C pipe) for the run
//! loop to act on. An error from the poller is returned, not handled here.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::task::{Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll as MioPoll, Token};

/// The token of the entry queue's `mio::Waker`.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
/// The token of the Ctrl-C self-pipe.
pub(crate) const CTRL_C_TOKEN: Token = Token(usize::MAX - 1);
/// The token of the task-dump signal's self-pipe (`dump_signal.rs`).
pub(crate) const DUMP_TOKEN: Token = Token(usize::MAX - 2);

/// A direction of readiness.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

impl Direction {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Direction::Read => "readable",
            Direction::Write => "writable",
        }
    }
}

/// Where an fd's registration lives: slot index and generation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct IoKey {
    index: u32,
    generation: u32,
}

impl IoKey {
    fn token(self) -> Token {
        Token((u64::from(self.generation) << 32 | u64::from(self.index)) as usize)
    }

    fn from_token(token: Token) -> Self {
        let bits = token.0 as u64;
        IoKey {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// One direction of a registration.
#[derive(Default)]
struct Half {
    ready: bool,
    /// The direction is closed for good (the peer shut down, or the fd failed): readiness
    /// stays set through `clear_ready`, since no further edge will come and every call now
    /// returns at once (end-of-file, an error).
    closed: bool,
    waker: Option<Waker>,
    exclusive: bool,
}

/// One slab slot: a registration when `fd` is `Some`.
#[derive(Default)]
struct Slot {
    generation: u32,
    fd: Option<RawFd>,
    halves: [Half; 2],
}

/// What a poll of the reactor saw besides fd readiness.
#[derive(Default, Debug)]
pub(crate) struct PollEvents {
    pub(crate) ctrl_c: bool,
    pub(crate) entry: bool,
    /// The poll ended before its timeout: an event of any kind arrived, or a signal
    /// interrupted it.
    pub(crate) woke: bool,
}

/// What a registration's direction says right now (`Reactor::poll_ready`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Readiness {
    /// An event arrived and was not cleared.
    Ready,
    /// The registration is gone (deregistered, e.g. by `notify_closing`).
    Gone,
}

/// The I/O driver of one run.
pub(crate) struct Reactor {
    poll: RefCell<MioPoll>,
    events: RefCell<Events>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// The registration of each registered fd.
    by_fd: RefCell<HashMap<RawFd, IoKey>>,
    /// How many wakers are stored: the run loop polls for I/O only while this is not zero.
    waiters: Cell<usize>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Reactor {
            poll: RefCell::new(MioPoll::new()?),
            events: RefCell::new(Events::with_capacity(1024)),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            by_fd: RefCell::new(HashMap::new()),
            waiters: Cell::new(0),
        })
    }

    /// A `mio::Waker` that makes the next poll report `entry`.
    pub(crate) fn make_waker(&self) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.borrow().registry(), WAKER_TOKEN)
    }

    /// Registers `fd` for reads under a fixed token (the self-pipes of the drivers).
    pub(crate) fn register_raw(&self, fd: RawFd, token: Token) -> io::Result<()> {
        self.poll
            .borrow()
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
    }

    pub(crate) fn deregister_raw(&self, fd: RawFd) {
        let _ = self.poll.borrow().registry().deregister(&mut SourceFd(&fd));
    }

    /// Whether any waker is stored.
    #[inline]
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.get() > 0
    }

    /// How many wakers are stored (the run's `io_waiters` statistic).
    pub(crate) fn waiter_count(&self) -> usize {
        self.waiters.get()
    }

    /// The registration of `fd`, if it has one.
    pub(crate) fn key_of(&self, fd: RawFd) -> Option<IoKey> {
        self.by_fd.borrow().get(&fd).copied()
    }

    /// Registers `fd` (edge-triggered, both directions); an fd registered already is an
    /// error from the poller (`AlreadyExists` on Linux).
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<IoKey> {
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(slots.len())
                    .map_err(|_| io::Error::other("too many registered file descriptors"))?;
                slots.push(Slot::default());
                index
            }
        };
        let slot = &mut slots[index as usize];
        let key = IoKey {
            index,
            generation: slot.generation,
        };
        let registered = self.poll.borrow().registry().register(
            &mut SourceFd(&fd),
            key.token(),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            self.free.borrow_mut().push(index);
            return Err(e);
        }
        slot.fd = Some(fd);
        self.by_fd.borrow_mut().insert(fd, key);
        Ok(key)
    }

    /// Re-arms a registration: the poller reports the fd's current readiness again, as a new
    /// edge (a level check for callers that cannot know whether they used up the last edge).
    /// An fd that was closed and reopened under the same number since it was registered is
    /// registered afresh. Returns the key the fd has now.
    pub(crate) fn rearm(&self, key: IoKey) -> io::Result<IoKey> {
        let Some(fd) = self.fd_of(key) else {
            return Ok(key);
        };
        let rearmed = self.poll.borrow().registry().reregister(
            &mut SourceFd(&fd),
            key.token(),
            Interest::READABLE | Interest::WRITABLE,
        );
        match rearmed {
            Ok(()) => Ok(key),
            // The poller forgot the fd: it was closed (and its number maybe reused) without
            // `notify_closing`. Its waiters hear that it is gone; the fd starts fresh.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.deregister(key);
                self.register(fd)
            }
            Err(e) => Err(e),
        }
    }

    fn fd_of(&self, key: IoKey) -> Option<RawFd> {
        let slots = self.slots.borrow();
        let slot = slots.get(key.index as usize)?;
        if slot.generation == key.generation {
            slot.fd
        } else {
            None
        }
    }

    /// Removes a registration; its waiters are woken and find it gone. Does nothing for a
    /// key that is gone already.
    pub(crate) fn deregister(&self, key: IoKey) {
        let wakers = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(key.index as usize) else {
                return;
            };
            if slot.generation != key.generation {
                return;
            }
            let Some(fd) = slot.fd.take() else {
                return;
            };
            slot.generation = slot.generation.wrapping_add(1);
            let wakers: Vec<Waker> = slot
                .halves
                .iter_mut()
                .filter_map(|half| std::mem::take(half).waker)
                .collect();
            self.free.borrow_mut().push(key.index);
            let mut by_fd = self.by_fd.borrow_mut();
            if by_fd.get(&fd) == Some(&key) {
                by_fd.remove(&fd);
            }
            self.deregister_raw(fd);
            wakers
        };
        self.waiters.set(self.waiters.get() - wakers.len());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Runs `f` on one direction of a live registration (`None` when the key is gone).
    fn with_half<R>(
        &self,
        key: IoKey,
        dir: Direction,
        f: impl FnOnce(&mut Half) -> R,
    ) -> Option<R> {
        let mut slots = self.slots.borrow_mut();
        let slot = slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || slot.fd.is_none() {
            return None;
        }
        Some(f(&mut slot.halves[dir as usize]))
    }

    /// Whether `dir` is ready (an event came and was not cleared). If it is not, `waker` is
    /// stored (replacing any other) and woken by the next event in that direction.
    pub(crate) fn poll_ready(&self, key: IoKey, dir: Direction, waker: &Waker) -> Poll<Readiness> {
        let mut added = false;
        let ready = self.with_half(key, dir, |half| {
            if half.ready {
                return true;
            }
            match &mut half.waker {
                Some(stored) => {
                    if !stored.will_wake(waker) {
                        stored.clone_from(waker);
                    }
                }
                None => {
                    half.waker = Some(waker.clone());
                    added = true;
                }
            }
            false
        });
        if added {
            self.waiters.set(self.waiters.get() + 1);
        }
        match ready {
            None => Poll::Ready(Readiness::Gone),
            Some(true) => Poll::Ready(Readiness::Ready),
            Some(false) => Poll::Pending,
        }
    }

    /// Clears the readiness of `dir`: the fd said "would block" (or a short read or write
    /// proved the buffer drained or full), the edge is used up. A closed direction stays
    /// ready.
    pub(crate) fn clear_ready(&self, key: IoKey, dir: Direction) {
        self.with_half(key, dir, |half| half.ready = half.closed);
    }

    /// Whether `dir` is ready (an event came and was not cleared or taken).
    pub(crate) fn is_ready(&self, key: IoKey, dir: Direction) -> bool {
        self.with_half(key, dir, |half| half.ready).unwrap_or(false)
    }

    /// Takes the readiness of `dir` if it is set (a Trio-level wait returns on it).
    pub(crate) fn take_ready(&self, key: IoKey, dir: Direction) -> bool {
        self.with_half(key, dir, |half| std::mem::take(&mut half.ready))
            .unwrap_or(false)
    }

    /// Whether a Trio-level wait holds `dir`.
    pub(crate) fn is_claimed(&self, key: IoKey, dir: Direction) -> bool {
        self.with_half(key, dir, |half| half.exclusive)
            .unwrap_or(false)
    }

    /// Claims `dir` for one Trio-level wait (the caller checked `is_claimed`).
    pub(crate) fn claim(&self, key: IoKey, dir: Direction) {
        self.with_half(key, dir, |half| half.exclusive = true);
    }

    /// Gives up a claim, and the waker stored with it (the wait ended without an event).
    pub(crate) fn release(&self, key: IoKey, dir: Direction) {
        let removed = self.with_half(key, dir, |half| {
            half.exclusive = false;
            half.waker.take()
        });
        if let Some(Some(waker)) = removed {
            self.waiters.set(self.waiters.get() - 1);
            drop(waker);
        }
    }

    /// Waits up to `timeout` seconds (infinite: until an event; 0: only what is ready now),
    /// records readiness and wakes the waiters of every ready fd.
    pub(crate) fn poll(&self, timeout: f64) -> io::Result<PollEvents> {
        let timeout = if timeout.is_finite() {
            Some(Duration::from_secs_f64(timeout.clamp(0.0, 86_400.0)))
        } else {
            None
        };
        let mut events = self.events.borrow_mut();
        let mut seen = PollEvents::default();
        if let Err(e) = self.poll.borrow_mut().poll(&mut events, timeout) {
            // EINTR means a signal arrived; the signal's pipe reports it on the next poll.
            return if e.kind() == io::ErrorKind::Interrupted {
                seen.woke = true;
                Ok(seen)
            } else {
                Err(e)
            };
        }
        seen.woke = !events.is_empty();
        let mut to_wake = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            for event in events.iter() {
                match event.token() {
                    WAKER_TOKEN => seen.entry = true,
                    CTRL_C_TOKEN => seen.ctrl_c = true,
                    // The wake-up is all the pipe is for: the loop reads the signal's flag.
                    DUMP_TOKEN => {}
                    token => {
                        let key = IoKey::from_token(token);
                        let Some(slot) = slots.get_mut(key.index as usize) else {
                            continue;
                        };
                        if slot.generation != key.generation || slot.fd.is_none() {
                            continue;
                        }
                        let error = event.is_error();
                        let read_closed = event.is_read_closed() || error;
                        let write_closed = event.is_write_closed() || error;
                        let read = event.is_readable() || read_closed;
                        let write = event.is_writable() || write_closed;
                        for (dir, ready, closed) in [
                            (Direction::Read, read, read_closed),
                            (Direction::Write, write, write_closed),
                        ] {
                            if ready {
                                let half = &mut slot.halves[dir as usize];
                                half.ready = true;
                                half.closed |= closed;
                                to_wake.extend(half.waker.take());
                            }
                        }
                    }
                }
            }
        }
        drop(events);
        self.waiters.set(self.waiters.get() - to_wake.len());
        for waker in to_wake {
            waker.wake();
        }
        Ok(seen)
    }
}
