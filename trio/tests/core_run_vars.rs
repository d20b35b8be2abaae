//! `RunVar`, test by test against Trio's `_core/_tests/test_local.py`: values per run,
//! defaults and `get(default)`, `set` tokens and `reset`, one value shared by every task of
//! the run, and no access outside a run.

mod common;

use common::{assert_err, run};
use trio::UsageError;
use trio::lowlevel::{RunVar, RunVarToken, wait_all_tasks_blocked};

/// Trio's `test_runvar_smoketest`.
#[test]
fn values_and_defaults_last_one_run() {
    static T1: RunVar<String> = RunVar::new("test1");
    static T2: RunVar<String> = RunVar::with_default("test2", || "catfish".into());
    assert!(format!("{T1:?}").contains("test1"));
    run(async {
        assert_err::<UsageError, _>(T1.get());
        let _ = T1.set_with_token("swordfish".into())?;
        assert_eq!(T1.get()?, "swordfish");
        assert_eq!(T2.get()?, "catfish");
        // A default given to the call comes before the variable's own.
        assert_eq!(T2.get_or("eel".into())?, "eel");
        let _ = T2.set_with_token("goldfish".into())?;
        assert_eq!(T2.get()?, "goldfish");
        assert_eq!(T2.get_or("tuna".into())?, "goldfish");
        Ok(())
    });
    run(async {
        assert_err::<UsageError, _>(T1.get());
        assert_eq!(T2.get()?, "catfish");
        Ok(())
    });
}

/// Trio's `test_runvar_resetting`.
#[test]
fn reset_puts_back_what_set_replaced() {
    static T1: RunVar<String> = RunVar::new("test1");
    static T2: RunVar<String> = RunVar::with_default("test2", || "dogfish".into());
    static T3: RunVar<String> = RunVar::new("test3");
    run(async {
        let token = T1.set_with_token("moonfish".into())?;
        assert_eq!(token.previous_value(), None);
        assert_eq!(T1.get()?, "moonfish");
        T1.reset(token)?;
        assert_err::<UsageError, _>(T1.get());

        let token2 = T2.set_with_token("catdogfish".into())?;
        assert_eq!(token2.previous_value().as_deref(), Some("dogfish"));
        assert_eq!(T2.get()?, "catdogfish");
        T2.reset(token2)?;
        assert_eq!(T2.get()?, "dogfish");

        // A token is for the variable that made it.
        let token3 = T3.set_with_token("basculin".into())?;
        assert_eq!(T3.get()?, "basculin");
        let e = assert_err::<UsageError, _>(T1.reset(token3));
        assert!(e.to_string().contains("token is not for us"), "{e}");
        assert_eq!(T3.get()?, "basculin");

        // A value set twice comes back one step at a time.
        let first = T3.set_with_token("first".into())?;
        let second = T3.set_with_token("second".into())?;
        T3.reset(second)?;
        assert_eq!(T3.get()?, "first");
        T3.reset(first)?;
        assert_eq!(T3.get()?, "basculin");
        Ok(())
    });
}

/// Trio's `test_runvar_sync`: one value for every task of the run, and a token made in one
/// task resets in another.
#[test]
fn every_task_of_the_run_sees_the_same_value() {
    static T1: RunVar<String> = RunVar::new("test1");
    run(async {
        trio::open_nursery(|n| async move {
            let token = T1.set_with_token("cod".into())?;
            assert_eq!(T1.get()?, "cod");
            n.start_soon(async {
                let _ = T1.set_with_token("plaice".into())?;
                assert_eq!(T1.get()?, "plaice");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(T1.get()?, "plaice");
            n.start_soon(async move {
                T1.reset(token)?;
                assert_err::<UsageError, _>(T1.get());
                let _ = T1.set_with_token("haddock".into())?;
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(T1.get()?, "haddock");
            Ok(())
        })
        .await
    });
}

/// Trio's `test_accessing_runvar_outside_run_call_fails`.
#[test]
fn outside_a_run_every_access_fails() {
    static T1: RunVar<String> = RunVar::new("test1");
    assert_err::<UsageError, _>(T1.set_with_token("asdf".into()).map(drop));
    assert_err::<UsageError, _>(T1.get());
    assert_err::<UsageError, _>(T1.get_or("x".into()));
    let token: RunVarToken<String> = run(async { T1.set_with_token("ok".into()) });
    assert_err::<UsageError, _>(T1.reset(token));
}

/// Rust's own case: `set` and `reset` inside the variable's own `with` call would change a
/// value that `with` is still writing; both are refused.
#[test]
fn set_and_reset_inside_the_variables_own_with_are_errors() {
    static T1: RunVar<u32> = RunVar::with_default("test1", || 1);
    run(async {
        let token = T1.set_with_token(2)?;
        let inside = T1.with(|v| {
            *v = 3;
            (T1.set_with_token(4).map(drop), T1.reset(token))
        })?;
        assert_err::<UsageError, _>(inside.0);
        assert_err::<UsageError, _>(inside.1);
        assert_eq!(T1.get()?, 3);
        Ok(())
    });
}
