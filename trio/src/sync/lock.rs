//! [`Lock`] and [`StrictFIFOLock`]: mutual exclusion with fair FIFO hand-off.
//!
//! Ownership belongs to a task. `release` passes the lock straight to the oldest waiter (the
//! `Task` that `ParkingLot::unpark_one` returns becomes the owner before it even runs), so a
//! releaser that tries to take the lock again at once finds it held.
//!
//! A lock taken with [`Lock::acquire`] whose owner task finishes without releasing it becomes
//! *broken*. Two things notice: every acquirer checks `Task::is_finished` on the owner of a
//! held lock, and while tasks wait for an explicitly held lock the lock's parking lot is
//! registered with [`add_parking_lot_breaker`] for the owner, so the owner's exit breaks the
//! lot, which fails the waiters with `BrokenResourceError`. Locks held through a [`LockGuard`] never
//! break: the guard releases them when it drops, wherever that happens.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::usage;
use crate::lowlevel::{
    CancelShieldedCheckpoint, DescribeWait, Park, ParkingLot, Task, add_parking_lot_breaker,
    cancel_shielded_checkpoint, checkpoint_if_cancelled, current_task, remove_parking_lot_breaker,
};
use crate::{BrokenResourceError, Error, Result, WouldBlock};

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Held {
    Free,
    /// Handed to a waiter that has not resumed yet.
    Pending,
    /// Taken with `acquire`: the owner must `release` it.
    Explicit,
    /// Taken for the guard with this acquisition number (a stale guard must not release a
    /// later acquisition).
    Guard(u64),
}

/// What an acquirer wants to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Explicit,
    Guard,
}

struct LockState {
    owner: Option<Task>,
    held: Held,
    next_epoch: u64,
    broken_by: Option<Task>,
    /// The owner has the lot registered as a parking-lot breaker.
    watched: bool,
}

impl LockState {
    fn held_for(&mut self, kind: Kind) -> Held {
        match kind {
            Kind::Explicit => Held::Explicit,
            Kind::Guard => {
                self.next_epoch += 1;
                Held::Guard(self.next_epoch)
            }
        }
    }
}

/// The shared state of a lock (also used by `Condition`).
pub(super) struct LockCore {
    state: RefCell<LockState>,
    pub(super) lot: ParkingLot,
}

fn broken_error(owner: &Task) -> Error {
    Error::new(BrokenResourceError::new(format!(
        "the lock's owner task {:?} exited without releasing it",
        owner.name()
    )))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AcquireStage {
    Start,
    /// Took the free lock; now yielding (the schedule point). The lock is ours: if the
    /// future is dropped here, it is released.
    Yield(Held),
    /// Waiting for a hand-off.
    Parked,
    Done,
}

pin_project_lite::pin_project! {
    /// The future of [`LockCore::acquire`].
    ///
    /// Dropped half-way, it undoes itself: it releases a lock taken on the fast path, or
    /// passes on a lock that was handed to it while it waited.
    ///
    /// Written out by hand rather than as an `async fn` with a drop guard, so
    /// the uncontended acquire is two small polls.
    pub(super) struct Acquire<'a> {
        core: &'a Rc<LockCore>,
        kind: Kind,
        stage: AcquireStage,
        yielding: CancelShieldedCheckpoint,
        // Pinned: a waiter is linked in place (`ParkingLot`).
        #[pin]
        park: Option<Park>,
    }

    impl<'a> PinnedDrop for Acquire<'a> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let owned = matches!(this.stage, AcquireStage::Yield(_));
            if owned || this.park.as_ref().as_pin_ref().is_some_and(|park| park.is_unparked()) {
                this.core.hand_off();
            }
        }
    }
}

impl Future for Acquire<'_> {
    type Output = Result<Held>;

    /// The poll that ends the schedule point (the usual second poll) is inlined
    /// into the caller; the rest is one call.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Held>> {
        let mut this = self;
        let fields = this.as_mut().project();
        if let AcquireStage::Yield(held) = *fields.stage {
            if Pin::new(fields.yielding).poll(cx).is_pending() {
                return Poll::Pending;
            }
            *fields.stage = AcquireStage::Done;
            return Poll::Ready(Ok(held));
        }
        this.poll_start_or_parked(cx)
    }
}

