//! Memory streams: Trio's `test_testing.py` memory-stream tests, and the poll-level behaviour
//! of hooks that wait.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;
use trio::stream::prelude::*;
use trio::{
    BrokenResourceError, BusyResourceError, ClosedResourceError, UsageError, WouldBlock,
    aclose_forcefully, open_nursery,
};
use trio_test::{
    AsyncHook, MemoryReceiveStream, MemorySendStream, SyncHook, memory_stream_one_way_pair,
    memory_stream_pair, memory_stream_pump,
};

/// Trio's `test__UnboundeByteQueue`, through the send stream's buffer (the queue is private).
#[test]
fn the_send_buffer_is_an_unbounded_byte_queue() {
    run(async {
        let s = MemorySendStream::new();
        s.send_all(b"123").await?;
        s.send_all(b"456").await?;
        assert_eq!(s.get_data_nowait(Some(1))?, b"1");
        assert_eq!(s.get_data_nowait(Some(10))?, b"23456");
        s.send_all(b"789").await?;
        assert_eq!(s.get_data_nowait(None)?, b"789");
        assert_err::<WouldBlock, _>(s.get_data_nowait(Some(10)));
        assert_err::<WouldBlock, _>(s.get_data_nowait(None));
        assert_err::<UsageError, _>(s.get_data_nowait(Some(0)));
        assert_err::<UsageError, _>(s.get_data(Some(0)).await);

        s.send_all(b"abc").await?;
        assert_eq!(yields(s.get_data(Some(10))).await?, b"abc");
        s.send_all(b"def").await?;
        s.send_all(b"ghi").await?;
        assert_eq!(yields(s.get_data(Some(1))).await?, b"d");
        assert_eq!(yields(s.get_data(None)).await?, b"efghi");

        // A getter waits for a put.
        let (s1, s2) = (s.clone(), s.clone());
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(yields(s1.get_data(None)).await?, b"xyz");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s2.send_all(b"xyz").await
        })
        .await?;

        // Two getters at once.
        let (s1, s2) = (s.clone(), s.clone());
        let busy = open_nursery(|n| async move {
            n.start_soon(async move { s1.get_data(None).await.map(drop) })?;
            n.start_soon(async move { s2.get_data(None).await.map(drop) })?;
            Ok(())
        })
        .await;
        assert_group_of::<BusyResourceError>(busy);

        // Closing: no more puts; gets drain, then return EOF, without waiting.
        s.send_all(b"end").await?;
        s.close();
        assert_err::<ClosedResourceError, _>(s.send_all(b"---").await);
        assert_eq!(s.get_data(Some(10)).await?, b"end");
        assert_eq!(s.get_data_nowait(Some(10))?, b"");
        assert_eq!(s.get_data_nowait(None)?, b"");
        assert_eq!(s.get_data(Some(10)).await?, b"");
        assert_eq!(s.get_data(None).await?, b"");
        s.close();

        // Closing wakes a blocked getter.
        let s = MemorySendStream::new();
        let (s1, s2) = (s.clone(), s.clone());
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(s1.get_data(None).await?, b"");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s2.close();
            Ok(())
        })
        .await
    });
}

