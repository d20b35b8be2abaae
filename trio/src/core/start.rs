//! `Nursery::start`: start a task and wait until it says it is ready.
//!
//! Until the new task calls [`TaskStatus::started`], it lives in a private nursery of the
//! `start` call, under the caller's cancel scope: its errors come out of `start` as they are,
//! and cancelling the caller cancels it. `started` moves it (and the cancel-scope nodes under
//! it) into the target nursery and hands its value to the caller.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::Location;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use super::blocked::BlockedOn;
use super::cancel::ScopeState;
use super::nursery::NurseryInner;
use super::run::{Runner, not_in_run};
use super::task::{TaskFuture, TaskInner, TaskKey, TaskLabel};
use crate::error::{Error, Result};

/// What [`Nursery::start`](crate::Nursery::start) and [`TaskStatus::started`] share.
struct StartShared<V> {
    value: RefCell<Option<V>>,
    started: Cell<bool>,
    task: RefCell<Weak<TaskInner>>,
    target: Rc<NurseryInner>,
    temp: Rc<NurseryInner>,
    caller: TaskKey,
}

/// Given to a task started with [`Nursery::start`](crate::Nursery::start); call [`started`](Self::started) once the
/// task is ready (listening, connected, ...). [`TaskStatus::ignored`] makes one for a call
/// that does not go through `start`.
pub struct TaskStatus<V> {
    /// `None` for [`TaskStatus::ignored`].
    shared: Option<Rc<StartShared<V>>>,
}

impl<V> std::fmt::Debug for TaskStatus<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shared {
            Some(shared) => f
                .debug_struct("TaskStatus")
                .field("started", &shared.started.get())
                .finish(),
            None => f.write_str("TaskStatus::ignored()"),
        }
    }
}

impl<V> TaskStatus<V> {
    /// A status whose [`started`](Self::started) does nothing (Trio's
    /// `TASK_STATUS_IGNORED`): a function written for [`Nursery::start`](crate::Nursery::start)
    /// can then also be awaited directly, or given to
    /// [`start_soon`](crate::Nursery::start_soon).
    ///
    /// ```
    /// # fn main() -> trio::Result<()> {
    /// use trio::TaskStatus;
    ///
    /// async fn serve(status: TaskStatus<u16>) -> trio::Result<()> {
    ///     status.started(8080)?;
    ///     trio::sleep(0.01).await
    /// }
    ///
    /// trio::run(async {
    ///     serve(TaskStatus::ignored()).await?; // called directly
    ///     trio::open_nursery(|n| async move {
    ///         assert_eq!(n.start(serve).await?, 8080);
    ///         n.start_soon(serve(TaskStatus::ignored()))
    ///     })
    ///     .await
    /// })
    /// # }
    /// ```
    pub fn ignored() -> Self {
        TaskStatus { shared: None }
    }