impl Acquire<'_> {
    #[inline(never)]
    fn poll_start_or_parked(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Held>> {
        let mut this = self.project();
        match *this.stage {
            AcquireStage::Start => {
                match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        *this.stage = AcquireStage::Done;
                        return Poll::Ready(Err(e));
                    }
                    // Cancelled: the cancel point yields before it raises.
                    Poll::Pending => return Poll::Pending,
                }
                let taken = current_task().and_then(|me| this.core.try_take(&me, *this.kind));
                match taken {
                    Ok(held) => {
                        *this.stage = AcquireStage::Yield(held);
                        // The first poll of a schedule point is always pending.
                        let _ = Pin::new(this.yielding).poll(cx);
                        return Poll::Pending;
                    }
                    Err(e) if e.is::<WouldBlock>() => {
                        // This task is about to wait: an explicit owner's exit must wake it.
                        this.core.watch_owner();
                        this.park.set(Some(this.core.lot.park()));
                        *this.stage = AcquireStage::Parked;
                    }
                    Err(e) => {
                        *this.stage = AcquireStage::Done;
                        return Poll::Ready(Err(e));
                    }
                }
            }
            AcquireStage::Parked => {}
            AcquireStage::Yield(_) | AcquireStage::Done => {
                return Poll::Ready(Err(usage("a lock acquire polled after it finished")));
            }
        }
        let Some(park) = this.park.as_mut().as_pin_mut() else {
            unreachable!("a waiting acquire holds its park")
        };
        let parked = match park.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(parked) => parked,
        };
        this.park.set(None);
        *this.stage = AcquireStage::Done;
        Poll::Ready(match parked {
            Ok(()) => Ok(this.core.finish_handoff(*this.kind)),
            Err(e) if e.is::<BrokenResourceError>() => Err(this.core.broken_now()),
            Err(e) => Err(e),
        })
    }
}

impl LockCore {
    fn new() -> Rc<Self> {
        let core = Rc::new(LockCore {
            state: RefCell::new(LockState {
                owner: None,
                held: Held::Free,
                next_epoch: 0,
                broken_by: None,
                watched: false,
            }),
            lot: ParkingLot::with_label("Lock::acquire"),
        });
        core.lot.set_describer(&core);
        core
    }

    /// "held by task 3 "writer"; 2 waiting": what a task dump says of the lock.
    pub(super) fn describe(&self) -> String {
        let owner = match self.state.try_borrow() {
            Ok(st) => match (&st.owner, st.held) {
                (Some(owner), Held::Pending) => {
                    format!("handed to task {} {:?}", owner.id(), owner.name())
                }
                (Some(owner), _) => format!("held by task {} {:?}", owner.id(), owner.name()),
                (None, _) => "free".to_string(),
            },
            Err(_) => "being changed".to_string(),
        };
        format!("{owner}; {} waiting", self.lot.len())
    }

    /// Fails if the lock is broken (breaking it first if its explicit owner has exited) or if
    /// `me` already holds it.
    fn check(&self, me: &Task) -> Result<()> {
        let dead = {
            let st = self.state.borrow();
            // Tested before anything is cloned.
            if st.broken_by.is_some() || self.lot.is_broken() {
                drop(st);
                return Err(self.broken_now());
            }
            match (&st.owner, st.held) {
                (Some(owner), Held::Explicit) if owner.is_finished() => owner.clone(),
                (Some(owner), Held::Explicit | Held::Guard(_)) if owner == me => {
                    return Err(usage(format!(
                        "task {:?} tried to acquire a Lock it already holds (locks are not \
                         re-entrant)",
                        me.name()
                    )));
                }
                _ => return Ok(()),
            }
        };
        self.break_for(&dead);
        Err(broken_error(&dead))
    }

