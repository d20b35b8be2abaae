//! Task dumps (issue 15; issue 10 item 11): the text of a known tree line by line, the same
//! tree as data, what every built-in blocking primitive says in a deadlock dump, and the
//! task-tree API (parents, children, eventual parents, spawn sites).

mod common;

use std::cell::Cell;
use std::rc::Rc;

use trio::lowlevel::{
    ScopeKind, TaskDump, TaskKind, TaskState, current_root_task, current_task, sleep_forever,
    task_dump, task_dump_data, wait_all_tasks_blocked, wait_readable,
};
use trio::sync::{CapacityLimiter, Condition, Event, Lock, Semaphore};
use trio::{CancelScope, DeadlockError, open_memory_channel, open_nursery};

/// `(spawned at FILE:LINE:COL)` for the task called `name` in `dump`.
fn site(dump: &TaskDump, name: &str) -> String {
    let task = dump
        .find(name)
        .unwrap_or_else(|| panic!("no task {name:?}"));
    format!("(spawned at {})", task.spawn_site)
}

#[test]
fn the_dump_of_a_known_tree_line_by_line() {
    common::run(async {
        let lock = Lock::new();
        let guard = lock.lock().await?;
        let go = Event::new();
        open_nursery(|nursery| {
            let (lock, go) = (lock.clone(), go.clone());
            async move {
                nursery.start_soon_named("sleeper", async { trio::sleep(5.0).await })?;
                let waiter = lock.clone();
                nursery.start_soon_named("locker", async move { waiter.acquire().await })?;
                let shielded = go.clone();
                nursery.start_soon_named("shielded", async move {
                    CancelScope::new()
                        .shielded(true)
                        .run(async move { shielded.wait().await })
                        .await?;
                    Ok(())
                })?;
                nursery.start_soon_named("parent", async {
                    open_nursery(|inner| async move {
                        inner.start_soon_named("child", async { sleep_forever().await })?;
                        Ok(())
                    })
                    .await
                })?;
                wait_all_tasks_blocked().await?;
                let now = trio::current_time()?;
                let data = task_dump_data()?;
                let text = task_dump()?;
                assert_eq!(text, data.to_string());
                let main = site(&data, "<main>");
                let expected = vec![
                    format!(
                        "task dump at t={now:.3}: 7 tasks (1 running, 0 runnable, 6 blocked)"
                    ),
                    r#"task 0 "<init>" (trio's own system task): blocked in nursery (waiting for 1 child: task 1 "<main>")"#.to_string(),
                    "  nursery".to_string(),
                    format!(r#"    task 1 "<main>" {main}: running"#),
                    "      nursery".to_string(),
                    format!(
                        r#"        task 2 "sleeper" {}: blocked in sleep (until t={:.3}, 5.000 s from now)"#,
                        site(&data, "sleeper"),
                        now + 5.0
                    ),
                    "          cancel scope: deadline in 5.000 s".to_string(),
                    format!(
                        r#"        task 3 "locker" {}: blocked in Lock::acquire (held by task 1 "<main>"; 1 waiting)"#,
                        site(&data, "locker")
                    ),
                    format!(
                        r#"        task 4 "shielded" {}: blocked in Event::wait"#,
                        site(&data, "shielded")
                    ),
                    "          cancel scope: shielded".to_string(),
                    format!(
                        r#"        task 5 "parent" {}: blocked in nursery (waiting for 1 child: task 6 "child")"#,
                        site(&data, "parent")
                    ),
                    "          nursery".to_string(),
                    format!(
                        r#"            task 6 "child" {}: blocked in sleep_forever"#,
                        site(&data, "child")
                    ),
                ];
                let lines: Vec<&str> = text.lines().collect();
                for (i, want) in expected.iter().enumerate() {
                    assert_eq!(lines.get(i).copied(), Some(want.as_str()), "line {i} of\n{text}");
                }
                assert_eq!(lines.len(), expected.len(), "{text}");

                // The same tree as data.
                assert_eq!(data.root.kind, TaskKind::Init);
                let sleeper = data.find("sleeper").unwrap();
                assert_eq!(sleeper.state, TaskState::Blocked);
                let wait = sleeper.waiting_for.as_ref().unwrap();
                assert_eq!(wait.operation, "sleep");
                assert_eq!(sleeper.scopes.len(), 1);
                assert_eq!(sleeper.scopes[0].kind, ScopeKind::CancelScope);
                assert_eq!(sleeper.scopes[0].deadline_in, Some(5.0));
                let shielded = data.find("shielded").unwrap();
                assert!(shielded.scopes[0].shield);
                let main_task = data.find("<main>").unwrap();
                assert_eq!(main_task.kind, TaskKind::Main);
                assert_eq!(main_task.state, TaskState::Running);
                assert_eq!(main_task.descendants().len(), 5);
                assert_eq!(data.counts(), (1, 0, 6));
                go.set();
                nursery.cancel_scope().cancel();
                Ok(())
            }
        })
        .await?;
        drop(guard);
        Ok(())
    });
}

#[test]
fn cancel_state_and_deadlines_of_scopes_are_shown() {
    common::run(async {
        let scope = CancelScope::new();
        let outer = scope.clone();
        open_nursery(|nursery| async move {
            nursery.start_soon_named("doomed", async move {
                let inner = CancelScope::with_relative_deadline(2.0)?.shielded(true);
                outer
                    .run(inner.run(async { sleep_forever().await }))
                    .await?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            scope.cancel();
            let text = task_dump()?;
            assert!(
                text.contains("\n          cancel scope: cancel called\n            cancel scope: deadline in 2.000 s, shielded\n"),
                "{text}"
            );
            Ok(())
        })
        .await
    });
}

/// Every built-in primitive that can deadlock, each in a task of its own: the dump of the
/// `DeadlockError` says what each one waits for.
#[test]
fn a_deadlock_dump_says_what_each_task_waits_for() {
    let error = common::try_run(async {
        let lock = Lock::new();
        let _held = lock.lock().await?;
        let sem = Semaphore::with_max(0, 2)?;
        let limiter = CapacityLimiter::new(1);
        limiter.acquire().await?;
        let (tx, _rx) = open_memory_channel::<u32>(0);
        let (_tx2, rx2) = open_memory_channel::<u32>(1);
        let condition = Condition::new();
        let event = Event::new();
        trio::lowlevel::spawn_system_task("system sleeper", async { sleep_forever().await })?;
        open_nursery(|n| async move {
            let e = event.clone();
            n.start_soon_named("event", async move { e.wait().await })?;
            let l = lock.clone();
            n.start_soon_named("lock", async move { l.acquire().await })?;
            n.start_soon_named("send", async move {
                tx.send(1).await.map_err(trio::Error::from)
            })?;
            n.start_soon_named("receive", async move { rx2.receive().await.map(drop) })?;
            n.start_soon_named("semaphore", async move { sem.acquire().await })?;
            let c = condition.clone();
            n.start_soon_named("condition", async move {
                let _guard = c.lock().await?;
                c.wait().await
            })?;
            let lim = limiter.clone();
            n.start_soon_named("limiter", async move { lim.acquire().await.map(drop) })?;
            n.start_soon_named("forever", async { sleep_forever().await })?;
            Ok(())
        })
        .await
    })
    .expect_err("the run deadlocks");
    let deadlock = error
        .downcast_ref::<DeadlockError>()
        .unwrap_or_else(|| panic!("not a deadlock: {error}"));
    let dump = deadlock.task_dump();
    let expect = [
        r#"task 0 "<init>" (trio's own system task): blocked in nursery (waiting for 2 children: task 1 "<main>", task 2 "system sleeper")"#,
        r#"task 1 "<main>" "#,
        r#": blocked in nursery (waiting for 8 children: task 3 "event", task 4 "lock", task 5 "send" and 5 more)"#,
        r#"task 2 "system sleeper" (system task, spawned at "#,
        r#"task 3 "event" "#,
        r#": blocked in Event::wait"#,
        r#": blocked in Lock::acquire (held by task 1 "<main>"; 1 waiting)"#,
        r#": blocked in MemorySendChannel::send (buffer 0/0; waiting: 1 to send, 0 to receive; open handles: 1 send, 1 receive)"#,
        r#": blocked in MemoryReceiveChannel::receive (buffer 0/1; waiting: 0 to send, 1 to receive; open handles: 1 send, 1 receive)"#,
        r#": blocked in Semaphore::acquire (value 0 (max 2); 1 waiting)"#,
        r#": blocked in Condition::wait (1 waiting; lock free; 0 waiting)"#,
        r#": blocked in CapacityLimiter::acquire (1 of 1 tokens borrowed by task "<main>"; 1 waiting)"#,
        r#""forever" "#,
        r#": blocked in sleep_forever"#,
    ];
    for want in expect {
        assert!(dump.contains(want), "missing {want:?} in\n{dump}");
    }
    let message = error.to_string();
    assert!(
        message.starts_with("deadlock: every task is blocked"),
        "{message}"
    );
}

/// The waits that are never a deadlock (a deadline or an fd can still wake them) say what
/// they wait for in a dump taken by a task.
#[test]
fn sleeps_fds_starts_and_waiting_nurseries_say_what_they_wait_for() {
    common::run(async {
        let (read_fd, write_fd) = pipe();
        open_nursery(|n| async move {
            n.start_soon_named("until", async { trio::sleep_until(7.5).await })?;
            n.start_soon_named("reader", async move { wait_readable(read_fd).await })?;
            let target = n.clone();
            n.start_soon_named("starter", async move {
                target
                    .start(|status: trio::TaskStatus<()>| async move {
                        sleep_forever().await?;
                        status.started(())
                    })
                    .await
            })?;
            wait_all_tasks_blocked().await?;
            let data = task_dump_data()?;
            let text = data.to_string();
            let now = trio::current_time()?;
            let until = format!(
                r#"task 2 "until" {}: blocked in sleep (until t=7.500, {:.3} s from now)"#,
                site(&data, "until"),
                7.5 - now
            );
            assert!(text.contains(&until), "{until}\n{text}");
            assert!(
                text.contains(&format!(": blocked in wait_readable (fd {read_fd})")),
                "{text}"
            );
            let starter = data.find("starter").unwrap();
            let wait = starter.waiting_for.as_ref().unwrap().to_string();
            assert!(
                wait.starts_with("Nursery::start (waiting for task 5 "),
                "{wait}\n{text}"
            );
            assert!(wait.ends_with(" to call started())"), "{wait}");
            assert_eq!(starter.scopes[0].kind, ScopeKind::Start);
            assert!(
                text.contains("\n          nursery of a start() call\n            task 5 "),
                "the task being started shows under its caller: {text}"
            );
            n.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        trio::lowlevel::notify_closing(read_fd);
        close(read_fd);
        close(write_fd);
        Ok(())
    });
}

#[test]
fn the_task_tree_api() {
    common::run(async {
        let root = current_root_task()?;
        assert!(root.parent_nursery().is_none());
        assert_eq!(root.child_nurseries().len(), 1, "the system nursery");
        let me = current_task()?;
        assert_eq!(me.spawn_site().file(), file!(), "where the run started");
        let seen = Rc::new(Cell::new(false));
        open_nursery(|nursery| {
            let seen = seen.clone();
            async move {
                let target = nursery.clone();
                let (tx, rx) = open_memory_channel(1);
                nursery.start_soon_named("opener", async move {
                    target
                        .start(|status: trio::TaskStatus<()>| async move {
                            let me = current_task()?;
                            tx.send(me).await.map_err(trio::Error::from)?;
                            sleep_forever().await?;
                            status.started(())
                        })
                        .await
                })?;
                let started = rx.receive().await?;
                let eventual = started.eventual_parent_nursery().expect("in start()");
                assert!(eventual == nursery, "moves to the target nursery");
                let temp = started.parent_nursery().expect("a parent");
                assert!(temp != nursery, "its parent is the start() call's nursery");
                let opener = temp.parent_task().expect("opened by the caller");
                assert_eq!(opener.name(), "opener");
                assert!(opener.child_nurseries().contains(&temp));
                assert!(nursery.child_tasks().contains(&opener));
                seen.set(true);
                nursery.cancel_scope().cancel();
                Ok(())
            }
        })
        .await?;
        assert!(seen.get());
        Ok(())
    });
}

/// A test that deadlocks, for the next test to run.
#[trio::test]
#[ignore = "deadlocks on purpose; run by a_deadlocked_test_fails_at_the_test"]
async fn deadlocks_on_purpose() -> trio::Result<()> {
    Event::new().wait().await
}

#[test]
fn a_deadlocked_test_fails_at_the_test() {
    let location = Rc::new(std::cell::RefCell::new(None::<(String, u32)>));
    let me = std::thread::current().id();
    let previous = std::panic::take_hook();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            let loc = info.location().map(|l| (l.file().to_string(), l.line()));
            let text = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            let _ = sender.send((loc, text));
        }
    }));
    let result = std::panic::catch_unwind(deadlocks_on_purpose);
    std::panic::set_hook(previous);
    assert!(result.is_err(), "the test must fail");
    let (loc, text) = receiver.recv().expect("a panic was seen");
    *location.borrow_mut() = loc.clone();
    let (file, _line) = loc.expect("a location");
    assert_eq!(file, file!(), "the failure points at the test, not at trio");
    assert!(
        text.starts_with("test deadlocked: every task is blocked"),
        "{text}"
    );
    assert!(text.contains(": blocked in Event::wait"), "{text}");
    assert!(
        text.contains(&format!(r#"task 1 "<main>" (spawned at {}:"#, file!())),
        "the main task was spawned by the test: {text}"
    );
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe failed");
    (fds[0], fds[1])
}

fn close(fd: i32) {
    // SAFETY: closing an fd this test opened and no longer uses.
    unsafe { libc::close(fd) };
}