/// Trio's `test_MemorySendStream`.
#[test]
fn memory_send_stream() {
    run(async {
        let mss = MemorySendStream::new();
        yields(mss.send_all(b"123")).await?;
        assert_eq!(mss.get_data_nowait(Some(1))?, b"1");
        assert_eq!(mss.get_data_nowait(None)?, b"23");
        yields(mss.wait_send_all_might_not_block()).await?;
        assert_err::<WouldBlock, _>(mss.get_data_nowait(None));
        yields(mss.send_all(b"456")).await?;
        assert_eq!(yields(mss.get_data(None)).await?, b"456");

        // Two sends at once: one is refused, the other goes through.
        let busy = Rc::new(Cell::new(0));
        open_nursery(|n| {
            let (m1, m2, b1, b2) = (mss.clone(), mss.clone(), busy.clone(), busy.clone());
            async move {
                for (m, b) in [(m1, b1), (m2, b2)] {
                    n.start_soon(async move {
                        match m.send_all(b"xxx").await {
                            Err(e) if e.is::<BusyResourceError>() => b.set(b.get() + 1),
                            other => other?,
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            }
        })
        .await?;
        assert_eq!(busy.get(), 1);

        yields(mss.aclose()).await?;
        assert_eq!(mss.get_data(None).await?, b"xxx");
        assert_eq!(mss.get_data(None).await?, b"");
        assert_err::<ClosedResourceError, _>(mss.send_all(b"---").await);

        // Hooks.
        assert!(!mss.has_send_all_hook());
        assert!(!mss.has_wait_send_all_might_not_block_hook());
        assert!(!mss.has_close_hook());
        let record = Log::default();
        let mss2 = MemorySendStream::new();
        let (m, r1, r2, r3) = (mss2.clone(), record.clone(), record.clone(), record.clone());
        mss2.set_send_all_hook(Some(AsyncHook::new(move || {
            // The hook runs after send_all did its work: it can take the data out.
            let got = m.get_data_nowait(None);
            r1.push("send_all_hook");
            async move {
                assert_eq!(got?, b"abc");
                Ok(())
            }
        })));
        mss2.set_wait_send_all_might_not_block_hook(Some(AsyncHook::new(move || {
            r2.push("wait_send_all_might_not_block_hook");
            async { Ok(()) }
        })));
        mss2.set_close_hook(Some(SyncHook::new(move || r3.push("close_hook"))));
        assert!(mss2.has_send_all_hook());
        assert!(mss2.has_wait_send_all_might_not_block_hook());
        assert!(mss2.has_close_hook());

        mss2.send_all(b"abc").await?;
        mss2.wait_send_all_might_not_block().await?;
        aclose_forcefully(&mss2).await?;
        mss2.close();
        assert_eq!(
            record.take(),
            [
                "send_all_hook",
                "wait_send_all_might_not_block_hook",
                "close_hook",
                "close_hook"
            ]
        );
        // Hooks come back out, so a test can set one aside and restore it.
        assert!(mss2.set_close_hook(None).is_some());
        assert!(!mss2.has_close_hook());
        Ok(())
    });
}

/// Trio's `test_MemoryReceiveStream`.
#[test]
fn memory_receive_stream() {
    run(async {
        let mrs = MemoryReceiveStream::new();
        mrs.put_data(b"abc")?;
        assert_eq!(yields(mrs.receive_some(1)).await?, b"a");
        assert_eq!(yields(mrs.receive_some(10)).await?, b"bc");

        let (r1, r2) = (mrs.clone(), mrs.clone());
        let busy = open_nursery(|n| async move {
            n.start_soon(async move { r1.receive_some(10).await.map(drop) })?;
            n.start_soon(async move { r2.receive_some(10).await.map(drop) })?;
            Ok(())
        })
        .await;
        assert_group_of::<BusyResourceError>(busy);

        assert!(!mrs.has_receive_some_hook());
        mrs.put_data(b"def")?;
        mrs.put_eof();
        mrs.put_eof();
        assert_eq!(yields(mrs.receive_some(10)).await?, b"def");
        assert_eq!(yields(mrs.receive_some(10)).await?, b"");
        assert_eq!(yields(mrs.receive_some(10)).await?, b"");
        assert_err::<ClosedResourceError, _>(mrs.put_data(b"---"));

        // The receive hook runs before the receive looks for data.
        let record = Log::default();
        let mrs2 = MemoryReceiveStream::new();
        let m = mrs2.clone();
        mrs2.set_receive_some_hook(Some(AsyncHook::new(move || {
            std::future::ready(m.put_data(b"xxx"))
        })));
        let r = record.clone();
        mrs2.set_close_hook(Some(SyncHook::new(move || r.push("closed"))));
        assert!(mrs2.has_receive_some_hook() && mrs2.has_close_hook());
        mrs2.put_data(b"yyy")?;
        assert_eq!(mrs2.receive_some(10).await?, b"yyyxxx");
        assert_eq!(mrs2.receive_some(10).await?, b"xxx");
        assert_eq!(mrs2.receive_some(10).await?, b"xxx");
        mrs2.put_data(b"zzz")?;
        mrs2.set_receive_some_hook(None);
        assert_eq!(mrs2.receive_some(10).await?, b"zzz");

        mrs2.put_data(b"lost on close")?;
        yields(mrs2.aclose()).await?;
        assert_eq!(record.take(), ["closed"]);
        assert_err::<ClosedResourceError, _>(mrs2.receive_some(10).await);
        Ok(())
    });
}

/// Trio's `test_MemoryRecvStream_closing`.
#[test]
fn closing_a_memory_receive_stream() {
    run(async {
        let mrs = MemoryReceiveStream::new();
        mrs.close();
        assert_err::<ClosedResourceError, _>(mrs.receive_some(10).await);
        mrs.close();
        assert_err::<ClosedResourceError, _>(mrs.put_data(b"123"));

        // Closing drops the pending data.
        let mrs2 = MemoryReceiveStream::new();
        mrs2.put_data(b"xyz")?;
        mrs2.close();
        assert_err::<ClosedResourceError, _>(mrs2.receive_some(10).await);
        Ok(())
    });
}

/// Trio's `test_memory_stream_pump`.
#[test]
fn pumping_by_hand() {
    run(async {
        let (mss, mrs) = (MemorySendStream::new(), MemoryReceiveStream::new());
        assert!(!memory_stream_pump(&mss, &mrs, None)?);
        mss.send_all(b"123").await?;
        assert!(memory_stream_pump(&mss, &mrs, None)?);
        assert_eq!(mrs.receive_some(10).await?, b"123");

        mss.send_all(b"456").await?;
        assert!(memory_stream_pump(&mss, &mrs, Some(1))?);
        assert_eq!(mrs.receive_some(10).await?, b"4");
        assert!(memory_stream_pump(&mss, &mrs, Some(1))?);
        assert!(memory_stream_pump(&mss, &mrs, Some(1))?);
        assert!(!memory_stream_pump(&mss, &mrs, Some(1))?);
        assert_eq!(mrs.receive_some(10).await?, b"56");

        mss.close();
        assert!(memory_stream_pump(&mss, &mrs, None)?);
        assert_eq!(mrs.receive_some(10).await?, b"");

        // Into a closed receive stream: broken.
        let (mss, mrs) = (MemorySendStream::new(), MemoryReceiveStream::new());
        mss.send_all(b"x").await?;
        mrs.close();
        assert_err::<BrokenResourceError, _>(memory_stream_pump(&mss, &mrs, None));
        Ok(())
    });
}

/// Trio's `test_memory_stream_one_way_pair`.
#[test]
fn one_way_pair() {
    run(async {
        let (s, r) = memory_stream_one_way_pair();
        assert!(s.has_send_all_hook());
        assert!(!s.has_wait_send_all_might_not_block_hook());
        assert!(s.has_close_hook());
        assert!(!r.has_receive_some_hook());
        s.send_all(b"123").await?;
        assert_eq!(r.receive_some(10).await?, b"123");

        // The pump runs from the send-all hook (a receiver is already waiting)...
        let (r1, s1) = (r.clone(), &s);
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(r1.receive_some(10).await?, b"abc");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s1.send_all(b"abc").await
        })
        .await?;
        // ... and from the close hook.
        let (r1, s1) = (r.clone(), &s);
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(r1.receive_some(10).await?, b"");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s1.aclose().await
        })
        .await?;
        let (s, r) = memory_stream_one_way_pair();
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(r.receive_some(10).await?, b"");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            s.close();
            Ok(())
        })
        .await?;

        // Without the send-all hook the data stays in the send stream.
        let (s, r) = memory_stream_one_way_pair();
        let old = s.set_send_all_hook(None);
        s.send_all(b"456").await?;
        let r1 = r.clone();
        open_nursery(|n| async move {
            let scope = n.cancel_scope();
            n.start_soon(async move {
                let got = r1.receive_some(10).await;
                assert!(matches!(&got, Err(e) if e.is_cancelled()), "{got:?}");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            scope.cancel();
            Ok(())
        })
        .await?;
        s.set_send_all_hook(old);
        s.send_all(b"789").await?;
        assert_eq!(r.receive_some(10).await?, b"456789");
        Ok(())
    });
}