    /// Marks the lock broken by `owner` and fails every waiter.
    pub(super) fn break_for(&self, owner: &Task) {
        let watched = {
            let mut st = self.state.borrow_mut();
            if st.broken_by.is_some() {
                return;
            }
            st.broken_by = Some(owner.clone());
            std::mem::replace(&mut st.watched, false)
        };
        if watched {
            // The owner may have exited already, which removed the registration.
            let _ = remove_parking_lot_breaker(owner, &self.lot);
        }
        if !self.lot.is_broken() {
            self.lot.break_lot(Some(owner));
        }
    }

    pub(super) fn broken_now(&self) -> Error {
        match self
            .state
            .borrow()
            .broken_by
            .clone()
            .or_else(|| self.lot.broken_by())
        {
            Some(task) => broken_error(&task),
            None => Error::new(BrokenResourceError::new("the lock is broken")),
        }
    }

    pub(super) fn try_take(&self, me: &Task, kind: Kind) -> Result<Held> {
        self.check(me)?;
        let mut st = self.state.borrow_mut();
        if st.owner.is_none() && self.lot.is_empty() {
            let held = st.held_for(kind);
            st.owner = Some(me.clone());
            st.held = held;
            Ok(held)
        } else {
            Err(Error::new(WouldBlock))
        }
    }

    /// Trio's `acquire`: cancel point, then take the lock or wait for a hand-off.
    pub(super) fn acquire(self: &Rc<Self>, kind: Kind) -> Acquire<'_> {
        Acquire {
            core: self,
            kind,
            stage: AcquireStage::Start,
            yielding: cancel_shielded_checkpoint(),
            park: None,
        }
    }

    /// The waiter the lock was handed to has resumed: it now holds it as `kind`.
    fn finish_handoff(self: &Rc<Self>, kind: Kind) -> Held {
        let held = {
            let mut st = self.state.borrow_mut();
            debug_assert_eq!(st.held, Held::Pending);
            let held = st.held_for(kind);
            st.held = held;
            held
        };
        self.restore(held);
        held
    }

    /// After a hand-off to the current owner: sets how it holds the lock (`Condition::wait`
    /// gives back the guard epoch it had).
    pub(super) fn restore(self: &Rc<Self>, held: Held) {
        self.state.borrow_mut().held = held;
        if held == Held::Explicit && !self.lot.is_empty() {
            self.watch_owner();
        }
    }

    /// Registers the lot as a breaker of the explicit owner, so that its exit wakes the waiters.
    pub(super) fn watch_owner(self: &Rc<Self>) {
        let owner = {
            let mut st = self.state.borrow_mut();
            if st.held != Held::Explicit || st.watched {
                return;
            }
            st.watched = true;
            st.owner.clone()
        };
        if let Some(owner) = owner
            && add_parking_lot_breaker(&owner, &self.lot).is_err()
        {
            // The owner has exited already: the lock is broken now.
            self.state.borrow_mut().watched = false;
            self.break_for(&owner);
        }
    }

    /// Frees the lock and hands it to the oldest waiter, if any.
    pub(super) fn hand_off(&self) {
        let (old, watched) = {
            let mut st = self.state.borrow_mut();
            let old = st.owner.take();
            st.held = Held::Free;
            let watched = std::mem::replace(&mut st.watched, false);
            if let Some(next) = self.lot.unpark_one() {
                st.owner = Some(next);
                st.held = Held::Pending;
            }
            (old, watched)
        };
        if let (true, Some(old)) = (watched, old) {
            // Fails only if the owner exited meanwhile, which removed the registration.
            let _ = remove_parking_lot_breaker(&old, &self.lot);
        }
    }

    /// How `me` holds the lock, if it does (a hand-off still pending does not count).
    pub(super) fn held_by(&self, me: &Task) -> Option<Held> {
        let st = self.state.borrow();
        match st.held {
            Held::Explicit | Held::Guard(_) if st.owner.as_ref() == Some(me) => Some(st.held),
            _ => None,
        }
    }

    fn release_by(&self, me: &Task) -> Result<()> {
        if self.held_by(me).is_none() {
            let st = self.state.borrow();
            let state = match &st.owner {
                None => "free".to_string(),
                Some(owner) => format!("held by task {:?}", owner.name()),
            };
            return Err(usage(format!(
                "task {:?} can't release a Lock it doesn't own (the lock is {state})",
                me.name()
            )));
        }
        self.hand_off();
        Ok(())
    }

    fn release_guard(&self, epoch: u64) {
        if self.state.borrow().held == Held::Guard(epoch) {
            self.hand_off();
        }
    }

    pub(super) fn statistics(&self) -> LockStatistics {
        let st = self.state.borrow();
        LockStatistics {
            locked: st.owner.is_some(),
            owner: st.owner.clone(),
            tasks_waiting: self.lot.len(),
        }
    }
}

