//! Tasks: the unit the scheduler runs, and their table.
//!
//! A task owns one future, kept in a pooled block ([`TaskFuture`], `task_future.rs`). The run
//! keeps every live task in a [`TaskTable`] (a slab with generations, so a stale key from an
//! old waker finds nothing instead of the wrong task). Its waker (`waker.rs`) holds only that
//! key and the run's identity, so the future itself never leaves the run's thread.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::blocked::{BlockedOn, LotInfo};
use super::cancel::ScopeState;
use super::nursery::NurseryInner;
use super::parking::ParkingLot;
use super::storage::LocalMap;
use crate::error::Error;

pub(crate) use super::task_future::TaskFuture;

/// Where a task lives in the [`TaskTable`]: slot index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TaskKey {
    index: u32,
    generation: u32,
}

impl TaskKey {
    /// The key as one integer (what a waker stores).
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The key back from [`to_bits`](Self::to_bits).
    pub(crate) fn from_bits(bits: u64) -> Self {
        TaskKey {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// The run loop's view of one task.
pub(crate) struct TaskInner {
    pub(crate) id: u64,
    pub(crate) key: TaskKey,
    /// The name given at spawn, or, when none was, the future's type name (`TaskInner::name`
    /// turns that into a readable default).
    pub(crate) name: RefCell<Cow<'static, str>>,
    /// Whether `name` is the future's type name rather than a name given at spawn.
    pub(crate) default_name: Cell<bool>,
    /// Where the task was spawned (`start_soon`'s caller).
    pub(crate) spawn_site: Cell<&'static Location<'static>>,
    pub(crate) future: RefCell<Option<TaskFuture>>,
    pub(crate) waker: Waker,
    /// In the run queue (or in the batch being run) already.
    pub(crate) scheduled: Cell<bool>,
    /// The cancel status of the code being polled right now; scope futures swap it in and out.
    pub(crate) current_status: RefCell<Rc<ScopeState>>,
    /// Set when `started()` moved the task to another nursery: the next poll starts from the
    /// new nursery's status.
    pub(crate) reparented: Cell<bool>,
    /// The nursery this task is a child of (`None` only for the init task).
    pub(crate) parent: RefCell<Option<Rc<NurseryInner>>>,
    /// Position in the parent nursery's child list, for O(1) removal.
    pub(crate) index_in_parent: Cell<usize>,
    /// Nurseries opened by this task that are still open, outermost first.
    pub(crate) child_nurseries: RefCell<Vec<Weak<NurseryInner>>>,
    pub(crate) locals: RefCell<Option<Rc<LocalMap>>>,
    /// How many times the task has been polled: a schedule point happened between two reads
    /// that differ.
    pub(crate) polls: Cell<u64>,
    /// How many cancel points the task has passed (checked for cancellation at).
    pub(crate) cancel_points: Cell<u64>,
    /// The poll in which a cancel point found the task cancelled and yielded before raising
    /// (`TaskInner::entry_cancel_point`); `u64::MAX` when none.
    pub(crate) cancel_yielded_in: Cell<u64>,
    /// What the task last blocked on, and its poll count then: a dump trusts the record only
    /// while the counts match and the task is not runnable (`blocked.rs`).
    pub(crate) blocked_on: Cell<BlockedOn>,
    pub(crate) blocked_at: Cell<u64>,
    /// The `#[trio::wchan]` frames, made on the first poll of a frame (most tasks have none).
    pub(crate) wchans: RefCell<Option<Box<WchanFrames>>>,
    pub(crate) system: bool,
    pub(crate) finished: Cell<bool>,
    /// Parking lots to break when this task exits (`add_parking_lot_breaker`).
    pub(crate) lot_breakers: RefCell<Vec<ParkingLot>>,
    /// Wakers other than the task's own that blocked operations of this task were polled
    /// with (a combinator such as `FuturesUnordered` gives each child its own): cancellation
    /// must wake those too, or the combinator never re-polls the blocked child.
    pub(crate) cancel_wakers: RefCell<Vec<Waker>>,
    /// The lazy frame of a timeout (`timeout.rs`): infinite when there is none; the frame's
    /// deadline while its body runs its first poll without a node in the cancel tree; NaN
    /// once the frame's node was entered and waits in `lazy_scope` to be collected.
    pub(crate) lazy_deadline: Cell<f64>,
    /// The node of a lazy frame that something in its body needed (`timeout.rs`), for the
    /// timeout to collect when its body's poll returns.
    pub(crate) lazy_scope: RefCell<Option<Rc<ScopeState>>>,
}

/// How many foreign wakers a task keeps before waking them all and starting over. Entries
/// of operations that already finished are never removed one by one; a spurious wake is
/// harmless (still-blocked operations register again), so the list is flushed instead.
const MAX_CANCEL_WAKERS: usize = 32;

/// Reusing the allocation of a finished task (`Runner::recycle_task` and `Runner::spawn`).
///
/// Both work field by field on the allocation, so no whole `TaskInner` (about 250 bytes) is
/// built on the stack and copied in or out. The patterns name every field, so a new field
/// must be handled here too. `vacate` drops what the task owned in place rather than handing
/// it back.
impl TaskInner {
    /// Empties a finished task in place: drops everything it owned (the caller holds no
    /// runtime borrows); the plain fields are overwritten by `occupy`. The waker stays:
    /// `WakerPool::rekey` reuses it for the next task if nobody else holds a clone. The lists
    /// keep their capacity for the next task.
    #[inline]
    pub(crate) fn vacate(&mut self, root: &Rc<ScopeState>) {
        let TaskInner {
            id: _,
            key: _,
            name,
            default_name: _,
            spawn_site: _,
            future,
            waker: _,
            scheduled: _,
            current_status,
            reparented: _,
            parent,
            index_in_parent: _,
            child_nurseries,
            locals,
            polls: _,
            cancel_points: _,
            cancel_yielded_in: _,
            blocked_on: _,
            blocked_at: _,
            wchans,
            system: _,
            finished: _,
            lot_breakers,
            cancel_wakers,
            lazy_deadline: _,
            lazy_scope: _,
        } = self;
        cancel_wakers.get_mut().clear();
        *name.get_mut() = Cow::Borrowed("");
        *future.get_mut() = None;
        *current_status.get_mut() = root.clone();
        *parent.get_mut() = None;
        child_nurseries.get_mut().clear();
        *locals.get_mut() = None;
        lot_breakers.get_mut().clear();
        if let Some(frames) = wchans.get_mut() {
            frames.clear();
        }
    }

    /// Fills a vacated task in place with a new task, as `Runner::spawn` builds one (its
    /// waker was rekeyed by `WakerPool::rekey`). The lists were emptied by `vacate`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn occupy(
        &mut self,
        id: u64,
        key: TaskKey,
        label: TaskLabel,
        future: TaskFuture,
        status: Rc<ScopeState>,
        parent: Rc<NurseryInner>,
        index: usize,
        locals: Option<Rc<LocalMap>>,
        system: bool,
    ) {
        let TaskInner {
            id: t_id,
            key: t_key,
            name: t_name,
            default_name,
            spawn_site,
            future: t_future,
            waker: _,
            scheduled,
            current_status,
            reparented,
            parent: t_parent,
            index_in_parent,
            child_nurseries,
            locals: t_locals,
            polls,
            cancel_points,
            cancel_yielded_in,
            blocked_on,
            blocked_at,
            wchans: _,
            system: t_system,
            finished,
            lot_breakers,
            cancel_wakers,
            lazy_deadline,
            lazy_scope,
        } = self;
        debug_assert!(cancel_wakers.get_mut().is_empty());
        debug_assert!(lazy_scope.get_mut().is_none());
        lazy_deadline.set(f64::INFINITY);
        debug_assert!(child_nurseries.get_mut().is_empty());
        debug_assert!(lot_breakers.get_mut().is_empty());
        *t_id = id;
        *t_key = key;
        *t_name.get_mut() = label.name;
        default_name.set(label.is_type_name);
        spawn_site.set(label.site);
        *t_future.get_mut() = Some(future);
        scheduled.set(false);
        *current_status.get_mut() = status;
        reparented.set(false);
        *t_parent.get_mut() = Some(parent);
        index_in_parent.set(index);
        *t_locals.get_mut() = locals;
        polls.set(0);
        cancel_points.set(0);
        cancel_yielded_in.set(u64::MAX);
        blocked_on.set(BlockedOn::Unknown);
        blocked_at.set(u64::MAX);
        *t_system = system;
        finished.set(false);
    }
}

/// The `#[trio::wchan]` frames of a task (`dump.rs` pushes and pops them around each poll
/// of a frame).
#[derive(Default)]
pub(crate) struct WchanFrames {
    /// The frames being polled now, outermost first.
    pub(crate) live: Vec<&'static str>,
    /// The frames the task was in when a frame last returned `Pending`, outermost first.
    pub(crate) blocked: Vec<&'static str>,
    /// The task's poll count when `blocked` was taken.
    pub(crate) blocked_at: u64,
}

impl WchanFrames {
    fn clear(&mut self) {
        self.live.clear();
        self.blocked.clear();
        self.blocked_at = u64::MAX;
    }
}

/// What a task is called, as `spawn` records it.
pub(crate) struct TaskLabel {
    pub(crate) name: Cow<'static, str>,
    /// `name` is the future's type name (no name was given).
    pub(crate) is_type_name: bool,
    pub(crate) site: &'static Location<'static>,
}

impl TaskLabel {
    /// A name given by the caller.
    pub(crate) fn given(name: Cow<'static, str>, site: &'static Location<'static>) -> Self {
        TaskLabel {
            name,
            is_type_name: false,
            site,
        }
    }

    /// No name given: the task's name derives from its future's type `F`.
    pub(crate) fn of_type<F>(site: &'static Location<'static>) -> Self {
        TaskLabel {
            name: Cow::Borrowed(std::any::type_name::<F>()),
            is_type_name: true,
            site,
        }
    }
}

/// A readable default name from a future's type name, as Trio names a task after its
/// function: the async fn the future came from (`fetch` for `start_soon(fetch(url))`,
/// `Server::handle` for a method), a hand-written future's type, or, for an async block
/// inside an async fn (whose type says nothing a reader could use), the spawn site.
pub(crate) fn default_task_name(type_name: &str, site: &Location<'_>) -> String {
    let mut path = String::with_capacity(type_name.len());
    let mut depth = 0usize;
    for c in type_name.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => path.push(c),
            _ => {}
        }
    }
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let closures = segments
        .iter()
        .rev()
        .take_while(|s| **s == "{{closure}}")
        .count();
    let named = &segments[..segments.len() - closures];
    match (closures, named) {
        (0 | 1, [.., owner, function]) if owner.starts_with(char::is_uppercase) => {
            format!("{owner}::{function}")
        }
        (0 | 1, [.., function]) => (*function).to_string(),
        _ => format!("{}:{}", site.file(), site.line()),
    }
}