/// Trio's `test_memory_stream_pair`.
#[test]
fn two_way_pair() {
    run(async {
        let (a, b) = memory_stream_pair();
        a.send_all(b"123").await?;
        b.send_all(b"abc").await?;
        assert_eq!(b.receive_some(10).await?, b"123");
        assert_eq!(a.receive_some(10).await?, b"abc");
        a.send_eof().await?;
        assert_eq!(b.receive_some(10).await?, b"");

        let a = Rc::new(a);
        let a1 = a.clone();
        open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(a1.receive_some(10).await?, b"xyz");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            b.send_all(b"xyz").await
        })
        .await
    });
}

/// With its receive end dropped, a pair's pump reports a broken stream (the hook holds the
/// receive stream weakly, as if it were closed).
#[test]
fn a_pair_whose_receiver_was_dropped_is_broken() {
    run(async {
        let (s, r) = memory_stream_one_way_pair();
        s.send_all(b"x").await?;
        drop(r);
        assert_err::<BrokenResourceError, _>(s.send_all(b"y").await);
        // Sending nothing has nothing to deliver.
        s.send_all(b"").await
    });
}

#[test]
fn a_hook_may_replace_or_remove_itself() {
    run(async {
        let s = MemorySendStream::new();
        let calls = Rc::new(Cell::new(0));
        let (s1, c1) = (s.clone(), calls.clone());
        s.set_send_all_hook(Some(AsyncHook::new(move || {
            c1.set(c1.get() + 1);
            // Runs once: it removes itself.
            s1.set_send_all_hook(None);
            async { Ok(()) }
        })));
        s.send_all(b"a").await?;
        s.send_all(b"b").await?;
        assert_eq!(calls.get(), 1);
        assert!(!s.has_send_all_hook());

        let r = MemoryReceiveStream::new();
        let log = Log::default();
        let (r1, l1) = (r.clone(), log.clone());
        r.set_close_hook(Some(SyncHook::new(move || {
            l1.push("first");
            let l2 = l1.clone();
            r1.set_close_hook(Some(SyncHook::new(move || l2.push("second"))));
        })));
        r.close();
        r.close();
        r.close();
        assert_eq!(log.take(), ["first", "second", "second"]);
        Ok(())
    });
}

