//! `TrioToken::run_sync_soon` and system tasks, after Trio's `test_TrioToken_*`,
//! `test_spawn_system_task` and `test_system_task_*` (`_core/_tests/test_run.py`).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use common::{Log, assert_err, run, try_run};
use trio::lowlevel::{
    TaskLocal, TrioToken, checkpoint, current_trio_token, spawn_system_task, wait_all_tasks_blocked,
};
use trio::{RunFinishedError, TrioInternalError, sleep_forever};

#[derive(Debug)]
struct Boom(&'static str);

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom: {}", self.0)
    }
}

impl std::error::Error for Boom {}

fn boom(what: &'static str) -> trio::Error {
    trio::Error::new(Boom(what))
}

type Record<T> = Arc<Mutex<Vec<T>>>;

fn record<T>() -> Record<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn take<T: Clone>(r: &Record<T>) -> Vec<T> {
    r.lock().unwrap().clone()
}

#[test]
// A token hashes the run's address, which never changes.
#[allow(clippy::mutable_key_type)]
fn token_identity_is_per_run_and_hashable() {
    let get = || {
        run(async {
            let token = current_trio_token()?;
            let again = current_trio_token()?;
            assert_eq!(token, again);
            let mut set = HashSet::new();
            set.insert(token.clone());
            assert!(set.contains(&again));
            Ok(token)
        })
    };
    let t1 = get();
    let t2 = get();
    assert_ne!(t1, t2);
    let set: HashSet<TrioToken> = [t1, t2].into_iter().collect();
    assert_eq!(set.len(), 2);
}

#[test]
fn run_sync_soon_runs_later_not_now() {
    let seen = record();
    let s = seen.clone();
    run(async move {
        let s2 = s.clone();
        current_trio_token()?.run_sync_soon(move || s2.lock().unwrap().push(1))?;
        assert!(take(&s).is_empty());
        wait_all_tasks_blocked().await?;
        assert_eq!(take(&s), vec![1]);
        Ok(())
    });
}

#[test]
fn idempotent_calls_collapse_and_keep_fifo_order() {
    run(async {
        let token = current_trio_token()?;
        let seen = record();
        let cb = |x: u32| -> Arc<dyn Fn() + Send + Sync> {
            let s = seen.clone();
            Arc::new(move || s.lock().unwrap().push(x))
        };
        let one = cb(1);
        let two = cb(2);
        token.run_sync_soon({
            let one = one.clone();
            move || one()
        })?;
        for _ in 0..3 {
            token.run_sync_soon_idempotent(one.clone())?;
        }
        for _ in 0..2 {
            token.run_sync_soon_idempotent(two.clone())?;
        }
        wait_all_tasks_blocked().await?;
        let mut got = take(&seen);
        got.sort();
        assert_eq!(got, vec![1, 1, 2]);

        // Trio guarantees FIFO among idempotent calls too.
        seen.lock().unwrap().clear();
        let cbs: Vec<_> = (0..100).map(cb).collect();
        for _ in 0..3 {
            for f in &cbs {
                token.run_sync_soon_idempotent(f.clone())?;
            }
        }
        wait_all_tasks_blocked().await?;
        assert_eq!(take(&seen), (0..100).collect::<Vec<_>>());
        Ok(())
    });
}

#[test]
fn an_idempotent_callback_that_has_started_can_be_queued_again() {
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    run(async move {
        let token = current_trio_token()?;
        let me: Arc<OnceLock<Arc<dyn Fn() + Send + Sync>>> = Arc::new(OnceLock::new());
        let weak = Arc::downgrade(&me);
        let t = token.clone();
        let redo: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            *c.lock().unwrap() += 1;
            if let Some(f) = weak.upgrade().and_then(|me| me.get().cloned()) {
                let _ = t.run_sync_soon_idempotent(f);
            }
        });
        let _ = me.set(redo.clone());
        token.run_sync_soon_idempotent(redo)?;
        for _ in 0..3 {
            checkpoint().await?;
        }
        drop(me);
        Ok(())
    });
    assert!(*count.lock().unwrap() >= 2);
}

#[test]
fn a_callback_queued_as_main_fails_still_runs() {
    let seen = record();
    let s = seen.clone();
    let result = try_run(async move {
        current_trio_token()?.run_sync_soon(move || s.lock().unwrap().push("sync-cb"))?;
        Err::<(), _>(boom("error text"))
    });
    let e = assert_err::<Boom, _>(result);
    assert_eq!(e.to_string(), "boom: error text");
    assert_eq!(take(&seen), vec!["sync-cb"]);
}

#[test]
fn a_panicking_callback_crashes_the_run_but_later_callbacks_and_cleanup_run() {
    let seen = record();
    let s = seen.clone();
    let result = try_run(async move {
        let token = current_trio_token()?;
        token.run_sync_soon(|| panic!("nope"))?;
        let s2 = s.clone();
        token.run_sync_soon(move || s2.lock().unwrap().push("2nd run_sync_soon ran"))?;
        let r = sleep_forever().await;
        if r.as_ref().is_err_and(trio::Error::is_cancelled) {
            s.lock().unwrap().push("cancelled!");
        }
        r
    });
    assert_err::<TrioInternalError, _>(result);
    let mut got = take(&seen);
    got.sort();
    assert_eq!(got, vec!["2nd run_sync_soon ran", "cancelled!"]);
}

