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
//! Dispatch: a job goes on the cache's queue, and one idle worker is woken for it. A worker
//! that takes a job wakes the next idle worker if more jobs wait, so a run that starts many
//! calls at once pays for one wake-up and the workers wake each other; and a worker that
//! finishes takes a waiting job before it sleeps. A job is never left waiting for a busy
//! worker: when the idle workers (and the one being woken) are fewer than the queued jobs, a
//! new worker is started.
//!
//! Locks: the cache's state, and each worker's wake-up flag. Nothing holds both at once.

use std::collections::VecDeque;
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
    /// Hands the outcome back; runs after the worker counts as idle again. Must not block.
    fn deliver(self: Box<Self>);
}

/// A worker's wake-up: set (and the condvar notified) when it is picked to take a job.
struct Worker {
    notified: Mutex<bool>,
    wake: Condvar,
}

impl Worker {
    fn notify(&self) {
        *lock(&self.notified) = true;
        self.wake.notify_one();
    }
}

struct Cache {
    /// Jobs no worker has taken yet.
    jobs: VecDeque<Box<dyn Job>>,
    /// Workers waiting for a job, the most recently idle last.
    idle: Vec<Arc<Worker>>,
    /// A worker was picked and has not taken a job yet (it wakes the next one if needed).
    waking: bool,
    /// Workers running a job.
    busy: usize,
    next_id: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    jobs: VecDeque::new(),
    idle: Vec::new(),
    waking: false,
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

/// Runs `job` on a worker soon: an idle one, or a new one. Fails only if no thread can be
/// started (then the job is dropped, not run).
pub(super) fn start_thread_soon(job: Box<dyn Job>) -> io::Result<()> {
    let address = job_address(&*job);
    let mut cache = lock(&CACHE);
    cache.jobs.push_back(job);
    let coming = usize::from(cache.waking);
    if cache.jobs.len() <= cache.idle.len() + coming {
        if !cache.waking {
            if let Some(worker) = cache.idle.pop() {
                cache.waking = true;
                drop(cache);
                worker.notify();
            }
        }
        return Ok(());
    }
    let id = cache.next_id;
    cache.next_id += 1;
    drop(cache);
    let name = format!("trio-worker-{id}");
    let spawned = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || worker_main(&name));
    match spawned {
        Ok(_detached) => Ok(()),
        Err(e) => {
            // Take the job back unless a worker took it meanwhile (then it runs).
            let mut cache = lock(&CACHE);
            match cache.jobs.iter().position(|j| job_address(&**j) == address) {
                Some(i) => {
                    let job = cache.jobs.remove(i);
                    drop(cache);
                    drop(job);
                    Err(e)
                }
                None => Ok(()),
            }
        }
    }
}

/// A job's identity while it waits in the queue.
fn job_address(job: &dyn Job) -> usize {
    (job as *const dyn Job).cast::<()>() as usize
}

/// `name` as an OS thread name: cut at a NUL and to the platform's limit (15 bytes on Linux).
pub(super) fn os_name(name: &str) -> CString {
    let name = name.split('\0').next().unwrap_or_default();
    let mut end = name.len().min(sys::MAX_THREAD_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    CString::new(&name[..end]).unwrap_or_default()
}

fn worker_main(name: &str) {
    let own_name = os_name(name);
    let me = Arc::new(Worker {
        notified: Mutex::new(false),
        wake: Condvar::new(),
    });
    lock(&CACHE).idle.push(me.clone());
    while let Some(mut job) = next_job(&me) {
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
    }
}

/// Takes the first queued job for a worker that is about to run it.
fn take(cache: &mut Cache) -> Option<Box<dyn Job>> {
    let job = cache.jobs.pop_front()?;
    cache.busy += 1;
    Some(job)
}

/// The next job of a worker that is on the idle list (or was just picked off it): a queued
/// one at once, else the one it is woken for. `None` once the worker has been idle for the
/// idle timeout and has taken itself off the idle list.
fn next_job(me: &Arc<Worker>) -> Option<Box<dyn Job>> {
    let mut cache = lock(&CACHE);
    loop {
        // Whether this worker's notification has been taken (it is picked, and knows it).
        let mut notified = false;
        if let Some(i) = cache.idle.iter().rposition(|w| Arc::ptr_eq(w, me)) {
            if !cache.jobs.is_empty() {
                cache.idle.remove(i);
                return take(&mut cache);
            }
            drop(cache);
            notified = wait_for_notify(me);
            cache = lock(&CACHE);
            if !notified {
                if let Some(i) = cache.idle.iter().rposition(|w| Arc::ptr_eq(w, me)) {
                    if !cache.jobs.is_empty() {
                        // Every queued job needs a worker that will take it: take one.
                        continue;
                    }
                    cache.idle.remove(i);
                    return None;
                }
            }
        }
        // Not on the idle list: picked for a job, and the notification is set or about to be.
        if !notified {
            drop(cache);
            while !wait_for_notify(me) {}
            cache = lock(&CACHE);
        }
        cache.waking = false;
        if let Some(job) = take(&mut cache) {
            // More jobs than this one: wake the next idle worker.
            if !cache.jobs.is_empty() {
                if let Some(next) = cache.idle.pop() {
                    cache.waking = true;
                    drop(cache);
                    next.notify();
                }
            }
            return Some(job);
        }
        // A worker that finished took it first: idle again.
        cache.idle.push(me.clone());
    }
}

/// Waits for this worker's notification, up to the idle timeout; whether it came (and
/// clears it).
fn wait_for_notify(me: &Worker) -> bool {
    let mut notified = lock(&me.notified);
    let timeout = idle_timeout();
    let start = std::time::Instant::now();
    while !*notified {
        let Some(left) = timeout.checked_sub(start.elapsed()) else {
            return false;
        };
        notified = me
            .wake
            .wait_timeout(notified, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    *notified = false;
    true
}
