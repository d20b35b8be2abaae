//! `StapledStream` (Trio's `test_highlevel_generic.py`): what it forwards where, `send_eof`
//! on half-closeable and plain send streams, and closing when a half fails.

mod common;

use std::task::{Context, Poll};

use common::*;
use trio::stream::prelude::*;
use trio::stream::{ConflictDetector, ReceiveBuf};
use trio::{StapledStream, UsageError};

/// A send stream that records the calls it gets (and optionally fails its close).
#[derive(Default)]
struct RecordSendStream {
    record: Log<String>,
    fail_close: bool,
    detector: Option<ConflictDetector>,
}

impl AsyncResource for RecordSendStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.record.push("aclose".into());
        Poll::Ready(match self.fail_close {
            true => Err(UsageError::new("send error").into()),
            false => Ok(()),
        })
    }
}

impl SendStream for RecordSendStream {
    fn poll_send(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<trio::Result<usize>> {
        self.record
            .push(format!("send {}", String::from_utf8_lossy(buf)));
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.record.push("flush".into());
        Poll::Ready(Ok(()))
    }
    fn poll_wait_send_all_might_not_block(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.record.push("wait_send_all_might_not_block".into());
        Poll::Ready(Ok(()))
    }
    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        self.detector.as_ref()
    }
}

/// A receive stream that records the calls it gets and always reports EOF.
#[derive(Default)]
struct RecordReceiveStream {
    record: Log<String>,
    fail_close: bool,
}

impl AsyncResource for RecordReceiveStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.record.push("aclose".into());
        Poll::Ready(match self.fail_close {
            true => Err(UsageError::new("receive error").into()),
            false => Ok(()),
        })
    }
}

impl ReceiveStream for RecordReceiveStream {
    fn poll_receive(
        &self,
        _cx: &mut Context<'_>,
        buf: &mut ReceiveBuf<'_>,
    ) -> Poll<trio::Result<()>> {
        self.record.push(format!("receive {}", buf.remaining()));
        Poll::Ready(Ok(()))
    }
}

/// A record stream that is also half-closeable.
#[derive(Default)]
struct HalfCloseableRecord {
    send: RecordSendStream,
    receive: RecordReceiveStream,
}

impl AsyncResource for HalfCloseableRecord {
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.send.poll_close(cx)
    }
}

impl SendStream for HalfCloseableRecord {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<trio::Result<usize>> {
        self.send.poll_send(cx, buf)
    }
    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.send.poll_wait_send_all_might_not_block(cx)
    }
    fn as_half_closeable(&self) -> Option<&dyn HalfCloseableStream> {
        Some(self)
    }
}

impl ReceiveStream for HalfCloseableRecord {
    fn poll_receive(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReceiveBuf<'_>,
    ) -> Poll<trio::Result<()>> {
        self.receive.poll_receive(cx, buf)
    }
}

impl HalfCloseableStream for HalfCloseableRecord {
    fn poll_send_eof(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        self.send.record.push("send_eof".into());
        Poll::Ready(Ok(()))
    }
}

#[test]
fn stapled_stream_forwards_each_call_to_its_half() {
    run(async {
        let stapled = StapledStream::new(
            RecordSendStream {
                detector: Some(ConflictDetector::new("sending")),
                ..Default::default()
            },
            RecordReceiveStream::default(),
        );
        let (sends, receives) = (
            stapled.send_stream().record.clone(),
            stapled.receive_stream().record.clone(),
        );
        stapled.send_all(b"foo").await?;
        stapled.wait_send_all_might_not_block().await?;
        assert_eq!(
            sends.get(),
            ["send foo", "flush", "wait_send_all_might_not_block"]
        );
        // The send side's detector is the stapled stream's.
        let detector = stapled.send_conflict_detector().expect("forwarded");
        assert_eq!(detector.message(), "sending");
        assert!(stapled.receive_conflict_detector().is_none());

        // A plain send stream is closed for send_eof.
        stapled.send_eof().await?;
        assert_eq!(sends.get()[3..], ["aclose"]);
        assert!(receives.get().is_empty());

        assert_eq!(stapled.receive_some(1234).await?, b"");
        assert_eq!(receives.get(), ["receive 1234"]);

        stapled.aclose().await?;
        assert_eq!(sends.get()[4..], ["aclose"]);
        assert_eq!(receives.get()[1..], ["aclose"]);
        // Closing again does nothing more.
        stapled.aclose().await?;
        assert_eq!(sends.get().len(), 5);

        let (send, receive) = stapled.into_inner();
        assert_eq!(send.record.get().len(), 5);
        assert_eq!(receive.record.get().len(), 2);
        Ok(())
    });
}

