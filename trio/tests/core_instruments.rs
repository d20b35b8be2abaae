//! Instruments, test by test against Trio's `_core/_tests/test_instrumentation.py`: the
//! events of a task, instruments swapped during the run, `before_run`/`after_run`, the main
//! task's spawn and exit, an instrument that fails on the first event, and the context each
//! hook runs in.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use trio::RunConfig;
use trio::lowlevel::{
    Instrument, Task, add_instrument, checkpoint, current_task, in_trio_run, in_trio_task,
    remove_instrument,
};

#[derive(Clone, Debug, PartialEq)]
enum Event {
    BeforeRun,
    Schedule(Task),
    Before(Task),
    After(Task),
    AfterRun,
}

/// Trio's `TaskRecorder`: records the run's and the tasks' events, and checks in the step
/// hooks that the task stepped is the current task.
#[derive(Default)]
struct TaskRecorder {
    record: RefCell<Vec<Event>>,
}

impl TaskRecorder {
    fn push(&self, event: Event) {
        self.record.borrow_mut().push(event);
    }

    /// The events of `task`, and the run's.
    fn filter(&self, task: &Task) -> Vec<Event> {
        self.record
            .borrow()
            .iter()
            .filter(|e| match e {
                Event::Schedule(t) | Event::Before(t) | Event::After(t) => t == task,
                Event::BeforeRun | Event::AfterRun => true,
            })
            .cloned()
            .collect()
    }
}

impl Instrument for TaskRecorder {
    fn before_run(&self) {
        self.push(Event::BeforeRun);
    }
    fn task_scheduled(&self, task: &Task) {
        self.push(Event::Schedule(task.clone()));
    }
    fn before_task_step(&self, task: &Task) {
        assert_eq!(current_task().ok().as_ref(), Some(task));
        self.push(Event::Before(task.clone()));
    }
    fn after_task_step(&self, task: &Task) {
        assert_eq!(current_task().ok().as_ref(), Some(task));
        self.push(Event::After(task.clone()));
    }
    fn after_run(&self) {
        self.push(Event::AfterRun);
    }
}

fn config() -> RunConfig {
    RunConfig::new().ctrl_c(false)
}

/// Trio's `test_instruments`: five checkpoints make six steps, a checkpoint reschedules the
/// task inside its step, and instruments swapped during the run (r2 out, r3 in, twice)
/// see the events between them, none lost and none twice.
#[test]
fn instruments_see_each_event_once_even_when_swapped_during_the_run() {
    let (r1, r2, r3) = (
        Rc::new(TaskRecorder::default()),
        Rc::new(TaskRecorder::default()),
        Rc::new(TaskRecorder::default()),
    );
    let task: Rc<RefCell<Option<Task>>> = Rc::default();
    let (r2_dyn, r3_dyn): (Rc<dyn Instrument>, Rc<dyn Instrument>) = (r2.clone(), r3.clone());
    let seen = task.clone();
    config()
        .instrument_rc(r1.clone())
        .instrument_rc(r2_dyn.clone())
        .run(async move {
            trio::open_nursery(|n| async move {
                n.start_soon(async move {
                    *seen.borrow_mut() = Some(current_task()?);
                    for _ in 0..4 {
                        checkpoint().await?;
                    }
                    remove_instrument(&r2_dyn)?;
                    assert!(remove_instrument(&r2_dyn).is_err());
                    // Adding is idempotent.
                    add_instrument(r3_dyn.clone())?;
                    add_instrument(r3_dyn)?;
                    checkpoint().await
                })?;
                Ok(())
            })
            .await
        })
        .unwrap();
    let task = task.borrow().clone().expect("the task ran");
    let mut expected = vec![Event::BeforeRun, Event::Schedule(task.clone())];
    for _ in 0..5 {
        expected.extend([
            Event::Before(task.clone()),
            Event::Schedule(task.clone()),
            Event::After(task.clone()),
        ]);
    }
    expected.extend([Event::Before(task.clone()), Event::After(task.clone())]);
    expected.push(Event::AfterRun);
    let joined: Vec<Event> = r2
        .record
        .borrow()
        .iter()
        .chain(r3.record.borrow().iter())
        .cloned()
        .collect();
    assert_eq!(*r1.record.borrow(), joined);
    assert_eq!(r1.filter(&task), expected);
}

