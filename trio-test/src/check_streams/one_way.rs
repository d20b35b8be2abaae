//! `check_one_way_stream`'s checks, in Trio's order.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use trio::lowlevel::wait_all_tasks_blocked;
use trio::stream::prelude::*;
use trio::{
    BrokenResourceError, BusyResourceError, CancelScope, ClosedResourceError, Result, UsageError,
    aclose_forcefully, open_nursery,
};

use super::{checkpointed, expect_err, expect_group_of, force_close_both, make};

/// Runs `a` and `b` as two tasks of a nursery.
pub(super) async fn both(
    a: impl Future<Output = Result<()>> + 'static,
    b: impl Future<Output = Result<()>> + 'static,
) -> Result<()> {
    open_nursery(|n| async move {
        n.start_soon(a)?;
        n.start_soon(b)?;
        Ok(())
    })
    .await
}

/// Runs `a` and `b` (`b` only once `a` blocked, with `a_first`) as two tasks of a nursery,
/// and expects one of them to fail with [`BusyResourceError`]. Should both block instead, the
/// nursery is cancelled and the check fails (rather than hanging).
pub(super) async fn expect_busy(
    what: &str,
    a_first: bool,
    a: impl Future<Output = Result<()>> + 'static,
    b: impl Future<Output = Result<()>> + 'static,
) {
    let result = open_nursery(|n| async move {
        n.start_soon(a)?;
        if a_first {
            wait_all_tasks_blocked().await?;
        }
        n.start_soon(b)?;
        // Both blocked, neither refused: nothing else will happen.
        wait_all_tasks_blocked().await?;
        n.cancel_scope().cancel();
        Ok(())
    })
    .await;
    expect_group_of::<BusyResourceError>(what, result);
}

pub(super) async fn do_send_all<S: SendStream + ?Sized>(s: &S, data: &[u8]) -> Result<()> {
    checkpointed("send_all", s.send_all(data)).await
}

pub(super) async fn do_receive_some<R: ReceiveStream + ?Sized>(
    r: &R,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    checkpointed("receive_some", r.receive_some(max_bytes)).await
}

pub(super) async fn checked_receive_1<R: ReceiveStream + ?Sized>(
    r: &R,
    expected: &[u8],
) -> Result<()> {
    let got = do_receive_some(r, 1).await?;
    assert_eq!(got, expected, "receive_some(1) returned other data");
    Ok(())
}

pub(super) async fn do_aclose<T: AsyncResource + ?Sized>(resource: &T) -> Result<()> {
    checkpointed("aclose", resource.aclose()).await
}

/// Sends until the stream reports it broken.
async fn expect_broken_stream_on_send<S: SendStream + ?Sized>(s: &S) -> Result<()> {
    loop {
        if let Err(e) = do_send_all(s, &[b'x'; 100]).await {
            expect_err::<BrokenResourceError, ()>("send_all after the receiver closed", Err(e));
            return Ok(());
        }
    }
}