impl DescribeWait for LockCore {
    fn describe_wait(&self) -> String {
        self.describe()
    }
}

/// Statistics of a [`Lock`] (and of the lock of a [`Condition`](super::Condition)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockStatistics {
    /// Whether the lock is held.
    pub locked: bool,
    /// The task holding it (or the waiter it was just handed to).
    pub owner: Option<Task>,
    /// Tasks waiting to acquire it.
    pub tasks_waiting: usize,
}

/// A mutual-exclusion lock for tasks, with fair FIFO hand-off.
///
/// Use [`lock`](Self::lock) for a [`LockGuard`] that releases on drop, or
/// [`acquire`](Self::acquire) / [`release`](Self::release) explicitly. Rules (Trio's):
/// - **Fair.** `release` hands the lock to the oldest waiter, so a task that releases and
///   immediately tries to re-acquire goes to the back of the queue.
/// - **Owned by a task, not re-entrant.** Acquiring a lock the task already holds is a
///   [`UsageError`](crate::UsageError), and so is releasing a lock it doesn't own.
/// - **Broken when abandoned.** If the task that took it with `acquire` finishes without
///   releasing it, the lock breaks: waiters and later acquirers get a
///   [`BrokenResourceError`] naming that task. A [`LockGuard`] always releases when dropped
///   (even if moved to another task), so guard-held locks never break; a leaked guard keeps
///   the lock held, as with std's `MutexGuard`.
///
/// Clones are handles to the same lock.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let lock = trio::Lock::new();
///     {
///         let _guard = lock.lock().await?;
///         assert!(lock.locked());
///     } // released here
///     lock.acquire().await?;
///     assert!(lock.try_acquire().is_err()); // not re-entrant
///     lock.release()?;
///     assert!(!lock.locked());
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct Lock {
    pub(super) core: Rc<LockCore>,
}

impl Default for Lock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.statistics();
        f.debug_struct("Lock")
            .field("owner", &stats.owner)
            .field("tasks_waiting", &stats.tasks_waiting)
            .finish()
    }
}

impl Lock {
    /// A new, unlocked lock.
    pub fn new() -> Self {
        Lock {
            core: LockCore::new(),
        }
    }

    /// Whether some task holds the lock.
    pub fn locked(&self) -> bool {
        self.core.state.borrow().owner.is_some()
    }

