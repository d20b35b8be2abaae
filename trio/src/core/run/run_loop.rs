//! The run loop: batches of task steps, and what happens between them.
//!
//! One iteration of the loop, as in Trio:
//!
//! 1. take the callbacks and wakes that other threads queued (the entry queue), and notice a
//!    Ctrl-C;
//! 2. wait for I/O: without blocking when tasks are runnable (and then only every few
//!    batches, since an `epoll_wait` per batch is the cost Trio measured in
//!    python-trio/trio#1595), otherwise blocking until the next deadline, a
//!    `wait_all_tasks_blocked` cushion, or the clock's autojump threshold;
//! 3. expire deadlines (cancelling their scopes);
//! 4. if still nothing is runnable: wake the `wait_all_tasks_blocked` waiters with the
//!    smallest cushion, or else let the clock autojump to the next deadline, unless a task
//!    waits for work outside the run (`lowlevel::ExternalWait`, e.g. a worker thread): then
//!    the run is not idle, and step 2 blocked until that work wakes it;
//! 5. run every task that was runnable when the batch began, in an order that a seeded random
//!    generator reverses half of the time, so a failing interleaving can be replayed.
//!
//! While the run queue is all that needs attention, a fast inner loop goes from one batch to
//! the next without steps 2–4, which would do nothing then (docs/decisions.md, "Scheduling").

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::task::Context;

use super::runner::Runner;
use super::spawn::drop_quietly;
use crate::core::cancel::CancelReason;
use crate::core::dump_signal::DumpSignal;
use crate::core::entry::Entry;
use crate::core::ki::CtrlC;
use crate::core::nursery::Outcome;
use crate::core::task::{Task, TaskInner, TaskKey};
use crate::error::{CancelSource, DeadlockError, Error, Result};

/// Non-blocking I/O polls happen at most once per this many batches while tasks are runnable.
const IO_POLL_INTERVAL: u32 = 8;

/// What the loop does if nothing becomes runnable before its I/O wait times out.
enum Idle {
    /// Wake the `wait_all_tasks_blocked` waiters with this cushion.
    Waiters(u64),
    /// Let the clock jump to the next deadline.
    Autojump,
}

impl Runner {
    /// The main loop; returns when the init task has finished, or with a deadlock.
    pub(super) fn run_loop(&self, ctrl_c: Option<&CtrlC>, fail_on_deadlock: bool) -> Result<()> {
        // The batch being run is the loop's own (swapped with the run queue), not a cell of
        // the runner.
        let mut batch = Vec::new();
        loop {
            if self.init_done.get() {
                return Ok(());
            }
            if self.entry.has_pending() {
                self.process_entries();
            }
            if !self.ki_received.get() && ctrl_c.is_some_and(CtrlC::is_pending) {
                self.on_ctrl_c();
            }
            if self.has_dump_signal.get() {
                self.check_dump_signal();
            }
            let runnable = !self.runq.is_empty();
            let mut idle_primed = None;
            // Batches are only counted while the reactor has waiters, so a run without I/O
            // pays one check per batch.
            let poll_io = if runnable {
                self.reactor.has_waiters() && {
                    let n = self.batches_since_io.get() + 1;
                    self.batches_since_io.set(n);
                    n >= IO_POLL_INTERVAL
                }
            } else {
                true
            };
            if poll_io {
                self.batches_since_io.set(0);
                let mut timeout = 0.0;
                if !runnable {
                    let deadline = self.deadlines.borrow_mut().next_deadline();
                    timeout = if deadline == f64::INFINITY {
                        f64::INFINITY
                    } else {
                        self.clock.deadline_to_sleep_time(deadline).max(0.0)
                    };
                    // While a task waits for work outside the run (a worker thread), the
                    // run is not idle: that work's completion wakes the reactor.
                    let external = self.external_waits.get() > 0;
                    if !external {
                        if let Some(cushion_bits) = self.idle_waiters.smallest_cushion() {
                            let cushion = f64::from_bits(cushion_bits);
                            if cushion < timeout {
                                timeout = cushion;
                                idle_primed = Some(Idle::Waiters(cushion_bits));
                            }
                        } else if deadline != f64::INFINITY {
                            // Autojump only has somewhere to jump to when a deadline exists;
                            // otherwise the run is idle for good (or deadlocked).
                            let threshold = self.clock.autojump_threshold();
                            if threshold < timeout {
                                timeout = threshold;
                                idle_primed = Some(Idle::Autojump);
                            }
                        }
                    }
                    if timeout == f64::INFINITY
                        && fail_on_deadlock
                        && !external
                        && !self.reactor.has_waiters()
                        && !self.entry.may_receive()
                    {
                        return Err(Error::new(DeadlockError {
                            dump: self.dump_text(),
                        }));
                    }
                }
                // As in Trio, the run is idle only if the wait ran its full timeout: a wake-up
                // that leaves nothing runnable (a callback from another thread, a signal, an
                // fd event nobody waits for) starts the quiet period again.
                if self.wait_for_io(timeout, ctrl_c) {
                    idle_primed = None;
                }
            }
            if !self.deadlines.borrow().is_empty() {
                let now = self.clock.current_time();
                let expired = self.deadlines.borrow_mut().expire(now);
                if !expired.is_empty() {
                    idle_primed = None;
                    for scope in expired {
                        scope.cancel(CancelReason {
                            source: CancelSource::Deadline,
                            reason: None,
                            task: None,
                        });
                    }
                }
            }
            // Nothing takes tasks off the run queue in between: runnable then is runnable now.
            // An entry callback may have begun an external wait meanwhile.
            if !runnable && self.runq.is_empty() && self.external_waits.get() == 0 {
                match idle_primed {
                    Some(Idle::Waiters(cushion)) => {
                        for key in self.idle_waiters.take_with_cushion(cushion) {
                            self.schedule(key);
                        }
                    }
                    Some(Idle::Autojump) => {
                        let next = self.deadlines.borrow_mut().next_deadline();
                        self.clock.autojump(next);
                    }
                    None => {}
                }
            }
            // From here on only tasks run, and they set the flag again if they register a
            // deadline, wait for I/O or end the run.
            self.loop_attention.set(
                self.init_done.get()
                    || !self.deadlines.borrow().is_empty()
                    || self.reactor.has_waiters(),
            );
            self.runq.swap(&mut batch);
            self.run_batch(&mut batch);
            // The fast path: while the run queue is all that needs attention, one batch
            // follows another without the bookkeeping above, which would do nothing: no
            // entries or Ctrl-C to take, no I/O to poll (the reactor has no waiters, so
            // batches are not counted), no deadlines to expire (both `loop_attention`), and
            // runnable tasks (so no idling). Every condition is checked again before every
            // batch, since a task can change any of them (and other threads the entry queue
            // and Ctrl-C).
            loop {
                if self.loop_attention.get()
                    || self.entry.has_pending()
                    || (!self.ki_received.get() && ctrl_c.is_some_and(CtrlC::is_pending))
                {
                    break;
                }
                // An empty run queue swapped in is an empty batch: the loop above then sees
                // the (equally empty) queue.
                self.runq.swap(&mut batch);
                if batch.is_empty() {
                    break;
                }
                self.run_batch(&mut batch);
            }
        }
    }

