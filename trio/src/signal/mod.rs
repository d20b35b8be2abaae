//! Signals as a stream: [`open_signal_receiver`] (Trio's `trio.open_signal_receiver`).
//!
//! While a [`SignalReceiver`] is open, its signals do not take their usual action (terminate,
//! or whatever handler was installed): each arrival is queued in the receiver and
//! [`SignalReceiver::next`] returns it. Closing or dropping the receiver puts the previous
//! dispositions back.
//!
//! How it works: one async-signal-safe handler (`handler.rs`) marks the signal pending and
//! writes a byte to the receiver's self-pipe, which the run's reactor watches; `next` reads
//! the marks on the trio thread. No thread is started. The handler is installed with
//! `sigaction` (not signal-hook's registry, which cannot give a signal its previous
//! disposition back: docs/decisions.md, "Ctrl-C with raw `sigaction`").

mod handler;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::lowlevel::{FdRegistration, checkpoint, checkpoint_if_cancelled};
use crate::sys;
use crate::{BusyResourceError, ClosedResourceError, Error, Result, UsageError};

/// What a receiver and the handler's registry share.
struct Shared {
    /// The receiver's signals, without repeats, in the order given.
    signals: Vec<libc::c_int>,
    /// Signals that arrived and were not taken yet, in arrival order, each at most once.
    pending: RefCell<VecDeque<libc::c_int>>,
    read_fd: RawFd,
    write_fd: RawFd,
    registration: RefCell<Option<FdRegistration>>,
    closed: Cell<bool>,
    /// A task is inside `next`.
    busy: Cell<bool>,
}

impl Shared {
    /// Appends arrivals (sequence, signal) in sequence order; one already pending keeps
    /// its place (repeats coalesce).
    fn add_pending(&self, arrived: &mut [(u64, libc::c_int)]) {
        arrived.sort_unstable();
        let mut pending = self.pending.borrow_mut();
        for &(_, signal) in arrived.iter() {
            if !pending.contains(&signal) {
                pending.push_back(signal);
            }
        }
    }
}

/// `SIGHUP (1)`, or the bare number for a signal without a name.
fn describe(signal: libc::c_int) -> String {
    match signal_hook::low_level::signal_name(signal) {
        Some(name) => format!("{name} ({signal})"),
        None => format!("{signal}"),
    }
}

fn usage(message: String) -> Error {
    Error::new(UsageError::new(message))
}

/// Starts catching `signals` and returns the receiver that yields them.
///
/// Until the receiver is closed (or dropped) the signals do not take their usual action;
/// each arrival is queued for [`SignalReceiver::next`]. As in Trio:
///
/// - a signal is pending at most once: repeats that arrive before it is taken coalesce;
/// - pending signals come out in the order they first arrived;
/// - signals still pending when the receiver closes are not lost: after the previous
///   dispositions are back, each is raised again, in arrival order, so the previous handler
///   (or the default action: SIGTERM ends the process) sees it. Take them with `next` first
///   if that is not what you want;
/// - receivers nest: the one opened last gets a signal, and closing it gives the signal back
///   to the one before.
///
/// Opening a receiver for SIGINT takes Ctrl-C away from `trio::run`'s KeyboardInterrupt
/// handling while it is open: Ctrl-C arrives here instead.
///
/// Errors ([`UsageError`]): no signals; a number that is not a signal; a signal that cannot
/// be caught (SIGKILL, SIGSTOP) or must not be (SIGSEGV, SIGILL, SIGFPE: returning from
/// their handler re-runs the faulting instruction); a call off the main thread (Trio's rule:
/// signal dispositions belong to the main thread) or outside a run. If a disposition cannot
/// be installed, the error says which, and nothing is left changed. Not a checkpoint.
///
/// ```no_run
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let signals = trio::open_signal_receiver(&[libc::SIGHUP, libc::SIGTERM])?;
///     loop {
///         match signals.next().await? {
///             libc::SIGHUP => println!("reload the configuration"),
///             _ => return Ok(()),
///         }
///     }
/// })
/// # }
/// ```
pub fn open_signal_receiver(signals: &[libc::c_int]) -> Result<SignalReceiver> {
    if signals.is_empty() {
        return Err(usage(
            "open_signal_receiver needs at least one signal to listen for".into(),
        ));
    }
    let mut unique = Vec::with_capacity(signals.len());
    for &signal in signals {
        check_signal(signal)?;
        if !unique.contains(&signal) {
            unique.push(signal);
        }
    }
    if !sys::is_main_thread() {
        return Err(usage(
            "open_signal_receiver only works on the main thread (as in Trio: signal \
             dispositions are the main thread's to change)"
                .into(),
        ));
    }
    let (read_fd, write_fd) = sys::nonblocking_pipe().map_err(Error::new)?;
    let registration = match FdRegistration::new(read_fd) {
        Ok(registration) => registration,
        Err(e) => {
            sys::close_fd(read_fd);
            sys::close_fd(write_fd);
            return Err(e);
        }
    };
    let shared = Rc::new(Shared {
        signals: unique,
        pending: RefCell::new(VecDeque::new()),
        read_fd,
        write_fd,
        registration: RefCell::new(Some(registration)),
        closed: Cell::new(false),
        busy: Cell::new(false),
    });
    if let Err(e) = handler::install(&shared) {
        shared.closed.set(true);
        release_pipe(&shared);
        return Err(e);
    }
    Ok(SignalReceiver { shared })
}

