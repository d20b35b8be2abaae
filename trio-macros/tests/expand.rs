//! The macros at work: what each expansion does at run time.

use std::cell::Cell;
use std::rc::Rc;

use trio::__private::ScheduleTracker;
use trio::lowlevel::{checkpoint_sites, task_dump, wait_all_tasks_blocked};
use trio::{CancelScope, UsageError};

#[trio::test(autojump)]
async fn autojump_sleeps_an_hour_in_no_time() -> trio::Result<()> {
    let start = trio::current_time()?;
    trio::sleep(3600.0).await?;
    assert_eq!(trio::current_time()? - start, 3600.0);
    Ok(())
}

#[trio::test]
async fn a_test_may_return_unit() {
    trio::lowlevel::checkpoint().await.unwrap();
}

#[trio::test(clock = trio_test::MockClock::new().with_autojump_threshold(0.02).unwrap())]
async fn clock_option_uses_the_given_clock() -> trio::Result<()> {
    let start = trio::current_time()?;
    trio::sleep(10.0).await?;
    // The clock only moves by autojump here: virtual time advanced by exactly 10 s.
    assert_eq!(trio::current_time()? - start, 10.0);
    Ok(())
}

#[trio::test(autojump = 0.01, seed = 7)]
async fn autojump_threshold_and_seed_options() -> trio::Result<()> {
    assert_eq!(trio::lowlevel::current_seed()?, 7);
    let start = trio::current_time()?;
    trio::sleep(2.0).await?;
    assert_eq!(trio::current_time()? - start, 2.0);
    Ok(())
}

#[trio::test]
#[should_panic(expected = "test returned an error")]
async fn an_err_return_fails_the_test() -> trio::Result<()> {
    Err(trio::Error::new(UsageError::new("on purpose")))
}

#[trio::test(autojump)]
#[should_panic(expected = "deadlock")]
async fn a_deadlocked_test_fails_instead_of_hanging() -> trio::Result<()> {
    trio::sync::Event::new().wait().await
}

#[trio::test]
async fn early_return_in_a_test_body() -> trio::Result<()> {
    if trio::current_time()?.is_finite() {
        return Ok(());
    }
    unreachable!("the early return is taken")
}

/// A checkpoint whose body never yields.
#[trio::checkpoint]
async fn no_yield_in_body(counter: Rc<Cell<u32>>) -> trio::Result<u32> {
    counter.set(counter.get() + 1);
    Ok(counter.get())
}

/// A checkpoint whose body yields on its own.
#[trio::checkpoint]
async fn yields_in_body(polls: Rc<Cell<u32>>) -> trio::Result<()> {
    trio::lowlevel::checkpoint().await?;
    polls.set(polls.get() + 1);
    Ok(())
}

/// A checkpoint with an early return.
#[trio::checkpoint]
async fn early_return(flag: bool) -> trio::Result<&'static str> {
    if flag {
        return Ok("early");
    }
    Ok("late")
}

#[derive(Debug)]
enum MyError {
    Trio(trio::Error),
}

impl From<trio::Error> for MyError {
    fn from(e: trio::Error) -> Self {
        MyError::Trio(e)
    }
}

/// A checkpoint with its own error type that can carry `Cancelled`.
#[trio::checkpoint]
async fn custom_error() -> Result<u8, MyError> {
    Ok(1)
}

/// A result alias whose name does not end in `Result`.
type Fallible<T> = Result<T, MyError>;

/// A checkpoint returning an alias: the compiler, not the alias's name, checks the type.
#[trio::checkpoint]
async fn via_alias(n: u8) -> Fallible<u8> {
    Ok(n + 1)
}

/// A checkpoint generic over any error type that can carry a `trio::Error`.
#[trio::checkpoint]
async fn generic_error<E: From<trio::Error>>() -> Result<u8, E> {
    Ok(2)
}

#[trio::test]
async fn checkpoint_works_for_any_error_that_can_carry_a_trio_error() -> trio::Result<()> {
    assert!(matches!(via_alias(1).await, Ok(2)));
    assert!(matches!(generic_error::<MyError>().await, Ok(2)));
    assert_eq!(generic_error::<trio::Error>().await?, 2);
    let scope = CancelScope::new();
    scope.cancel();
    let result = scope.run(async { Ok(via_alias(1).await) }).await?;
    match result {
        Some(Err(MyError::Trio(e))) => assert!(e.is_cancelled()),
        other => panic!("expected a Cancelled inside MyError, got {other:?}"),
    }
    let scope = CancelScope::new();
    scope.cancel();
    let result = scope
        .run(async { Ok(generic_error::<MyError>().await) })
        .await?;
    assert!(matches!(result, Some(Err(MyError::Trio(e))) if e.is_cancelled()));
    Ok(())
}

/// A test returning an alias of `Result<(), E>` whose name does not end in `Result`.
type Outcome = Result<(), MyError>;

#[trio::test]
async fn a_test_may_return_an_alias() -> Outcome {
    via_alias(0).await?;
    Ok(())
}

struct Counter {
    hits: Cell<u32>,
}

impl Counter {
    #[trio::checkpoint]
    async fn hit(&self, by: u32) -> trio::Result<u32> {
        self.hits.set(self.hits.get() + by);
        Ok(self.hits.get())
    }
}

