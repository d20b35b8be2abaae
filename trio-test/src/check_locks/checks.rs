//! The checks of [`check_lock_like`](super::check_lock_like), one function each. They order
//! tasks with `wait_all_tasks_blocked` (never with sleeps), so they run on any clock.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use trio::lowlevel::{checkpoint, current_task, wait_all_tasks_blocked};
use trio::{CancelScope, Event, Result, open_nursery};

use super::LockLike;
use crate::checkpoints::Points;

/// Fails the suite: the message names the primitive and the check.
#[track_caller]
fn fail<L>(check: &str, message: std::fmt::Arguments<'_>) -> ! {
    panic!(
        "check_lock_like on {}: {check}: {message}",
        std::any::type_name::<L>()
    )
}

macro_rules! ensure {
    ($l:ty, $check:expr, $cond:expr, $($message:tt)+) => {
        if !$cond {
            fail::<$l>($check, format_args!($($message)+));
        }
    };
}

/// How a check holds the lock: `acquire` + `release`, or a guard dropped to release.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mode {
    Explicit,
    Guard,
}

enum Held<L: LockLike> {
    Explicit(L),
    Guard(L::Guard),
}

impl<L: LockLike> Held<L> {
    fn release(self) -> Result<()> {
        match self {
            Held::Explicit(lock) => lock.release(),
            Held::Guard(guard) => {
                drop(guard);
                Ok(())
            }
        }
    }
}

async fn hold<L: LockLike>(lock: &L, mode: Mode) -> Result<Held<L>> {
    match mode {
        Mode::Explicit => {
            lock.acquire().await?;
            Ok(Held::Explicit(lock.clone()))
        }
        Mode::Guard => Ok(Held::Guard(lock.acquire_guard().await?)),
    }
}

/// Polls `fut` once in the current task's context.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// Awaits `fut`; if it succeeded, it must have made a cancel point and a schedule point.
async fn expect_checkpoint<L, T>(
    check: &str,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let task = current_task()?;
    let before = Points::of(&task);
    let out = fut.await;
    if out.is_ok() {
        if let Some(missing) = before.missing_since(Points::of(&task)) {
            fail::<L>(check, format_args!("{what} returned Ok without {missing}"));
        }
    }
    out
}

/// Calls `f` (a sync method), which must make neither a cancel point nor a schedule point.
fn expect_no_checkpoint<L, T>(check: &str, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    let task = current_task()?;
    let before = Points::of(&task);
    let out = f();
    if let Some(made) = before.made_since(Points::of(&task)) {
        fail::<L>(check, format_args!("{what} made {made}"));
    }
    Ok(out)
}

fn is_cancelled<T>(result: &Result<T>) -> bool {
    matches!(result, Err(e) if e.is_cancelled())
}

/// A task's outcome, shared with the check that reads it.
type Slot<T> = Rc<RefCell<Option<T>>>;

/// An ordered log shared by the tasks of a check.
type Log<T> = Rc<RefCell<Vec<T>>>;