fn check_signal(signal: libc::c_int) -> Result<()> {
    let max = libc::c_int::try_from(handler::NSIG - 1).unwrap_or(libc::c_int::MAX);
    if !(1..=max).contains(&signal) {
        return Err(usage(format!("{signal} is not a signal number")));
    }
    if signal_hook::consts::FORBIDDEN.contains(&signal) {
        let why = if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            "cannot be caught"
        } else {
            "reports a fault of the thread that caused it, and returning from its handler \
             would run the faulting instruction again"
        };
        return Err(usage(format!(
            "open_signal_receiver cannot take signal {}: it {why}",
            describe(signal)
        )));
    }
    Ok(())
}

/// Deregisters and closes a receiver's pipe (after no handler can write to it).
fn release_pipe(shared: &Shared) {
    if let Some(registration) = shared.registration.borrow_mut().take() {
        registration.deregister();
    }
    sys::close_fd(shared.read_fd);
    sys::close_fd(shared.write_fd);
}

/// Catches signals while it is open; made by [`open_signal_receiver`].
///
/// Take signals with [`next`](Self::next), one task at a time. Close it with
/// [`close`](Self::close) or by dropping it: the previous dispositions come back, and signals
/// still pending are raised again (see [`open_signal_receiver`]).
pub struct SignalReceiver {
    shared: Rc<Shared>,
}

impl SignalReceiver {
    /// Waits for the next signal and returns its number.
    ///
    /// Errors: [`ClosedResourceError`] once the receiver is closed; [`BusyResourceError`] if
    /// another task is already waiting on it.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a full checkpoint (or a wait) before it returns.
    ///
    /// # Cancel safety
    /// Safe: a signal is taken out of the queue only when `next` returns it; cancelled or
    /// dropped, it took nothing.
    pub async fn next(&self) -> Result<libc::c_int> {
        checkpoint_if_cancelled().await?;
        self.check_open()?;
        let _busy = Busy::claim(&self.shared)?;
        loop {
            handler::collect(&self.shared);
            if !self.shared.pending.borrow().is_empty() {
                checkpoint().await?;
                self.check_open()?;
                if let Some(signal) = self.shared.pending.borrow_mut().pop_front() {
                    return Ok(signal);
                }
                continue;
            }
            std::future::poll_fn(|cx| self.poll_pipe(cx)).await?;
        }
    }

    /// Waits until the self-pipe has bytes, then drains it; fails if cancelled or closed.
    fn poll_pipe(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // In a cancelled scope: `Pending` once (rescheduled), then the `Cancelled`.
        match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let registration = self.shared.registration.borrow();
        let Some(registration) = registration.as_ref() else {
            return Poll::Ready(Err(closed()));
        };
        match registration.poll_read_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                // Drained before the marks are read: a signal that marks after that writes
                // a byte after it too, which is a new edge.
                sys::drain_pipe(self.shared.read_fd);
                registration.clear_read_ready();
                Poll::Ready(Ok(()))
            }
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.get() {
            return Err(closed());
        }
        Ok(())
    }

    /// The signals it catches (without repeats).
    pub fn signals(&self) -> &[libc::c_int] {
        &self.shared.signals
    }

    /// How many signals are pending (arrived and not taken yet). Not a checkpoint.
    pub fn pending_count(&self) -> usize {
        if !self.shared.closed.get() {
            handler::collect(&self.shared);
        }
        self.shared.pending.borrow().len()
    }

    /// Whether it has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get()
    }

    /// Stops catching: gives each signal back to the receiver opened before this one for it,
    /// or restores the disposition it had before, then raises again the signals still
    /// pending, in arrival order. A task waiting in `next` gets a [`ClosedResourceError`].
    /// Idempotent; dropping the receiver does the same. Not a checkpoint.
    pub fn close(&self) {
        if self.shared.closed.replace(true) {
            return;
        }
        handler::uninstall(&self.shared);
        release_pipe(&self.shared);
        let pending: Vec<libc::c_int> = self.shared.pending.borrow_mut().drain(..).collect();
        for signal in pending {
            // The signal is valid (it was installed), so raise cannot fail.
            let _ = sys::raise_signal(signal);
        }
    }
}

impl Drop for SignalReceiver {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for SignalReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalReceiver")
            .field("signals", &self.shared.signals)
            .field("pending", &self.shared.pending.borrow())
            .field("closed", &self.shared.closed.get())
            .finish()
    }
}

fn closed() -> Error {
    Error::new(ClosedResourceError::new("this signal receiver is closed"))
}

/// Marks a receiver busy while a task is in `next`.
struct Busy<'a>(&'a Shared);

impl<'a> Busy<'a> {
    fn claim(shared: &'a Shared) -> Result<Self> {
        if shared.busy.replace(true) {
            return Err(Error::new(BusyResourceError::new(
                "another task is already waiting on this signal receiver",
            )));
        }
        Ok(Busy(shared))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
    }
}