pub(super) async fn check<S, R, M, C>(maker: &mut M, clogged: Option<&mut C>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
    M: AsyncFnMut() -> Result<(S, R)>,
    C: AsyncFnMut() -> Result<(S, R)>,
{
    basics(maker).await?;
    graceful_close(maker).await?;
    forceful_closes(maker).await?;
    cancellation(maker).await?;
    if let Some(clogged) = clogged {
        clogged_checks(clogged).await?;
    }
    Ok(())
}

async fn basics<S, R>(maker: &mut impl AsyncFnMut() -> Result<(S, R)>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
{
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        // Simple sending and receiving.
        let (s1, r1) = (s.clone(), r.clone());
        both(async move { do_send_all(&*s1, b"x").await }, async move {
            checked_receive_1(&*r1, b"x").await
        })
        .await?;

        // Streams tolerate sending nothing, without giving it any meaning.
        let (s1, r1) = (s.clone(), r.clone());
        both(
            async move {
                do_send_all(&*s1, b"").await?;
                do_send_all(&*s1, b"y").await
            },
            async move { checked_receive_1(&*r1, b"y").await },
        )
        .await?;

        // Sending from a slice of a larger buffer (Trio's memoryview check).
        let (s1, r1) = (s.clone(), r.clone());
        both(
            async move { do_send_all(&*s1, &b"012"[1..2]).await },
            async move { checked_receive_1(&*r1, b"1").await },
        )
        .await?;

        // receive_into.
        let (s1, r1) = (s.clone(), r.clone());
        both(async move { do_send_all(&*s1, b"2").await }, async move {
            let mut buf = [0u8; 4];
            let n = checkpointed("receive_into", r1.receive_into(&mut buf)).await?;
            assert_eq!(&buf[..n], b"2", "receive_into returned other data");
            Ok(())
        })
        .await?;

        // The size must be positive.
        expect_err::<UsageError, _>("receive_some(0)", r.receive_some(0).await);
        expect_err::<UsageError, _>("receive_into(&mut [])", r.receive_into(&mut []).await);

        // Two receives at once.
        let (r1, r2) = (r.clone(), r.clone());
        expect_busy(
            "two concurrent receive_some",
            false,
            async move { do_receive_some(&*r1, 1).await.map(drop) },
            async move { do_receive_some(&*r2, 1).await.map(drop) },
        )
        .await;

        // An empty stream with a blocked receive_some always allows a send (a stream may
        // also let a send wait for the receive, which is why the receive runs at the same
        // time, and is cancelled once the wait returned).
        open_nursery(|n| {
            let (s1, r1) = (s.clone(), r.clone());
            async move {
                let scope = n.cancel_scope();
                n.start_soon(async move {
                    checkpointed(
                        "wait_send_all_might_not_block",
                        s1.wait_send_all_might_not_block(),
                    )
                    .await?;
                    scope.cancel();
                    Ok(())
                })?;
                n.start_soon(async move { do_receive_some(&*r1, 1).await.map(drop) })?;
                Ok(())
            }
        })
        .await?;

        // Closing the receiver makes sends fail with BrokenResourceError (eventually).
        let (s1, r1) = (s.clone(), r.clone());
        both(
            async move { expect_broken_stream_on_send(&*s1).await },
            async move { do_aclose(&*r1).await },
        )
        .await?;

        // Once detected, the stream stays broken.
        expect_err::<BrokenResourceError, _>(
            "send_all on a broken stream",
            do_send_all(&*s, &[b'x'; 100]).await,
        );
        // A closed receiver fails with ClosedResourceError.
        expect_err::<ClosedResourceError, _>(
            "receive_some on a closed stream",
            do_receive_some(&*r, 4096).await,
        );
        // Closing again is fine.
        do_aclose(&*r).await?;
        do_aclose(&*r).await?;

        // Closing the sender; then sending fails, even sending nothing, and so does waiting.
        do_aclose(&*s).await?;
        expect_err::<ClosedResourceError, _>(
            "send_all on a closed stream",
            do_send_all(&*s, &[b'x'; 100]).await,
        );
        expect_err::<ClosedResourceError, _>(
            "send_all(b\"\") on a closed stream",
            do_send_all(&*s, b"").await,
        );
        expect_err::<ClosedResourceError, _>(
            "wait_send_all_might_not_block on a closed stream",
            checkpointed(
                "wait_send_all_might_not_block",
                s.wait_send_all_might_not_block(),
            )
            .await,
        );
        do_aclose(&*s).await?;
        do_aclose(&*s).await
    })
    .await
}

/// Data sent before a graceful close arrives, then EOF.
async fn graceful_close<S, R>(maker: &mut impl AsyncFnMut() -> Result<(S, R)>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
{
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let (s1, r1) = (s.clone(), r.clone());
        both(
            async move {
                do_send_all(&*s1, b"y").await?;
                do_aclose(&*s1).await
            },
            async move {
                // The sender gets as far as it can (a stream may block its send) before the
                // receiver starts: the data must still all arrive.
                wait_all_tasks_blocked().await?;
                checked_receive_1(&*r1, b"y").await?;
                checked_receive_1(&*r1, b"").await?;
                do_aclose(&*r1).await
            },
        )
        .await
    })
    .await
}