impl TaskInner {
    /// The task's name: the one it was given, or a default from its future (see
    /// [`default_task_name`]).
    ///
    /// A default name is worked out once, on first use, and kept in place of the type name.
    pub(crate) fn display_name(&self) -> String {
        if self.default_name.replace(false) {
            let mut name = self.name.borrow_mut();
            *name = Cow::Owned(default_task_name(&name, self.spawn_site.get()));
        }
        self.name.borrow().to_string()
    }

    /// Whether `waker` wakes this task through its own waker (not a combinator's).
    ///
    /// A task polled by `step` is given its own waker by reference, so comparing addresses
    /// settles the common case before `will_wake`'s comparison (a combinator's context may
    /// hold a clone).
    #[inline(always)]
    pub(crate) fn is_own_waker(&self, waker: &Waker) -> bool {
        std::ptr::eq(waker, &self.waker) || waker.will_wake(&self.waker)
    }

    /// Records what the task is about to block on (for task dumps; `blocked.rs`).
    #[inline(always)]
    pub(crate) fn note_blocked(&self, on: BlockedOn) {
        self.blocked_on.set(on);
        self.blocked_at.set(self.polls.get());
    }

    /// Forgets a record of the lot `info` (its park is going away without a poll of the task).
    #[inline]
    pub(crate) fn forget_lot(&self, info: NonNull<LotInfo>) {
        if matches!(self.blocked_on.get(), BlockedOn::Lot(p) if p == info) {
            self.blocked_on.set(BlockedOn::Unknown);
        }
    }

