//! `join`, `join_all`, `race` and `race_all`: concurrency inside one task, with a nursery's
//! rules (a failure cancels the others, every error comes out, nothing outlives the call).

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use common::{assert_err, in_cancelled_scope, run, try_run, yields};
use trio::lowlevel::{checkpoint, sleep_forever};
use trio::{CancelScope, Event, UsageError, current_time, join, join_all, race, race_all, sleep};

/// Records when it is dropped.
struct DropFlag<'a>(&'a Cell<bool>);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn failure(message: &str) -> trio::Error {
    trio::Error::new(std::io::Error::other(message.to_owned()))
}

#[test]
fn join_runs_borrowing_branches_concurrently_and_returns_every_value() {
    run(async {
        let log = RefCell::new(Vec::new());
        let ready = Event::new();
        // Each branch borrows `log` and `ready`; the first waits for the second, so run one
        // after the other they would deadlock.
        let (a, b, c) = join((
            async {
                ready.wait().await?;
                log.borrow_mut().push("a after b");
                Ok(1)
            },
            async {
                sleep(1.0).await?;
                log.borrow_mut().push("b");
                ready.set();
                Ok("two")
            },
            async { Ok(3.0) },
        ))
        .await?;
        assert_eq!((a, b, c), (1, "two", 3.0));
        assert_eq!(*log.borrow(), ["b", "a after b"]);
        assert_eq!(current_time()?, 1.0);
        Ok(())
    });
}

#[test]
fn a_failing_branch_cancels_the_others_and_every_error_comes_out_with_its_branch() {
    let cleaned_up = Cell::new(false);
    let result: trio::Result<()> = try_run(async move {
        let cleaned_up = &cleaned_up;
        let out = join((
            async {
                let waited = sleep(100.0).await;
                // The failure of branch 1 cancelled this one; its shielded cleanup still runs.
                assert!(waited.as_ref().is_err_and(|e| e.is_cancelled()));
                let reason = waited
                    .as_ref()
                    .unwrap_err()
                    .as_cancelled()
                    .and_then(|c| c.reason())
                    .map(str::to_owned);
                assert_eq!(
                    reason.as_deref(),
                    Some("branch 1 failed: boom"),
                    "the cancel reason names the failing branch"
                );
                CancelScope::new().shielded(true).run(sleep(1.0)).await?;
                cleaned_up.set(true);
                waited
            },
            async {
                sleep(5.0).await?;
                Err::<(), _>(failure("boom"))
            },
            async {
                sleep(6.0).await?;
                Err::<(), _>(failure("second failure, after the cancel"))
            },
        ))
        .await;
        assert!(cleaned_up.get(), "join returned before branch 0 ended");
        assert_eq!(current_time()?, 6.0);
        let error = out.unwrap_err();
        let group = error.as_group().expect("an ErrorGroup");
        assert_eq!(
            group.len(),
            1,
            "branch 2 was cancelled at its sleep: {group}"
        );
        assert_eq!(group.origin(0), Some("branch 1"));
        assert_eq!(group.errors()[0].to_string(), "boom");
        Ok(())
    });
    result.unwrap();
}

