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
//! The registrations live in the run, in a run variable: a map from (deadline, key) to the
//! waker of the sleep's last poll. One system task per run (started by the first sleep that
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
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

use crate::lowlevel::{ParkingLot, RunVar, current_time, spawn_system_task};
use crate::{Result, move_on_at};

/// The run's timer registrations; made on first use in each run.
static DRIVER: RunVar<Rc<Driver>> = RunVar::with_default("trio::compat::TrioTimer", Driver::new);

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

/// The registrations of one run.
struct Driver {
    run: u64,
    sleeps: RefCell<BTreeMap<(Deadline, u64), Waker>>,
    next_key: Cell<u64>,
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
            sleeps: RefCell::new(BTreeMap::new()),
            next_key: Cell::new(0),
            running: Cell::new(false),
            wakes_at: Cell::new(f64::INFINITY),
            lot: ParkingLot::new(),
        })
    }

    /// The driver of the current run (`None` outside a run).
    fn current() -> Option<Rc<Driver>> {
        DRIVER.get().ok()
    }

    /// Registers (or updates) the sleep `key` until `deadline`, to wake `waker`; makes sure
    /// the system task will wake up for it.
    fn register(self: &Rc<Self>, deadline: f64, key: u64, waker: &Waker) {
        {
            let mut sleeps = self.sleeps.borrow_mut();
            match sleeps.get_mut(&(Deadline(deadline), key)) {
                Some(old) if old.will_wake(waker) => {}
                Some(old) => old.clone_from(waker),
                None => {
                    sleeps.insert((Deadline(deadline), key), waker.clone());
                }
            }
        }
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
    }

    fn unregister(&self, deadline: f64, key: u64) {
        self.sleeps.borrow_mut().remove(&(Deadline(deadline), key));
    }

    /// Removes the sleeps due at `now` and returns their wakers.
    fn take_due(&self, now: f64) -> Vec<Waker> {
        let mut sleeps = self.sleeps.borrow_mut();
        let later = sleeps.split_off(&(Deadline(now), u64::MAX));
        std::mem::replace(&mut *sleeps, later)
            .into_values()
            .collect()
    }

    fn earliest(&self) -> f64 {
        self.sleeps
            .borrow()
            .keys()
            .next()
            .map_or(f64::INFINITY, |(d, _)| d.0)
    }
}

/// The system task: wakes the sleeps that are due, then sleeps until the next deadline or
/// until an earlier one is registered. Ends when the run cancels its system tasks.
async fn drive(driver: Rc<Driver>) -> Result<()> {
    loop {
        for waker in driver.take_due(current_time()?) {
            waker.wake();
        }
        let next = driver.earliest();
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
    fn instant(&self, time: f64) -> Instant {
        let offset = time - self.anchor_time;
        let shifted = if offset >= 0.0 {
            Duration::try_from_secs_f64(offset)
                .ok()
                .and_then(|d| self.anchor.checked_add(d))
        } else {
            Duration::try_from_secs_f64(-offset)
                .ok()
                .and_then(|d| self.anchor.checked_sub(d))
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
    key: Option<u64>,
}

impl TrioSleep {
    /// Moves the deadline, dropping the registration for the old one.
    fn set_deadline(&mut self, deadline: f64) {
        if let Some(key) = self.key.take()
            && let Some(driver) = Driver::current().filter(|d| d.run == self.run)
        {
            driver.unregister(self.deadline, key);
        }
        self.deadline = deadline;
    }
}

impl Future for TrioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let driver = Driver::current().filter(|d| d.run == this.run);
        let (Some(driver), Ok(now)) = (driver, current_time()) else {
            return misused();
        };
        if this.deadline.is_nan() {
            // Made by `Timer::sleep` outside a run.
            return misused();
        }
        if now >= this.deadline {
            if let Some(key) = this.key.take() {
                driver.unregister(this.deadline, key);
            }
            return Poll::Ready(());
        }
        let key = *this.key.get_or_insert_with(|| {
            let key = driver.next_key.get();
            driver.next_key.set(key + 1);
            key
        });
        driver.register(this.deadline, key, cx.waker());
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
        // Off the run's thread (or after the run) there is nothing to remove: the run's
        // registrations went with it, or a stale one wakes nothing that still waits.
        if let Some(key) = self.key.take()
            && let Some(driver) = Driver::current().filter(|d| d.run == self.run)
        {
            driver.unregister(self.deadline, key);
        }
    }
}