    /// Reports that the task is ready: `start` returns `value`, and the task moves into the
    /// nursery `start` was called on (out of the caller's cancel scope).
    ///
    /// Inside a cancelled scope (the caller of `start` was cancelled) the task does not move,
    /// as in Trio: it stays under the cancelled scope, its next checkpoint fails, and `start`
    /// fails with that `Cancelled` (or returns `value` if the task ends without one).
    ///
    /// Consumes the status, so calling it twice is a compile error rather than a runtime one:
    ///
    /// ```compile_fail
    /// async fn twice(status: trio::TaskStatus<u32>) -> trio::Result<()> {
    ///     status.started(1)?;
    ///     status.started(2)?; // error[E0382]: use of moved value: `status`
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Fails if the target nursery closed in the meantime. Not a checkpoint. On
    /// [`TaskStatus::ignored`] it does nothing.
    pub fn started(self, value: V) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if shared.target.closed.get() {
            return Err(Error::usage(
                "the nursery passed to start() closed before the task called started()",
            ));
        }
        let Some(task) = shared.task.borrow().upgrade() else {
            return Err(Error::usage("started() was called after its task ended"));
        };
        if shared.temp.scope.is_cancelled() {
            // As in Trio: the task stays where it is, under the cancelled scope that will
            // catch its `Cancelled`, rather than move somewhere nothing is cancelled. `start`
            // returns the value if the task then ends without an error.
            *shared.value.borrow_mut() = Some(value);
            return Ok(());
        }
        Runner::with_current(|runner| {
            shared.temp.remove_child(&task);
            *task.parent.borrow_mut() = Some(shared.target.clone());
            shared.target.add_child(&task);
            task.reparented.set(true);
            {
                let mut current = task.current_status.borrow_mut();
                if Rc::ptr_eq(&current, &shared.temp.scope) {
                    *current = shared.target.scope.clone();
                }
            }
            shared
                .temp
                .scope
                .move_children_to(runner, &shared.target.scope);
            if shared.target.scope.is_cancelled() {
                runner.schedule(task.key);
            }
            shared
                .target
                .pending_starts
                .set(shared.target.pending_starts.get() - 1);
            *shared.value.borrow_mut() = Some(value);
            shared.started.set(true);
            runner.schedule(shared.caller);
            shared.temp.wake_waiter_waker();
        })
        .ok_or_else(|| not_in_run("TaskStatus::started"))
    }
}

type SpawnStart<V, F> = fn(
    &Runner,
    &Rc<StartShared<V>>,
    F,
    Option<Cow<'static, str>>,
    &'static Location<'static>,
) -> Result<Rc<TaskInner>>;

fn spawn_start<V, F, Fut>(
    runner: &Runner,
    shared: &Rc<StartShared<V>>,
    make: F,
    name: Option<Cow<'static, str>>,
    site: &'static Location<'static>,
) -> Result<Rc<TaskInner>>
where
    F: FnOnce(TaskStatus<V>) -> Fut,
    Fut: Future<Output = Result<()>> + 'static,
    V: 'static,
{
    let future = make(TaskStatus {
        shared: Some(shared.clone()),
    });
    let label = match name {
        Some(name) => TaskLabel::given(name, site),
        None => TaskLabel::of_type::<Fut>(site),
    };
    runner.spawn(&shared.temp, TaskFuture::new(future), label, false)
}

pin_project_lite::pin_project! {
    /// The future of [`Nursery::start`](crate::Nursery::start).
    #[must_use = "start does nothing unless awaited"]
    pub struct Start<V, F> {
        target: Rc<NurseryInner>,
        make: Option<F>,
        temp: Option<Rc<NurseryInner>>,
        shared: Option<Rc<StartShared<V>>>,
        task: Option<Rc<TaskInner>>,
        done: bool,
        name: Option<Cow<'static, str>>,
        site: &'static Location<'static>,
        spawn: SpawnStart<V, F>,
    }

    impl<V, F> PinnedDrop for Start<V, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.done {
                return;
            }
            if let (Some(shared), Some(temp)) = (this.shared.as_ref(), this.temp.as_ref()) {
                if !shared.started.get() {
                    temp.drop_children();
                    let target = &shared.target;
                    target.pending_starts.set(target.pending_starts.get() - 1);
                    Runner::with_current(|runner| target.wake_parent_if_done(runner));
                }
                let temp = temp.clone();
                Runner::with_current(|runner| temp.close(Some(runner)))
                    .unwrap_or_else(|| temp.close(None));
            }
        }
    }
}

impl<V, F> Start<V, F> {
    pub(crate) fn new<Fut>(
        target: Rc<NurseryInner>,
        make: F,
        name: Option<Cow<'static, str>>,
        site: &'static Location<'static>,
    ) -> Self
    where
        F: FnOnce(TaskStatus<V>) -> Fut,
        Fut: Future<Output = Result<()>> + 'static,
        V: 'static,
    {
        Start {
            target,
            make: Some(make),
            temp: None,
            shared: None,
            task: None,
            done: false,
            name,
            site,
            spawn: spawn_start::<V, F, Fut>,
        }
    }
}