pub(super) async fn checkpoints<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "checkpoints";
    ensure!(
        L,
        CHECK,
        !lock.locked() && lock.tasks_waiting() == 0,
        "the maker must return a free primitive with nobody waiting"
    );
    expect_checkpoint::<L, _>(CHECK, "acquire on a free lock", lock.acquire()).await?;
    ensure!(
        L,
        CHECK,
        lock.locked(),
        "acquire returned Ok, yet the lock is not held"
    );
    expect_no_checkpoint::<L, _>(CHECK, "release", || lock.release())??;
    ensure!(L, CHECK, !lock.locked(), "release left the lock held");
    let guard =
        expect_checkpoint::<L, _>(CHECK, "acquire_guard on a free lock", lock.acquire_guard())
            .await?;
    ensure!(
        L,
        CHECK,
        lock.locked(),
        "acquire_guard returned, yet the lock is not held"
    );
    drop(guard);
    ensure!(
        L,
        CHECK,
        !lock.locked(),
        "dropping the guard left the lock held"
    );

    expect_no_checkpoint::<L, _>(CHECK, "try_acquire", || lock.try_acquire())??;
    ensure!(
        L,
        CHECK,
        lock.locked(),
        "try_acquire returned Ok, yet the lock is not held"
    );
    ensure!(
        L,
        CHECK,
        lock.try_acquire().is_err() && lock.locked(),
        "try_acquire on a held lock must fail"
    );
    lock.release()?;

    // In a cancelled scope the async methods fail even though the lock is free, and take
    // nothing; the sync ones are not checkpoints and work.
    let scope = CancelScope::new();
    scope.cancel();
    let (acquired, guarded) = scope
        .run(async {
            let acquired = lock.acquire().await;
            let guarded = lock.acquire_guard().await.map(drop);
            Ok((acquired, guarded))
        })
        .await?
        .unwrap_or_else(|| {
            fail::<L>(
                CHECK,
                format_args!("the scope absorbed a Cancelled its body never returned"),
            )
        });
    ensure!(
        L,
        CHECK,
        is_cancelled(&acquired) && is_cancelled(&guarded),
        "in a cancelled scope acquire and acquire_guard must fail with Cancelled \
         (got {acquired:?} and {guarded:?})"
    );
    ensure!(
        L,
        CHECK,
        !lock.locked(),
        "a cancelled acquire must take nothing"
    );
    let scope = CancelScope::new();
    scope.cancel();
    let sync_calls = scope
        .run(async {
            lock.try_acquire()?;
            lock.release()
        })
        .await;
    ensure!(
        L,
        CHECK,
        matches!(sync_calls, Ok(Some(()))),
        "try_acquire and release must work in a cancelled scope (got {sync_calls:?})"
    );
    Ok(())
}