#[test]
fn callbacks_that_requeue_themselves_do_not_starve_tasks() {
    fn naughty(token: TrioToken, i: u32, seen: Record<(&'static str, u32)>) {
        let t = token.clone();
        let s = seen.clone();
        if token.run_sync_soon(move || naughty(t, i + 1, s)).is_err() {
            seen.lock().unwrap().push(("run finished", i));
        }
    }
    let seen = record();
    let s = seen.clone();
    run(async move {
        let token = current_trio_token()?;
        let (t, s2) = (token.clone(), s.clone());
        token.run_sync_soon(move || naughty(t, 0, s2))?;
        s.lock().unwrap().push(("starting", 0));
        for _ in 0..20 {
            checkpoint().await?;
        }
        Ok(())
    });
    // Every accepted callback runs: the last one, run as the run closes, is refused.
    let got = take(&seen);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], ("starting", 0));
    assert_eq!(got[1].0, "run finished");
    assert!(got[1].1 >= 19, "{got:?}");
}

#[test]
fn callbacks_accepted_at_the_very_end_run_and_a_late_panic_still_crashes() {
    let seen = record();
    let s = seen.clone();
    let result = try_run(async move {
        let token = current_trio_token()?;
        let t = token.clone();
        token.run_sync_soon(move || {
            let s2 = s.clone();
            t.run_sync_soon(|| panic!("nope")).unwrap();
            t.run_sync_soon(move || s2.lock().unwrap().push("2nd ran"))
                .unwrap();
        })?;
        Ok(())
    });
    assert_err::<TrioInternalError, _>(result);
    assert_eq!(take(&seen), vec!["2nd ran"]);
}

#[test]
fn a_token_refuses_callbacks_after_the_run() {
    let token = run(async { current_trio_token() });
    assert_err::<RunFinishedError, _>(token.run_sync_soon(|| {}));
    assert_err::<RunFinishedError, _>(token.run_sync_soon_idempotent(Arc::new(|| {})));
}

#[test]
fn spawn_system_task_runs_it_with_its_name() {
    let log = Log::default();
    let l = log.clone();
    run(async move {
        let l2 = l.clone();
        let task = spawn_system_task("sys", async move {
            l2.push(1);
            checkpoint().await
        })?;
        assert_eq!(task.name(), "sys");
        assert!(task.is_system());
        wait_all_tasks_blocked().await?;
        assert_eq!(l.get(), vec![1]);
        Ok(())
    });
}

#[test]
fn a_failing_system_task_crashes_the_run_and_cancels_main() {
    let log = Log::default();
    let l = log.clone();
    let result = try_run(async move {
        spawn_system_task("crasher", async { Err(boom("KeyError")) })?;
        let r = sleep_forever().await;
        if r.as_ref().is_err_and(trio::Error::is_cancelled) {
            l.push("main cancelled");
        }
        r
    });
    assert_err::<TrioInternalError, _>(result);
    assert_eq!(log.get(), vec!["main cancelled"]);
}

#[test]
fn a_system_task_whose_nursery_fails_crashes_the_run() {
    let result = try_run(async {
        spawn_system_task("system", async {
            trio::open_nursery(|n| async move {
                n.start_soon(async { Err::<(), _>(boom("KeyError")) })?;
                n.start_soon(async { Err::<(), _>(boom("ValueError")) })?;
                Ok(())
            })
            .await
        })?;
        sleep_forever().await
    });
    assert_err::<TrioInternalError, _>(result);
}

#[test]
fn a_system_task_failing_while_cancelled_at_the_end_crashes_the_run() {
    let result = try_run(async {
        spawn_system_task("system", async {
            trio::open_nursery(|n| async move {
                n.start_soon(async {
                    match sleep_forever().await {
                        Err(e) if e.is_cancelled() => Err(boom("ValueError")),
                        other => other,
                    }
                })?;
                n.start_soon(sleep_forever())?;
                Ok(())
            })
            .await
        })?;
        // Main returns at once: the system tasks are cancelled.
        Ok(())
    });
    assert_err::<TrioInternalError, _>(result);
}

static CVAR: TaskLocal<&'static str> = TaskLocal::new("qwilfish");

#[test]
fn system_tasks_start_from_the_runs_context_not_the_spawners() {
    run(async {
        trio::open_nursery(|n| async move {
            CVAR.set("poison")?;
            n.start_soon(async {
                assert_eq!(CVAR.get()?, Some("poison"));
                Ok(())
            })?;
            spawn_system_task("system", async {
                assert_eq!(CVAR.get()?, None);
                Ok(())
            })?;
            wait_all_tasks_blocked().await
        })
        .await
    });
}
