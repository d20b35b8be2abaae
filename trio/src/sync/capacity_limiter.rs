//! [`CapacityLimiter`]: a semaphore whose tokens are held by named borrowers.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::rc::Rc;

use super::usage;
use crate::lowlevel::{
    DescribeWait, Park, ParkingLot, Task, cancel_shielded_checkpoint, checkpoint_if_cancelled,
    current_task,
};
use crate::{Error, Result, WouldBlock};

/// Who holds a token of a [`CapacityLimiter`].
///
/// Trio accepts any hashable object; here a borrower is either a task (the default: the
/// calling task) or a number of your choosing, for work done on behalf of something that is
/// not a task (a thread, a connection id, ...). Both convert with `into()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Borrower {
    /// A task.
    Task(Task),
    /// An id chosen by the caller.
    Id(u64),
    /// A [`trio::to_thread`](crate::to_thread) call (numbered in the process): the token is
    /// held for its worker thread, from before the thread starts until it has finished.
    ToThread(u64),
}

impl From<Task> for Borrower {
    fn from(task: Task) -> Self {
        Borrower::Task(task)
    }
}

impl From<u64> for Borrower {
    fn from(id: u64) -> Self {
        Borrower::Id(id)
    }
}

impl std::fmt::Display for Borrower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Borrower::Task(task) => write!(f, "task {:?}", task.name()),
            Borrower::Id(id) => write!(f, "borrower {id}"),
            Borrower::ToThread(n) => write!(f, "trio::to_thread call {n}"),
        }
    }
}

/// Hashes borrowers (task ids, numbers) with a multiply per word. The keys are ids the
/// program picks, not outside input, so SipHash's resistance to chosen collisions buys
/// nothing here, and it was most of the limiter's cost (each `to_thread` call hashes a
/// borrower about ten times).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

struct LimState {
    total: usize,
    /// Borrower → order of acquisition (for stable statistics).
    borrowers: IdMap<Borrower, u64>,
    next_seq: u64,
    /// Id of a parked task → the borrower it waits for. The releaser learns which task it
    /// woke from `ParkingLot::unpark_one` and moves that borrower in at once.
    pending: IdMap<u64, Borrower>,
    pending_borrowers: IdSet<Borrower>,
}

impl LimState {
    fn insert(&mut self, borrower: Borrower) {
        self.next_seq += 1;
        self.borrowers.insert(borrower, self.next_seq);
    }
}

struct LimCore {
    state: RefCell<LimState>,
    lot: ParkingLot,
}

impl DescribeWait for LimCore {
    /// "2 of 2 tokens borrowed (task "a", task "b"); 1 waiting".
    fn describe_wait(&self) -> String {
        let Ok(st) = self.state.try_borrow() else {
            return format!("{} waiting", self.lot.len());
        };
        let mut borrowers: Vec<_> = st.borrowers.iter().collect();
        borrowers.sort_by_key(|(_, seq)| **seq);
        let names: Vec<String> = borrowers.iter().map(|(b, _)| b.to_string()).collect();
        let by = if names.is_empty() {
            String::new()
        } else {
            format!(" by {}", names.join(", "))
        };
        format!(
            "{} of {} tokens borrowed{by}; {} waiting",
            st.borrowers.len(),
            st.total,
            self.lot.len()
        )
    }
}

impl LimCore {
    fn try_take(&self, borrower: &Borrower) -> Result<()> {
        let mut st = self.state.borrow_mut();
        if st.borrowers.contains_key(borrower) {
            return Err(usage(format!(
                "{borrower} is already holding one of this CapacityLimiter's tokens"
            )));
        }
        if st.pending_borrowers.contains(borrower) {
            return Err(usage(format!(
                "{borrower} is already waiting for one of this CapacityLimiter's tokens"
            )));
        }
        if st.borrowers.len() < st.total && self.lot.is_empty() {
            st.insert(borrower.clone());
            Ok(())
        } else {
            Err(Error::new(WouldBlock))
        }
    }

    /// Hands free tokens to the oldest waiters.
    fn wake_waiters(&self) {
        let mut st = self.state.borrow_mut();
        while st.borrowers.len() < st.total {
            let Some(task) = self.lot.unpark_one() else {
                break;
            };
            if let Some(borrower) = st.pending.remove(&task.id()) {
                st.pending_borrowers.remove(&borrower);
                st.insert(borrower);
            } else {
                debug_assert!(false, "a parked task without a pending borrower");
            }
        }
    }

    fn release(&self, borrower: &Borrower) -> Result<()> {
        if self.state.borrow_mut().borrowers.remove(borrower).is_none() {
            return Err(usage(format!(
                "{borrower} isn't holding any of this CapacityLimiter's tokens"
            )));
        }
        self.wake_waiters();
        Ok(())
    }

    fn unregister(&self, task_id: u64) {
        let mut st = self.state.borrow_mut();
        if let Some(borrower) = st.pending.remove(&task_id) {
            st.pending_borrowers.remove(&borrower);
        }
    }

