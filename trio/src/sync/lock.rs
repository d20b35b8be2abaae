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
//!
//! The uncontended acquire is the common case and takes a fast path: one look at the run
//! (cancel point and current task, [`current_task_if_not_cancelled`]), one flag
//! (`maybe_contended`: no waiters, watch or break to consider) and the owner, then the schedule
//! point. Release takes the same flag to skip the parking lot. Anything that could give the lot
//! a waiter, or break or watch the lock, sets the flag first; the slow paths clear it when they
//! find the lock free and idle.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::usage;
use crate::lowlevel::{
    CancelShieldedCheckpoint, DescribeWait, Park, ParkingLot, Task, add_parking_lot_breaker,
    cancel_shielded_checkpoint, checkpoint_if_cancelled, current_task,
    current_task_if_not_cancelled, remove_parking_lot_breaker,
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
    /// False only while the lot has no waiters and is not broken, and the lock is neither
    /// broken nor watched: then taking a free lock and releasing it need not look at the lot.
    /// Set before anything makes one of those true; cleared by the slow paths when they find
    /// all of them false again. A stale `true` only sends a call down the slow path.
    maybe_contended: Cell<bool>,
    lot: ParkingLot,
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

    /// The uncontended acquire (take a free lock, then the schedule point) and the poll that
    /// ends its schedule point are inlined into the caller; waiting and cancellation are one
    /// call away.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Held>> {
        let mut this = self;
        let fields = this.as_mut().project();
        match *fields.stage {
            AcquireStage::Yield(held) => {
                if Pin::new(fields.yielding).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                *fields.stage = AcquireStage::Done;
                return Poll::Ready(Ok(held));
            }
            AcquireStage::Start => {
                if let Ok(Some(me)) = current_task_if_not_cancelled() {
                    match fields.core.take_if_free(me, *fields.kind) {
                        Ok(held) => {
                            *fields.stage = AcquireStage::Yield(held);
                            // The first poll of a schedule point is always pending.
                            let _ = Pin::new(fields.yielding).poll(cx);
                            return Poll::Pending;
                        }
                        // Past the cancel point (counted): the lock is held, or may be
                        // queued for or broken.
                        Err(me) => return this.poll_start_or_parked(cx, Some(me)),
                    }
                }
            }
            AcquireStage::Parked | AcquireStage::Done => {}
        }
        this.poll_start_or_parked(cx, None)
    }
}