async fn forceful_closes<S, R>(maker: &mut impl AsyncFnMut() -> Result<(S, R)>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
{
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        aclose_forcefully(&*r).await?;
        expect_broken_stream_on_send(&*s).await?;
        expect_err::<ClosedResourceError, _>(
            "receive_some after a forceful close",
            do_receive_some(&*r, 4096).await,
        );
        Ok(())
    })
    .await?;

    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        aclose_forcefully(&*s).await?;
        expect_err::<ClosedResourceError, _>(
            "send_all after a forceful close",
            do_send_all(&*s, b"123").await,
        );
        // The receiver may get BrokenResourceError or a clean EOF; not data, not a hang.
        match checked_receive_1(&*r, b"").await {
            Err(e) if e.is::<BrokenResourceError>() => Ok(()),
            other => other,
        }
    })
    .await
}

async fn cancellation<S, R>(maker: &mut impl AsyncFnMut() -> Result<(S, R)>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
{
    // A cancelled aclose still closes.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let scope = CancelScope::new();
        scope.cancel();
        scope.run(r.aclose()).await?;
        let scope = CancelScope::new();
        scope.cancel();
        scope.run(s.aclose()).await?;
        expect_err::<ClosedResourceError, _>(
            "send_all after a cancelled aclose",
            do_send_all(&*s, b"123").await,
        );
        expect_err::<ClosedResourceError, _>(
            "receive_some after a cancelled aclose",
            do_receive_some(&*r, 4096).await,
        );
        Ok(())
    })
    .await?;

    // Operations in a cancelled scope fail with Cancelled, and the stream can still be closed
    // gracefully afterwards.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let scope = CancelScope::new();
        scope.cancel();
        let (s1, r1) = (s.clone(), r.clone());
        scope
            .run(both(
                async move {
                    let sent = do_send_all(&*s1, b"x").await;
                    assert!(
                        matches!(&sent, Err(e) if e.is_cancelled()),
                        "send_all in a cancelled scope: expected Cancelled, got {sent:?}"
                    );
                    Ok(())
                },
                async move {
                    let got = do_receive_some(&*r1, 1).await;
                    assert!(
                        matches!(&got, Err(e) if e.is_cancelled()),
                        "receive_some in a cancelled scope: expected Cancelled, got {got:?}"
                    );
                    Ok(())
                },
            ))
            .await?;
        let (s1, r1) = (s.clone(), r.clone());
        both(async move { do_aclose(&*s1).await }, async move {
            do_aclose(&*r1).await
        })
        .await
    })
    .await?;

    // Closing the receive stream wakes a task blocked in receive_some.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        open_nursery(|n| {
            let r1 = r.clone();
            let r2 = r.clone();
            async move {
                n.start_soon(async move {
                    expect_err::<ClosedResourceError, _>(
                        "receive_some blocked when its stream was closed",
                        r1.receive_some(10).await,
                    );
                    Ok(())
                })?;
                wait_all_tasks_blocked().await?;
                aclose_forcefully(&*r2).await
            }
        })
        .await
    })
    .await
}

