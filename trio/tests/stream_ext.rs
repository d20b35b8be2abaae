//! The Trio layer of `trio::stream`: checkpoints, cancellation, busy detection and argument
//! checks of `send_all`, `receive_some`, `receive_into`, `send_eof`, `aclose` and `accept`,
//! over memory streams wrapped to count and shape their poll calls.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll};

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;
use trio::stream::prelude::*;
use trio::stream::{ConflictDetector, ReceiveBuf};
use trio::{
    BrokenResourceError, BusyResourceError, ClosedResourceError, UsageError, aclose_forcefully,
};
use trio_test::{MemoryReceiveStream, MemorySendStream, memory_stream_one_way_pair};

/// A stream that forwards to `inner`, counting poll calls, and sending at most `chunk` bytes
/// per `poll_send`.
struct Counting<S> {
    inner: S,
    chunk: usize,
    polls: Cell<usize>,
    flushes: Cell<usize>,
}

fn counting<S>(inner: S, chunk: usize) -> Rc<Counting<S>> {
    Rc::new(Counting {
        inner,
        chunk,
        polls: Cell::new(0),
        flushes: Cell::new(0),
    })
}

impl<S: AsyncResource> AsyncResource for Counting<S> {
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.inner.poll_close(cx)
    }
}

impl<S: SendStream> SendStream for Counting<S> {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<trio::Result<usize>> {
        self.polls.set(self.polls.get() + 1);
        self.inner.poll_send(cx, &buf[..buf.len().min(self.chunk)])
    }
    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.flushes.set(self.flushes.get() + 1);
        self.inner.poll_flush(cx)
    }
    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.inner.poll_wait_send_all_might_not_block(cx)
    }
    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.inner.send_conflict_detector()
    }
}

impl<S: ReceiveStream> ReceiveStream for Counting<S> {
    fn poll_receive(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReceiveBuf<'_>,
    ) -> Poll<trio::Result<()>> {
        self.polls.set(self.polls.get() + 1);
        self.inner.poll_receive(cx, buf)
    }
    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.inner.receive_conflict_detector()
    }
}

#[test]
fn an_immediate_receive_is_a_full_checkpoint() {
    run(async {
        let r = counting(MemoryReceiveStream::new(), usize::MAX);
        r.inner.put_data(b"hello")?;
        assert_eq!(yields(r.receive_some(3)).await?, b"hel");
        let mut buf = [0u8; 8];
        let n = yields(r.receive_into(&mut buf)).await?;
        assert_eq!(&buf[..n], b"lo");
        assert_eq!(r.polls.get(), 2);
        // A cancel point first: in a cancelled scope the stream is not even asked.
        r.inner.put_data(b"kept")?;
        let r1 = r.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(r1.receive_some(10).await));
            Ok(())
        })
        .await?;
        assert_eq!(r.polls.get(), 2);
        assert_eq!(r.receive_some(10).await?, b"kept");
        Ok(())
    });
}

#[test]
fn a_cancelled_receive_has_taken_nothing() {
    run(async {
        let r = counting(MemoryReceiveStream::new(), usize::MAX);
        let (r1, r2) = (r.clone(), r.clone());
        trio::open_nursery(|n| async move {
            let scope = n.cancel_scope();
            n.start_soon(async move {
                assert!(is_cancelled(r1.receive_some(10).await));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            // Data arrives and cancellation comes in the same batch: the woken receive checks
            // for cancellation before it tries again, so the data stays.
            r2.inner.put_data(b"data")?;
            scope.cancel();
            Ok(())
        })
        .await?;
        assert_eq!(r.polls.get(), 1);
        assert_eq!(r.receive_some(10).await?, b"data");
        Ok(())
    });
}

#[test]
fn receive_sizes_are_checked() {
    run(async {
        let r = MemoryReceiveStream::new();
        r.put_data(b"x")?;
        assert_err::<UsageError, _>(r.receive_some(0).await);
        assert_err::<UsageError, _>(r.receive_into(&mut []).await);
        let huge = r.receive_some(usize::MAX).await;
        assert!(format!("{}", assert_err::<UsageError, _>(huge)).contains("cannot allocate"));
        assert_eq!(r.receive_some(1).await?, b"x");
        Ok(())
    });
}

#[test]
fn concurrent_receives_are_busy_but_send_and_receive_may_overlap() {
    run(async {
        let r1 = Rc::new(MemoryReceiveStream::new());
        let r2 = r1.clone();
        let busy = trio::open_nursery(|n| async move {
            n.start_soon(async move { r1.receive_some(1).await.map(drop) })?;
            n.start_soon(async move { r2.receive_some(1).await.map(drop) })?;
            Ok(())
        })
        .await;
        let err = busy.expect_err("one receive is refused");
        let group = err.as_group().expect("a nursery's group");
        assert_eq!(group.len(), 1);
        assert!(group.errors()[0].is::<BusyResourceError>());

        // A send and a receive on one stream at once are fine.
        let (out_send, out_receive) = memory_stream_one_way_pair();
        let (in_send, in_receive) = memory_stream_one_way_pair();
        let both = Rc::new(trio::StapledStream::new(out_send, in_receive));
        let b1 = both.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(b1.receive_some(5).await?, b"later");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            both.send_all(b"sent meanwhile").await?;
            in_send.send_all(b"later").await
        })
        .await?;
        assert_eq!(out_receive.receive_some(100).await?, b"sent meanwhile");
        Ok(())
    });
}

