//! [`as_safe_channel`]: a producer that makes values only when they are asked for, run in a
//! task of its own for the length of a body (Trio's `@as_safe_channel`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{
    MemoryChannelStatistics, MemoryReceiveChannel, MemorySendChannel, open_memory_channel,
};
use crate::sync::Semaphore;
use crate::{BrokenResourceError, Error, ErrorGroup, Result, open_nursery};

/// Runs `producer` in a background task that makes values only when `body` asks for them,
/// and gives `body` the receiving end (Trio's `@as_safe_channel`).
///
/// Trio's decorator turns an async generator into a context manager that yields a receive
/// channel; Rust has no async generators, so the generator is a `producer` closure that gets a
/// [`SafeChannelSender`] and "yields" with [`send`](SafeChannelSender::send), and the `with`
/// block is `body`, which gets a [`SafeChannelReceiver`]. The rules are Trio's:
///
/// - **Values on demand.** The producer is not called until the body first asks for a value
///   (`receive`, `recv` or the next stream item), and each `send` returns only when the body
///   asks for the next one: nothing is computed ahead that nobody wants (the channel has no
///   buffer).
/// - **The end.** When the producer returns `Ok(())` the body's receiver sees the end of the
///   channel (`recv` gives `Ok(None)`, `receive` fails with
///   [`EndOfChannel`](crate::EndOfChannel), the stream ends). If the body closes its
///   receiver, the producer's next `send` fails with [`BrokenResourceError`] and the producer
///   is not asked for more; returning that error ends it quietly (Trio's `GeneratorExit`).
/// - **Structured.** When `body` returns, the producer is cancelled (reason "exited
///   trio::as_safe_channel") and `as_safe_channel` returns once it has ended. An error of the
///   producer cancels the body and is returned; one error comes back as itself, several (the
///   producer's and the body's) as an [`ErrorGroup`], as Trio unwraps a group of one.
///
/// ```
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let squares = trio::as_safe_channel(
///         |tx| async move {
///             for i in 1..=3u32 {
///                 tx.send(i * i).await?;
///             }
///             Ok(())
///         },
///         |rx| async move {
///             let mut got = Vec::new();
///             while let Some(v) = rx.recv().await? {
///                 got.push(v);
///             }
///             Ok(got)
///         },
///     )
///     .await?;
///     assert_eq!(squares, [1, 4, 9]);
///     Ok(())
/// })
/// # }
/// ```
///
/// # Checkpoint
/// As [`open_nursery`] (the producer runs in a nursery whose body is `body`).
///
/// # Cancel safety
/// As [`open_nursery`]: dropping the future cancels and drops the producer synchronously.
/// No value is lost: a value the producer sent is either received or still held by its
/// `send` when it is cancelled.
pub async fn as_safe_channel<T, P, PF, B, BF, R>(producer: P, body: B) -> Result<R>
where
    T: 'static,
    P: FnOnce(SafeChannelSender<T>) -> PF + 'static,
    PF: Future<Output = Result<()>> + 'static,
    B: FnOnce(SafeChannelReceiver<T>) -> BF,
    BF: Future<Output = Result<R>>,
{
    let (tx, rx) = open_memory_channel::<T>(0);
    // At most one value asked for and not yet made (Trio's `if value == 0: release()`).
    let demand = Semaphore::with_max(0, 1)?;
    let receiver = SafeChannelReceiver {
        rx,
        demand: demand.clone(),
    };
    let mut output = None;
    let out = &mut output;
    let run = open_nursery(|nursery| async move {
        nursery.start_soon(produce(producer, tx, demand))?;
        let value = body(receiver).await?;
        *out = Some(value);
        nursery
            .cancel_scope()
            .cancel_with_reason("exited trio::as_safe_channel");
        Ok(())
    })
    .await;
    match run {
        Ok(()) => output.ok_or_else(|| Error::usage("as_safe_channel's body did not finish")),
        Err(e) => Err(single_error(e)),
    }
}

/// The producer's task: waits for the first request, then runs the producer.
async fn produce<T, P, PF>(producer: P, tx: MemorySendChannel<T>, demand: Semaphore) -> Result<()>
where
    P: FnOnce(SafeChannelSender<T>) -> PF,
    PF: Future<Output = Result<()>>,
{
    demand.acquire().await?;
    if tx.statistics().open_receive_channels == 0 {
        // Asked for, then closed: the producer is not started for a value nobody can take.
        return Ok(());
    }
    let ended = Rc::new(Cell::new(false));
    let sender = SafeChannelSender {
        tx,
        demand,
        receivers_gone: ended.clone(),
    };
    match producer(sender).await {
        Err(e) if e.is_broken() && ended.get() => Ok(()),
        other => other,
    }
}

/// A group of one error is that error (Trio's `raise_single_exception_from_group`).
fn single_error(e: Error) -> Error {
    if e.as_group().is_some_and(|g| g.len() == 1) {
        match e.downcast::<ErrorGroup>() {
            Ok(group) => group.into_errors().pop().expect("a group of one"),
            Err(e) => e,
        }
    } else {
        e
    }
}

/// The producer's end of [`as_safe_channel`]: [`send`](Self::send) is Trio's `yield`.
///
/// Dropping it (the producer returning) ends the channel for the body.
pub struct SafeChannelSender<T> {
    tx: MemorySendChannel<T>,
    demand: Semaphore,
    receivers_gone: Rc<Cell<bool>>,
}

impl<T> SafeChannelSender<T> {
    /// Hands `value` to the body, which asked for it, then waits until the body asks for the
    /// next value. Fails with [`BrokenResourceError`] once the body's receiver is closed
    /// (return it: the producer then ends quietly), and with `Cancelled` when the body has
    /// finished.
    ///
    /// # Checkpoint
    /// Yes: as [`MemorySendChannel::send`], then it waits for the next request.
    ///
    /// # Cancel safety
    /// Cancelled before the body took the value, the value is dropped with the error (the
    /// producer's run is over: cancellation here comes from the body ending or from outside);
    /// after, `send` still returns the `Cancelled` of the wait for the next request.
    pub async fn send(&self, value: T) -> Result<()> {
        if let Err(e) = self.tx.send(value).await {
            return Err(self.ended(e.into_error()));
        }
        self.demand.acquire().await?;
        if self.tx.statistics().open_receive_channels == 0 {
            self.receivers_gone.set(true);
            return Err(Error::new(BrokenResourceError::new(
                "the as_safe_channel body closed its receiver",
            )));
        }
        Ok(())
    }

    fn ended(&self, e: Error) -> Error {
        if e.is_broken() {
            self.receivers_gone.set(true);
        }
        e
    }
}

impl<T> std::fmt::Debug for SafeChannelSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeChannelSender")
            .field("statistics", &self.tx.statistics())
            .finish()
    }
}