impl<V, F> Future for Start<V, F> {
    type Output = Result<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<V>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(Err(Error::usage("start() future polled after it finished")));
        }
        if let Some(make) = this.make.take() {
            let spawned = Runner::with_current_task(|runner, caller| {
                if this.target.closed.get() {
                    return Err(Error::usage(
                        "start() was called on a nursery that is closed to new tasks",
                    ));
                }
                let temp = NurseryInner::build(ScopeState::new(), true);
                *temp.start_target.borrow_mut() = Some(this.target.clone());
                super::timeout::enter_lazy_deadline(caller, runner);
                let parent = caller.current_status.borrow().clone();
                temp.enter_eagerly(runner, parent, caller.key);
                // As in Trio, where `start` opens a nursery of the caller's: the task tree
                // shows the new task under its caller until it calls `started()`.
                caller
                    .child_nurseries
                    .borrow_mut()
                    .push(Rc::downgrade(&temp));
                let shared = Rc::new(StartShared {
                    value: RefCell::new(None),
                    started: Cell::new(false),
                    task: RefCell::new(Weak::new()),
                    target: this.target.clone(),
                    temp: temp.clone(),
                    caller: caller.key,
                });
                this.target
                    .pending_starts
                    .set(this.target.pending_starts.get() + 1);
                *this.temp = Some(temp.clone());
                *this.shared = Some(shared.clone());
                let task = (this.spawn)(runner, &shared, make, this.name.take(), this.site)?;
                *shared.task.borrow_mut() = Rc::downgrade(&task);
                *this.task = Some(task);
                temp.note_waiter(caller, cx.waker());
                // Waiting for `started` is a cancel point, as the wait in Trio's inner
                // nursery is.
                caller.count_cancel_point();
                caller.note_blocked(BlockedOn::Start);
                Ok(())
            });
            match spawned {
                None => {
                    *this.done = true;
                    return Poll::Ready(Err(not_in_run("Nursery::start")));
                }
                Some(Err(e)) => {
                    // `drop` undoes the pending start, if one was recorded.
                    return Poll::Ready(Err(e));
                }
                Some(Ok(())) => return Poll::Pending,
            }
        }
        let (Some(shared), Some(temp), Some(task)) =
            (this.shared.as_ref(), this.temp.as_ref(), this.task.as_ref())
        else {
            return Poll::Ready(Err(Error::usage("start() future polled after it failed")));
        };
        if shared.started.get() {
            let value = shared.value.borrow_mut().take();
            *this.done = true;
            Runner::with_current(|runner| temp.close(Some(runner)));
            return Poll::Ready(
                value.ok_or_else(|| Error::usage("start(): the started value was already taken")),
            );
        }
        if !task.finished.get() {
            Runner::with_current_task(|_, caller| {
                caller.count_cancel_point();
                temp.note_waiter(caller, cx.waker());
                caller.note_blocked(BlockedOn::Start);
            });
            return Poll::Pending;
        }
        // The task ended without moving: before calling started(), or after calling it in a
        // cancelled scope.
        *this.done = true;
        let target = &shared.target;
        target.pending_starts.set(target.pending_starts.get() - 1);
        Runner::with_current(|runner| {
            target.wake_parent_if_done(runner);
            temp.close(Some(runner));
        });
        if let Some(payload) = temp.panic.borrow_mut().take() {
            resume_unwind(payload);
        }
        let error = temp.errors.borrow_mut().drain(..).next();
        let cancelled = temp.cancelled.borrow_mut().take();
        if let Some(error) = error.or(cancelled) {
            return Poll::Ready(Err(error));
        }
        // `started()` inside a cancelled scope left the task here; it ended cleanly.
        Poll::Ready(shared.value.borrow_mut().take().ok_or_else(|| {
            Error::usage(
                "the task passed to start() returned without calling task_status.started()",
            )
        }))
    }
}