#[test]
fn send_eof_goes_to_a_half_closeable_send_side() {
    run(async {
        let stapled = StapledStream::new(
            HalfCloseableRecord::default(),
            RecordReceiveStream::default(),
        );
        assert!(stapled.as_half_closeable().is_some());
        stapled.send_eof().await?;
        assert_eq!(stapled.send_stream().send.record.get(), ["send_eof"]);
        Ok(())
    });
}

#[test]
fn a_failing_half_does_not_keep_the_other_open() {
    run(async {
        // One half fails: that error, and both were closed.
        let stapled = StapledStream::new(
            RecordSendStream {
                fail_close: true,
                ..Default::default()
            },
            RecordReceiveStream::default(),
        );
        let err = stapled.aclose().await.expect_err("the send side failed");
        assert_eq!(err.to_string(), "send error");
        assert_eq!(stapled.send_stream().record.get(), ["aclose"]);
        assert_eq!(stapled.receive_stream().record.get(), ["aclose"]);

        // Both fail: both errors, in a group.
        let stapled = StapledStream::new(
            RecordSendStream {
                fail_close: true,
                ..Default::default()
            },
            RecordReceiveStream {
                fail_close: true,
                ..Default::default()
            },
        );
        let err = stapled.aclose().await.expect_err("both sides failed");
        let messages: Vec<String> = err.leaves().iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["send error", "receive error"]);
        let group = err.as_group().expect("a group");
        assert_eq!(group.origin(0), Some("closing the send stream"));
        assert_eq!(group.origin(1), Some("closing the receive stream"));
        let (memory, _) = trio_test::memory_stream_pair();
        assert!(format!("{memory:?}").starts_with("StapledStream { send_stream: MemorySendStream"));
        Ok(())
    });
}

/// A wait kept by a poll method between polls.
type BoxedWait = std::pin::Pin<Box<dyn std::future::Future<Output = trio::Result<()>>>>;

/// A send stream whose close waits until `goodbye` is set.
#[derive(Default)]
struct SlowCloseSend {
    goodbye: trio::Event,
    record: Log<String>,
    wait: std::cell::RefCell<Option<BoxedWait>>,
}

impl AsyncResource for SlowCloseSend {
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        let mut wait = self.wait.borrow_mut();
        let goodbye = self.goodbye.clone();
        let fut = wait.get_or_insert_with(|| Box::pin(async move { goodbye.wait().await }));
        std::task::ready!(fut.as_mut().poll(cx))?;
        self.record.push("closed".into());
        Poll::Ready(Ok(()))
    }
}

impl SendStream for SlowCloseSend {
    fn poll_send(&self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<trio::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_wait_send_all_might_not_block(&self, _cx: &mut Context<'_>) -> Poll<trio::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_close_that_waits_closes_the_receive_side_after_the_send_side() {
    run(async {
        let stapled = std::rc::Rc::new(StapledStream::new(
            SlowCloseSend::default(),
            RecordReceiveStream::default(),
        ));
        let s1 = stapled.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move { s1.aclose().await })?;
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert!(stapled.receive_stream().record.get().is_empty());
            stapled.send_stream().goodbye.set();
            trio::lowlevel::wait_all_tasks_blocked().await?;
            assert_eq!(stapled.send_stream().record.get(), ["closed"]);
            assert_eq!(stapled.receive_stream().record.get(), ["aclose"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn vectored_sends_default_to_the_first_non_empty_slice() {
    run(async {
        let stapled =
            StapledStream::new(RecordSendStream::default(), RecordReceiveStream::default());
        assert!(!stapled.is_send_vectored());
        let bufs = [
            std::io::IoSlice::new(b""),
            std::io::IoSlice::new(b"ab"),
            std::io::IoSlice::new(b"cd"),
        ];
        let n = std::future::poll_fn(|cx| stapled.poll_send_vectored(cx, &bufs)).await?;
        assert_eq!(n, 2);
        let n = std::future::poll_fn(|cx| stapled.poll_send_vectored(cx, &[])).await?;
        assert_eq!(n, 0);
        assert_eq!(stapled.send_stream().record.get(), ["send ab", "send "]);
        Ok(())
    });
}
