//! The run itself: RunConfig, seeds, instruments, tokens, system tasks, the task tree,
//! run-local and task-local values, statistics, `wait_all_tasks_blocked` and MockClock.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use common::{Log, assert_err, run, try_run};
use trio::lowlevel::{
    Instrument, RunVar, Task, TaskLocal, add_instrument, checkpoint, current_root_task,
    current_statistics, current_task, current_trio_token, spawn_system_task,
    wait_all_tasks_blocked,
};
use trio::{RunConfig, RunFinishedError, UsageError};
use trio_test::MockClock;

fn autojump() -> RunConfig {
    RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .ctrl_c(false)
}

#[test]
fn nested_run_is_an_error() {
    run(async {
        let inner = trio::run(async { Ok(()) });
        let e = assert_err::<UsageError, _>(inner);
        assert!(e.to_string().contains("run"), "{e}");
        Ok(())
    });
}

#[test]
fn run_returns_the_main_value() {
    assert_eq!(trio::run(async { Ok(41 + 1) }).unwrap(), 42);
}

/// The order in which `n` looping tasks run, under `seed`.
fn schedule_order(seed: u64, n: usize) -> Vec<usize> {
    let log = Log::default();
    let seen = log.clone();
    autojump()
        .seed(seed)
        .run(async move {
            trio::open_nursery(|nursery| async move {
                for i in 0..n {
                    let l = log.clone();
                    nursery.start_soon(async move {
                        for _ in 0..5 {
                            l.push(i);
                            checkpoint().await?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })
            .await
        })
        .unwrap();
    seen.get()
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let a = schedule_order(1234, 6);
    assert_eq!(a, schedule_order(1234, 6));
    // Some seed gives another order: batches are randomized.
    let differs = (0..20).any(|seed| schedule_order(seed, 6) != a);
    assert!(differs, "every seed gave {a:?}");
}

/// Records instrument events for one task (by name) and I/O waits.
struct Recorder {
    watch: &'static str,
    events: RefCell<Vec<String>>,
}

impl Recorder {
    fn note(&self, what: &str, task: &Task) {
        if task.name() == self.watch {
            self.events.borrow_mut().push(what.to_string());
        }
    }
}

impl Instrument for Recorder {
    fn task_spawned(&self, task: &Task) {
        self.note("spawned", task);
    }
    fn task_scheduled(&self, task: &Task) {
        self.note("scheduled", task);
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

#[test]
fn instrument_events_for_a_task_that_checkpoints_five_times() {
    let recorder = Rc::new(Recorder {
        watch: "worker",
        events: RefCell::new(Vec::new()),
    });
    let r = recorder.clone();
    autojump()
        .instrument_rc(r)
        .run(async {
            trio::open_nursery(|n| async move {
                n.start_soon_named("worker", async {
                    for _ in 0..5 {
                        checkpoint().await?;
                    }
                    Ok(())
                })?;
                Ok(())
            })
            .await
        })
        .unwrap();
    let mut expected = vec!["spawned", "scheduled"];
    // As in Trio's test_instrumentation: a checkpoint reschedules the task during its step,
    // so "scheduled" comes between "before" and "after".
    for _ in 0..5 {
        expected.extend(["before", "scheduled", "after"]);
    }
    // The exit is reported inside the last step, as Trio's run loop does.
    expected.extend(["before", "exited", "after"]);
    assert_eq!(*recorder.events.borrow(), expected);
}

struct Panicky;

impl Instrument for Panicky {
    fn before_task_step(&self, _task: &Task) {
        panic!("instrument bug");
    }
}

#[test]
fn a_panicking_instrument_is_removed_and_the_run_goes_on() {
    let recorder = Rc::new(Recorder {
        watch: "worker",
        events: RefCell::new(Vec::new()),
    });
    let r = recorder.clone();
    let result = autojump().instrument(Panicky).instrument_rc(r).run(async {
        trio::open_nursery(|n| async move {
            n.start_soon_named("worker", async { checkpoint().await })?;
            Ok(())
        })
        .await?;
        Ok("finished")
    });
    assert_eq!(result.unwrap(), "finished");
    assert!(recorder.events.borrow().contains(&"exited".to_string()));
}

#[test]
fn instruments_can_be_added_and_removed_during_the_run() {
    run(async {
        let recorder: Rc<Recorder> = Rc::new(Recorder {
            watch: "late",
            events: RefCell::new(Vec::new()),
        });
        let as_dyn: Rc<dyn Instrument> = recorder.clone();
        add_instrument(as_dyn.clone())?;
        trio::open_nursery(|n| async move {
            n.start_soon_named("late", async { Ok(()) })?;
            Ok(())
        })
        .await?;
        remove_instrument_checked(&as_dyn)?;
        assert_err::<UsageError, _>(trio::lowlevel::remove_instrument(&as_dyn));
        let events = recorder.events.borrow();
        assert_eq!(events[events.len() - 2..], ["exited", "after"]);
        Ok(())
    });
}

fn remove_instrument_checked(i: &Rc<dyn Instrument>) -> trio::Result<()> {
    trio::lowlevel::remove_instrument(i)
}

#[test]
fn run_sync_soon_from_threads_is_fifo_and_fails_after_the_run() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let token = autojump()
        .run(async move {
            let token = current_trio_token()?;
            let done = Rc::new(trio::sync::Event::new());
            let thread_token = token.clone();
            let s2 = s.clone();
            let worker = std::thread::spawn(move || {
                for i in 0..100 {
                    let s = s2.clone();
                    thread_token
                        .run_sync_soon(move || s.lock().unwrap().push(i))
                        .unwrap();
                }
            });
            // Wait (on virtual time) for every callback to arrive.
            while s.lock().unwrap().len() < 100 {
                trio::sleep(0.001).await?;
            }
            worker.join().unwrap();
            done.set();
            Ok(token)
        })
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    let late = token.run_sync_soon(|| {});
    assert_err::<RunFinishedError, _>(late);
}

#[test]
fn run_sync_soon_idempotent_runs_a_pending_callback_once() {
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    run(async move {
        let token = current_trio_token()?;
        let f: Arc<dyn Fn() + Send + Sync> = Arc::new(move || *c.lock().unwrap() += 1);
        for _ in 0..5 {
            token.run_sync_soon_idempotent(f.clone())?;
        }
        checkpoint().await?;
        checkpoint().await?;
        Ok(())
    });
    assert_eq!(*count.lock().unwrap(), 1);
}

#[test]
fn system_tasks_root_task_and_the_task_tree() {
    run(async {
        let root = current_root_task()?;
        let me = current_task()?;
        assert_ne!(root, me);
        assert_eq!(me.name(), "<main>");
        // The main task is a child of the init task's system nursery.
        let main_parent = me.parent_nursery().expect("a parent nursery");
        assert_eq!(main_parent.parent_task(), Some(root.clone()));
        let sys = spawn_system_task("background", trio::sleep_forever())?;
        assert!(sys.is_system());
        assert_eq!(
            sys.parent_nursery().and_then(|n| n.parent_task()),
            Some(root)
        );

        trio::open_nursery(|n| async move {
            n.start_soon_named("kid", trio::sleep(1.0))?;
            let me = current_task()?;
            let nurseries = me.child_nurseries();
            assert_eq!(nurseries.len(), 1);
            let kids = nurseries[0].child_tasks();
            assert_eq!(kids.len(), 1);
            assert_eq!(kids[0].name(), "kid");
            assert_eq!(
                kids[0].parent_nursery().and_then(|n| n.parent_task()),
                Some(me)
            );
            Ok(())
        })
        .await?;
        // The system task is cancelled when main returns; the run still ends.
        Ok(())
    });
}

static COUNTER: RunVar<u32> = RunVar::new("counter");
static REQUEST_ID: TaskLocal<String> = TaskLocal::new("request id");

#[test]
fn run_vars_live_for_one_run() {
    run(async {
        assert_err::<UsageError, _>(COUNTER.get());
        COUNTER.set(1)?;
        COUNTER.with(|c| *c += 1)?;
        assert_eq!(COUNTER.get()?, 2);
        Ok(())
    });
    run(async {
        assert_err::<UsageError, _>(COUNTER.get());
        Ok(())
    });
    assert_err::<UsageError, _>(COUNTER.get());
}

#[test]
fn task_locals_are_inherited_as_a_snapshot() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        assert_eq!(REQUEST_ID.get()?, None);
        REQUEST_ID.set("parent".to_string())?;
        trio::open_nursery(|n| async move {
            let l = log.clone();
            n.start_soon(async move {
                l.push(REQUEST_ID.get()?.unwrap_or_default());
                REQUEST_ID.set("child".to_string())?;
                l.push(REQUEST_ID.get()?.unwrap_or_default());
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        // What the child set stays in the child.
        assert_eq!(REQUEST_ID.get()?.as_deref(), Some("parent"));
        Ok(())
    });
    assert_eq!(seen.get(), ["parent", "child"]);
}

#[test]
fn statistics_count_tasks_and_deadlines() {
    run(async {
        trio::open_nursery(|n| async move {
            for _ in 0..3 {
                n.start_soon(trio::sleep(10.0))?;
            }
            wait_all_tasks_blocked().await?;
            let stats = current_statistics()?;
            // init, main and the three sleepers.
            assert_eq!(stats.tasks_living, 5);
            assert_eq!(stats.tasks_runnable, 0);
            assert_eq!(stats.seconds_to_next_deadline, 10.0);
            assert_eq!(stats.io_waiters, 0);
            Ok(())
        })
        .await
    });
}

#[test]
fn autojump_sleeps_an_hour_exactly() {
    run(async {
        let start = trio::current_time()?;
        trio::sleep(3600.0).await?;
        assert_eq!(trio::current_time()? - start, 3600.0);
        Ok(())
    });
}

#[test]
fn wait_all_tasks_blocked_beats_autojump() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        let l = log.clone();
        trio::open_nursery(|n| async move {
            let l2 = l.clone();
            n.start_soon(async move {
                trio::sleep(10.0).await?;
                l2.push(format!("sleeper woke at {}", trio::current_time()?));
                Ok(())
            })?;
            n.start_soon(async move {
                wait_all_tasks_blocked().await?;
                l.push(format!("idle waiter woke at {}", trio::current_time()?));
                Ok(())
            })?;
            Ok(())
        })
        .await
    });
    assert_eq!(seen.get(), ["idle waiter woke at 0", "sleeper woke at 10"]);
}

#[test]
fn wait_all_tasks_blocked_cushions_wake_smallest_first() {
    let log = Log::default();
    let seen = log.clone();
    run(async move {
        trio::open_nursery(|n| async move {
            for cushion in [0.03, 0.01, 0.02] {
                let l = log.clone();
                n.start_soon(async move {
                    wait_all_tasks_blocked().cushion(cushion).await?;
                    l.push(cushion.to_string());
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
    });
    assert_eq!(seen.get(), ["0.01", "0.02", "0.03"]);
}

#[test]
fn mock_clock_rate_and_jump() {
    let clock = MockClock::new();
    assert_eq!(clock.current_time(), 0.0);
    clock.jump(5.0).unwrap();
    assert_eq!(clock.current_time(), 5.0);
    assert_err::<UsageError, _>(clock.jump(-1.0));
    assert_err::<UsageError, _>(clock.set_rate(-2.0));
    assert_err::<UsageError, _>(clock.set_autojump_threshold(f64::NAN));
    // At rate 0 time stands still unless jumped; a run sees the jumps.
    let c = clock.clone();
    RunConfig::new()
        .clock(clock.clone())
        .ctrl_c(false)
        .run(async move {
            let t0 = trio::current_time()?;
            c.jump(2.5)?;
            assert_eq!(trio::current_time()? - t0, 2.5);
            Ok(())
        })
        .unwrap();
    // At rate 1000 (real time scaled), a 5 s virtual sleep takes ~5 ms of real time.
    let fast = MockClock::new().with_rate(1000).unwrap();
    let real = std::time::Instant::now();
    let slept = RunConfig::new()
        .clock(fast)
        .ctrl_c(false)
        .run(async {
            let t0 = trio::current_time()?;
            trio::sleep(5.0).await?;
            Ok(trio::current_time()? - t0)
        })
        .unwrap();
    assert!(slept >= 5.0, "{slept}");
    assert!(real.elapsed() < std::time::Duration::from_millis(100));
}

#[test]
fn mock_clock_autojump_threshold_waits_for_idle() {
    // Threshold 0.01 s: the clock jumps only after the run stayed idle that long.
    let result = try_run_with(
        MockClock::new().with_autojump_threshold(0.01).unwrap(),
        async {
            let t0 = trio::current_time()?;
            trio::sleep(1000.0).await?;
            Ok(trio::current_time()? - t0)
        },
    );
    assert_eq!(result.unwrap(), 1000.0);
}

fn try_run_with<T: 'static>(
    clock: MockClock,
    main: impl std::future::Future<Output = trio::Result<T>> + 'static,
) -> trio::Result<T> {
    RunConfig::new().clock(clock).ctrl_c(false).run(main)
}

#[test]
fn a_deadlock_is_reported_with_a_task_dump() {
    let result = try_run(async {
        trio::open_nursery(|n| async move {
            n.start_soon_named("stuck", async { trio::sync::Event::new().wait().await })?;
            Ok(())
        })
        .await
    });
    let e = assert_err::<trio::DeadlockError, _>(result);
    let dump = e
        .downcast_ref::<trio::DeadlockError>()
        .unwrap()
        .task_dump()
        .to_string();
    assert!(dump.contains("stuck"), "{dump}");
}

#[test]
fn current_clock_is_the_configured_clock() {
    let clock = MockClock::new();
    let c = clock.clone();
    RunConfig::new()
        .clock(clock)
        .ctrl_c(false)
        .run(async move {
            let run_clock = trio::lowlevel::current_clock()?;
            c.jump(7.0)?;
            assert_eq!(run_clock.current_time(), c.current_time());
            assert_eq!(run_clock.current_time(), trio::current_time()?);
            Ok(())
        })
        .unwrap();
    assert_err::<UsageError, _>(trio::lowlevel::current_clock().map(|_| ()));
}

#[test]
fn a_stale_waker_does_not_wake_the_task_that_reuses_its_slot() {
    use std::cell::RefCell;
    use std::task::{Poll, Waker};
    run(async {
        // Task A ends while somebody still holds a clone of its waker.
        let stale: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let keep = stale.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                std::future::poll_fn(|cx| {
                    *keep.borrow_mut() = Some(cx.waker().clone());
                    Poll::Ready(())
                })
                .await;
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        // Task B is spawned next (the run reuses A's memory for it) and blocks.
        let polls = Rc::new(std::cell::Cell::new(0));
        let live: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
        let done = Rc::new(std::cell::Cell::new(false));
        let (p, l, d) = (polls.clone(), live.clone(), done.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                std::future::poll_fn(|cx| {
                    p.set(p.get() + 1);
                    *l.borrow_mut() = Some(cx.waker().clone());
                    if d.get() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
                .await;
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            let before = polls.get();
            stale.borrow_mut().take().expect("kept A's waker").wake();
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert_eq!(polls.get(), before, "A's waker must not poll B");
            done.set(true);
            live.borrow_mut().take().expect("B's waker").wake();
            Ok(())
        })
        .await
    });
}

#[test]
fn schedule_and_cancel_points_are_counted_per_task() {
    common::run(async {
        let task = trio::lowlevel::current_task()?;
        let (schedule, cancel) = (task.schedule_points(), task.cancel_points());
        // Sync code passes neither.
        let _ = trio::CancelScope::new().cancel_called();
        assert_eq!(task.schedule_points(), schedule);
        assert_eq!(task.cancel_points(), cancel);
        // A cancel point alone, then a full checkpoint.
        trio::lowlevel::checkpoint_if_cancelled().await?;
        assert_eq!(task.cancel_points(), cancel + 1);
        assert_eq!(task.schedule_points(), schedule);
        trio::lowlevel::checkpoint().await?;
        assert_eq!(task.cancel_points(), cancel + 2);
        assert_eq!(task.schedule_points(), schedule + 1);
        // A blocking operation counts its entry.
        let lot = trio::lowlevel::ParkingLot::new();
        let _ = trio::move_on_after(1.0, lot.park()).await?;
        assert!(task.cancel_points() >= cancel + 3);
        Ok(())
    });
}
