//! hyper's `Timer` on trio's clock (feature `hyper`): [`TrioTimer`] and its [`TrioSleep`].
//!
//! # Why it is built this way
//! hyper keeps its timer as `Arc<dyn Timer + Send + Sync>` and requires every sleep to be
//! `Send + Sync`, while everything of a trio run (tasks, cancel scopes, its deadline heap)
//! lives on the run's thread behind `Rc`s. So neither type holds any of it: a [`TrioTimer`] is
//! an anchor (an `Instant` and the run's clock reading taken at the same moment, and the id of
//! the run), and a [`TrioSleep`] is a deadline in the run's time plus the key of its
//! registration. Both are plain data, `Send + Sync` without any `unsafe impl`.
//!
//! The registrations live in the run, in a run variable: slots holding the deadline and the
//! waker of each waiting sleep's last poll, and a min-heap of the deadlines (a sleep's key
//! names its slot). One system task per run (started by the first sleep that
//! has to wait) sleeps in a trio timeout until the earliest deadline, or until a sleep with an
//! earlier one wakes it through a `ParkingLot`, and wakes the sleeps that are due. A sleep is
//! ready when the run's clock has reached its deadline; dropping it (on the run's thread)
//! removes its registration. Deadlines are in the run's time, and trio's own timeouts expire
//! them: under a `MockClock` with autojump, hyper's timeouts pass in virtual time.
//!
//! `now()` maps the run's clock onto `Instant` through the anchor; hyper computes its
//! deadlines from it, and [`sleep_until`](hyper::rt::Timer::sleep_until) maps them back. Under
//! the system clock the two agree (up to float rounding); under a mock clock `now()` is
//! virtual, as it must be for hyper's own arithmetic to agree with the sleeps.
//!
//! A timer belongs to the run it was made in. Polled anywhere else (another run, another
//! thread), a sleep cannot be woken by anything: it reports the mistake as a `tracing` error
//! event and completes at once, so the timeout it stood for fires (loudly, in hyper) instead
//! of never.

use std::cell::{Cell, RefCell};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

use crate::lowlevel::{ParkingLot, RunVar, current_time, spawn_system_task};
use crate::{Result, move_on_at};

/// The run's timer registrations; made on first use in each run.
static DRIVER: RunVar<Rc<Driver>> = RunVar::with_default("trio::compat::TrioTimer", Driver::new);

thread_local! {
    /// The driver last found on this thread, so that a sleep's poll and drop (one each per
    /// HTTP/1 request, for hyper's header timeout) skip the run-variable lookup. Weak: the run
    /// variable and the system task hold the only strong references, and both go when the
    /// run's runner is dropped, so a live entry is the driver of the run this thread is in.
    static CACHED: RefCell<Weak<Driver>> = const { RefCell::new(Weak::new()) };
}

/// Ids of the runs that used a timer, so that a timer or sleep carried into another run is
/// noticed.
static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);

/// A deadline in the run's time, ordered totally (it is never NaN here).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Deadline(f64);

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sleep's registration: its slot in [`Registry::slots`] and the token that slot holds
/// while the registration lasts (tokens are never reused, so a stale heap entry or key is
/// recognised).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    slot: u32,
    token: u64,
}

/// One slot of the registry: free (`token` 0) or a registered sleep.
struct Slot {
    token: u64,
    waker: Option<Waker>,
}

/// The registered sleeps: slots (reused through a free list, so registering allocates nothing
/// once the registry has grown to the number of sleeps waiting at once) and a min-heap of
/// their deadlines. Unregistering frees the slot and leaves its heap entry stale; stale
/// entries are dropped when they reach the top, or all at once when they are most of the heap.
#[derive(Default)]
struct Registry {
    slots: Vec<Slot>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(Deadline, u64, u32)>>,
    /// Heap entries whose registration is gone.
    stale: usize,
    next_token: u64,
}

impl Registry {
    fn is_live(&self, token: u64, slot: u32) -> bool {
        self.slots[slot as usize].token == token
    }