    async fn acquire(&self, borrower: &Borrower) -> Result<()> {
        checkpoint_if_cancelled().await?;
        match self.try_take(borrower) {
            Ok(()) => {
                let mut undo = Undo {
                    core: self,
                    borrower,
                    task_id: None,
                    park: None,
                    owned: true,
                };
                cancel_shielded_checkpoint().await;
                undo.owned = false;
                return Ok(());
            }
            Err(e) if e.is::<WouldBlock>() => {}
            Err(e) => return Err(e),
        }
        let me = current_task()?;
        {
            let mut st = self.state.borrow_mut();
            if st.pending.contains_key(&me.id()) {
                return Err(usage(format!(
                    "task {:?} is already waiting for a token of this CapacityLimiter",
                    me.name()
                )));
            }
            st.pending.insert(me.id(), borrower.clone());
            st.pending_borrowers.insert(borrower.clone());
        }
        let park = std::pin::pin!(self.lot.park());
        let mut wait = Undo {
            core: self,
            borrower,
            task_id: Some(me.id()),
            park: Some(park),
            owned: false,
        };
        let parked = match wait.park.as_mut() {
            Some(park) => park.as_mut().await,
            None => unreachable!("the park was just set"),
        };
        if parked.is_ok() {
            // The releaser moved the borrower in.
            wait.park = None;
            wait.task_id = None;
        }
        parked
    }
}

/// Undoes a half-finished acquire whose future is dropped (or that failed while waiting).
struct Undo<'a, 'p> {
    core: &'a LimCore,
    borrower: &'a Borrower,
    task_id: Option<u64>,
    park: Option<Pin<&'p mut Park>>,
    owned: bool,
}

impl Drop for Undo<'_, '_> {
    fn drop(&mut self) {
        if self.owned || self.park.as_ref().is_some_and(|park| park.is_unparked()) {
            // A token was taken or handed over: pass it on.
            let _ = self.core.release(self.borrower);
        } else if let Some(task_id) = self.task_id {
            self.core.unregister(task_id);
        }
    }
}

/// Statistics of a [`CapacityLimiter`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CapacityLimiterStatistics {
    /// Tokens held.
    pub borrowed_tokens: usize,
    /// The limit.
    pub total_tokens: usize,
    /// Who holds them, in the order they got them.
    pub borrowers: Vec<Borrower>,
    /// Tasks waiting for a token.
    pub tasks_waiting: usize,
}

/// Limits how many borrowers use a resource at once: at most `total_tokens`, one token each.
///
/// A semaphore whose tokens remember who holds them: a borrower (by default the calling task,
/// see [`Borrower`]) holds at most one token, and only a holder can release. Release hands the
/// token straight to the oldest waiter (fair FIFO). The limit can change at any time with
/// [`set_total_tokens`](Self::set_total_tokens); raising it wakes waiters at once. Clones are
/// handles to the same limiter.
///
/// A task waits for at most one token of a given limiter at a time (two concurrent acquires
/// from one task, as in a `join`, are a [`UsageError`](crate::UsageError)): the releaser
/// recognises the waiter it wakes by its task.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let limiter = trio::CapacityLimiter::new(2);
///     let _mine = limiter.acquire_guard().await?;
///     limiter.acquire_on_behalf_of(7u64).await?;
///     assert_eq!(limiter.available_tokens(), 0);
///     limiter.release_on_behalf_of(7u64)?;
///     assert_eq!(limiter.statistics().borrowed_tokens, 1);
///     Ok(())
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct CapacityLimiter {
    core: Rc<LimCore>,
}

impl std::fmt::Debug for CapacityLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityLimiter")
            .field("borrowed_tokens", &self.borrowed_tokens())
            .field("total_tokens", &self.total_tokens())
            .field("tasks_waiting", &self.core.lot.len())
            .finish()
    }
}

impl CapacityLimiter {
    /// A limiter with `total_tokens` tokens (0 is allowed: nobody gets one until the limit is
    /// raised).
    pub fn new(total_tokens: usize) -> Self {
        let core = Rc::new(LimCore {
            state: RefCell::new(LimState {
                total: total_tokens,
                borrowers: IdMap::default(),
                next_seq: 0,
                pending: IdMap::default(),
                pending_borrowers: IdSet::default(),
            }),
            lot: ParkingLot::with_label("CapacityLimiter::acquire"),
        });
        core.lot.set_describer(&core);
        CapacityLimiter { core }
    }

    /// The limit.
    pub fn total_tokens(&self) -> usize {
        self.core.state.borrow().total
    }

    /// Changes the limit. Raising it hands the new tokens to waiters at once; lowering it
    /// below the tokens held takes nothing back (new borrowers wait until enough are
    /// released). Not a checkpoint.
    pub fn set_total_tokens(&self, total_tokens: usize) {
        self.core.state.borrow_mut().total = total_tokens;
        self.core.wake_waiters();
    }

    /// Tokens held now.
    pub fn borrowed_tokens(&self) -> usize {
        self.core.state.borrow().borrowers.len()
    }