/// The body's end of [`as_safe_channel`]: a [`MemoryReceiveChannel`] whose every receive
/// first asks the producer for a value.
///
/// Clones are further handles (each closed on its own, as a memory channel's); it is a
/// [`Stream`](futures_core::Stream) of `Result<T>`, as `MemoryReceiveChannel` is.
pub struct SafeChannelReceiver<T> {
    rx: MemoryReceiveChannel<T>,
    demand: Semaphore,
}

impl<T> SafeChannelReceiver<T> {
    /// Asks the producer for a value (at most one outstanding request).
    fn ask(&self) {
        if !self.rx.is_closed() {
            // At max_value 1 a second request is refused: one is already outstanding.
            let _ = self.demand.release();
        }
    }

    /// Asks for the next value and receives it: `Ok(None)` once the producer has returned.
    ///
    /// # Checkpoint
    /// Yes, as [`MemoryReceiveChannel::recv`].
    ///
    /// # Cancel safety
    /// As [`MemoryReceiveChannel::recv`]: no value is lost. The request stays: the producer
    /// makes the value, and the next receive gets it.
    pub async fn recv(&self) -> Result<Option<T>> {
        self.ask();
        self.rx.recv().await
    }

    /// Asks for the next value and receives it; the end is
    /// [`EndOfChannel`](crate::EndOfChannel) (Trio's `receive`).
    ///
    /// # Checkpoint
    /// Yes, as [`MemoryReceiveChannel::receive`].
    ///
    /// # Cancel safety
    /// As [`recv`](Self::recv).
    pub async fn receive(&self) -> Result<T> {
        self.ask();
        self.rx.receive().await
    }

    /// Closes this handle: its blocked receives fail with
    /// [`ClosedResourceError`](crate::ClosedResourceError), and once every handle is closed
    /// the producer is asked for nothing more. Not a checkpoint.
    pub fn close(&self) {
        self.rx.close();
    }

    /// Closes this handle, then checkpoints (Trio's `aclose`).
    ///
    /// # Checkpoint
    /// Yes (after closing).
    ///
    /// # Cancel safety
    /// Safe: the close happens before the first await.
    pub async fn aclose(&self) -> Result<()> {
        self.rx.aclose().await
    }

    /// Whether this handle is closed.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }

    /// The statistics of the underlying memory channel.
    pub fn statistics(&self) -> MemoryChannelStatistics {
        self.rx.statistics()
    }
}

impl<T> Clone for SafeChannelReceiver<T> {
    fn clone(&self) -> Self {
        SafeChannelReceiver {
            rx: self.rx.clone(),
            demand: self.demand.clone(),
        }
    }
}

impl<T> std::fmt::Debug for SafeChannelReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeChannelReceiver")
            .field("closed", &self.is_closed())
            .field("statistics", &self.statistics())
            .finish()
    }
}

impl<T> Unpin for SafeChannelReceiver<T> {}

impl<T> futures_core::Stream for SafeChannelReceiver<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        // Asking again while a request is outstanding changes nothing.
        this.ask();
        Pin::new(&mut this.rx).poll_next(cx)
    }
}