    /// Waits for I/O up to `timeout` seconds (0: only what is ready now) and takes in what
    /// woke the loop besides fd readiness: Ctrl-C, and entries from other threads. Returns
    /// whether the wait ended before its timeout. A reactor that fails to poll breaks the
    /// run's guarantees: the run crashes.
    fn wait_for_io(&self, timeout: f64, ctrl_c: Option<&CtrlC>) -> bool {
        if self.instruments.active() {
            self.instruments.before_io_wait(timeout);
        }
        let polled = self.reactor.poll(timeout);
        if self.instruments.active() {
            self.instruments.after_io_wait(timeout);
        }
        match polled {
            Ok(events) => {
                if events.ctrl_c && ctrl_c.is_some_and(CtrlC::take_pending) {
                    self.on_ctrl_c();
                }
                if events.entry && self.entry.has_pending() {
                    self.process_entries();
                }
                events.woke
            }
            Err(e) => {
                self.crash(format!("polling for I/O failed: {e}"));
                true
            }
        }
    }

    /// Runs every task of `batch` (the run queue of a moment ago) once; what they schedule
    /// waits for the next batch.
    #[inline(always)]
    fn run_batch(&self, batch: &mut Vec<Rc<TaskInner>>) {
        // Tasks are moved out from the back (`pop`), each with the strong reference the queue
        // took, so the batch runs in queue order when it was reversed and backwards otherwise:
        // the same order for the same seed as iterating a reversed-or-not batch forwards. Two
        // tasks (a ping-pong) are swapped rather than `reverse`d.
        if batch.len() > 1 && !self.coin_flip() {
            if let [a, b] = &mut batch[..] {
                std::mem::swap(a, b);
            } else {
                batch.reverse();
            }
        }
        while let Some(task) = batch.pop() {
            self.step(task);
        }
    }

    /// Runs one step of a task. The uninstrumented step is a copy of its own, with no `Task`
    /// handle to make, check and drop; instruments take an out-of-line copy.
    #[inline(always)]
    fn step(&self, task: Rc<TaskInner>) {
        if self.instruments.active() {
            self.step_instrumented(task);
        } else {
            self.step_with::<false>(task);
        }
    }

    #[cold]
    #[inline(never)]
    fn step_instrumented(&self, task: Rc<TaskInner>) {
        self.step_with::<true>(task);
    }