    /// Points a record of the lot `from` at the lot `to` (its park was moved by `repark`).
    pub(crate) fn move_lot(&self, from: NonNull<LotInfo>, to: NonNull<LotInfo>) {
        if matches!(self.blocked_on.get(), BlockedOn::Lot(p) if p == from) {
            self.blocked_on.set(BlockedOn::Lot(to));
        }
    }

    /// Forgets whatever the task recorded.
    pub(crate) fn forget_blocked(&self) {
        self.blocked_on.set(BlockedOn::Unknown);
    }

    /// What the task blocked on in its last poll, if it recorded it then. The caller knows
    /// the task is neither running nor runnable (`blocked.rs`).
    pub(crate) fn blocked_record(&self) -> BlockedOn {
        if self.blocked_at.get() == self.polls.get() {
            self.blocked_on.get()
        } else {
            BlockedOn::Unknown
        }
    }

    /// The `#[trio::wchan]` frames the task blocked in during its last poll, outermost first.
    pub(crate) fn blocked_wchans(&self) -> Vec<&'static str> {
        match &*self.wchans.borrow() {
            Some(frames) if frames.blocked_at == self.polls.get() => frames.blocked.clone(),
            _ => Vec::new(),
        }
    }

    /// Counts a cancel point of this task.
    #[inline(always)]
    pub(crate) fn count_cancel_point(&self) {
        self.cancel_points.set(self.cancel_points.get() + 1);
    }

    /// The cancel point an operation makes on entry, before it tries anything: `Ok` when the
    /// task is not cancelled. When it is, Trio's rule holds: a checkpoint that raises
    /// `Cancelled` has yielded first. So the first time, the task is rescheduled and this
    /// returns `Pending` (the caller returns `Pending` too, and starts over on its next poll);
    /// in the very next poll it returns the `Cancelled`. A loop that catches `Cancelled` and
    /// tries again thus yields on every turn instead of starving the other tasks.
    #[inline]
    pub(crate) fn entry_cancel_point(&self, cx: &Context<'_>) -> Poll<Result<(), Error>> {
        self.count_cancel_point();
        if !self.current_status.borrow().is_cancelled() {
            return Poll::Ready(Ok(()));
        }
        self.cancelled_entry(cx)
    }

    /// The cancelled half of [`entry_cancel_point`](Self::entry_cancel_point), for callers
    /// that checked the flag themselves.
    #[cold]
    #[inline(never)]
    pub(crate) fn cancelled_entry(&self, cx: &Context<'_>) -> Poll<Result<(), Error>> {
        let polls = self.polls.get();
        if self.cancel_yielded_in.get() == polls.wrapping_sub(1) {
            self.cancel_yielded_in.set(u64::MAX);
            return Poll::Ready(Err(Error::new(
                self.current_status.borrow().cancelled_error(),
            )));
        }
        self.cancel_yielded_in.set(polls);
        super::run::schedule_point(cx);
        Poll::Pending
    }

    /// Called by a blocking operation about to return `Pending` with `waker`: if that is not
    /// the task's own waker, cancellation of the task will wake it too.
    pub(crate) fn register_cancel_waker(&self, waker: &Waker) {
        if self.is_own_waker(waker) {
            return;
        }
        let flushed = {
            let mut list = self.cancel_wakers.borrow_mut();
            if list.iter().any(|w| w.will_wake(waker)) {
                return;
            }
            let flushed = if list.len() >= MAX_CANCEL_WAKERS {
                std::mem::take(&mut *list)
            } else {
                Vec::new()
            };
            list.push(waker.clone());
            flushed
        };
        for w in flushed {
            w.wake();
        }
    }

    /// Wakes (and forgets) the foreign wakers of blocked operations: the task's cancel status
    /// just became cancelled.
    pub(crate) fn wake_cancel_wakers(&self) {
        let list = std::mem::take(&mut *self.cancel_wakers.borrow_mut());
        for w in list {
            w.wake();
        }
    }
}

