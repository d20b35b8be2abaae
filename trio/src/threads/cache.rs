//! The worker-thread cache: threads that run `to_thread` calls, kept for reuse.
//!
//! Process-wide, as Trio's `_thread_cache.py`: one cache serves every run, so a program
//! that runs `trio::run` several times (or several runs on several threads) reuses the same
//! workers. A worker that has waited [`idle_timeout`] for a job (10 s unless changed) exits;
//! a new one is started when a job finds no idle worker. Idle workers are reused last in,
//! first out, so the ones that stay idle are the ones that time out.
//!
//! A job runs in two halves: `work` (the user's function) and `deliver` (hand the outcome
//! back). Between them the worker puts itself on the idle list, so that a call that the
//! delivery lets start (a task that loops over `to_thread`) finds this worker idle instead of
//! starting another one: Trio's order, for the same reason.
//!
//! Locks: the cache's list, and each worker's job slot. Nothing holds both at once.

use std::ffi::{CStr, CString};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::sys;

/// How long an idle worker waits for a job before it exits, in nanoseconds.
static IDLE_TIMEOUT_NANOS: AtomicU64 = AtomicU64::new(10_000_000_000);

/// The idle timeout.
pub(super) fn idle_timeout() -> Duration {
    Duration::from_nanos(IDLE_TIMEOUT_NANOS.load(Ordering::Relaxed))
}

/// Changes the idle timeout; workers that are waiting now use it from their next wait on.
pub(super) fn set_idle_timeout(timeout: Duration) {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    IDLE_TIMEOUT_NANOS.store(nanos, Ordering::Relaxed);
}

/// Work for a worker thread.
pub(super) trait Job: Send {
    /// The OS name the thread carries while `work` runs (already cut to the platform's
    /// limit), or `None` to keep the worker's own.
    fn thread_name(&self) -> Option<&CStr>;
    /// Runs the user's function (catching its panic).
    fn work(&mut self);
    /// Hands the outcome back; runs after the worker is idle again. Must not block.
    fn deliver(self: Box<Self>);
}

struct Worker {
    slot: Mutex<Option<Box<dyn Job>>>,
    wake: Condvar,
}

struct Cache {
    idle: Vec<Arc<Worker>>,
    busy: usize,
    next_id: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    idle: Vec::new(),
    busy: 0,
    next_id: 0,
});

/// Every critical section here leaves its data consistent (pushes, pops, counts), so a
/// poisoned lock is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts of the process's worker threads: `(idle, busy)`.
pub(super) fn counts() -> (usize, usize) {
    let cache = lock(&CACHE);
    (cache.idle.len(), cache.busy)
}

/// Runs `job` on an idle worker, or on a new one. Fails only if no thread can be started.
pub(super) fn start_thread_soon(job: Box<dyn Job>) -> io::Result<()> {
    let mut cache = lock(&CACHE);
    cache.busy += 1;
    if let Some(worker) = cache.idle.pop() {
        drop(cache);
        *lock(&worker.slot) = Some(job);
        worker.wake.notify_one();
        return Ok(());
    }
    let id = cache.next_id;
    cache.next_id += 1;
    drop(cache);
    let worker = Arc::new(Worker {
        slot: Mutex::new(None),
        wake: Condvar::new(),
    });
    let name = format!("trio-worker-{id}");
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || worker_main(worker, job, name));
    match spawned {
        Ok(_detached) => Ok(()),
        Err(e) => {
            lock(&CACHE).busy -= 1;
            Err(e)
        }
    }
}

fn os_name(name: &str) -> CString {
    let mut end = name.len().min(sys::MAX_THREAD_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    CString::new(&name[..end]).unwrap_or_default()
}

fn worker_main(me: Arc<Worker>, first: Box<dyn Job>, name: String) {
    let own_name = os_name(&name);
    let mut job = first;
    loop {
        let renamed = match job.thread_name() {
            Some(name) => {
                sys::set_current_thread_name(name);
                true
            }
            None => false,
        };
        // `work` catches the user's panic; this catch only keeps the worker's accounting
        // right if trio's own code were to panic.
        let _ = catch_unwind(AssertUnwindSafe(|| job.work()));
        if renamed {
            sys::set_current_thread_name(&own_name);
        }
        {
            let mut cache = lock(&CACHE);
            cache.busy -= 1;
            cache.idle.push(me.clone());
        }
        let _ = catch_unwind(AssertUnwindSafe(|| job.deliver()));
        match wait_for_job(&me) {
            Some(next) => job = next,
            None => return,
        }
    }
}

/// Waits for the next job; `None` once the worker has been idle for the idle timeout and
/// has taken itself off the idle list.
fn wait_for_job(me: &Arc<Worker>) -> Option<Box<dyn Job>> {
    let mut slot = lock(&me.slot);
    loop {
        if let Some(job) = slot.take() {
            return Some(job);
        }
        let (guard, waited) = me
            .wake
            .wait_timeout(slot, idle_timeout())
            .unwrap_or_else(|e| e.into_inner());
        slot = guard;
        if slot.is_some() || !waited.timed_out() {
            continue;
        }
        drop(slot);
        let mut cache = lock(&CACHE);
        if let Some(i) = cache.idle.iter().position(|w| Arc::ptr_eq(w, me)) {
            cache.idle.remove(i);
            return None;
        }
        // Not on the idle list: a caller took this worker and is handing it a job.
        drop(cache);
        slot = lock(&me.slot);
    }
}