    #[inline(always)]
    fn step_with<const INSTRUMENTED: bool>(&self, task: Rc<TaskInner>) {
        task.scheduled.set(false);
        // The future is polled where it lies (its block never moves), not taken out of the
        // cell and put back on every step.
        let mut future = task.future.borrow_mut();
        let Some(poll_target) = future.as_mut() else {
            return;
        };
        if task.reparented.get() {
            task.reparented.set(false);
            let base = task.parent.borrow().as_ref().map(|n| n.scope.clone());
            if let Some(base) = base {
                *task.current_status.borrow_mut() = base;
            }
        }
        task.polls.set(task.polls.get() + 1);
        let handle = INSTRUMENTED.then(|| Task::from_inner(task.clone()));
        // The step hooks run in the task's context, as Trio's do: `current_task()` there is
        // the task stepped.
        self.current.set(Some(std::ptr::NonNull::from(&task)));
        if let Some(handle) = &handle {
            self.instruments.before_task_step(handle);
        }
        let watch = INSTRUMENTED.then(|| self.debug.before_step(&task));
        let mut cx = Context::from_waker(&task.waker);
        let mut ready = None;
        let polled = catch_unwind(AssertUnwindSafe(|| {
            poll_target.poll_into(&mut cx, &mut ready)
        }));
        if INSTRUMENTED {
            // A task's last step reports its exit before `after_task_step`, as in Trio
            // (`finish_instrumented`); one discarded during its own poll has reported it.
            let last_step = !task.finished.get() && (polled.is_err() || ready.is_some());
            if let Some(handle) = handle.as_ref().filter(|_| !last_step) {
                self.instruments.after_task_step(handle);
            }
        }
        self.current.set(None);
        if let Some(watch) = watch {
            self.debug.after_step(watch, &task);
        }
        if task.finished.get() {
            // Discarded during its own poll (see `discard_task`): only the future is left.
            let dead = future.take();
            drop(future);
            drop_quietly(dead);
            return;
        }
        let outcome = match polled {
            Ok(()) => match ready {
                None => {
                    drop(future);
                    return;
                }
                Some(result) => Outcome::from_result(result),
            },
            Err(payload) => Outcome::Panic(payload),
        };
        let finished = future.take();
        drop(future);
        drop_quietly(finished);
        match handle {
            Some(handle) if INSTRUMENTED => self.finish_instrumented(task, outcome, &handle),
            _ => self.finish_step(task, outcome),
        }
    }

    /// The end of an instrumented task's last step: its exit is reported (in `finish_step`),
    /// then `after_task_step`, in the task's context.
    #[cold]
    #[inline(never)]
    fn finish_instrumented(&self, task: Rc<TaskInner>, outcome: Outcome, handle: &Task) {
        let stepped = task.clone();
        self.finish_step(task, outcome);
        self.current.set(Some(std::ptr::NonNull::from(&stepped)));
        self.instruments.after_task_step(handle);
        self.current.set(None);
    }

    /// Runs the callbacks and applies the wakes that other threads queued.
    fn process_entries(&self) {
        self.run_entries(self.entry.drain(), true);
    }

    /// Closes the entry queue when the tasks are gone, and runs the callbacks it had
    /// accepted (Trio's entry task runs what is left once it is done): each accepted
    /// callback runs, and what they queue is refused.
    pub(super) fn close_entries(&self) {
        self.run_entries(self.entry.close(), false);
    }

    fn run_entries(&self, entries: std::collections::VecDeque<Entry>, wake: bool) {
        for entry in entries {
            let panicked = match entry {
                Entry::Wake(bits) => {
                    if wake {
                        self.schedule(TaskKey::from_bits(bits));
                    }
                    None
                }
                Entry::Call(f) => catch_unwind(AssertUnwindSafe(f)).err(),
                Entry::Idempotent(f) => catch_unwind(AssertUnwindSafe(|| f())).err(),
            };
            if let Some(payload) = panicked {
                self.crash(format!(
                    "a run_sync_soon callback panicked: {}",
                    super::panic_message(&*payload)
                ));
            }
        }
    }

    /// The dump-on-signal option: if the signal came, the task tree to stderr, in one write.
    #[inline(never)]
    fn check_dump_signal(&self) {
        use std::io::Write;
        if !self
            .dump_signal
            .borrow()
            .as_ref()
            .is_some_and(DumpSignal::take_pending)
        {
            return;
        }
        let text = format!(
            "trio: task dump on signal (process {})\n{}",
            std::process::id(),
            self.dump_text()
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// The first Ctrl-C cancels everything.
    fn on_ctrl_c(&self) {
        if !self.ki_received.replace(true) {
            self.root_scope.cancel(CancelReason {
                source: CancelSource::KeyboardInterrupt,
                reason: Some("Ctrl-C".into()),
                task: None,
            });
        }
    }
}