/// Trio's `test_generic_lock_exclusion`.
pub(super) async fn exclusion<L: LockLike>(lock: L, mode: Mode) -> Result<()> {
    const CHECK: &str = "exclusion";
    const WORKERS: usize = 5;
    const LOOPS: usize = 10;
    let in_critical_section = Rc::new(Cell::new(false));
    let acquires = Rc::new(Cell::new(0));
    let (l, inside, count) = (lock.clone(), in_critical_section.clone(), acquires.clone());
    open_nursery(|nursery| async move {
        for _ in 0..WORKERS {
            let (lock, inside, count) = (l.clone(), inside.clone(), count.clone());
            nursery.start_soon(async move {
                for _ in 0..LOOPS {
                    let held = hold(&lock, mode).await?;
                    count.set(count.get() + 1);
                    ensure!(
                        L,
                        CHECK,
                        !inside.get(),
                        "two tasks in the critical section at once ({mode:?})"
                    );
                    inside.set(true);
                    checkpoint().await?;
                    checkpoint().await?;
                    inside.set(false);
                    held.release()?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })
    .await?;
    ensure!(
        L,
        CHECK,
        acquires.get() == WORKERS * LOOPS && !lock.locked(),
        "{} acquires of {} ({mode:?}), lock left held: {}",
        acquires.get(),
        WORKERS * LOOPS,
        lock.locked()
    );
    Ok(())
}

/// Trio's `test_generic_lock_fifo_fairness`, with a checkpoint while holding: tasks looping
/// over the lock take strict turns.
pub(super) async fn fair_turns<L: LockLike>(lock: L, mode: Mode) -> Result<()> {
    const CHECK: &str = "fair turns";
    const TASKS: usize = 3;
    const LOOPS: usize = 10;
    let order: Log<usize> = Rc::default();
    let (l, o) = (lock.clone(), order.clone());
    open_nursery(|nursery| async move {
        for id in 0..TASKS {
            let (lock, order) = (l.clone(), o.clone());
            nursery.start_soon(async move {
                for _ in 0..LOOPS {
                    let held = hold(&lock, mode).await?;
                    order.borrow_mut().push(id);
                    checkpoint().await?;
                    held.release()?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })
    .await?;
    let order = order.borrow();
    let distinct_first_round = (0..TASKS).all(|i| (0..i).all(|j| order[i] != order[j]));
    let round_robin = (TASKS..order.len()).all(|i| order[i] == order[i - TASKS]);
    ensure!(
        L,
        CHECK,
        order.len() == TASKS * LOOPS && distinct_first_round && round_robin,
        "tasks looping over the lock must take strict turns ({mode:?}); got {order:?}"
    );
    Ok(())
}

/// Trio's `test_generic_lock_acquire_nowait_blocks_acquire`.
pub(super) async fn try_acquire_blocks_acquire<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "try_acquire blocks acquire";
    let record: Log<&'static str> = Rc::default();
    let (l, r) = (lock.clone(), record.clone());
    lock.try_acquire()?;
    open_nursery(|nursery| async move {
        let (taker, log) = (l.clone(), r.clone());
        nursery.start_soon(async move {
            log.borrow_mut().push("started");
            taker.acquire().await?;
            taker.release()?;
            log.borrow_mut().push("finished");
            Ok(())
        })?;
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            *r.borrow() == ["started"] && l.tasks_waiting() == 1,
            "acquire must wait while try_acquire holds the lock (log {:?}, {} waiting)",
            r.borrow(),
            l.tasks_waiting()
        );
        l.release()
    })
    .await?;
    ensure!(
        L,
        CHECK,
        *record.borrow() == ["started", "finished"] && !lock.locked(),
        "the waiter must get the lock once released (log {:?})",
        record.borrow()
    );
    Ok(())
}

/// A release hands the lock to the oldest waiter at once; waiters get it in queue order.
pub(super) async fn hand_off_in_queue_order<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "hand-off";
    let order: Log<usize> = Rc::default();
    let (l, o) = (lock.clone(), order.clone());
    lock.acquire().await?;
    open_nursery(|nursery| async move {
        for id in 0..3 {
            let (lock, order) = (l.clone(), o.clone());
            nursery.start_soon(async move {
                lock.acquire().await?;
                order.borrow_mut().push(id);
                lock.release()
            })?;
            // One at a time, so the queue order is known.
            wait_all_tasks_blocked().await?;
        }
        ensure!(
            L,
            CHECK,
            l.locked() && l.tasks_waiting() == 3,
            "three waiters behind the holder: {} waiting",
            l.tasks_waiting()
        );
        l.release()?;
        ensure!(
            L,
            CHECK,
            l.locked() && l.tasks_waiting() == 2,
            "a release with waiters must hand the lock to the oldest at once \
             (locked: {}, waiting: {})",
            l.locked(),
            l.tasks_waiting()
        );
        let retake = l.try_acquire();
        ensure!(
            L,
            CHECK,
            matches!(&retake, Err(e) if e.is_would_block()),
            "the releaser must not take back a lock it handed over: try_acquire gave {retake:?}"
        );
        Ok(())
    })
    .await?;
    ensure!(
        L,
        CHECK,
        *order.borrow() == [0, 1, 2] && !lock.locked(),
        "waiters must get the lock in the order they queued; got {:?}",
        order.borrow()
    );
    Ok(())
}

/// What a waiter's cancel scope returned: `Ok(None)` when the scope absorbed a `Cancelled`.
type Outcome = Slot<Result<Option<()>>>;

/// Starts a task that waits for `lock` inside `scope`, stores what the scope returned in
/// `outcome`, and releases the lock if it got it.
fn start_cancellable_waiter<L: LockLike>(
    nursery: &trio::Nursery,
    lock: &L,
    scope: &CancelScope,
    outcome: &Outcome,
) -> Result<()> {
    let (lock, scope, out) = (lock.clone(), scope.clone(), outcome.clone());
    nursery.start_soon(async move {
        let got = scope.run(lock.acquire()).await;
        let holds = matches!(got, Ok(Some(())));
        *out.borrow_mut() = Some(got);
        if holds {
            ensure!(
                L,
                "cancel after hand-off",
                lock.locked(),
                "acquire returned Ok, yet the lock is not held"
            );
            lock.release()?;
        }
        Ok(())
    })
}

/// A waiter cancelled while it waits leaves the queue and takes nothing.
pub(super) async fn cancelled_waiter_takes_nothing<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "cancelled waiter";
    // Nobody behind it: the release leaves the lock free.
    lock.acquire().await?;
    let l = lock.clone();
    open_nursery(|nursery| async move {
        let (scope, outcome) = (CancelScope::new(), Outcome::default());
        start_cancellable_waiter(&nursery, &l, &scope, &outcome)?;
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            l.tasks_waiting() == 1,
            "the waiter must be queued"
        );
        scope.cancel();
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            matches!(*outcome.borrow(), Some(Ok(None))) && l.tasks_waiting() == 0,
            "a waiter whose scope is cancelled must return Cancelled and leave the queue \
             (got {:?}, {} still waiting)",
            outcome.borrow(),
            l.tasks_waiting()
        );
        l.release()?;
        ensure!(
            L,
            CHECK,
            !l.locked(),
            "the lock went to a waiter that was cancelled"
        );
        Ok(())
    })
    .await?;

    // Someone behind it: the lock goes to that one.
    lock.acquire().await?;
    let got: Log<&'static str> = Rc::default();
    let (l, g) = (lock.clone(), got.clone());
    open_nursery(|nursery| async move {
        let (scope, outcome) = (CancelScope::new(), Outcome::default());
        start_cancellable_waiter(&nursery, &l, &scope, &outcome)?;
        wait_all_tasks_blocked().await?;
        let (behind, log) = (l.clone(), g.clone());
        nursery.start_soon(async move {
            behind.acquire().await?;
            log.borrow_mut().push("behind");
            behind.release()
        })?;
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            l.tasks_waiting() == 2,
            "two waiters must be queued"
        );
        scope.cancel();
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            matches!(*outcome.borrow(), Some(Ok(None))) && l.tasks_waiting() == 1,
            "the cancelled waiter must return Cancelled and leave the queue (got {:?}, {} \
             still waiting)",
            outcome.borrow(),
            l.tasks_waiting()
        );
        l.release()
    })
    .await?;
    ensure!(
        L,
        CHECK,
        *got.borrow() == ["behind"] && !lock.locked(),
        "the waiter behind a cancelled one must get the lock"
    );
    Ok(())
}

