//! The process-wide half of signal delivery: the one handler every receiver's signals get,
//! the arrival slots it fills, and the registry of receivers per signal.
//!
//! **The handler** (`on_signal`) runs on whatever thread the kernel picks and may only do
//! async-signal-safe work: it marks the signal's arrival slot with a sequence number (unless
//! the slot is marked already: a signal is pending at most once) and writes a byte to the
//! self-pipe of the receiver that owns the signal, which the reactor watches. It touches only
//! atomics and `write(2)`.
//!
//! **Receivers** read the slots of the signals they own on the trio thread, in sequence order
//! (arrival order). A signal has one owner at a time: the receiver opened last for it; closing
//! that one hands the signal back to the one before, and closing the last restores the
//! disposition the signal had before the first (Trio's nesting of `signal.signal`).
//!
//! **Closing a pipe safely.** A handler on another thread may have loaded a receiver's pipe fd
//! and be about to write to it; closing the fd then could let it write into an fd number
//! reused by something else. So each handler counts itself in `IN_FLIGHT`, and a closing
//! receiver first points the signal's slot at the next owner (or nowhere), then waits for
//! `IN_FLIGHT` to reach zero, and only then closes its pipe.
//!
//! The registry lives on the main thread (receivers may only be opened there, and are not
//! `Send`), so it is a thread-local; the handler never touches it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use super::Shared;
use crate::sys;
use crate::{Error, Result};

/// One more than the largest signal number of any supported platform (Linux: 64).
pub(super) const NSIG: usize = 65;

/// Per signal: 0 when it is not pending, else the sequence number of its arrival.
static ARRIVED: [AtomicU64; NSIG] = [const { AtomicU64::new(0) }; NSIG];
static NEXT_SEQUENCE: AtomicU64 = AtomicU64::new(1);
/// Per signal: the write end of its owner's self-pipe, or -1.
static WAKE_FD: [AtomicI32; NSIG] = [const { AtomicI32::new(-1) }; NSIG];
/// Handlers running now (on any thread).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
    if let Some(i) = usize::try_from(signal).ok().filter(|&i| i < NSIG) {
        if ARRIVED[i].load(Ordering::SeqCst) == 0 {
            let sequence = NEXT_SEQUENCE.fetch_add(1, Ordering::SeqCst);
            // Another thread's handler may have marked it meanwhile: the first mark stays.
            let _ = ARRIVED[i].compare_exchange(0, sequence, Ordering::SeqCst, Ordering::SeqCst);
        }
        let fd = WAKE_FD[i].load(Ordering::SeqCst);
        if fd >= 0 {
            sys::write_byte_preserving_errno(fd);
        }
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
}

fn index(signal: libc::c_int) -> usize {
    usize::try_from(signal).expect("signal numbers are checked when a receiver opens")
}

/// Takes the arrival of `signal` if it is pending: its sequence number.
fn take_arrival(signal: libc::c_int) -> Option<u64> {
    match ARRIVED[index(signal)].swap(0, Ordering::SeqCst) {
        0 => None,
        sequence => Some(sequence),
    }
}

/// A signal whose disposition trio replaced, and its receivers (the last one owns it).
struct Installed {
    saved: sys::SavedDisposition,
    receivers: Vec<Weak<Shared>>,
}

thread_local! {
    static REGISTRY: RefCell<HashMap<libc::c_int, Installed>> = RefCell::new(HashMap::new());
}

fn owner_of(installed: &Installed) -> Option<Rc<Shared>> {
    installed.receivers.last().and_then(Weak::upgrade)
}

