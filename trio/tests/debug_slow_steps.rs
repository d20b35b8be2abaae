//! Slow-step detection (issue 15): a task that blocks the loop with `std::thread::sleep` is
//! reported with its name, spawn site and the step's duration.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use trio::lowlevel::{SlowStep, checkpoint};
use trio::{UsageError, open_nursery};

#[test]
fn a_task_that_blocks_the_loop_is_reported() {
    let seen: Rc<RefCell<Vec<SlowStep>>> = Rc::default();
    let log = seen.clone();
    let spawned_at = Rc::new(RefCell::new(None));
    let site = spawned_at.clone();
    trio::RunConfig::new()
        .ctrl_c(false)
        .detect_slow_steps(Duration::from_millis(10))
        .on_slow_step(move |step| log.borrow_mut().push(step.clone()))
        .run(async move {
            open_nursery(|nursery| async move {
                nursery.start_soon_named("blocker", async {
                    checkpoint().await?;
                    // A blocking call in a task: every other task waits meanwhile.
                    std::thread::sleep(Duration::from_millis(30));
                    Ok(())
                })?;
                *site.borrow_mut() = Some(nursery.child_tasks()[0].spawn_site());
                Ok(())
            })
            .await
        })
        .expect("the run");
    let seen = seen.borrow();
    let blocker: Vec<&SlowStep> = seen.iter().filter(|s| s.task.name() == "blocker").collect();
    assert_eq!(blocker.len(), 1, "one slow step of the blocker: {seen:?}");
    let step = blocker[0];
    assert!(step.duration >= Duration::from_millis(30), "{step:?}");
    assert_eq!(step.threshold, Duration::from_millis(10));
    assert_eq!(Some(step.task.spawn_site()), *spawned_at.borrow());
    assert_eq!(step.task.spawn_site().file(), file!());
    let text = step.to_string();
    assert!(
        text.starts_with(&format!(
            "trio: slow step: task {} \"blocker\" (spawned at {}) ran for 0.0",
            step.task.id(),
            step.task.spawn_site()
        )),
        "{text}"
    );
    assert!(
        text.contains("without yielding (threshold 0.010 s)"),
        "{text}"
    );
    for step in seen.iter() {
        assert!(
            step.duration > step.threshold,
            "only steps over the threshold: {step:?}"
        );
    }
}

#[test]
fn a_bad_threshold_is_a_usage_error() {
    for bad in [-1.0, f64::NAN] {
        let error = trio::RunConfig::new()
            .detect_slow_steps(bad)
            .run(async { Ok(()) })
            .expect_err("refused");
        assert!(error.is::<UsageError>(), "{error}");
        assert!(error.to_string().contains("detect_slow_steps"), "{error}");
    }
}

#[test]
fn off_by_default_and_on_slow_step_alone_reports_nothing() {
    let seen = Rc::new(RefCell::new(0));
    let count = seen.clone();
    trio::RunConfig::new()
        .ctrl_c(false)
        .on_slow_step(move |_| *count.borrow_mut() += 1)
        .run(async {
            std::thread::sleep(Duration::from_millis(5));
            checkpoint().await
        })
        .expect("the run");
    assert_eq!(*seen.borrow(), 0, "no threshold: nothing is slow");
}