#[test]
fn send_all_sends_everything_in_pieces_then_flushes() {
    run(async {
        let s = counting(MemorySendStream::new(), 3);
        yields(s.send_all(b"0123456789")).await?;
        assert_eq!(s.polls.get(), 4);
        assert_eq!(s.flushes.get(), 1);
        assert_eq!(s.inner.get_data_nowait(None)?, b"0123456789");
        // An empty send still asks the stream once (so a closed stream is reported).
        yields(s.send_all(b"")).await?;
        assert_eq!(s.polls.get(), 5);
        s.inner.close();
        assert_err::<ClosedResourceError, _>(s.send_all(b"").await);
        // Cancelled at its cancel point, nothing is sent.
        let s = counting(MemorySendStream::new(), 3);
        let s1 = s.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(s1.send_all(b"abc").await));
            assert!(is_cancelled(s1.wait_send_all_might_not_block().await));
            Ok(())
        })
        .await?;
        assert_eq!(s.polls.get(), 0);
        Ok(())
    });
}

/// A send stream that breaks `poll_send`'s contract in the way `reply` says.
struct Liar {
    reply: usize,
}

impl AsyncResource for Liar {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl SendStream for Liar {
    fn poll_send(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<trio::Result<usize>> {
        Poll::Ready(Ok(if buf.is_empty() { 0 } else { self.reply }))
    }
    fn poll_wait_send_all_might_not_block(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl ReceiveStream for Liar {
    /// Swaps the buffer it was given for one of its own.
    fn poll_receive(
        &self,
        _cx: &mut Context<'_>,
        buf: &mut ReceiveBuf<'_>,
    ) -> Poll<trio::Result<()>> {
        *buf = ReceiveBuf::new(&mut []);
        Poll::Ready(Ok(()))
    }
}

#[test]
fn contract_breaking_streams_get_errors_not_panics() {
    run(async {
        let zero = Liar { reply: 0 };
        assert_err::<BrokenResourceError, _>(zero.send_all(b"abc").await);
        let too_many = Liar { reply: 10 };
        assert_err::<UsageError, _>(too_many.send_all(b"abc").await);
        assert_err::<UsageError, _>(too_many.receive_some(4).await);
        let mut buf = [0u8; 4];
        assert_err::<UsageError, _>(too_many.receive_into(&mut buf).await);
        Ok(())
    });
}

#[test]
fn a_finished_future_polled_again_is_a_usage_error() {
    run(async {
        let s = MemorySendStream::new();
        let mut send = Box::pin(s.send_all(b"x"));
        assert_eq!(format!("{send:?}"), "SendAll { phase: Start, .. }");
        (&mut send).await?;
        match poll_once(&mut send).await {
            Poll::Ready(r) => drop(assert_err::<UsageError, _>(r)),
            Poll::Pending => panic!("a finished send_all must not wait"),
        }
        let mut close = Box::pin(s.aclose());
        (&mut close).await?;
        match poll_once(&mut close).await {
            Poll::Ready(r) => drop(assert_err::<UsageError, _>(r)),
            Poll::Pending => panic!("a finished aclose must not wait"),
        }
        Ok(())
    });
}

/// A wait kept by a poll method between polls.
type BoxedWait = std::pin::Pin<Box<dyn std::future::Future<Output = trio::Result<()>>>>;

/// A resource whose close waits for an event (a graceful goodbye) unless the task is
/// cancelled, in which case it closes at once: the contract of `poll_close`.
#[derive(Default)]
struct SlowClose {
    goodbye: trio::Event,
    closed: Cell<bool>,
    wait: std::cell::RefCell<Option<BoxedWait>>,
}

impl AsyncResource for SlowClose {
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        if self.closed.get() {
            return Poll::Ready(Ok(()));
        }
        let mut wait = self.wait.borrow_mut();
        let goodbye = self.goodbye.clone();
        let fut = wait.get_or_insert_with(|| Box::pin(async move { goodbye.wait().await }));
        let done = fut.as_mut().poll(cx);
        if done.is_pending() {
            return Poll::Pending;
        }
        // Said goodbye, or was cancelled: closed either way.
        *wait = None;
        self.closed.set(true);
        Poll::Ready(Ok(()))
    }
}

#[test]
fn aclose_always_closes() {
    run(async {
        // An immediate close is a full checkpoint.
        let s = MemorySendStream::new();
        yields(s.aclose()).await?;
        assert_err::<ClosedResourceError, _>(s.send_all(b"x").await);
        // In a cancelled scope it closes, then reports the cancellation.
        let s = Rc::new(MemorySendStream::new());
        let s1 = s.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(s1.aclose().await));
            Ok(())
        })
        .await?;
        assert_err::<ClosedResourceError, _>(s.send_all(b"x").await);

        // A graceful close waits...
        let slow = Rc::new(SlowClose::default());
        let s1 = slow.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move { s1.aclose().await })?;
            wait_all_tasks_blocked().await?;
            assert!(!slow.closed.get());
            slow.goodbye.set();
            Ok(())
        })
        .await?;
        // ... unless it is forced.
        let slow = SlowClose::default();
        aclose_forcefully(&slow).await?;
        assert!(slow.closed.get());
        // A close cancelled while it waits finishes forcefully.
        let slow = Rc::new(SlowClose::default());
        assert_eq!(trio::move_on_after(1.0, slow.aclose()).await?, None);
        assert!(slow.closed.get());
        Ok(())
    });
}