#[test]
fn errors_raised_while_being_cancelled_are_not_lost() {
    run(async {
        let out: trio::Result<((), ())> = join((async { Err(failure("first")) }, async {
            match sleep(1.0).await {
                Err(e) if e.is_cancelled() => Err(failure("cleanup failed")),
                other => other,
            }
        }))
        .await;
        let error = out.unwrap_err();
        let group = error.as_group().expect("an ErrorGroup");
        let listed: Vec<_> = (0..group.len())
            .map(|i| {
                (
                    group.origin(i).unwrap().to_owned(),
                    group.errors()[i].to_string(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                ("branch 0".to_owned(), "first".to_owned()),
                ("branch 1".to_owned(), "cleanup failed".to_owned())
            ]
        );
        Ok(())
    });
}

#[test]
fn a_cancelled_enclosing_scope_comes_out_as_cancelled_and_the_scope_absorbs_it() {
    run(async {
        // Already cancelled: no branch starts.
        let started = Cell::new(false);
        let out = in_cancelled_scope(join((async {
            started.set(true);
            Ok(())
        },)))
        .await?;
        assert_eq!(out, None);
        assert!(
            !started.get(),
            "a join in a cancelled scope started a branch"
        );

        // Cancelled while running, by a deadline.
        let out = trio::move_on_after(2.0, join((sleep_forever(), sleep(1.0)))).await?;
        assert!(out.is_none(), "the timeout absorbed the join's Cancelled");
        assert_eq!(current_time()?, 2.0);
        Ok(())
    });
}

#[test]
fn the_first_to_succeed_wins_and_the_losers_have_ended_when_race_returns() {
    run(async {
        let loser_ended = Cell::new(false);
        let winner = race((
            async {
                let r = sleep(10.0).await;
                CancelScope::new().shielded(true).run(sleep(0.5)).await?;
                loser_ended.set(true);
                r.map(|()| "slow")
            },
            async {
                sleep(1.0).await?;
                Ok("fast")
            },
        ))
        .await?;
        assert_eq!(winner, "fast");
        assert!(loser_ended.get());
        assert_eq!(
            current_time()?,
            1.5,
            "the loser's shielded cleanup ran to its end"
        );
        Ok(())
    });
}

#[test]
fn a_race_fails_when_a_branch_fails_before_anyone_wins() {
    run(async {
        let out = race((
            async {
                sleep(2.0).await?;
                Ok(1)
            },
            async {
                sleep(1.0).await?;
                Err(failure("lost connection"))
            },
        ))
        .await;
        let error = out.unwrap_err();
        let group = error.as_group().expect("an ErrorGroup");
        assert_eq!(group.origin(0), Some("branch 1"));
        assert_eq!(
            current_time()?,
            1.0,
            "the other branch was cancelled at once"
        );
        Ok(())
    });
}

#[test]
fn lists_join_in_order_and_race_by_first_success() {
    run(async {
        let delays = [3.0, 1.0, 2.0];
        let doubled = join(join_all(delays.iter().map(|&d| async move {
            sleep(d).await?;
            Ok(d * 2.0)
        })))
        .await?;
        assert_eq!(doubled, [6.0, 2.0, 4.0]);
        assert_eq!(current_time()?, 3.0);

        let first = race(race_all(delays.iter().map(|&d| async move {
            sleep(d).await?;
            Ok(d)
        })))
        .await?;
        assert_eq!(first, 1.0);
        assert_eq!(current_time()?, 4.0);

        let empty = || Vec::<std::future::Ready<trio::Result<u8>>>::new();
        assert_eq!(join(join_all(empty())).await?, Vec::<u8>::new());
        assert_err::<UsageError, _>(race(race_all(empty())).await);
        Ok(())
    });
}

#[test]
fn join_and_race_are_checkpoints_even_when_every_branch_is_ready() {
    run(async {
        yields(join((async { Ok(1) }, async { Ok(2) }))).await?;
        yields(race((async { Ok(1) }, async { Ok(2) }))).await?;
        yields(join(join_all(
            Vec::<std::future::Ready<trio::Result<()>>>::new(),
        )))
        .await?;
        // A branch that yields is the schedule point: no second one.
        let before = trio::lowlevel::current_task()?.schedule_points();
        join((checkpoint(),)).await?;
        assert_eq!(
            trio::lowlevel::current_task()?.schedule_points(),
            before + 1
        );
        let ready = in_cancelled_scope(join((async { Ok(()) },))).await?;
        assert_eq!(ready, None, "a cancel point on entry");
        Ok(())
    });
}

#[test]
fn dropping_a_join_drops_every_branch() {
    run(async {
        let dropped = [Cell::new(false), Cell::new(false)];
        {
            let mut joined = pin!(join((
                async {
                    let _flag = DropFlag(&dropped[0]);
                    sleep_forever().await
                },
                async {
                    let _flag = DropFlag(&dropped[1]);
                    sleep_forever().await
                },
            )));
            let first_poll = std::future::poll_fn(|cx| Poll::Ready(joined.as_mut().poll(cx))).await;
            assert!(first_poll.is_pending());
        }
        assert!(dropped[0].get() && dropped[1].get());
        Ok(())
    });
}

#[test]
fn eight_branches_of_different_types() {
    run(async {
        let out = join((
            async { Ok(0u8) },
            async { Ok(1u16) },
            async { Ok(2u32) },
            async { Ok(3u64) },
            async { Ok('4') },
            async { Ok("5") },
            async { Ok(6.0f32) },
            async { Ok(vec![7]) },
        ))
        .await?;
        assert_eq!(out, (0, 1, 2, 3, '4', "5", 6.0, vec![7]));
        Ok(())
    });
}

#[test]
fn a_panicking_branch_cancels_the_others_and_resumes_once_they_ended() {
    let cleaned_up = std::rc::Rc::new(Cell::new(false));
    let seen = cleaned_up.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        run(async move {
            join((
                async {
                    let r = sleep(10.0).await;
                    let reason = r
                        .as_ref()
                        .err()
                        .and_then(|e| e.as_cancelled())
                        .and_then(|c| c.reason())
                        .map(str::to_owned);
                    assert_eq!(reason.as_deref(), Some("branch 1 panicked: kaboom"));
                    CancelScope::new().shielded(true).run(sleep(1.0)).await?;
                    seen.set(true);
                    r
                },
                async {
                    sleep(1.0).await?;
                    panic!("kaboom");
                    #[allow(unreachable_code)]
                    Ok(())
                },
            ))
            .await?;
            Ok(())
        })
    }));
    let payload = outcome.expect_err("the panic came out of the run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"kaboom"));
    assert!(
        cleaned_up.get(),
        "the other branch ended before the panic resumed"
    );
}