/// Makes `receiver` the owner of each of its signals, installing the handler where no
/// receiver has it yet. On failure nothing is left changed.
pub(super) fn install(receiver: &Rc<Shared>) -> Result<()> {
    for (done, &signal) in receiver.signals.iter().enumerate() {
        if let Err(e) = install_one(receiver, signal) {
            for &undo in &receiver.signals[..done] {
                uninstall_one(receiver, undo);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn install_one(receiver: &Rc<Shared>, signal: libc::c_int) -> Result<()> {
    // What arrived for the previous owner is the previous owner's.
    let previous = REGISTRY.with(|r| r.borrow().get(&signal).and_then(owner_of));
    if let Some(previous) = previous {
        if let Some(sequence) = take_arrival(signal) {
            previous.add_pending(&mut [(sequence, signal)]);
        }
    }
    REGISTRY.with(|r| {
        let mut registry = r.borrow_mut();
        let installed = match registry.entry(signal) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let saved = sys::install_signal_handler(signal, on_signal).map_err(|e| {
                    Error::new(std::io::Error::new(
                        e.kind(),
                        format!("cannot handle signal {}: {e}", super::describe(signal)),
                    ))
                })?;
                entry.insert(Installed {
                    saved,
                    receivers: Vec::new(),
                })
            }
        };
        installed.receivers.push(Rc::downgrade(receiver));
        WAKE_FD[index(signal)].store(receiver.write_fd, Ordering::SeqCst);
        Ok(())
    })
}

/// What `uninstall_one` did with a signal the receiver owned.
enum Released {
    NotOwned,
    /// Handed to an older receiver (its pipe's write end).
    HandedTo(i32),
    /// Its saved disposition is back.
    Restored,
}

fn uninstall_one(receiver: &Rc<Shared>, signal: libc::c_int) -> Released {
    REGISTRY.with(|r| {
        let mut registry = r.borrow_mut();
        let Some(installed) = registry.get_mut(&signal) else {
            return Released::NotOwned;
        };
        let was_owner = installed
            .receivers
            .last()
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), Rc::as_ptr(receiver)));
        installed
            .receivers
            .retain(|w| !std::ptr::eq(w.as_ptr(), Rc::as_ptr(receiver)));
        if !was_owner {
            return Released::NotOwned;
        }
        if let Some(next) = owner_of(installed) {
            WAKE_FD[index(signal)].store(next.write_fd, Ordering::SeqCst);
            return Released::HandedTo(next.write_fd);
        }
        WAKE_FD[index(signal)].store(-1, Ordering::SeqCst);
        sys::restore_signal_disposition(signal, &installed.saved);
        registry.remove(&signal);
        Released::Restored
    })
}

/// Moves the arrivals of the signals `receiver` owns into its pending queue, in arrival
/// order.
pub(super) fn collect(receiver: &Rc<Shared>) {
    let mut arrived: Vec<(u64, libc::c_int)> = REGISTRY.with(|r| {
        let registry = r.borrow();
        receiver
            .signals
            .iter()
            .filter(|signal| {
                registry
                    .get(signal)
                    .and_then(owner_of)
                    .is_some_and(|o| Rc::ptr_eq(&o, receiver))
            })
            .filter_map(|&signal| take_arrival(signal).map(|sequence| (sequence, signal)))
            .collect()
    });
    if !arrived.is_empty() {
        receiver.add_pending(&mut arrived);
    }
}

/// Takes `receiver`'s signals away from it (to the older receiver of each, or back to its
/// previous disposition) and returns once no handler can still write to its pipe. Signals
/// that arrived for it meanwhile are added to its pending queue, or (for a signal handed on)
/// announced to the new owner.
pub(super) fn uninstall(receiver: &Rc<Shared>) {
    collect(receiver);
    let released: Vec<(libc::c_int, Released)> = receiver
        .signals
        .iter()
        .map(|&signal| (signal, uninstall_one(receiver, signal)))
        .collect();
    while IN_FLIGHT.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
    let mut late = Vec::new();
    for (signal, released) in released {
        match released {
            Released::NotOwned => {}
            Released::HandedTo(fd) => {
                if ARRIVED[index(signal)].load(Ordering::SeqCst) != 0 {
                    sys::write_byte_preserving_errno(fd);
                }
            }
            Released::Restored => {
                if let Some(sequence) = take_arrival(signal) {
                    late.push((sequence, signal));
                }
            }
        }
    }
    if !late.is_empty() {
        receiver.add_pending(&mut late);
    }
}