/// A listener that hands out memory streams put into it.
#[derive(Default)]
struct TestListener {
    queue: RefCell<Vec<MemoryReceiveStream>>,
    arrived: trio::lowlevel::ParkingLot,
    /// The parked accept, with the waker it was parked for (another task parks anew).
    park: RefCell<Option<(std::pin::Pin<Box<trio::lowlevel::Park>>, std::task::Waker)>>,
    closed: Cell<bool>,
    detector: Option<ConflictDetector>,
}

impl AsyncResource for TestListener {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.closed.set(true);
        self.arrived.unpark_all();
        Poll::Ready(Ok(()))
    }
}

impl Listener for TestListener {
    type Stream = MemoryReceiveStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<trio::Result<MemoryReceiveStream>> {
        if self.closed.get() {
            return Poll::Ready(Err(ClosedResourceError::new("listener closed").into()));
        }
        if let Some(stream) = self.queue.borrow_mut().pop() {
            *self.park.borrow_mut() = None;
            return Poll::Ready(Ok(stream));
        }
        let mut slot = self.park.borrow_mut();
        if slot
            .as_ref()
            .is_some_and(|(park, waker)| park.is_unparked() || !waker.will_wake(cx.waker()))
        {
            *slot = None;
        }
        let (park, _) =
            slot.get_or_insert_with(|| (Box::pin(self.arrived.park()), cx.waker().clone()));
        let polled = park.as_mut().poll(cx);
        drop(slot);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                *self.park.borrow_mut() = None;
                r?;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn accept_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.detector.as_ref()
    }
}

