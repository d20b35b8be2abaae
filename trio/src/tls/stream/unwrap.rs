//! [`SslStream::unwrap`]: ending TLS and giving the transport back (Trio's
//! `SSLStream.unwrap`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use super::{Broken, Closing, SslStream, State};
use crate::Result;
use crate::socket::{Nonblocking, polled_after_completion};
use crate::stream::{ReceiveBuf, Stream};

impl<S: Stream> SslStream<S> {
    /// Ends TLS on this connection and gives the transport back, for plain communication
    /// after it (Trio's `SSLStream.unwrap`): handshakes first if needed, sends
    /// `close_notify`, waits for the peer's, and returns the transport with the *trailing
    /// bytes*: what the transport had already delivered after the peer's `close_notify`.
    /// Treat them as the start of what the transport receives next.
    ///
    /// While it waits for the peer's `close_notify` it reads one TLS record at a time, so it
    /// never takes more than that from the transport. Data the peer sent before its
    /// `close_notify` and that was not received is dropped, as Trio's (OpenSSL's) shutdown
    /// drops it.
    ///
    /// It takes the stream by value (Trio sets `transport_stream` to `None`); share it
    /// through an `Rc` and `Rc::try_unwrap` it first.
    ///
    /// Errors: [`ClosedResourceError`](crate::ClosedResourceError) after `aclose`;
    /// [`BrokenResourceError`](crate::BrokenResourceError) for a broken stream, a failed
    /// handshake, or a transport that ends before the peer's `close_notify`; the transport's
    /// errors. On an error the stream is dropped, which closes the transport.
    ///
    /// # Checkpoint
    /// Yes: a cancel point first, a schedule point when it did not have to wait.
    ///
    /// # Cancel safety
    /// Not cancel safe: cancelled (or dropped) the stream goes with the future, which closes
    /// the transport.
    pub fn unwrap(self) -> Unwrap<S> {
        Unwrap {
            stream: Some(self),
            op: Nonblocking::new(),
        }
    }

    /// The TLS part of [`unwrap`](Self::unwrap): `Ready(Ok(trailing bytes))` once the
    /// peer's `close_notify` was processed; the stream is closed then.
    fn poll_unwrap(&self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>>> {
        let mut core = self.core()?;
        ready!(self.handshake(&mut core, cx))?;
        core.check_send_side()?;
        // Queued once: rustls ignores later calls (and one `send_eof` queued already).
        core.tls.send_close_notify();
        ready!(self.send_out(&mut core, cx))?;
        core.precise_reads = true;
        loop {
            core.tls.discard_plaintext();
            if core.peer_closed {
                break;
            }
            if ready!(self.read_in(&mut core, cx))? && !core.peer_closed {
                return Poll::Ready(Err(core.fail(Broken {
                    message: "unwrap: the transport ended before the peer's TLS close_notify"
                        .into(),
                    cause: None,
                    ragged_eof: true,
                })));
            }
        }
        core.state = State::Closed;
        core.closing = Closing::Done;
        drop(core);
        Poll::Ready(Ok(self.take_trailing()))
    }

    /// What the transport can deliver at once (no waiting: nothing may come), for `unwrap`.
    fn take_trailing(&self) -> Vec<u8> {
        let mut buf = vec![0; 65536];
        let mut into = ReceiveBuf::new(&mut buf);
        let mut cx = Context::from_waker(Waker::noop());
        let n = match self.transport.poll_receive(&mut cx, &mut into) {
            Poll::Ready(Ok(())) => into.filled().len(),
            // An error comes again on the transport's next use; `Pending`: nothing there.
            Poll::Ready(Err(_)) | Poll::Pending => 0,
        };
        buf.truncate(n);
        buf
    }
}

/// The future of [`SslStream::unwrap`]: the transport and the trailing bytes.
#[must_use = "futures do nothing unless awaited"]
pub struct Unwrap<S> {
    stream: Option<SslStream<S>>,
    op: Nonblocking<Vec<u8>, ()>,
}

// The stream is never pinned (it is moved out whole), so the future is `Unpin` whatever the
// transport is.
impl<S> Unpin for Unwrap<S> {}

impl<S> fmt::Debug for Unwrap<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unwrap")
            .field("phase", &self.op.phase())
            .finish_non_exhaustive()
    }
}

impl<S: Stream> Future for Unwrap<S> {
    type Output = Result<(S, Vec<u8>)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(S, Vec<u8>)>> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_ref() else {
            return Poll::Ready(Err(polled_after_completion("unwrap")));
        };
        let trailing = ready!(this.op.poll(
            cx,
            "unwrap",
            || Ok(None),
            |_| Poll::Ready(Ok(())),
            |cx| stream.poll_unwrap(cx),
        ))?;
        match this.stream.take() {
            Some(stream) => Poll::Ready(Ok((stream.transport, trailing))),
            None => Poll::Ready(Err(polled_after_completion("unwrap"))),
        }
    }
}