/// One table slot: a generation and maybe a task.
struct Slot {
    generation: u32,
    task: Option<Rc<TaskInner>>,
}

/// Every live task of a run, by key.
#[derive(Default)]
pub(crate) struct TaskTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl TaskTable {
    /// The key the next `insert` will use.
    pub(crate) fn next_key(&self) -> TaskKey {
        match self.free.last() {
            Some(&index) => TaskKey {
                index,
                generation: self.slots[index as usize].generation,
            },
            None => TaskKey {
                index: self.slots.len() as u32,
                generation: 0,
            },
        }
    }

    /// Stores a task under the key `next_key` returned.
    #[inline]
    pub(crate) fn insert(&mut self, task: Rc<TaskInner>) {
        debug_assert_eq!(task.key, self.next_key());
        self.live += 1;
        match self.free.pop() {
            Some(index) => self.slots[index as usize].task = Some(task),
            None => self.slots.push(Slot {
                generation: 0,
                task: Some(task),
            }),
        }
    }

    pub(crate) fn get(&self, key: TaskKey) -> Option<&Rc<TaskInner>> {
        let slot = self.slots.get(key.index as usize)?;
        if slot.generation == key.generation {
            slot.task.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, key: TaskKey) -> Option<Rc<TaskInner>> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let task = slot.task.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.live -= 1;
        Some(task)
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Rc<TaskInner>> {
        self.slots.iter().filter_map(|s| s.task.as_ref())
    }
}

/// A handle to a task of the current run: its identity, name and place in the task tree.
///
/// Handles are cheap to clone and compare by identity. They are `!Send`: tasks live on their
/// run's thread.
#[derive(Clone)]
pub struct Task {
    pub(crate) inner: Rc<TaskInner>,
}

impl Task {
    pub(crate) fn from_inner(inner: Rc<TaskInner>) -> Self {
        Task { inner }
    }