#[test]
fn accept_checkpoints_waits_and_is_busy_with_a_detector() {
    run(async {
        let listener = Rc::new(TestListener {
            detector: Some(ConflictDetector::new("another task is accepting")),
            ..TestListener::default()
        });
        let ready = MemoryReceiveStream::new();
        ready.put_data(b"first")?;
        listener.queue.borrow_mut().push(ready);
        let first = yields(listener.accept()).await?;
        assert_eq!(first.receive_some(10).await?, b"first");

        let (l1, l2) = (listener.clone(), listener.clone());
        let busy = trio::open_nursery(|n| async move {
            n.start_soon(async move { l1.accept().await.map(drop) })?;
            n.start_soon(async move { l2.accept().await.map(drop) })?;
            Ok(())
        })
        .await;
        assert!(busy.is_err_and(|e| e.leaves()[0].is::<BusyResourceError>()));

        let l1 = listener.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let stream = l1.accept().await?;
                assert_eq!(stream.receive_some(10).await?, b"second");
                // Closing the listener wakes the next accept.
                assert_err::<ClosedResourceError, _>(l1.accept().await);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let stream = MemoryReceiveStream::new();
            stream.put_data(b"second")?;
            listener.queue.borrow_mut().push(stream);
            listener.arrived.unpark_all();
            wait_all_tasks_blocked().await?;
            listener.aclose().await
        })
        .await
    });
}

/// What a dropped receive or accept leaves: everything, for the next one.
#[test]
fn a_receive_or_accept_dropped_mid_way_has_taken_nothing() {
    run(async {
        let r = counting(MemoryReceiveStream::new(), usize::MAX);
        r.inner.put_data(b"kept")?;
        // A receive polled once and dropped (as by a `select` that chose another branch).
        let mut receive = Box::pin(r.receive_some(10));
        assert!(poll_once(&mut receive).await.is_pending());
        drop(receive);
        let mut buf = [0u8; 8];
        let mut receive_into = Box::pin(r.receive_into(&mut buf));
        assert!(poll_once(&mut receive_into).await.is_pending());
        drop(receive_into);
        assert_eq!(r.polls.get(), 0, "a dropped receive asked its stream");
        assert_eq!(r.receive_some(10).await?, b"kept");

        let listener = TestListener::default();
        listener.queue.borrow_mut().push(MemoryReceiveStream::new());
        let mut accept = Box::pin(listener.accept());
        assert!(poll_once(&mut accept).await.is_pending());
        drop(accept);
        assert_eq!(
            listener.queue.borrow().len(),
            1,
            "a dropped accept took a connection"
        );
        listener.accept().await?;
        Ok(())
    });
}

#[test]
fn a_receive_cancelled_during_its_first_schedule_point_raises_and_keeps_the_data() {
    run(async {
        for data in [&b""[..], b"kept"] {
            let r = counting(MemoryReceiveStream::new(), usize::MAX);
            if !data.is_empty() {
                r.inner.put_data(data)?;
            }
            let scope = trio::CancelScope::new();
            let (s, r1) = (scope.clone(), r.clone());
            scope
                .run(async move {
                    let mut receive = Box::pin(r1.receive_some(10));
                    assert!(poll_once(&mut receive).await.is_pending());
                    // Cancelled while it yields: it must not go on to wait (or take the data).
                    s.cancel();
                    assert!(is_cancelled(receive.await));
                    Ok(())
                })
                .await?;
            assert_eq!(r.polls.get(), 0);
            if !data.is_empty() {
                assert_eq!(r.receive_some(10).await?, data);
            }
        }
        Ok(())
    });
}

#[test]
fn trait_objects_and_smart_pointers_are_streams() {
    run(async {
        let (s, r) = memory_stream_one_way_pair();
        let s: Box<dyn SendStream> = Box::new(s);
        let r: Rc<dyn ReceiveStream> = Rc::new(r);
        s.send_all(b"via dyn").await?;
        assert_eq!(r.receive_some(100).await?, b"via dyn");
        let by_ref: &dyn SendStream = &*s;
        by_ref.send_all(b"!").await?;
        assert_eq!((*r).receive_some(100).await?, b"!");
        assert!(s.send_conflict_detector().is_some() && r.receive_conflict_detector().is_some());
        assert!(s.as_half_closeable().is_none());
        let both: Box<dyn HalfCloseableStream> = Box::new(trio_test::memory_stream_pair().0);
        assert!(both.as_half_closeable().is_some());
        both.send_eof().await?;
        aclose_forcefully(&*s).await?;
        r.aclose().await
    });
}