/// Trio's `test_instrument_before_after_run`.
#[test]
fn before_run_and_after_run_bracket_the_run() {
    #[derive(Default)]
    struct BeforeAfter(RefCell<Vec<&'static str>>);
    impl Instrument for BeforeAfter {
        fn before_run(&self) {
            self.0.borrow_mut().push("before_run");
        }
        fn after_run(&self) {
            self.0.borrow_mut().push("after_run");
        }
    }
    let recorder = Rc::new(BeforeAfter::default());
    config()
        .instrument_rc(recorder.clone())
        .run(async { Ok(()) })
        .unwrap();
    assert_eq!(*recorder.0.borrow(), ["before_run", "after_run"]);
}

/// Trio's `test_instrument_task_spawn_exit`: the main task's spawn and exit are seen.
#[test]
fn the_main_tasks_spawn_and_exit_are_seen() {
    #[derive(Default)]
    struct SpawnExit(RefCell<Vec<(&'static str, Task)>>);
    impl Instrument for SpawnExit {
        fn task_spawned(&self, task: &Task) {
            self.0.borrow_mut().push(("spawned", task.clone()));
        }
        fn task_exited(&self, task: &Task) {
            self.0.borrow_mut().push(("exited", task.clone()));
        }
    }
    let recorder = Rc::new(SpawnExit::default());
    let main_task = config()
        .instrument_rc(recorder.clone())
        .run(async { current_task() })
        .unwrap();
    let record = recorder.0.borrow();
    assert!(
        record.contains(&("spawned", main_task.clone())),
        "{record:?}"
    );
    assert!(record.contains(&("exited", main_task)), "{record:?}");
}

/// Trio's `test_instruments_crash`: an instrument that fails on the run's first scheduling
/// (before the main task exists) is removed after that one call; the other instruments and
/// the run go on.
#[test]
fn an_instrument_failing_before_the_main_task_exists_is_removed() {
    struct Broken(Rc<RefCell<Vec<&'static str>>>);
    impl Instrument for Broken {
        fn task_scheduled(&self, _task: &Task) {
            self.0.borrow_mut().push("scheduled");
            panic!("oops");
        }
    }
    let record: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let recorder = Rc::new(TaskRecorder::default());
    let main_record = record.clone();
    let main_task = config()
        .instrument_rc(recorder.clone())
        .instrument(Broken(record.clone()))
        .run(async move {
            main_record.borrow_mut().push("main ran");
            current_task()
        })
        .unwrap();
    assert_eq!(*record.borrow(), ["scheduled", "main ran"]);
    let events = recorder.record.borrow();
    assert!(events.contains(&Event::After(main_task)));
    assert_eq!(events.last(), Some(&Event::AfterRun));
}

/// Trio's `test_instrument_call_trio_context`: every hook runs inside the run; the step hooks
/// and `task_exited` run in the task's context, the run and I/O hooks outside any task.
#[test]
fn each_hook_runs_in_its_context() {
    #[derive(Default)]
    struct Context(RefCell<BTreeSet<&'static str>>);
    impl Context {
        fn check(&self, hook: &'static str, in_task: Option<bool>) {
            assert!(in_trio_run(), "{hook} ran outside the run");
            if let Some(in_task) = in_task {
                assert_eq!(in_trio_task(), in_task, "in_trio_task() in {hook}");
            }
            self.0.borrow_mut().insert(hook);
        }
    }
    impl Instrument for Context {
        fn before_run(&self) {
            self.check("before_run", Some(false));
        }
        fn after_run(&self) {
            self.check("after_run", Some(false));
        }
        fn before_io_wait(&self, _timeout: f64) {
            self.check("before_io_wait", Some(false));
        }
        fn after_io_wait(&self, _timeout: f64) {
            self.check("after_io_wait", Some(false));
        }
        fn before_task_step(&self, _task: &Task) {
            self.check("before_task_step", Some(true));
        }
        fn after_task_step(&self, _task: &Task) {
            self.check("after_task_step", Some(true));
        }
        fn task_exited(&self, task: &Task) {
            self.check("task_exited", Some(true));
            assert_eq!(current_task().ok().as_ref(), Some(task));
        }
        fn task_scheduled(&self, _task: &Task) {
            self.check("task_scheduled", None);
        }
        fn task_spawned(&self, _task: &Task) {
            self.check("task_spawned", None);
        }
    }
    let hooks = Rc::new(Context::default());
    config()
        .instrument_rc(hooks.clone())
        .run(async {
            checkpoint().await?;
            // Nothing runnable: the loop waits for I/O (it skips the wait between batches
            // that have runnable tasks and no I/O waiters).
            trio::sleep(0.001).await?;
            trio::open_nursery(|n| async move {
                n.start_soon(checkpoint())?;
                Ok(())
            })
            .await
        })
        .unwrap();
    assert_eq!(
        hooks.0.borrow().iter().copied().collect::<Vec<_>>(),
        [
            "after_io_wait",
            "after_run",
            "after_task_step",
            "before_io_wait",
            "before_run",
            "before_task_step",
            "task_exited",
            "task_scheduled",
            "task_spawned",
        ]
    );
}

/// Trio's `test_instruments_interleave`: two tasks of one checkpoint each are scheduled
/// when spawned, then run in two batches: in the first each steps and is rescheduled, in the
/// second each steps to its end (the order inside a batch is the run's to choose).
#[test]
fn steps_of_two_tasks_interleave_batch_by_batch() {
    let recorder = Rc::new(TaskRecorder::default());
    let tasks: Rc<RefCell<Vec<Task>>> = Rc::default();
    let t = tasks.clone();
    config()
        .instrument_rc(recorder.clone())
        .run(async move {
            trio::open_nursery(|n| async move {
                for _ in 0..2 {
                    let t = t.clone();
                    n.start_soon(async move {
                        t.borrow_mut().push(current_task()?);
                        checkpoint().await
                    })?;
                }
                Ok(())
            })
            .await
        })
        .unwrap();
    let tasks = tasks.borrow();
    let (t1, t2) = (&tasks[0], &tasks[1]);
    let events: Vec<Event> = recorder
        .record
        .borrow()
        .iter()
        .filter(|e| match e {
            Event::Schedule(t) | Event::Before(t) | Event::After(t) => tasks.contains(t),
            _ => false,
        })
        .cloned()
        .collect();
    assert_eq!(events.len(), 12, "{events:?}");
    let schedules: BTreeSet<u64> = events[..2]
        .iter()
        .map(|e| match e {
            Event::Schedule(t) => t.id(),
            other => panic!("expected the two spawns' schedules first, got {other:?}"),
        })
        .collect();
    assert_eq!(schedules, BTreeSet::from([t1.id(), t2.id()]));
    let as_set = |events: &[Event]| -> BTreeSet<(u64, &'static str)> {
        events
            .iter()
            .map(|e| match e {
                Event::Schedule(t) => (t.id(), "schedule"),
                Event::Before(t) => (t.id(), "before"),
                Event::After(t) => (t.id(), "after"),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let first = as_set(&events[2..8]);
    let second = as_set(&events[8..]);
    let mut expected_first = BTreeSet::new();
    let mut expected_second = BTreeSet::new();
    for t in [t1, t2] {
        for what in ["before", "schedule", "after"] {
            expected_first.insert((t.id(), what));
        }
        for what in ["before", "after"] {
            expected_second.insert((t.id(), what));
        }
    }
    assert_eq!(first, expected_first);
    assert_eq!(second, expected_second);
}

/// Trio's run loop reports a task's exit inside its last step: `task_exited` comes between
/// that step's `before_task_step` and `after_task_step`, with the task current throughout.
#[test]
fn a_tasks_exit_is_reported_inside_its_last_step() {
    #[derive(Default)]
    struct Steps(RefCell<Vec<&'static str>>, RefCell<Option<Task>>);
    impl Steps {
        fn note(&self, what: &'static str, task: &Task) {
            if self.1.borrow().as_ref() == Some(task) {
                assert_eq!(current_task().ok().as_ref(), Some(task), "in {what}");
                self.0.borrow_mut().push(what);
            }
        }
    }
    impl Instrument for Steps {
        fn task_spawned(&self, task: &Task) {
            if task.name() == "watched" {
                *self.1.borrow_mut() = Some(task.clone());
            }
        }
        fn before_task_step(&self, task: &Task) {
            self.note("before", task);
        }
        fn after_task_step(&self, task: &Task) {
            self.note("after", task);
        }
        fn task_exited(&self, task: &Task) {
            self.note("exited", task);
        }
    }
    for fails in [false, true] {
        let steps = Rc::new(Steps::default());
        let result = config().instrument_rc(steps.clone()).run(async move {
            trio::open_nursery(|n| async move {
                n.start_soon_named("watched", async move {
                    checkpoint().await?;
                    if fails {
                        Err(trio::Error::new(std::io::Error::other("boom")))
                    } else {
                        Ok(())
                    }
                })
            })
            .await
        });
        assert_eq!(result.is_err(), fails);
        assert_eq!(
            *steps.0.borrow(),
            ["before", "after", "before", "exited", "after"]
        );
    }
}

/// Trio's `Runner.task_exited` hands the outcome to the nursery first (waking the parent)
/// and calls the `task_exited` hooks last: the parent's `task_scheduled` comes before the
/// child's `task_exited`.
#[test]
fn the_parent_is_woken_before_the_childs_exit_is_reported() {
    #[derive(Default)]
    struct Order(RefCell<Vec<(&'static str, String)>>);
    impl Instrument for Order {
        fn task_scheduled(&self, task: &Task) {
            self.0.borrow_mut().push(("scheduled", task.name()));
        }
        fn task_exited(&self, task: &Task) {
            self.0.borrow_mut().push(("exited", task.name()));
        }
    }
    let order = Rc::new(Order::default());
    config()
        .instrument_rc(order.clone())
        .run(async {
            trio::open_nursery(|n| async move {
                n.start_soon_named("child", async {
                    checkpoint().await?;
                    checkpoint().await
                })?;
                n.start_soon_named("parent", async {
                    trio::open_nursery(|inner| async move {
                        inner.start_soon_named("grandchild", checkpoint())
                    })
                    .await
                })
            })
            .await
        })
        .unwrap();
    let events = order.0.borrow();
    let at = |what: &'static str, name: &str| {
        events
            .iter()
            .rposition(|(w, n)| *w == what && n == name)
            .unwrap_or_else(|| panic!("no {what} {name} in {events:?}"))
    };
    assert!(
        at("scheduled", "parent") < at("exited", "grandchild"),
        "{events:?}"
    );
}