/// A waiter handed the lock just before its cancellation returns `Ok` and holds it.
pub(super) async fn cancel_after_hand_off_completes<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "cancel after hand-off";
    lock.acquire().await?;
    let outcome = Outcome::default();
    let (l, out) = (lock.clone(), outcome.clone());
    open_nursery(|nursery| async move {
        let scope = CancelScope::new();
        start_cancellable_waiter(&nursery, &l, &scope, &out)?;
        wait_all_tasks_blocked().await?;
        l.release()?;
        scope.cancel();
        Ok(())
    })
    .await?;
    ensure!(
        L,
        CHECK,
        matches!(*outcome.borrow(), Some(Ok(Some(())))) && !lock.locked(),
        "a waiter handed the lock before its cancellation must return Ok holding it, and \
         release it (got {:?}; locked after: {})",
        outcome.borrow(),
        lock.locked()
    );
    Ok(())
}

/// A waiter's future dropped after the lock was handed to it passes the lock on.
pub(super) async fn dropped_after_hand_off_passes_on<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "dropped after hand-off";
    // To the next waiter.
    lock.acquire().await?;
    let log: Log<&'static str> = Rc::default();
    let (l, g) = (lock.clone(), log.clone());
    open_nursery(|nursery| async move {
        let go = Event::new();
        let (dropper, go2, log) = (l.clone(), go.clone(), g.clone());
        nursery.start_soon(async move {
            let mut fut = Box::pin(dropper.acquire());
            let first = poll_once(&mut fut).await;
            ensure!(
                L,
                CHECK,
                first.is_pending(),
                "acquire on a held lock must wait"
            );
            go2.wait().await?;
            drop(fut); // the lock was handed to it meanwhile
            log.borrow_mut().push("dropped");
            Ok(())
        })?;
        wait_all_tasks_blocked().await?;
        let (next, log) = (l.clone(), g.clone());
        nursery.start_soon(async move {
            next.acquire().await?;
            log.borrow_mut().push("next");
            next.release()
        })?;
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            l.tasks_waiting() == 2,
            "two waiters must be queued"
        );
        l.release()?;
        go.set();
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            *g.borrow() == ["dropped", "next"],
            "an acquire dropped after the lock was handed to it must pass it to the next \
             waiter (log {:?}, locked: {})",
            g.borrow(),
            l.locked()
        );
        Ok(())
    })
    .await?;
    ensure!(L, CHECK, !lock.locked(), "the lock was left held");

    // Back to free, with nobody behind (through a guard future this time).
    lock.acquire().await?;
    let l = lock.clone();
    open_nursery(|nursery| async move {
        let go = Event::new();
        let (dropper, go2) = (l.clone(), go.clone());
        nursery.start_soon(async move {
            let mut fut = Box::pin(dropper.acquire_guard());
            let first = poll_once(&mut fut).await;
            ensure!(
                L,
                CHECK,
                first.is_pending(),
                "acquire_guard on a held lock must wait"
            );
            go2.wait().await?;
            drop(fut);
            Ok(())
        })?;
        wait_all_tasks_blocked().await?;
        l.release()?;
        go.set();
        wait_all_tasks_blocked().await?;
        ensure!(
            L,
            CHECK,
            !l.locked(),
            "an acquire_guard dropped after the lock was handed to it, with nobody behind, \
             must leave the lock free"
        );
        Ok(())
    })
    .await
}