    /// Acquires the lock for the current task; release it with [`release`](Self::release).
    ///
    /// Fails with [`UsageError`](crate::UsageError) if the task already holds it and with
    /// [`BrokenResourceError`] if its owner exited without releasing it.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when the lock was free.
    ///
    /// # Cancel safety
    /// Safe. Cancelled or dropped while waiting, the task leaves the queue and holds nothing.
    /// If the lock was handed over just before the cancellation, `acquire` returns `Ok` (the
    /// task holds it); if the future is dropped instead, the lock passes on to the next waiter.
    pub fn acquire(&self) -> LockAcquire<'_> {
        LockAcquire {
            acquire: self.core.acquire(Kind::Explicit),
        }
    }

    /// Acquires the lock if that can be done without waiting; [`WouldBlock`] otherwise (also
    /// when it is free but tasks are queued for it). Not a checkpoint.
    pub fn try_acquire(&self) -> Result<()> {
        let me = current_task()?;
        self.core.try_take(&me, Kind::Explicit).map(drop)
    }

    /// Releases the lock, handing it to the oldest waiter. Fails with a
    /// [`UsageError`](crate::UsageError) if the current task does not hold it. Not a
    /// checkpoint.
    pub fn release(&self) -> Result<()> {
        let me = current_task()?;
        self.core.release_by(&me)
    }

    /// Acquires the lock and returns a guard that releases it when dropped.
    ///
    /// # Checkpoint
    /// Yes, as [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    /// As [`acquire`](Self::acquire): either no guard and no lock, or a guard.
    pub fn lock(&self) -> LockFuture<'_> {
        LockFuture {
            acquire: self.core.acquire(Kind::Guard),
        }
    }

    /// [`try_acquire`](Self::try_acquire), returning a guard. Not a checkpoint.
    pub fn try_lock(&self) -> Result<LockGuard> {
        let me = current_task()?;
        let held = self.core.try_take(&me, Kind::Guard)?;
        Ok(LockGuard::new(self.core.clone(), held))
    }

    /// Trio's statistics: whether it is locked, by whom, and how many tasks wait.
    pub fn statistics(&self) -> LockStatistics {
        self.core.statistics()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Lock::acquire`] (and [`StrictFIFOLock::acquire`](Lock::acquire)).
    #[must_use = "futures do nothing unless awaited"]
    pub struct LockAcquire<'a> {
        #[pin]
        acquire: Acquire<'a>,
    }
}

impl std::fmt::Debug for LockAcquire<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockAcquire").finish_non_exhaustive()
    }
}

impl Future for LockAcquire<'_> {
    type Output = Result<()>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.project().acquire.poll(cx).map_ok(drop)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Lock::lock`]: a [`LockGuard`] once the lock is held.
    #[must_use = "futures do nothing unless awaited"]
    pub struct LockFuture<'a> {
        #[pin]
        acquire: Acquire<'a>,
    }
}

impl std::fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFuture").finish_non_exhaustive()
    }
}

impl Future for LockFuture<'_> {
    type Output = Result<LockGuard>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<LockGuard>> {
        let acquire = self.project().acquire;
        let core = acquire.core;
        acquire
            .poll(cx)
            .map_ok(|held| LockGuard::new(core.clone(), held))
    }
}

/// Holds a [`Lock`] (or [`StrictFIFOLock`]) and releases it when dropped.
///
/// The guard is `'static`, so it may be moved to another task; dropping it there releases the
/// lock all the same. If the lock was released another way meanwhile (an explicit
/// [`Lock::release`], or a dropped [`Condition::wait`](super::Condition::wait)), dropping the
/// guard does nothing.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    core: Rc<LockCore>,
    epoch: u64,
}

impl LockGuard {
    fn new(core: Rc<LockCore>, held: Held) -> Self {
        let epoch = match held {
            Held::Guard(epoch) => epoch,
            _ => unreachable!("a guard acquisition is numbered"),
        };
        LockGuard { core, epoch }
    }

    /// A handle to the lock this guard holds.
    pub fn lock(&self) -> Lock {
        Lock {
            core: self.core.clone(),
        }
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.core.release_guard(self.epoch);
    }
}

/// A [`Lock`] that promises strict FIFO hand-off, as Trio's `StrictFIFOLock`.
///
/// Every trio lock already hands off in FIFO order; this type states that the code using it
/// depends on that order (for example to keep the order of writes to a stream), so the promise
/// survives any future change to `Lock`. It dereferences to [`Lock`] for the whole API.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let lock = trio::StrictFIFOLock::new();
///     let _guard = lock.lock().await?;
///     assert!(lock.locked());
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone, Default)]
pub struct StrictFIFOLock {
    lock: Lock,
}

impl std::fmt::Debug for StrictFIFOLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stats = self.lock.statistics();
        f.debug_struct("StrictFIFOLock")
            .field("owner", &stats.owner)
            .field("tasks_waiting", &stats.tasks_waiting)
            .finish()
    }
}

impl StrictFIFOLock {
    /// A new, unlocked lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The underlying [`Lock`] handle.
    pub fn as_lock(&self) -> &Lock {
        &self.lock
    }
}

impl std::ops::Deref for StrictFIFOLock {
    type Target = Lock;

    fn deref(&self) -> &Lock {
        &self.lock
    }
}