impl Acquire<'_> {
    /// Every poll but the uncontended ones. `me` is the current task when this poll has
    /// passed the cancel point already.
    #[inline(never)]
    fn poll_start_or_parked(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        me: Option<Task>,
    ) -> Poll<Result<Held>> {
        let mut this = self.project();
        match *this.stage {
            AcquireStage::Start => {
                let taken = match me {
                    Some(me) => this.core.take_or_busy(me, *this.kind),
                    None => {
                        match Pin::new(&mut checkpoint_if_cancelled()).poll(cx) {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(e)) => {
                                *this.stage = AcquireStage::Done;
                                return Poll::Ready(Err(e));
                            }
                            // Cancelled: the cancel point yields before it raises.
                            Poll::Pending => return Poll::Pending,
                        }
                        current_task().and_then(|me| this.core.take_or_busy(me, *this.kind))
                    }
                };
                match taken {
                    Ok(Some(held)) => {
                        *this.stage = AcquireStage::Yield(held);
                        // The first poll of a schedule point is always pending.
                        let _ = Pin::new(this.yielding).poll(cx);
                        return Poll::Pending;
                    }
                    Ok(None) => {
                        // This task is about to wait: an explicit owner's exit must wake it.
                        this.core.watch_owner();
                        this.core.maybe_contended.set(true);
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
            maybe_contended: Cell::new(false),
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
            self.maybe_contended.set(true);
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
            .or_else(|| self.lot.broken_by().into_iter().next())
        {
            Some(task) => broken_error(&task),
            None => Error::new(BrokenResourceError::new("the lock is broken")),
        }
    }

    /// Takes the lock for `me` if it is free and nobody is queued; [`WouldBlock`] otherwise,
    /// or the error of [`check`](Self::check).
    #[inline]
    pub(super) fn try_take(&self, me: Task, kind: Kind) -> Result<Held> {
        match self.take_if_free(me, kind) {
            Ok(held) => Ok(held),
            Err(me) => self.try_take_slow(me, kind),
        }
    }

    #[cold]
    #[inline(never)]
    fn try_take_slow(&self, me: Task, kind: Kind) -> Result<Held> {
        self.take_or_busy(me, kind)?
            .ok_or_else(|| Error::new(WouldBlock))
    }

    /// The common case of taking the lock, a free and healthy lock, in one borrow of each
    /// cell; `me` comes back if it is held, queued for or broken.
    #[inline(always)]
    fn take_if_free(&self, me: Task, kind: Kind) -> std::result::Result<Held, Task> {
        if self.maybe_contended.get() {
            return Err(me);
        }
        let mut st = self.state.borrow_mut();
        if st.owner.is_none() {
            let held = st.held_for(kind);
            st.owner = Some(me);
            st.held = held;
            return Ok(held);
        }
        Err(me)
    }

    /// Taking the lock past the fast path: it is held, or may be queued for or broken.
    /// `Ok(None)`: it is held or queued for, and the caller must wait.
    #[inline(never)]
    fn take_or_busy(&self, me: Task, kind: Kind) -> Result<Option<Held>> {
        self.check(&me)?;
        let mut st = self.state.borrow_mut();
        if st.owner.is_some() || !self.lot.is_empty() {
            return Ok(None);
        }
        // Free, unbroken and nobody queued: a stale `maybe_contended`.
        self.maybe_contended.set(st.watched);
        let held = st.held_for(kind);
        st.owner = Some(me);
        st.held = held;
        Ok(Some(held))
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

    /// Moves up to `n` of the oldest waiters of `from` (a `Condition`'s lot) to the lock's
    /// queue, where the holder's release hands the lock to them in turn.
    pub(super) fn take_waiters_from(self: &Rc<Self>, from: &ParkingLot, n: usize) {
        self.maybe_contended.set(true);
        from.repark(&self.lot, n);
        if !self.lot.is_empty() {
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
            self.maybe_contended.set(true);
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
    #[inline]
    pub(super) fn hand_off(&self) {
        self.hand_off_borrowed(self.state.borrow_mut());
    }

    /// `hand_off` with the state already borrowed (by a caller that checked it first).
    #[inline]
    fn hand_off_borrowed(&self, mut st: RefMut<'_, LockState>) {
        if self.maybe_contended.get() {
            drop(st);
            return self.hand_off_to_waiter();
        }
        st.held = Held::Free;
        let old = st.owner.take();
        drop(st);
        // Dropped with the state unborrowed: it may be the last handle to the task.
        drop(old);
    }

    /// `hand_off` with tasks maybe queued, or with the lot registered as the owner's breaker.
    #[cold]
    #[inline(never)]
    fn hand_off_to_waiter(&self) {
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

    #[inline]
    fn release_guard(&self, epoch: u64) {
        let st = self.state.borrow_mut();
        if st.held == Held::Guard(epoch) {
            self.hand_off_borrowed(st);
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
    ///
    /// A lock whose owner exited without releasing it fails with [`BrokenResourceError`], as
    /// `acquire` does. Trio's `acquire_nowait` says `WouldBlock` there; here the caller learns
    /// that waiting would never help (docs/decisions.md, "Sync primitives: differences kept").
    pub fn try_acquire(&self) -> Result<()> {
        self.core
            .try_take(current_task()?, Kind::Explicit)
            .map(drop)
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
        let held = self.core.try_take(current_task()?, Kind::Guard)?;
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
    /// `held` is a guard acquisition (`Kind::Guard`). Epochs start at 1, so a guard made from
    /// anything else would hold epoch 0 and release nothing.
    #[inline]
    fn new(core: Rc<LockCore>, held: Held) -> Self {
        let epoch = match held {
            Held::Guard(epoch) => epoch,
            _ => 0,
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