/// An acquire dropped during its fast path's schedule point gives the lock back; one dropped
/// while queued leaves the queue.
pub(super) async fn dropped_while_yielding_or_waiting<L: LockLike>(lock: L) -> Result<()> {
    const CHECK: &str = "dropped while yielding or waiting";
    let mut fut = Box::pin(lock.acquire());
    ensure!(
        L,
        CHECK,
        poll_once(&mut fut).await.is_pending(),
        "acquire on a free lock must yield (a schedule point)"
    );
    ensure!(
        L,
        CHECK,
        lock.locked(),
        "acquire on a free lock must take it before it yields"
    );
    drop(fut);
    ensure!(
        L,
        CHECK,
        !lock.locked(),
        "an acquire dropped during its schedule point must give the lock back"
    );
    let mut fut = Box::pin(lock.acquire_guard());
    ensure!(
        L,
        CHECK,
        poll_once(&mut fut).await.is_pending() && lock.locked(),
        "acquire_guard on a free lock must take it, then yield"
    );
    drop(fut);
    ensure!(
        L,
        CHECK,
        !lock.locked(),
        "an acquire_guard dropped during its schedule point must give the lock back"
    );

    lock.acquire().await?;
    let l = lock.clone();
    open_nursery(|nursery| async move {
        let waiter = l.clone();
        nursery.start_soon(async move {
            let mut fut = Box::pin(waiter.acquire());
            let first = poll_once(&mut fut).await;
            ensure!(
                L,
                CHECK,
                first.is_pending() && waiter.tasks_waiting() == 1,
                "acquire on a held lock must queue"
            );
            drop(fut);
            ensure!(
                L,
                CHECK,
                waiter.tasks_waiting() == 0,
                "a waiter dropped while queued must leave the queue"
            );
            Ok(())
        })?;
        wait_all_tasks_blocked().await?;
        l.release()?;
        ensure!(
            L,
            CHECK,
            !l.locked(),
            "released after its only waiter was dropped, the lock must be free"
        );
        Ok(())
    })
    .await
}