/// Dropping the last handle of a memory stream closes it, as dropping a socket does: the peer
/// of a pair gets the data sent so far and then EOF (or, for a dropped receiver, the sender's
/// next send fails). A clone keeps the stream open.
#[test]
fn dropping_the_last_handle_closes_the_stream() {
    run(async {
        let (left, right) = memory_stream_pair();
        let (left_send, left_receive) = left.into_inner();
        left_send.send_all(b"last words").await?;
        let clone = left_send.clone();
        drop(left_send);
        clone.send_all(b"!").await?; // still open: the clone is a handle to it
        drop(clone);
        let mut got = Vec::new();
        loop {
            let chunk = right.receive_some(64).await?;
            if chunk.is_empty() {
                break;
            }
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, b"last words!");

        // The other direction: the receiver is dropped, the sender's pump is broken.
        drop(left_receive);
        assert_err::<BrokenResourceError, _>(right.send_all(b"anyone?").await);

        // A close hook runs once, at the drop.
        let closes = Rc::new(Cell::new(0));
        let c = closes.clone();
        let stream = MemorySendStream::with_hooks(
            None,
            None,
            Some(SyncHook::new(move || c.set(c.get() + 1))),
        );
        drop(stream);
        assert_eq!(closes.get(), 1);
        // Closed explicitly first: the drop does not run the hook again.
        let c = closes.clone();
        let stream =
            MemoryReceiveStream::with_hooks(None, Some(SyncHook::new(move || c.set(c.get() + 1))));
        stream.close();
        drop(stream);
        assert_eq!(closes.get(), 2);
        Ok(())
    });
}