    /// Registers a sleep until `deadline`, to wake `waker`.
    fn insert(&mut self, deadline: f64, waker: &Waker) -> Key {
        self.next_token += 1;
        let token = self.next_token;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Slot {
                    token,
                    waker: Some(waker.clone()),
                };
                slot
            }
            None => {
                // More than 2^32 sleeps waiting at once would not fit in memory first.
                let slot = self.slots.len() as u32;
                self.slots.push(Slot {
                    token,
                    waker: Some(waker.clone()),
                });
                slot
            }
        };
        self.heap.push(Reverse((Deadline(deadline), token, slot)));
        Key { slot, token }
    }

    /// Updates the waker of a live registration; false if `key` is not one (any more).
    fn update(&mut self, key: Key, waker: &Waker) -> bool {
        match self.slots.get_mut(key.slot as usize) {
            Some(slot) if slot.token == key.token => {
                match &mut slot.waker {
                    Some(old) if old.will_wake(waker) => {}
                    old => *old = Some(waker.clone()),
                }
                true
            }
            _ => false,
        }
    }

    /// Frees the slot of `key`, if it still holds that registration.
    #[inline]
    fn remove(&mut self, key: Key) {
        let Some(slot) = self.slots.get_mut(key.slot as usize) else {
            return;
        };
        if slot.token != key.token {
            return;
        }
        slot.token = 0;
        let waker = slot.waker.take();
        self.free.push(key.slot);
        self.stale += 1;
        if self.stale > 64 && self.stale * 2 > self.heap.len() {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, token, slot))| slots[*slot as usize].token == *token);
            self.stale = 0;
        }
        drop(waker);
    }

    /// Removes the registrations due at `now` and returns their wakers.
    fn take_due(&mut self, now: f64) -> Vec<Waker> {
        let mut due = Vec::new();
        while let Some(&Reverse((Deadline(deadline), token, slot))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if !self.is_live(token, slot) {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            let entry = &mut self.slots[slot as usize];
            entry.token = 0;
            due.extend(entry.waker.take());
            self.free.push(slot);
        }
        due
    }

    /// The earliest registered deadline (infinite: none); drops the stale entries on top.
    fn earliest(&mut self) -> f64 {
        while let Some(&Reverse((Deadline(deadline), token, slot))) = self.heap.peek() {
            if self.is_live(token, slot) {
                return deadline;
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
        f64::INFINITY
    }
}

/// The registrations of one run.
struct Driver {
    run: u64,
    registry: RefCell<Registry>,
    /// Whether the system task runs.
    running: Cell<bool>,
    /// The deadline the system task sleeps until (infinite: none).
    wakes_at: Cell<f64>,
    /// Where the system task sleeps, to be woken for an earlier deadline.
    lot: ParkingLot,
}

impl Driver {
    fn new() -> Rc<Driver> {
        Rc::new(Driver {
            run: NEXT_RUN_ID.fetch_add(1, AtomicOrdering::Relaxed),
            registry: RefCell::new(Registry::default()),
            running: Cell::new(false),
            wakes_at: Cell::new(f64::INFINITY),
            lot: ParkingLot::new(),
        })
    }

    /// The driver of the current run (`None` outside a run).
    fn current() -> Option<Rc<Driver>> {
        let driver = DRIVER.get().ok()?;
        // `try_with`: a sleep may be dropped while the thread's locals are being destroyed.
        let _ = CACHED.try_with(|cached| *cached.borrow_mut() = Rc::downgrade(&driver));
        Some(driver)
    }

    /// The driver of run `run`, if this thread is in that run.
    #[inline(always)]
    fn of_run(run: u64) -> Option<Rc<Driver>> {
        let cached = CACHED
            .try_with(|cached| cached.borrow().upgrade())
            .ok()
            .flatten();
        match cached {
            Some(driver) if driver.run == run => Some(driver),
            _ => Driver::current().filter(|driver| driver.run == run),
        }
    }

    /// Registers (or updates) the sleep `key` until `deadline`, to wake `waker`; makes sure
    /// the system task will wake up for it. Returns the sleep's key.
    fn register(self: &Rc<Self>, deadline: f64, key: Option<Key>, waker: &Waker) -> Key {
        let mut registry = self.registry.borrow_mut();
        if let Some(key) = key
            && registry.update(key, waker)
        {
            return key;
        }
        let key = registry.insert(deadline, waker);
        drop(registry);
        if !self.running.get() {
            let driver = self.clone();
            match spawn_system_task("trio::compat::TrioTimer", drive(driver)) {
                Ok(_) => self.running.set(true),
                // Only when the run is ending: nothing will poll the sleep again anyway.
                Err(e) => tracing::debug!(target: "trio::compat", error = %e,
                    "TrioTimer could not start its task"),
            }
        } else if deadline < self.wakes_at.get() {
            self.lot.unpark_all();
        }
        key
    }

    #[inline]
    fn unregister(&self, key: Key) {
        self.registry.borrow_mut().remove(key);
    }
}

/// The system task: wakes the sleeps that are due, then sleeps until the next deadline or
/// until an earlier one is registered. Ends when the run cancels its system tasks.
async fn drive(driver: Rc<Driver>) -> Result<()> {
    loop {
        let due = driver.registry.borrow_mut().take_due(current_time()?);
        // Woken with no borrow held: a waker may drop other sleeps.
        for waker in due {
            waker.wake();
        }
        let next = driver.registry.borrow_mut().earliest();
        driver.wakes_at.set(next);
        match move_on_at(next, driver.lot.park()).await {
            Ok(_) => {}
            Err(e) if e.is_cancelled() => {
                driver.running.set(false);
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// hyper's [`Timer`] on the run's clock (see the module docs for how): hyper's timeouts
/// (`header_read_timeout`, HTTP/2 keep-alive, ...) expire as trio's deadlines do, in virtual
/// time under a `MockClock`. Without a timer, hyper silently ignores its default
/// `header_read_timeout`, and panics when one is configured explicitly.
///
/// Make it inside the run that serves (it reads the run's clock), and give it to hyper's
/// builders (`http1::Builder::timer`, `http2::Builder::timer`; see `examples/hyper_hello.rs`).
/// What hyper does with it, seen directly:
///
/// ```
/// use std::time::Duration;
/// use hyper::rt::Timer;
/// use trio::compat::TrioTimer;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let timer = TrioTimer::new()?;
///     let (start, instant) = (trio::current_time()?, timer.now());
///     timer.sleep(Duration::from_millis(20)).await;
///     assert!(trio::current_time()? - start >= 0.02);
///     assert!(timer.now() - instant >= Duration::from_millis(19));
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TrioTimer {
    /// An `Instant` and the run's time taken together: the mapping between the two.
    anchor: Instant,
    anchor_time: f64,
    run: u64,
}

impl TrioTimer {
    /// A timer for the current run. Fails outside a run. Not a checkpoint.
    pub fn new() -> Result<TrioTimer> {
        let driver = DRIVER.get()?;
        Ok(TrioTimer {
            anchor: Instant::now(),
            anchor_time: current_time()?,
            run: driver.run,
        })
    }

    /// The run time `at` stands for.
    fn run_time(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.anchor) {
            Some(after) => self.anchor_time + after.as_secs_f64(),
            None => self.anchor_time - self.anchor.duration_since(at).as_secs_f64(),
        }
    }

    /// The `Instant` that stands for the run time `time`.
    #[inline]
    fn instant(&self, time: f64) -> Instant {
        let offset = time - self.anchor_time;
        // Whole nanoseconds, as `Instant` counts them (the casts saturate; a mapping beyond
        // `Instant`'s range stays at the anchor, as hyper only adds durations to it).
        let shifted = if offset >= 0.0 {
            self.anchor
                .checked_add(Duration::from_nanos((offset * 1e9) as u64))
        } else {
            self.anchor
                .checked_sub(Duration::from_nanos((-offset * 1e9) as u64))
        };
        shifted.unwrap_or(self.anchor)
    }

    /// A sleep until the run time `deadline` (NaN: made outside a run; its first poll says
    /// so), boxed as hyper keeps it.
    fn boxed_sleep(&self, deadline: f64) -> Pin<Box<dyn Sleep>> {
        Box::pin(TrioSleep {
            deadline,
            run: self.run,
            key: None,
        })
    }
}

impl Timer for TrioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let deadline = match current_time() {
            Ok(now) => now + duration.as_secs_f64(),
            // Outside a run: the first poll reports it.
            Err(_) => f64::NAN,
        };
        self.boxed_sleep(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.boxed_sleep(self.run_time(deadline))
    }

    /// The run's clock as an `Instant` (the system's `Instant::now()` outside a run).
    fn now(&self) -> Instant {
        match current_time() {
            Ok(now) => self.instant(now),
            Err(_) => Instant::now(),
        }
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        let deadline = self.run_time(new_deadline);
        match sleep.as_mut().downcast_mut_pin::<TrioSleep>() {
            Some(mut sleep) => sleep.set_deadline(deadline),
            None => *sleep = self.boxed_sleep(deadline),
        }
    }
}

/// The sleep of a [`TrioTimer`]: a deadline in the run's time, ready once the run's clock
/// reaches it. Plain data (`Send + Sync`); it registers with its run when it has to wait.
/// Not a checkpoint and blind to cancel scopes, as hyper expects of a timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct TrioSleep {
    deadline: f64,
    run: u64,
    /// The registration with the run's driver, once it waited.
    key: Option<Key>,
}

impl TrioSleep {
    /// Moves the deadline, dropping the registration for the old one.
    fn set_deadline(&mut self, deadline: f64) {
        self.unregister();
        self.deadline = deadline;
    }

    /// Drops the registration, if any. Off the run's thread (or after the run) there is
    /// nothing to remove: the run's registrations went with it, or a stale one wakes nothing
    /// that still waits.
    #[inline]
    fn unregister(&mut self) {
        if let Some(key) = self.key.take()
            && let Some(driver) = Driver::of_run(self.run)
        {
            driver.unregister(key);
        }
    }
}

impl Future for TrioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // NaN: made by `Timer::sleep` outside a run.
        if this.deadline.is_nan() {
            return misused();
        }
        let (Some(driver), Ok(now)) = (Driver::of_run(this.run), current_time()) else {
            return misused();
        };
        if now >= this.deadline {
            if let Some(key) = this.key.take() {
                driver.unregister(key);
            }
            return Poll::Ready(());
        }
        this.key = Some(driver.register(this.deadline, this.key, cx.waker()));
        Poll::Pending
    }
}

impl Sleep for TrioSleep {}

/// A sleep used outside its timer's run: nothing could ever wake it, so it completes, and
/// says why.
#[cold]
fn misused() -> Poll<()> {
    tracing::error!(
        target: "trio::compat",
        "a TrioTimer sleep was used outside the trio run its timer was made in; \
         nothing could wake it, so it completes now"
    );
    Poll::Ready(())
}

impl Drop for TrioSleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn due_registrations_wake_in_deadline_order_and_removed_ones_never() {
        let mut registry = Registry::default();
        let (late, late_waker) = counter();
        let (early, early_waker) = counter();
        let (gone, gone_waker) = counter();
        registry.insert(9.0, &late_waker);
        let removed = registry.insert(1.0, &gone_waker);
        registry.insert(2.0, &early_waker);
        registry.remove(removed);
        // A key that no longer names a registration changes nothing.
        registry.remove(removed);
        assert!(!registry.update(removed, &gone_waker));
        assert_eq!(registry.earliest(), 2.0);
        for waker in registry.take_due(5.0) {
            waker.wake();
        }
        assert_eq!(early.0.load(AtomicOrdering::Relaxed), 1);
        assert_eq!(late.0.load(AtomicOrdering::Relaxed), 0);
        assert_eq!(gone.0.load(AtomicOrdering::Relaxed), 0);
        assert_eq!(registry.earliest(), 9.0);
        assert_eq!(registry.take_due(9.0).len(), 1);
        assert_eq!(registry.earliest(), f64::INFINITY);
    }

    #[test]
    fn a_new_registration_reuses_a_freed_slot_under_a_new_token() {
        let mut registry = Registry::default();
        let waker = Waker::noop();
        let first = registry.insert(1.0, waker);
        registry.remove(first);
        let second = registry.insert(1.0, waker);
        assert_eq!(first.slot, second.slot);
        assert_ne!(first.token, second.token);
        // The old key does not reach the new registration.
        registry.remove(first);
        assert!(registry.update(second, waker));
        assert_eq!(registry.take_due(1.0).len(), 1);
    }

    #[test]
    fn register_and_remove_cycles_keep_the_registry_small() {
        // hyper's header timeout: one sleep registered and dropped per request, with a far
        // deadline that is never reached, while one long-lived sleep keeps the heap non-empty.
        let mut registry = Registry::default();
        let waker = Waker::noop();
        registry.insert(1e9, waker);
        for i in 0..100_000 {
            let key = registry.insert(30.0 + f64::from(i), waker);
            registry.remove(key);
        }
        assert_eq!(registry.slots.len(), 2);
        assert!(registry.heap.len() <= 2 * 64 + 2, "{}", registry.heap.len());
        assert_eq!(registry.earliest(), 1e9);
    }
}
