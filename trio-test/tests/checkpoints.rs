//! `assert_checkpoints` / `assert_no_checkpoints`: Trio's `test_assert_checkpoints` and
//! `test_assert_no_checkpoints` (half a checkpoint is neither), and the checkpoint rule on
//! trio-test's own async fns.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use common::{panics, run};
use trio::lowlevel::{cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled};
use trio::{Error, UsageError};
use trio_test::{MemorySendStream, assert_checkpoints, assert_no_checkpoints};

/// `cancel_shielded_checkpoint` as a fallible future, for `assert_checkpoints`.
async fn schedule_point_only() -> trio::Result<()> {
    cancel_shielded_checkpoint().await;
    Ok(())
}

#[test]
fn assert_checkpoints_needs_a_cancel_point_and_a_schedule_point() {
    run(async {
        assert_checkpoints(checkpoint()).await?;
        assert_eq!(
            assert_checkpoints(async { checkpoint().await.map(|()| 7) }).await?,
            7
        );
        // Both halves together are a checkpoint.
        assert_checkpoints(async {
            checkpoint_if_cancelled().await?;
            cancel_shielded_checkpoint().await;
            Ok::<_, Error>(())
        })
        .await?;

        let none = panics(assert_checkpoints(async { Ok::<_, Error>(1 + 1) })).await;
        assert!(
            none.contains("without a cancel point and a schedule point"),
            "{none}"
        );
        // The message says where the assertion is.
        assert!(none.contains("tests/checkpoints.rs:"), "{none}");
        let cancel_only = panics(assert_checkpoints(checkpoint_if_cancelled())).await;
        assert!(
            cancel_only.ends_with("without a schedule point"),
            "{cancel_only}"
        );
        let schedule_only = panics(assert_checkpoints(schedule_point_only())).await;
        assert!(
            schedule_only.ends_with("without a cancel point"),
            "{schedule_only}"
        );
        Ok(())
    });
}

#[test]
fn assert_checkpoints_checks_only_successes() {
    run(async {
        // As Trio's, which checks only a block that did not raise: an error may return at once.
        let failed =
            assert_checkpoints(async { Err::<(), _>(Error::new(UsageError::new("bad argument"))) })
                .await;
        assert!(failed.is_err_and(|e| e.is::<UsageError>()));
        // Cancelled at the cancel point, without a schedule point: not a violation.
        let scope = trio::CancelScope::new();
        scope.cancel();
        let inside = scope
            .run(async { Ok(assert_checkpoints(checkpoint_if_cancelled()).await) })
            .await?;
        assert!(inside.is_some_and(|r| r.is_err_and(|e| e.is_cancelled())));
        Ok(())
    });
}

#[test]
fn assert_no_checkpoints_fails_on_any_half() {
    run(async {
        assert_eq!(assert_no_checkpoints(async { 1 + 1 }).await, 2);
        let full = panics(assert_no_checkpoints(checkpoint())).await;
        assert!(
            full.ends_with("made a cancel point and a schedule point"),
            "{full}"
        );
        assert!(full.contains("tests/checkpoints.rs:"), "{full}");
        let cancel = panics(assert_no_checkpoints(checkpoint_if_cancelled())).await;
        assert!(cancel.ends_with("made a cancel point"), "{cancel}");
        let schedule = panics(assert_no_checkpoints(cancel_shielded_checkpoint())).await;
        assert!(schedule.ends_with("made a schedule point"), "{schedule}");
        let both = panics(assert_no_checkpoints(async {
            checkpoint_if_cancelled().await?;
            cancel_shielded_checkpoint().await;
            Ok::<_, Error>(())
        }))
        .await;
        assert!(
            both.ends_with("made a cancel point and a schedule point"),
            "{both}"
        );
        // Checked whatever the future returned (Trio checks in a `finally`).
        let failed = panics(assert_no_checkpoints(async {
            checkpoint().await?;
            Err::<(), _>(Error::new(UsageError::new("failed after a checkpoint")))
        }))
        .await;
        assert!(failed.contains("made a cancel point"), "{failed}");
        Ok(())
    });
}

#[test]
fn the_assertions_need_a_trio_task() {
    let outside = std::panic::catch_unwind(|| {
        let mut cx = Context::from_waker(Waker::noop());
        let mut fut = pin!(assert_no_checkpoints(async {}));
        let _ = fut.as_mut().poll(&mut cx);
    });
    let message = common::panic_message(outside.expect_err("it must panic"));
    assert!(
        message.contains("must be awaited inside a trio task"),
        "{message}"
    );
}

#[test]
fn trio_tests_own_async_fns_are_checkpoints() {
    run(async {
        let stream = MemorySendStream::new();
        // Data there already.
        trio::SendStreamExt::send_all(&stream, b"abc").await?;
        assert_eq!(assert_checkpoints(stream.get_data(None)).await?, b"abc");
        // Waiting for data.
        let s = stream.clone();
        trio::open_nursery(|n| async move {
            let getter = s.clone();
            n.start_soon(async move {
                assert_eq!(assert_checkpoints(getter.get_data(Some(2))).await?, b"xy");
                Ok(())
            })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            trio::SendStreamExt::send_all(&s, b"xyz").await
        })
        .await?;
        assert_eq!(assert_checkpoints(stream.get_data(None)).await?, b"z");
        // After the close, the end (no data) is a normal return as well.
        stream.close();
        assert!(assert_checkpoints(stream.get_data(None)).await?.is_empty());
        Ok(())
    });
}

#[test]
fn open_stream_to_socket_listener_and_fake_sockets_are_checkpoints() {
    run(async {
        let net = trio_test::FakeNet::new();
        net.enable()?;
        let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
        // At once (no latency: connected on the first poll) ...
        let client =
            assert_checkpoints(trio_test::open_stream_to_socket_listener(&listeners[0])).await?;
        let server = assert_checkpoints(trio::ListenerExt::accept(&listeners[0])).await?;
        trio::SendStreamExt::send_all(&client, b"x").await?;
        assert_eq!(assert_checkpoints(server.socket().recv(1)).await?, b"x");
        // ... and after a wait.
        net.set_latency(1)?;
        let client =
            assert_checkpoints(trio_test::open_stream_to_socket_listener(&listeners[0])).await?;
        let server = assert_checkpoints(trio::ListenerExt::accept(&listeners[0])).await?;
        trio::SendStreamExt::send_all(&client, b"y").await?;
        assert_eq!(assert_checkpoints(server.socket().recv(1)).await?, b"y");
        Ok(())
    });
}
