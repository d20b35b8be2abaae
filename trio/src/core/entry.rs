//! The entry queue: the one way into a run from other threads.
//!
//! Other threads reach a run only through [`TrioToken::run_sync_soon`] and through task wakers
//! (a waker used off the run's thread queues the task's key here). Both push onto one mutex
//! protected FIFO and wake the run loop through a mio `Waker`. After the run has finished the
//! queue is closed: the callbacks accepted before still run, later ones are refused with
//! [`RunFinishedError`], late wakes are dropped,
//! and the `Waker` (an eventfd or a pipe) is closed, so that a token or a task waker that
//! another thread still holds keeps no fd open.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::error::{Error, RunFinishedError};

/// One queued item.
pub(crate) enum Entry {
    Wake(u64),
    Call(Box<dyn FnOnce() + Send>),
    Idempotent(Arc<dyn Fn() + Send + Sync>),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Entry>,
    /// Addresses of the idempotent callbacks queued now.
    idempotent: HashSet<usize>,
    closed: bool,
}

/// The thread-safe half of a run.
pub(crate) struct EntryShared {
    queue: Mutex<Queue>,
    pending: AtomicBool,
    /// `None` once the run has finished.
    waker: RwLock<Option<mio::Waker>>,
    /// Live `TrioToken`s: while one exists, a blocked run may still be woken from outside.
    tokens: AtomicUsize,
}

impl EntryShared {
    pub(crate) fn new(waker: mio::Waker) -> Self {
        EntryShared {
            queue: Mutex::new(Queue::default()),
            pending: AtomicBool::new(false),
            waker: RwLock::new(Some(waker)),
            tokens: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (every critical
        // section is a push or a take), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, entry: Entry) -> bool {
        let mut queue = self.lock();
        if queue.closed {
            return false;
        }
        if let Entry::Idempotent(f) = &entry {
            let address = Arc::as_ptr(f).cast::<()>() as usize;
            if !queue.idempotent.insert(address) {
                return true;
            }
        }
        queue.items.push_back(entry);
        drop(queue);
        self.pending.store(true, Ordering::Release);
        // A failed wake means the run's poller is gone, which only happens after close.
        if let Some(waker) = &*self.waker.read().unwrap_or_else(|e| e.into_inner()) {
            let _ = waker.wake();
        }
        true
    }

    pub(crate) fn push_wake(&self, key_bits: u64) {
        self.push(Entry::Wake(key_bits));
    }

    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Takes everything queued so far, in order.
    pub(crate) fn drain(&self) -> VecDeque<Entry> {
        self.pending.store(false, Ordering::Release);
        let mut queue = self.lock();
        queue.idempotent.clear();
        std::mem::take(&mut queue.items)
    }

    pub(crate) fn queued(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether something outside the run could still wake it.
    pub(crate) fn may_receive(&self) -> bool {
        self.tokens.load(Ordering::Acquire) > 0 || self.has_pending()
    }

    /// Refuses everything from now on (the run is over), and returns what was accepted
    /// before: every accepted callback still runs, as in Trio.
    pub(crate) fn close(&self) -> VecDeque<Entry> {
        let mut queue = self.lock();
        queue.closed = true;
        let items = std::mem::take(&mut queue.items);
        queue.idempotent.clear();
        drop(queue);
        self.pending.store(false, Ordering::Release);
        // Nothing is pushed after `closed`, so nothing wakes the closed waker.
        self.waker.write().unwrap_or_else(|e| e.into_inner()).take();
        // The callbacks run (or drop) outside the lock: they may push, and are refused.
        items
    }
}

/// A thread-safe handle to a run: lets other threads schedule work on it.
///
/// Get one with [`current_trio_token`](crate::lowlevel::current_trio_token) and send it
/// anywhere (`Send + Sync + Clone`).
pub struct TrioToken {
    shared: Arc<EntryShared>,
}

impl TrioToken {
    pub(crate) fn new(shared: Arc<EntryShared>) -> Self {
        shared.tokens.fetch_add(1, Ordering::AcqRel);
        TrioToken { shared }
    }

    /// Schedules `f` to run on the run's thread, soon, in FIFO order with other such calls.
    ///
    /// `f` runs between task steps (not inside a task), so it must not block; it may wake
    /// tasks, set events, or cancel scopes it can reach. A panic in `f` tears the run down with
    /// a `TrioInternalError` (later callbacks still run). Fails with [`RunFinishedError`] once
    /// the run has finished; a callback accepted before that always runs, at the latest as
    /// the run ends (after its last task).
    pub fn run_sync_soon(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        if self.shared.push(Entry::Call(Box::new(f))) {
            Ok(())
        } else {
            Err(Error::new(RunFinishedError))
        }
    }

    /// Like [`run_sync_soon`](Self::run_sync_soon), but a callback (identified by its `Arc`)
    /// that is already queued is not queued again. One that has started running is queued
    /// again. Calls run in the order they were first queued.
    pub fn run_sync_soon_idempotent(
        &self,
        f: Arc<dyn Fn() + Send + Sync + 'static>,
    ) -> Result<(), Error> {
        if self.shared.push(Entry::Idempotent(f)) {
            Ok(())
        } else {
            Err(Error::new(RunFinishedError))
        }
    }
}

impl Clone for TrioToken {
    fn clone(&self) -> Self {
        TrioToken::new(self.shared.clone())
    }
}

impl Drop for TrioToken {
    fn drop(&mut self) {
        self.shared.tokens.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PartialEq for TrioToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for TrioToken {}

/// Hashes the run's identity, as equality compares it: tokens of one run hash alike.
impl std::hash::Hash for TrioToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.shared).hash(state);
    }
}

impl std::fmt::Debug for TrioToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrioToken")
            .field("run", &Arc::as_ptr(&self.shared))
            .finish()
    }
}