/// The checks that need sends to block until the receiver receives.
async fn clogged_checks<S, R>(maker: &mut impl AsyncFnMut() -> Result<(S, R)>) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
{
    // wait_send_all_might_not_block wakes when a receive starts.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let record = Rc::new(RefCell::new(Vec::new()));
        open_nursery(|n| {
            let (s1, r1) = (s.clone(), r.clone());
            let (rec1, rec2) = (record.clone(), record.clone());
            async move {
                let scope = n.cancel_scope();
                n.start_soon(async move {
                    rec1.borrow_mut().push("waiter sleeping");
                    checkpointed(
                        "wait_send_all_might_not_block",
                        s1.wait_send_all_might_not_block(),
                    )
                    .await?;
                    rec1.borrow_mut().push("waiter woke up");
                    scope.cancel();
                    Ok(())
                })?;
                wait_all_tasks_blocked().await?;
                n.start_soon(async move {
                    // Gives wait_send_all_might_not_block a chance to block.
                    wait_all_tasks_blocked().await?;
                    rec2.borrow_mut().push("receiver starting");
                    loop {
                        r1.receive_some(16834).await?;
                    }
                })?;
                Ok(())
            }
        })
        .await?;
        assert_eq!(
            *record.borrow(),
            ["waiter sleeping", "receiver starting", "waiter woke up"],
            "wait_send_all_might_not_block must block until a receive starts"
        );
        Ok(())
    })
    .await?;

    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        // Two waits at once.
        let (s1, s2) = (s.clone(), s.clone());
        expect_busy(
            "two concurrent wait_send_all_might_not_block",
            false,
            async move { s1.wait_send_all_might_not_block().await },
            async move { s2.wait_send_all_might_not_block().await },
        )
        .await;
        // A wait and a send at once (this may leave the stream unusable: a new one follows).
        let (s1, s2) = (s.clone(), s.clone());
        expect_busy(
            "concurrent wait_send_all_might_not_block and send_all",
            false,
            async move { s1.wait_send_all_might_not_block().await },
            async move { s2.send_all(b"123").await },
        )
        .await;
        Ok(())
    })
    .await?;

    // Two sends at once.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let (s1, s2) = (s.clone(), s.clone());
        expect_busy(
            "two concurrent send_all",
            false,
            async move { s1.send_all(b"123").await },
            async move { s2.send_all(b"123").await },
        )
        .await;
        Ok(())
    })
    .await?;

    // Closing the receiver makes a blocked wait_send_all_might_not_block return (with or
    // without an error)...
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        let (s1, r1) = (s.clone(), r.clone());
        both(
            async move {
                match checkpointed(
                    "wait_send_all_might_not_block",
                    s1.wait_send_all_might_not_block(),
                )
                .await
                {
                    Err(e) if e.is::<BrokenResourceError>() => Ok(()),
                    other => other,
                }
            },
            async move {
                wait_all_tasks_blocked().await?;
                aclose_forcefully(&*r1).await
            },
        )
        .await
    })
    .await?;

    // ... and so it does when the wait starts after the close.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        aclose_forcefully(&*r).await?;
        match checkpointed(
            "wait_send_all_might_not_block",
            s.wait_send_all_might_not_block(),
        )
        .await
        {
            Err(e) if e.is::<BrokenResourceError>() => Ok(()),
            other => other,
        }
    })
    .await?;

    // Closing the send stream wakes a task blocked in send_all...
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        open_nursery(|n| {
            let s1 = s.clone();
            let s2 = s.clone();
            async move {
                n.start_soon(close_soon(s1))?;
                expect_err::<ClosedResourceError, _>(
                    "send_all blocked when its stream was closed",
                    s2.send_all(b"xyzzy").await,
                );
                Ok(())
            }
        })
        .await
    })
    .await?;

    // ... or in wait_send_all_might_not_block.
    let (s, r) = make(maker).await?;
    force_close_both(&*s, &*r, async {
        open_nursery(|n| {
            let s1 = s.clone();
            let s2 = s.clone();
            async move {
                n.start_soon(close_soon(s1))?;
                expect_err::<ClosedResourceError, _>(
                    "wait_send_all_might_not_block blocked when its stream was closed",
                    s2.wait_send_all_might_not_block().await,
                );
                Ok(())
            }
        })
        .await
    })
    .await
}

async fn close_soon<S: SendStream + ?Sized>(s: Rc<S>) -> Result<()> {
    wait_all_tasks_blocked().await?;
    aclose_forcefully(&*s).await
}