    /// Tokens free now (0 if the limit was lowered below the tokens held).
    pub fn available_tokens(&self) -> usize {
        let st = self.core.state.borrow();
        st.total.saturating_sub(st.borrowers.len())
    }

    /// Takes a token for the current task.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when a token was free.
    ///
    /// # Cancel safety
    /// As [`acquire_on_behalf_of`](Self::acquire_on_behalf_of).
    pub async fn acquire(&self) -> Result<()> {
        let borrower = Borrower::Task(current_task()?);
        self.core.acquire(&borrower).await
    }

    /// Takes a token for `borrower`, waiting for one if none is free (or if others already
    /// wait). Fails with a [`UsageError`](crate::UsageError) if `borrower` already holds or
    /// waits for a token of this limiter.
    ///
    /// # Checkpoint
    /// Yes: a cancel point on entry, and a schedule point even when a token was free.
    ///
    /// # Cancel safety
    /// Safe. Cancelled or dropped while waiting, nothing was taken. If a token was handed
    /// over just before the cancellation, it returns `Ok` (the borrower holds it); if the
    /// future is dropped instead, the token passes on to the next waiter.
    pub async fn acquire_on_behalf_of(&self, borrower: impl Into<Borrower>) -> Result<()> {
        let borrower = borrower.into();
        self.core.acquire(&borrower).await
    }

    /// Takes a token for the current task if one is free and nobody waits; [`WouldBlock`]
    /// otherwise. Not a checkpoint.
    pub fn try_acquire(&self) -> Result<()> {
        self.core.try_take(&Borrower::Task(current_task()?))
    }

    /// [`try_acquire`](Self::try_acquire) for `borrower`. Not a checkpoint.
    pub fn try_acquire_on_behalf_of(&self, borrower: impl Into<Borrower>) -> Result<()> {
        self.core.try_take(&borrower.into())
    }

    /// Releases the current task's token. Not a checkpoint.
    pub fn release(&self) -> Result<()> {
        self.core.release(&Borrower::Task(current_task()?))
    }

    /// Releases `borrower`'s token, handing it to the oldest waiter. Fails with a
    /// [`UsageError`](crate::UsageError) if `borrower` holds none. Not a checkpoint.
    pub fn release_on_behalf_of(&self, borrower: impl Into<Borrower>) -> Result<()> {
        self.core.release(&borrower.into())
    }

    /// Takes a token for the current task and returns a guard that releases it on drop.
    ///
    /// # Checkpoint
    /// Yes, as [`acquire`](Self::acquire).
    ///
    /// # Cancel safety
    /// As [`acquire_on_behalf_of`](Self::acquire_on_behalf_of): either no guard and no token,
    /// or a guard.
    pub async fn acquire_guard(&self) -> Result<CapacityLimiterGuard> {
        let borrower = Borrower::Task(current_task()?);
        self.acquire_guard_on_behalf_of(borrower).await
    }

    /// Takes a token for `borrower` and returns a guard that releases it on drop.
    ///
    /// # Checkpoint
    /// Yes, as [`acquire_on_behalf_of`](Self::acquire_on_behalf_of).
    ///
    /// # Cancel safety
    /// As [`acquire_on_behalf_of`](Self::acquire_on_behalf_of).
    pub async fn acquire_guard_on_behalf_of(
        &self,
        borrower: impl Into<Borrower>,
    ) -> Result<CapacityLimiterGuard> {
        let borrower = borrower.into();
        self.core.acquire(&borrower).await?;
        Ok(CapacityLimiterGuard {
            core: self.core.clone(),
            borrower,
        })
    }

    /// Trio's statistics: tokens held and by whom, the limit, and how many tasks wait.
    pub fn statistics(&self) -> CapacityLimiterStatistics {
        let st = self.core.state.borrow();
        let mut borrowers: Vec<_> = st.borrowers.iter().collect();
        borrowers.sort_by_key(|(_, seq)| **seq);
        CapacityLimiterStatistics {
            borrowed_tokens: st.borrowers.len(),
            total_tokens: st.total,
            borrowers: borrowers.into_iter().map(|(b, _)| b.clone()).collect(),
            tasks_waiting: self.core.lot.len(),
        }
    }
}

/// Holds a [`CapacityLimiter`] token for a borrower and releases it when dropped.
#[must_use = "the token is released as soon as the guard is dropped"]
pub struct CapacityLimiterGuard {
    core: Rc<LimCore>,
    borrower: Borrower,
}

impl CapacityLimiterGuard {
    /// The borrower holding the token.
    pub fn borrower(&self) -> &Borrower {
        &self.borrower
    }
}

impl std::fmt::Debug for CapacityLimiterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapacityLimiterGuard")
            .field("borrower", &self.borrower)
            .finish()
    }
}

impl Drop for CapacityLimiterGuard {
    fn drop(&mut self) {
        // Already released another way: nothing to do.
        let _ = self.core.release(&self.borrower);
    }
}