    /// A number unique among the tasks of this run.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The task's name: the one it was given, or a default from what it runs (the async
    /// fn's name, as Trio's; for an async block, the place it was spawned).
    pub fn name(&self) -> String {
        self.inner.display_name()
    }

    /// Whether this is a system task (spawned with `spawn_system_task`, or the init task).
    pub fn is_system(&self) -> bool {
        self.inner.system
    }

    /// The nursery the task is a child of (or was, once it has finished); `None` for the
    /// root (init) task.
    pub fn parent_nursery(&self) -> Option<crate::Nursery> {
        self.inner
            .parent
            .borrow()
            .clone()
            .map(crate::Nursery::from_inner)
    }

    /// The nurseries this task has open right now, outermost first.
    pub fn child_nurseries(&self) -> Vec<crate::Nursery> {
        self.inner
            .child_nurseries
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|n| !n.closed.get())
            .map(crate::Nursery::from_inner)
            .collect()
    }

    /// The outermost `#[trio::wchan]` frame this task is blocked in (`None` if it is not
    /// blocked inside one, or not blocked).
    pub fn wchan(&self) -> Option<&'static str> {
        self.inner.blocked_wchans().first().copied()
    }

    /// Every `#[trio::wchan]` frame this task is blocked in, outermost first (what task dumps
    /// show as its wait channels).
    pub fn wait_channels(&self) -> Vec<&'static str> {
        self.inner.blocked_wchans()
    }

    /// Where the task was spawned: the caller of `start_soon`, `start_soon_named`, `start`
    /// or `spawn_system_task`.
    pub fn spawn_site(&self) -> &'static Location<'static> {
        self.inner.spawn_site.get()
    }

    /// For a task started with [`Nursery::start`](crate::Nursery::start) that has not called
    /// [`started`](crate::TaskStatus::started) yet: the nursery it will move to. `None`
    /// otherwise (as Trio's `eventual_parent_nursery`).
    pub fn eventual_parent_nursery(&self) -> Option<crate::Nursery> {
        let parent = self.inner.parent.borrow().clone()?;
        let target = parent.start_target.borrow().clone()?;
        Some(crate::Nursery::from_inner(target))
    }

    /// How many times the run loop has polled the task: two readings that differ have a
    /// schedule point between them (the checkpoint assertions of testing tools use this).
    pub fn schedule_points(&self) -> u64 {
        self.inner.polls.get()
    }

    /// How many cancel points the task has passed: every checkpoint and every blocking trio
    /// operation checks for cancellation on entry and counts one. Two readings that differ
    /// have a cancel point between them (what Trio's `assert_checkpoints` looks at, with
    /// [`schedule_points`](Self::schedule_points)).
    pub fn cancel_points(&self) -> u64 {
        self.inner.cancel_points.get()
    }

    /// Whether the task has finished (its handle outlived it).
    pub fn is_finished(&self) -> bool {
        self.inner.finished.get()
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for Task {}

impl std::hash::Hash for Task {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.id.hash(state);
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.inner.id)
            .field("name", &self.inner.display_name())
            .finish()
    }
}
