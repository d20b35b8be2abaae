//! How [`SslStream`](super::SslStream) drives its transport at poll level: `io::Read` and
//! `io::Write` adapters over the transport's poll methods (rustls reads ciphertext straight
//! from one and writes it straight into the other), and [`WakerSet`], the waker every
//! transport poll is made with.
//!
//! Why a set: several tasks may wait on one direction of the transport at once (the receiver
//! for data, the sender for the handshake's next flight, a closer for its goodbye), while the
//! transport's poll methods keep one waker per direction ("the last waker wins"). So the
//! transport always gets the set's waker, and waking it wakes every task that registered since
//! the last wake. A task that went away leaves a stale entry, which costs one spurious wake.
//! Cancellation still reaches every waiting task: trio wakes the waker a blocked operation
//! was polled with when its task is cancelled, and that wakes the set.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::stream::{ReceiveBuf, ReceiveStream, SendStream};
use crate::{BrokenResourceError, Error};

/// The tasks waiting on one direction of a transport.
#[derive(Debug, Default)]
pub(super) struct WakerSet {
    wakers: Mutex<Vec<Waker>>,
}

impl WakerSet {
    /// A set and the waker that wakes it.
    pub(super) fn new() -> (Arc<WakerSet>, Waker) {
        let set = Arc::new(WakerSet::default());
        let waker = Waker::from(set.clone());
        (set, waker)
    }

    /// Adds `waker` (once) to those the next wake wakes.
    pub(super) fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Wakes (and forgets) every registered waker.
    pub(super) fn wake_all(&self) {
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in wakers {
            waker.wake();
        }
    }
}

impl Wake for WakerSet {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}

/// What a transport poll inside an adapter came to, when the adapter reported an error to
/// rustls: the poll was `Pending`, or failed with a trio error (kept whole here, since an
/// `io::Error` through rustls would flatten it).
#[derive(Debug)]
pub(super) enum Stalled {
    Pending,
    Failed(Error),
}

/// Where the ciphertext read so far stands in the sequence of TLS records (a 5-byte header
/// whose last two bytes are the length of the body that follows), so that
/// [`SslStream::unwrap`](super::SslStream::unwrap) can read exactly up to the end of the
/// peer's `close_notify` record and leave what follows it (plain bytes) to the caller.
#[derive(Debug, Default)]
pub(super) struct RecordTracker {
    header: [u8; 5],
    /// Header bytes seen of the current record; 5 while in its body.
    header_len: usize,
    /// Body bytes of the current record still to come (while `header_len == 5`).
    body_left: usize,
}

impl RecordTracker {
    /// Follows `bytes`, the next ciphertext handed to rustls.
    pub(super) fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.header_len < 5 {
                let take = (5 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 5 {
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                }
            } else {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
            }
            if self.header_len == 5 && self.body_left == 0 {
                self.header_len = 0;
            }
        }
    }

    /// How many bytes may be read without passing the end of the current record's header
    /// or body.
    pub(super) fn to_boundary(&self) -> usize {
        match self.header_len {
            5 => self.body_left,
            n => 5 - n,
        }
    }
}

/// `io::Read` over a transport's [`ReceiveStream::poll_receive`]: `Pending` reads as
/// `WouldBlock`. Every byte read goes through the [`RecordTracker`]; `precise` reads stop at
/// the end of the current record's header or body.
pub(super) struct TransportReader<'a, 'b, S: ?Sized> {
    transport: &'a S,
    cx: &'a mut Context<'b>,
    records: &'a mut RecordTracker,
    precise: bool,
    stalled: Option<Stalled>,
}

impl<'a, 'b, S: ReceiveStream + ?Sized> TransportReader<'a, 'b, S> {
    pub(super) fn new(
        transport: &'a S,
        cx: &'a mut Context<'b>,
        records: &'a mut RecordTracker,
        precise: bool,
    ) -> Self {
        TransportReader {
            transport,
            cx,
            records,
            precise,
            stalled: None,
        }
    }

