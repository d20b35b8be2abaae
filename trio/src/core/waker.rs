//! Task wakers: `Send + Sync` handles to `!Send` tasks.
//!
//! Tasks may be `!Send`, but a `Waker` must be `Send + Sync`: a waker is an `Arc<WakeHandle>`
//! that holds only the task's key and the run's identity. Waking on the run's own thread puts
//! the task on the run queue directly; waking from any other thread (or from another run on
//! this thread) goes through the entry queue, a mutex and a mio `Waker`. A finished task's
//! waker is reused for the next task when nobody else holds a clone of it.
//!
//! # Safety
//!
//! The waker's data pointer is an `Arc<WakeHandle>` turned into a raw pointer
//! (`Arc::into_raw`); each `Waker` owns one strong count of it. The vtable functions below
//! take over, lend or release that count as the `RawWakerVTable` contract says, and
//! `WakerPool` recognises its own wakers by their vtable before it looks inside one. Checked
//! by the runtime tests under Miri (`scripts/miri.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::entry::EntryShared;
use super::run::Runner;
use super::task::TaskKey;

/// What a waker points at. Shared with other threads, so it holds no `Rc`.
pub(crate) struct WakeHandle {
    run_id: u64,
    key: AtomicU64,
    entry: Arc<EntryShared>,
    /// The id of the task's tokio-console span (`run/console.rs`); 0: none.
    #[cfg(feature = "console")]
    console_id: AtomicU64,
}

impl WakeHandle {
    fn key(&self) -> TaskKey {
        TaskKey::from_bits(self.key.load(Ordering::Relaxed))
    }

    // Inlined into the vtable functions: one call less per wake.
    #[inline]
    fn wake(&self) {
        let key = self.key();
        let handled = Runner::with_current(|runner| {
            if runner.run_id == self.run_id {
                runner.schedule(key);
                true
            } else {
                false
            }
        });
        if handled != Some(true) {
            self.entry.push_wake(key.to_bits());
        }
    }
}

/// Builds task wakers, reusing the `Arc`s of finished tasks that nobody else still holds.
pub(crate) struct WakerPool {
    run_id: u64,
    entry: Arc<EntryShared>,
    spare: Vec<Arc<WakeHandle>>,
}

impl WakerPool {
    pub(crate) fn new(run_id: u64, entry: Arc<EntryShared>) -> Self {
        WakerPool {
            run_id,
            entry,
            spare: Vec::new(),
        }
    }

    pub(crate) fn make(&mut self, key: TaskKey) -> Waker {
        let handle = match self.spare.pop() {
            Some(handle) => {
                handle.key.store(key.to_bits(), Ordering::Relaxed);
                handle
            }
            None => Arc::new(WakeHandle {
                run_id: self.run_id,
                key: AtomicU64::new(key.to_bits()),
                entry: self.entry.clone(),
                #[cfg(feature = "console")]
                console_id: AtomicU64::new(0),
            }),
        };
        let raw = Arc::into_raw(handle).cast::<()>();
        // SAFETY: `raw` comes from `Arc::into_raw` of an `Arc<WakeHandle>`, which is what every
        // function of `VTABLE` expects, and the strong count it carries is owned by the waker.
        unsafe { Waker::from_raw(RawWaker::new(raw, &VTABLE)) }
    }

    /// Points a recycled task's waker at `key`, or gives it a new one if anybody else still
    /// holds a clone of the old one (a stale clone must not wake the new task).
    ///
    /// A spawn into a recycled task thus keeps its waker's `Arc` (one relaxed store) instead
    /// of handing it back to the pool and taking one out.
    #[inline]
    pub(crate) fn rekey(&mut self, waker: &mut Waker, key: TaskKey) {
        if std::ptr::eq(waker.vtable(), &VTABLE) {
            let raw = waker.data().cast::<WakeHandle>();
            // SAFETY: the vtable check proves `raw` came from `Arc::into_raw` in `make`; the
            // `ManuallyDrop` borrows the waker's count without releasing it.
            let handle = std::mem::ManuallyDrop::new(unsafe { Arc::from_raw(raw) });
            if Arc::strong_count(&handle) == 1 {
                handle.key.store(key.to_bits(), Ordering::Relaxed);
                return;
            }
        }
        let old = std::mem::replace(waker, self.make(key));
        self.recycle(old);
    }

    /// Takes a finished task's waker back if no one else holds a clone of it.
    pub(crate) fn recycle(&mut self, waker: Waker) {
        if self.spare.len() >= 1024 || !std::ptr::eq(waker.vtable(), &VTABLE) {
            return;
        }
        let raw = waker.data().cast::<WakeHandle>();
        std::mem::forget(waker);
        // SAFETY: the vtable check above proves `raw` came from `Arc::into_raw` in `make`, and
        // forgetting the waker hands its strong count over to this `Arc`.
        let handle = unsafe { Arc::from_raw(raw) };
        if Arc::strong_count(&handle) == 1 {
            self.spare.push(handle);
        }
    }
}

/// Files the task's waker under its tokio-console span (0: under none).
#[cfg(feature = "console")]
pub(crate) fn set_console_id(waker: &Waker, id: u64) {
    if let Some(handle) = own_handle(waker) {
        handle.console_id.store(id, Ordering::Relaxed);
    }
}

/// Reports a waker operation to tokio-console, if the task has a console span.
#[cfg(feature = "console")]
pub(crate) fn report(waker: &Waker, op: &'static str) {
    if let Some(handle) = own_handle(waker) {
        report_op(handle, op);
    }
}

#[cfg(feature = "console")]
fn own_handle(waker: &Waker) -> Option<&WakeHandle> {
    // SAFETY: the vtable check proves the data pointer came from `Arc::into_raw` in `make`,
    // and the borrowed waker keeps that `Arc` alive as long as the returned reference.
    std::ptr::eq(waker.vtable(), &VTABLE).then(|| unsafe { &*waker.data().cast::<WakeHandle>() })
}

#[cfg(feature = "console")]
#[inline]
fn report_op(handle: &WakeHandle, op: &'static str) {
    let id = handle.console_id.load(Ordering::Relaxed);
    if id != 0 {
        tracing::trace!(target: "runtime::waker", op, task.id = id);
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    #[cfg(feature = "console")]
    // SAFETY: the caller's waker keeps the `Arc` alive for the duration of this call.
    report_op(unsafe { &*data.cast::<WakeHandle>() }, "waker.clone");
    // SAFETY: `data` is a pointer from `Arc::into_raw::<WakeHandle>` whose count the caller's
    // waker owns; incrementing makes a second owned count for the new waker.
    unsafe { Arc::increment_strong_count(data.cast::<WakeHandle>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: waking by value consumes the waker's count; `from_raw` takes it over.
    let handle = unsafe { Arc::from_raw(data.cast::<WakeHandle>()) };
    // The wake itself is reported by the run when it schedules the task (`run/console.rs`).
    #[cfg(feature = "console")]
    report_op(&handle, "waker.drop");
    handle.wake();
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: the caller's waker keeps the `Arc` alive for the duration of this call.
    let handle = unsafe { &*data.cast::<WakeHandle>() };
    handle.wake();
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: dropping the waker releases the count it owned.
    let handle = unsafe { Arc::from_raw(data.cast::<WakeHandle>()) };
    #[cfg(feature = "console")]
    report_op(&handle, "waker.drop");
    drop(handle);
}
