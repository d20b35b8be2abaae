//! Trio's conformance suites on the streams trio-test ships (Trio's
//! `test_memory_streams_with_generic_tests` and `test_lockstep_streams_with_generic_tests`),
//! and on streams with one fault each, which the suites must fail.

use std::cell::RefCell;
use std::task::{Context, Poll};

use trio::stream::{
    AsyncResource, ConflictDetector, HalfCloseableStream, ReceiveBuf, ReceiveStream, SendStream,
};
use trio::{ClosedResourceError, Result};
use trio_test::{
    MockClock, check_half_closeable_stream, check_one_way_stream, check_two_way_stream,
    lockstep_stream_one_way_pair, lockstep_stream_pair, memory_stream_one_way_pair,
    memory_stream_pair, no_clogged,
};

fn run(main: impl std::future::Future<Output = trio::Result<()>> + 'static) {
    trio::RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .fail_on_deadlock(true)
        .ctrl_c(false)
        .run(main)
        .expect("the run failed");
}

#[test]
fn memory_one_way_streams_pass_the_one_way_suite() {
    run(check_one_way_stream(
        async || Ok(memory_stream_one_way_pair()),
        no_clogged(),
    ));
}

#[test]
fn memory_stream_pairs_pass_the_half_closeable_suite() {
    run(check_half_closeable_stream(
        async || Ok(memory_stream_pair()),
        no_clogged(),
    ));
}

#[test]
fn lockstep_one_way_streams_pass_the_one_way_suite_clogged_too() {
    let maker = async || Ok(lockstep_stream_one_way_pair());
    run(check_one_way_stream(maker, Some(maker)));
}

#[test]
fn lockstep_stream_pairs_pass_the_two_way_suite_clogged_too() {
    let maker = async || Ok(lockstep_stream_pair());
    run(check_two_way_stream(maker, Some(maker)));
}

#[test]
fn lockstep_stream_pairs_pass_the_half_closeable_suite_clogged_too() {
    // Trio runs only the two-way suite on them; a stapled lockstep stream closes its send side
    // for send_eof, which the half-closeable suite accepts.
    let maker = async || Ok(lockstep_stream_pair());
    run(check_half_closeable_stream(maker, Some(maker)));
}

#[test]
fn mixed_stapled_streams_pass_the_half_closeable_suite() {
    // A StapledStream of a memory send stream and a lockstep receive stream on one side, the
    // other way round on the other: the stapling, not the halves, is under test.
    let maker = async || {
        let (memory_send, memory_receive) = memory_stream_one_way_pair();
        let (lockstep_send, lockstep_receive) = lockstep_stream_one_way_pair();
        Ok((
            trio::StapledStream::new(memory_send, lockstep_receive),
            trio::StapledStream::new(lockstep_send, memory_receive),
        ))
    };
    run(check_half_closeable_stream(maker, no_clogged()));
}

#[test]
fn boxed_dyn_streams_pass_the_two_way_suite() {
    let maker = async || {
        let (a, b) = memory_stream_pair();
        let a: Box<dyn trio::Stream> = Box::new(a);
        let b: Box<dyn trio::Stream> = Box::new(b);
        Ok((a, b))
    };
    run(check_two_way_stream(maker, no_clogged()));
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// No conflict detectors: concurrent use is not reported.
    NoDetectors,
    /// Sends on a closed stream "succeed".
    IgnoreClosed,
    /// Flips a bit in the last byte of every send of more than one byte.
    Corrupt,
    /// `wait_send_all_might_not_block` never waits.
    EagerWait,
    /// Nothing but the missing `SendStream::as_half_closeable` every `Faulty` has.
    ForgetsToSayItHalfCloses,
}

/// A stream that forwards to `inner`, except for its fault.
struct Faulty<S> {
    inner: S,
    fault: Fault,
    scratch: RefCell<Vec<u8>>,
}

fn faulty<S>(inner: S, fault: Fault) -> Faulty<S> {
    Faulty {
        inner,
        fault,
        scratch: RefCell::new(Vec::new()),
    }
}

impl<S: AsyncResource> AsyncResource for Faulty<S> {
    fn poll_close(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_close(cx)
    }
}

impl<S: SendStream> SendStream for Faulty<S> {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        match self.fault {
            Fault::IgnoreClosed => match self.inner.poll_send(cx, buf) {
                Poll::Ready(Err(e)) if e.is::<ClosedResourceError>() => Poll::Ready(Ok(buf.len())),
                other => other,
            },
            Fault::Corrupt if buf.len() > 1 => {
                let mut scratch = self.scratch.borrow_mut();
                scratch.clear();
                scratch.extend_from_slice(buf);
                *scratch.last_mut().expect("not empty") ^= 1;
                self.inner.poll_send(cx, &scratch)
            }
            _ => self.inner.poll_send(cx, buf),
        }
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_flush(cx)
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.fault {
            Fault::EagerWait => match self.inner.poll_wait_send_all_might_not_block(cx) {
                Poll::Pending => Poll::Ready(Ok(())),
                ready => ready,
            },
            _ => self.inner.poll_wait_send_all_might_not_block(cx),
        }
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        match self.fault {
            Fault::NoDetectors => None,
            _ => self.inner.send_conflict_detector(),
        }
    }
}

impl<S: ReceiveStream> ReceiveStream for Faulty<S> {
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        self.inner.poll_receive(cx, buf)
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        match self.fault {
            Fault::NoDetectors => None,
            _ => self.inner.receive_conflict_detector(),
        }
    }
}

impl<S: HalfCloseableStream> HalfCloseableStream for Faulty<S> {
    fn poll_send_eof(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.poll_send_eof(cx)
    }
}

#[test]
#[should_panic(expected = "two concurrent receive_some: expected a group of one")]
fn a_stream_without_detectors_fails_the_busy_check() {
    let maker = async || {
        let (s, r) = memory_stream_one_way_pair();
        Ok((faulty(s, Fault::NoDetectors), faulty(r, Fault::NoDetectors)))
    };
    run(check_one_way_stream(maker, no_clogged()));
}

#[test]
#[should_panic(expected = "send_all on a closed stream: expected")]
fn a_stream_that_sends_after_close_fails() {
    let maker = async || {
        let (s, r) = memory_stream_one_way_pair();
        Ok((faulty(s, Fault::IgnoreClosed), r))
    };
    run(check_one_way_stream(maker, no_clogged()));
}

#[test]
#[should_panic(expected = "the duplex transfer corrupted the data")]
fn a_stream_that_corrupts_data_fails_the_duplex_check() {
    let maker = async || {
        let (a, b) = memory_stream_pair();
        Ok((faulty(a, Fault::Corrupt), faulty(b, Fault::Corrupt)))
    };
    run(check_two_way_stream(maker, no_clogged()));
}

#[test]
#[should_panic(expected = "wait_send_all_might_not_block must block until a receive starts")]
fn an_eager_wait_fails_the_clogged_check() {
    let maker = async || {
        let (s, r) = lockstep_stream_one_way_pair();
        Ok((faulty(s, Fault::EagerWait), r))
    };
    run(check_one_way_stream(maker, Some(maker)));
}

#[test]
#[should_panic(expected = "its SendStream::as_half_closeable returns None")]
fn a_half_closeable_stream_must_say_so() {
    let maker = async || {
        let (a, b) = memory_stream_pair();
        Ok((
            faulty(a, Fault::ForgetsToSayItHalfCloses),
            faulty(b, Fault::ForgetsToSayItHalfCloses),
        ))
    };
    run(check_half_closeable_stream(maker, no_clogged()));
}