    /// Why the read failed, if the transport was the reason.
    pub(super) fn stalled(self) -> Option<Stalled> {
        self.stalled
    }
}

impl<S: ReceiveStream + ?Sized> io::Read for TransportReader<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = match self.precise {
            true => self.records.to_boundary().min(buf.len()),
            false => buf.len(),
        };
        let mut into = ReceiveBuf::new(&mut buf[..len]);
        match self.transport.poll_receive(self.cx, &mut into) {
            Poll::Ready(Ok(())) => {
                self.records.advance(into.filled());
                Ok(into.filled().len())
            }
            Poll::Ready(Err(e)) => {
                self.stalled = Some(Stalled::Failed(e));
                Err(io::Error::other("the transport's receive failed"))
            }
            Poll::Pending => {
                self.stalled = Some(Stalled::Pending);
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

/// `io::Write` over a transport's [`SendStream::poll_send`] and `poll_send_vectored`:
/// `Pending` writes as `WouldBlock`.
pub(super) struct TransportWriter<'a, 'b, S: ?Sized> {
    transport: &'a S,
    cx: &'a mut Context<'b>,
    stalled: Option<Stalled>,
}

impl<'a, 'b, S: SendStream + ?Sized> TransportWriter<'a, 'b, S> {
    pub(super) fn new(transport: &'a S, cx: &'a mut Context<'b>) -> Self {
        TransportWriter {
            transport,
            cx,
            stalled: None,
        }
    }

    /// Why the write failed, if the transport was the reason.
    pub(super) fn stalled(self) -> Option<Stalled> {
        self.stalled
    }

    fn outcome(&mut self, polled: Poll<crate::Result<usize>>, len: usize) -> io::Result<usize> {
        match polled {
            // A transport that takes nothing of a non-empty buffer breaks its contract; rustls
            // would retry forever.
            Poll::Ready(Ok(0)) if len > 0 => {
                self.stalled = Some(Stalled::Failed(Error::new(BrokenResourceError::new(
                    "the transport accepted no bytes of a non-empty TLS record",
                ))));
                Err(io::ErrorKind::WriteZero.into())
            }
            Poll::Ready(Ok(n)) => Ok(n),
            Poll::Ready(Err(e)) => {
                self.stalled = Some(Stalled::Failed(e));
                Err(io::Error::other("the transport's send failed"))
            }
            Poll::Pending => {
                self.stalled = Some(Stalled::Pending);
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

impl<S: SendStream + ?Sized> io::Write for TransportWriter<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let polled = self.transport.poll_send(self.cx, buf);
        self.outcome(polled, buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        let polled = self.transport.poll_send_vectored(self.cx, bufs);
        self.outcome(polled, len)
    }

    /// Nothing: pushing the transport's own buffer out is `poll_flush`'s job, done by the
    /// stream after the records are written.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RecordTracker;

    /// A record: content type 23, TLS 1.2 on the wire, `len` body bytes.
    fn record(len: u16, fill: u8) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&len.to_be_bytes());
        r.extend(std::iter::repeat_n(fill, usize::from(len)));
        r
    }

    #[test]
    fn record_tracker_finds_boundaries_across_any_split() {
        let stream: Vec<u8> = [record(3, 1), record(0, 0), record(300, 2), record(1, 3)].concat();
        // Every split of the stream into two reads leaves the tracker where one read of the
        // whole would.
        for cut in 0..=stream.len() {
            let mut t = RecordTracker::default();
            t.advance(&stream[..cut]);
            t.advance(&stream[cut..]);
            assert_eq!(t.to_boundary(), 5, "cut at {cut}");
        }
        // Reading only up to each boundary walks the records exactly.
        let mut t = RecordTracker::default();
        let mut at = 0;
        let mut steps = Vec::new();
        while at < stream.len() {
            let n = t.to_boundary();
            steps.push(n);
            t.advance(&stream[at..at + n]);
            at += n;
        }
        assert_eq!(steps, [5, 3, 5, 5, 300, 5, 1]);
    }
}