#[trio::test]
async fn checkpoint_inserts_a_schedule_point_when_the_body_has_none() -> trio::Result<()> {
    let counter = Rc::new(Cell::new(0));
    let tracker = ScheduleTracker::new();
    assert_eq!(no_yield_in_body(counter.clone()).await?, 1);
    assert!(tracker.scheduled(), "a schedule point was added");
    Ok(())
}

/// Awaits `fut`, counting how many times it was polled.
async fn count_polls<F: std::future::Future>(fut: F) -> (F::Output, u32) {
    let mut fut = std::pin::pin!(fut);
    let mut polls = 0;
    let out = std::future::poll_fn(|cx| {
        polls += 1;
        fut.as_mut().poll(cx)
    })
    .await;
    (out, polls)
}

#[trio::test]
async fn checkpoint_adds_no_second_schedule_point() -> trio::Result<()> {
    // The body yields once, so the call is polled twice; an added yield would make it three.
    let ran = Rc::new(Cell::new(0));
    let (result, polls) = count_polls(yields_in_body(ran.clone())).await;
    result?;
    assert_eq!(ran.get(), 1);
    assert_eq!(polls, 2);
    // And a body without a yield gets exactly one.
    let (result, polls) = count_polls(no_yield_in_body(ran)).await;
    result?;
    assert_eq!(polls, 2);
    Ok(())
}

#[trio::test]
async fn checkpoint_is_a_cancel_point_on_entry() -> trio::Result<()> {
    let counter = Rc::new(Cell::new(0));
    let scope = CancelScope::new();
    scope.cancel();
    let c = counter.clone();
    let outcome = scope.run(async move { no_yield_in_body(c).await }).await?;
    assert_eq!(outcome, None, "the scope absorbed the Cancelled");
    assert_eq!(counter.get(), 0, "the body never ran");
    assert!(scope.cancelled_caught());

    let scope = CancelScope::new();
    scope.cancel();
    let result = scope.run(async { Ok(custom_error().await) }).await?;
    match result {
        Some(Err(MyError::Trio(e))) => assert!(e.is_cancelled()),
        other => panic!("expected a Cancelled inside MyError, got {other:?}"),
    }
    Ok(())
}

#[trio::test]
async fn checkpoint_keeps_returns_and_methods_working() -> trio::Result<()> {
    assert_eq!(early_return(true).await?, "early");
    assert_eq!(early_return(false).await?, "late");
    let counter = Counter { hits: Cell::new(0) };
    assert_eq!(counter.hit(2).await?, 2);
    assert_eq!(counter.hit(3).await?, 5);
    assert!(matches!(custom_error().await, Ok(1)));
    Ok(())
}

#[test]
fn checkpoint_sites_are_registered() {
    let sites: Vec<_> = checkpoint_sites().collect();
    for name in ["no_yield_in_body", "yields_in_body", "early_return", "hit"] {
        let site = sites
            .iter()
            .find(|s| s.function == name)
            .unwrap_or_else(|| panic!("{name} is not registered: {sites:?}"));
        assert!(site.module.ends_with("expand"), "{site:?}");
        assert!(site.file.ends_with("expand.rs"), "{site:?}");
        assert!(site.line > 0);
    }
}

#[trio::wchan("waiting for the go signal")]
async fn wait_for_go(go: Rc<trio::sync::Event>) -> trio::Result<()> {
    inner_wait(go).await
}

#[trio::wchan]
async fn inner_wait(go: Rc<trio::sync::Event>) -> trio::Result<()> {
    go.wait().await
}

#[trio::test]
async fn wchan_frames_show_in_dumps_outermost_first() -> trio::Result<()> {
    let go = Rc::new(trio::sync::Event::new());
    trio::open_nursery(|nursery| {
        let go = go.clone();
        async move {
            nursery.start_soon_named("waiter", wait_for_go(go.clone()))?;
            wait_all_tasks_blocked().await?;
            let dump = task_dump()?;
            assert!(
                dump.contains(": blocked in Event::wait\n"),
                "the primitive it is parked in: {dump}"
            );
            assert!(
                dump.contains(
                    "\n          wait channels: waiting for the go signal > inner_wait\n"
                ),
                "every frame, outermost first: {dump}"
            );
            let waiter = &nursery.child_tasks()[0];
            assert_eq!(waiter.wchan(), Some("waiting for the go signal"));
            assert_eq!(
                waiter.wait_channels(),
                ["waiting for the go signal", "inner_wait"]
            );
            go.set();
            Ok(())
        }
    })
    .await
}

#[trio::test]
async fn wchan_default_label_is_the_function_name() -> trio::Result<()> {
    let go = Rc::new(trio::sync::Event::new());
    trio::open_nursery(|nursery| {
        let go = go.clone();
        async move {
            nursery.start_soon_named("waiter", inner_wait(go.clone()))?;
            wait_all_tasks_blocked().await?;
            let dump = task_dump()?;
            assert!(
                dump.contains("wait channels: inner_wait\n"),
                "dump:\n{dump}"
            );
            go.set();
            Ok(())
        }
    })
    .await
}
