//! In-memory streams with unbounded buffers and hooks (Trio's `trio.testing` memory streams).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use trio::lowlevel::{ParkingLot, checkpoint};
use trio::stream::{
    AsyncResource, ConflictDetector, ReceiveBuf, ReceiveStream, SendStream, StapledStream,
};
use trio::{BrokenResourceError, ClosedResourceError, Error, Result, UsageError, WouldBlock};

use crate::lockstep::{OpStamp, PollPark};

/// Bytes in a FIFO, with an end: after [`close`](Self::close) no more can be put, and once
/// the bytes are drained, reads return nothing (EOF).
struct ByteQueue {
    data: RefCell<VecDeque<u8>>,
    closed: Cell<bool>,
    lot: ParkingLot,
    fetch: ConflictDetector,
    poll_park: PollPark,
}

impl Default for ByteQueue {
    fn default() -> Self {
        ByteQueue {
            data: RefCell::new(VecDeque::new()),
            closed: Cell::new(false),
            lot: ParkingLot::new(),
            fetch: ConflictDetector::new("another task is already fetching data"),
            poll_park: PollPark::default(),
        }
    }
}

impl ByteQueue {
    /// No more data: getters drain what is left, then get EOF. Wakes them. Idempotent.
    fn close(&self) {
        self.closed.set(true);
        self.lot.unpark_all();
    }

    /// As [`close`](Self::close), dropping the data left.
    fn close_and_wipe(&self) {
        self.data.borrow_mut().clear();
        self.close();
    }

    fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Appends `bytes`; a [`ClosedResourceError`] once closed (even for no bytes).
    fn put(&self, bytes: &[u8]) -> Result<()> {
        if self.closed.get() {
            return Err(Error::new(ClosedResourceError::new(
                "virtual connection closed",
            )));
        }
        self.data.borrow_mut().extend(bytes);
        self.lot.unpark_all();
        Ok(())
    }

    /// Takes up to `max_bytes` (all with `None`) from the front.
    fn take(&self, max_bytes: Option<usize>) -> Vec<u8> {
        let mut data = self.data.borrow_mut();
        let n = max_bytes.map_or(data.len(), |m| m.min(data.len()));
        data.drain(..n).collect()
    }

    /// Takes up to `max_bytes` (all with `None`) without waiting: `Ok(empty)` means EOF,
    /// [`WouldBlock`] that nothing is there yet.
    fn get_nowait(&self, max_bytes: Option<usize>) -> Result<Vec<u8>> {
        let _fetching = self.fetch.enter()?;
        check_max_bytes(max_bytes)?;
        if !self.closed.get() && self.data.borrow().is_empty() {
            return Err(Error::new(WouldBlock));
        }
        Ok(self.take(max_bytes))
    }

    /// Takes up to `max_bytes` (all with `None`), waiting for at least one byte or EOF.
    async fn get(&self, max_bytes: Option<usize>) -> Result<Vec<u8>> {
        let _fetching = self.fetch.enter()?;
        check_max_bytes(max_bytes)?;
        if !self.closed.get() && self.data.borrow().is_empty() {
            // Every unpark follows a put or the close; the data may have been taken by a
            // poll-level reader meanwhile, so look again after each.
            while !self.closed.get() && self.data.borrow().is_empty() {
                pin!(self.lot.park()).await?;
            }
        } else {
            checkpoint().await?;
        }
        Ok(self.take(max_bytes))
    }

    /// Copies what fits of the front bytes into `buf`: `Ready` with data, or with nothing
    /// once closed and drained (EOF); otherwise `Pending` until something changes.
    fn poll_get_into(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        {
            let mut data = self.data.borrow_mut();
            if !data.is_empty() || self.closed.get() {
                let (front, back) = data.as_slices();
                let n = buf.put_slice(front);
                let n = n + if n == front.len() {
                    buf.put_slice(back)
                } else {
                    0
                };
                data.drain(..n);
                drop(data);
                self.poll_park.clear();
                return Poll::Ready(Ok(()));
            }
        }
        self.poll_park.poll_park(&self.lot, cx)
    }
}

/// Trio's `max_bytes` rule: absent, or at least 1.
fn check_max_bytes(max_bytes: Option<usize>) -> Result<()> {
    match max_bytes {
        Some(0) => Err(Error::new(UsageError::new("max_bytes must be at least 1"))),
        _ => Ok(()),
    }
}

type HookFuture = Pin<Box<dyn Future<Output = Result<()>>>>;

/// An async hook of a memory stream: called with no arguments, it returns a future that the
/// stream's operation runs to completion (Trio's async hooks). Capture clones of the streams
/// it works on. A hook that holds a clone of its own stream makes a reference cycle: the
/// stream is not freed before the process exits, which a test can live with (the pumps of
/// [`memory_stream_one_way_pair`] hold their streams weakly).
pub struct AsyncHook(Box<dyn FnMut() -> HookFuture>);

impl AsyncHook {
    /// A hook that calls `f` and awaits what it returns.
    pub fn new<F, Fut>(mut f: F) -> Self
    where
        F: FnMut() -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        AsyncHook(Box::new(move || Box::pin(f())))
    }
}

impl fmt::Debug for AsyncHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncHook")
    }
}

/// A synchronous hook of a memory stream (Trio's close hooks).
pub struct SyncHook(Box<dyn FnMut()>);

impl SyncHook {
    /// A hook that calls `f`.
    pub fn new(f: impl FnMut() + 'static) -> Self {
        SyncHook(Box::new(f))
    }
}

impl fmt::Debug for SyncHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncHook")
    }
}

/// A hook slot. The hook is taken out while it runs, so it may set hooks (even replace or
/// remove itself) on the same stream.
struct Slot<H> {
    hook: RefCell<Option<H>>,
    /// Counts replacements, so a hook that was replaced while it ran is not put back.
    version: Cell<u64>,
}

impl<H> Default for Slot<H> {
    fn default() -> Self {
        Slot {
            hook: RefCell::new(None),
            version: Cell::new(0),
        }
    }
}

impl<H> Slot<H> {
    fn replace(&self, hook: Option<H>) -> Option<H> {
        self.version.set(self.version.get() + 1);
        std::mem::replace(&mut *self.hook.borrow_mut(), hook)
    }

    fn is_set(&self) -> bool {
        self.hook.borrow().is_some()
    }

    /// Runs the hook, if any, with `call`.
    fn call<R>(&self, call: impl FnOnce(&mut H) -> R) -> Option<R> {
        let mut hook = self.hook.borrow_mut().take()?;
        let version = self.version.get();
        let out = call(&mut hook);
        if self.version.get() == version {
            *self.hook.borrow_mut() = Some(hook);
        }
        Some(out)
    }
}

impl Slot<AsyncHook> {
    /// Starts the hook: its future, if a hook is set.
    fn start(&self) -> Option<HookFuture> {
        self.call(|hook| (hook.0)())
    }
}

impl Slot<SyncHook> {
    fn run(&self) {
        self.call(|hook| (hook.0)());
    }
}

/// A hook future in progress, kept by the stream between polls, with the operation that
/// started it.
#[derive(Default)]
struct Running(RefCell<Option<(HookFuture, OpStamp)>>);

impl Running {
    /// Polls the running hook to its end (it is taken out while polled, so it may use the
    /// stream). `Ready(Ok)` at once when none runs. A hook whose operation ended (cancelled
    /// or dropped: `detector` says) is dropped instead, as Trio cancels it with its
    /// operation; polled on, it would run in cancel scopes that are gone.
    fn poll(&self, cx: &mut Context<'_>, detector: &ConflictDetector) -> Poll<Result<()>> {
        let Some((mut fut, stamp)) = self.0.borrow_mut().take() else {
            return Poll::Ready(Ok(()));
        };
        if stamp != OpStamp::current(detector) {
            drop(fut);
            return Poll::Ready(Ok(()));
        }
        match fut.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                *self.0.borrow_mut() = Some((fut, stamp));
                Poll::Pending
            }
        }
    }

    fn start(&self, fut: HookFuture, detector: &ConflictDetector) {
        *self.0.borrow_mut() = Some((fut, OpStamp::current(detector)));
    }

    /// Whether a hook of the operation in progress runs (a stale one is dropped).
    fn is_running(&self, detector: &ConflictDetector) -> bool {
        let mut slot = self.0.borrow_mut();
        let stale = slot
            .as_ref()
            .is_some_and(|(_, stamp)| *stamp != OpStamp::current(detector));
        if stale {
            let old = slot.take();
            drop(slot);
            drop(old);
            return false;
        }
        slot.is_some()
    }
}

struct SendInner {
    detector: ConflictDetector,
    outgoing: ByteQueue,
    send_all_hook: Slot<AsyncHook>,
    wait_hook: Slot<AsyncHook>,
    close_hook: Slot<SyncHook>,
    send_all_running: Running,
    wait_running: Running,
}

/// An in-memory [`SendStream`] (Trio's `trio.testing.MemorySendStream`): `send_all` appends
/// to an unbounded buffer, then runs the send-all hook; the test takes the data out with
/// [`get_data`](Self::get_data) / [`get_data_nowait`](Self::get_data_nowait).
///
/// Hooks (all optional, replaceable at any time):
/// - the **send-all hook** (async) runs after each `send_all` has buffered its data, and
///   `send_all` returns when it is done ([`memory_stream_one_way_pair`] pumps the data to a
///   receive stream from it);
/// - the **wait-send-all-might-not-block hook** (async) runs in
///   `wait_send_all_might_not_block`;
/// - the **close hook** (sync) runs on each close.
///
/// At the poll level, `poll_send` buffers the data and starts the send-all hook; a hook that
/// has to wait goes on in `poll_flush` (which `send_all` calls). A `send_all` cancelled (or
/// dropped) while its hook waits takes the hook with it, as in Trio: the stream notices from
/// its conflict detector and drops the hook. A poll-level caller's hook (no `send_all` around
/// it) goes on in its next `poll_send` or `poll_flush`. Closing the stream does not stop a
/// hook that runs (nor does Trio's).
///
/// A handle: clones share one stream (as Python references do), so a hook can hold one.
/// Dropping the last handle closes the stream.
#[derive(Clone)]
pub struct MemorySendStream {
    inner: Rc<SendInner>,
}

impl Default for MemorySendStream {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemorySendStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySendStream")
            .field("closed", &self.inner.outgoing.is_closed())
            .finish_non_exhaustive()
    }
}

/// Dropping the last handle closes the stream (running its close hook), as dropping a socket
/// closes it: the peer of a [`memory_stream_pair`] sees EOF instead of waiting forever. A hook
/// that holds a strong handle keeps the stream open until it is closed explicitly.
impl Drop for MemorySendStream {
    fn drop(&mut self) {
        if Rc::strong_count(&self.inner) == 1 && !self.inner.outgoing.is_closed() {
            self.close();
        }
    }
}

impl MemorySendStream {
    /// A stream with no hooks.
    pub fn new() -> Self {
        Self::with_hooks(None, None, None)
    }

    /// A stream with the given hooks (Trio's constructor arguments).
    pub fn with_hooks(
        send_all_hook: Option<AsyncHook>,
        wait_send_all_might_not_block_hook: Option<AsyncHook>,
        close_hook: Option<SyncHook>,
    ) -> Self {
        let inner = SendInner {
            detector: ConflictDetector::new("another task is using this stream"),
            outgoing: ByteQueue::default(),
            send_all_hook: Slot::default(),
            wait_hook: Slot::default(),
            close_hook: Slot::default(),
            send_all_running: Running::default(),
            wait_running: Running::default(),
        };
        inner.send_all_hook.replace(send_all_hook);
        inner.wait_hook.replace(wait_send_all_might_not_block_hook);
        inner.close_hook.replace(close_hook);
        MemorySendStream {
            inner: Rc::new(inner),
        }
    }

    /// Sets the send-all hook (`None` removes it); returns the one it replaces.
    pub fn set_send_all_hook(&self, hook: Option<AsyncHook>) -> Option<AsyncHook> {
        self.inner.send_all_hook.replace(hook)
    }

    /// Sets the wait-send-all-might-not-block hook; returns the one it replaces.
    pub fn set_wait_send_all_might_not_block_hook(
        &self,
        hook: Option<AsyncHook>,
    ) -> Option<AsyncHook> {
        self.inner.wait_hook.replace(hook)
    }

    /// Sets the close hook; returns the one it replaces.
    pub fn set_close_hook(&self, hook: Option<SyncHook>) -> Option<SyncHook> {
        self.inner.close_hook.replace(hook)
    }

    /// Whether a send-all hook is set.
    pub fn has_send_all_hook(&self) -> bool {
        self.inner.send_all_hook.is_set()
    }

    /// Whether a wait-send-all-might-not-block hook is set.
    pub fn has_wait_send_all_might_not_block_hook(&self) -> bool {
        self.inner.wait_hook.is_set()
    }

    /// Whether a close hook is set.
    pub fn has_close_hook(&self) -> bool {
        self.inner.close_hook.is_set()
    }

    /// Closes the stream (later sends fail with [`ClosedResourceError`]; the buffered data
    /// can still be taken, then [`get_data`](Self::get_data) returns EOF), then runs the close
    /// hook. Idempotent, and the hook runs on every call.
    pub fn close(&self) {
        self.inner.outgoing.close();
        self.inner.close_hook.run();
    }

    /// Takes data out of the buffer, at most `max_bytes` (all there is with `None`), waiting
    /// for at least one byte. Empty once the stream is closed and drained (EOF).
    ///
    /// Errors: [`BusyResourceError`](trio::BusyResourceError) if another task is taking
    /// data; a [`UsageError`](trio::UsageError) for `Some(0)`.
    ///
    /// # Checkpoint
    /// Yes: it blocks, or makes a full checkpoint when data is there.
    ///
    /// # Cancel safety
    /// Safe: cancelled, it took nothing.
    pub async fn get_data(&self, max_bytes: Option<usize>) -> Result<Vec<u8>> {
        self.inner.outgoing.get(max_bytes).await
    }

    /// As [`get_data`](Self::get_data) without waiting: [`WouldBlock`] when there is nothing
    /// yet.
    pub fn get_data_nowait(&self, max_bytes: Option<usize>) -> Result<Vec<u8>> {
        self.inner.outgoing.get_nowait(max_bytes)
    }

    fn downgrade(&self) -> Weak<SendInner> {
        Rc::downgrade(&self.inner)
    }
}

impl AsyncResource for MemorySendStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

impl SendStream for MemorySendStream {
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize>> {
        let inner = &*self.inner;
        let detector = &inner.detector;
        // The hook of an earlier poll-level send finishes first.
        std::task::ready!(inner.send_all_running.poll(cx, detector))?;
        inner.outgoing.put(buf)?;
        if let Some(hook) = inner.send_all_hook.start() {
            inner.send_all_running.start(hook, detector);
            if let Poll::Ready(Err(e)) = inner.send_all_running.poll(cx, detector) {
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.inner.send_all_running.poll(cx, &self.inner.detector)
    }

    fn poll_wait_send_all_might_not_block(&self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let inner = &*self.inner;
        let detector = &inner.detector;
        if !inner.wait_running.is_running(detector) {
            // Fails on a closed stream, as a send would.
            inner.outgoing.put(&[])?;
            match inner.wait_hook.start() {
                Some(hook) => inner.wait_running.start(hook, detector),
                None => return Poll::Ready(Ok(())),
            }
        }
        inner.wait_running.poll(cx, detector)
    }

    fn send_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.inner.detector)
    }
}

struct ReceiveInner {
    detector: ConflictDetector,
    incoming: ByteQueue,
    closed: Cell<bool>,
    receive_some_hook: Slot<AsyncHook>,
    close_hook: Slot<SyncHook>,
    hook_running: Running,
    /// The receive whose hook has run, if it is still in progress.
    hook_done: Cell<Option<OpStamp>>,
}

/// An in-memory [`ReceiveStream`] (Trio's `trio.testing.MemoryReceiveStream`): the test puts
/// data in with [`put_data`](Self::put_data) and [`put_eof`](Self::put_eof), and
/// `receive_some` takes it out, waiting when there is none.
///
/// Hooks (optional, replaceable at any time): the **receive-some hook** (async) runs at the
/// start of each receive, before it looks for data; the **close hook** (sync) runs on each
/// close.
///
/// At the poll level the hook runs once per receive: from the first `poll_receive` until one
/// returns data or EOF. A `receive_some` cancelled while its hook waits drops the hook (as in
/// Trio; the stream notices from its conflict detector), and the next receive runs the hook
/// afresh.
///
/// A handle: clones share one stream, so a hook can hold one. Dropping the last handle closes
/// the stream.
#[derive(Clone)]
pub struct MemoryReceiveStream {
    inner: Rc<ReceiveInner>,
}

impl Default for MemoryReceiveStream {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryReceiveStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReceiveStream")
            .field("closed", &self.inner.closed.get())
            .finish_non_exhaustive()
    }
}

/// Dropping the last handle closes the stream (running its close hook), as dropping a socket
/// closes it: a sender pumping into it gets `BrokenResourceError`.
impl Drop for MemoryReceiveStream {
    fn drop(&mut self) {
        if Rc::strong_count(&self.inner) == 1 && !self.inner.closed.get() {
            self.close();
        }
    }
}

impl MemoryReceiveStream {
    /// A stream with no hooks.
    pub fn new() -> Self {
        Self::with_hooks(None, None)
    }

    /// A stream with the given hooks (Trio's constructor arguments).
    pub fn with_hooks(receive_some_hook: Option<AsyncHook>, close_hook: Option<SyncHook>) -> Self {
        let inner = ReceiveInner {
            detector: ConflictDetector::new("another task is using this stream"),
            incoming: ByteQueue::default(),
            closed: Cell::new(false),
            receive_some_hook: Slot::default(),
            close_hook: Slot::default(),
            hook_running: Running::default(),
            hook_done: Cell::new(None),
        };
        inner.receive_some_hook.replace(receive_some_hook);
        inner.close_hook.replace(close_hook);
        MemoryReceiveStream {
            inner: Rc::new(inner),
        }
    }

    /// Sets the receive-some hook (`None` removes it); returns the one it replaces.
    pub fn set_receive_some_hook(&self, hook: Option<AsyncHook>) -> Option<AsyncHook> {
        self.inner.receive_some_hook.replace(hook)
    }

    /// Sets the close hook; returns the one it replaces.
    pub fn set_close_hook(&self, hook: Option<SyncHook>) -> Option<SyncHook> {
        self.inner.close_hook.replace(hook)
    }

    /// Whether a receive-some hook is set.
    pub fn has_receive_some_hook(&self) -> bool {
        self.inner.receive_some_hook.is_set()
    }

    /// Whether a close hook is set.
    pub fn has_close_hook(&self) -> bool {
        self.inner.close_hook.is_set()
    }

    /// Closes the stream: the buffered data is dropped, receives (pending and later) fail
    /// with [`ClosedResourceError`], and so does [`put_data`](Self::put_data). Then runs the
    /// close hook. Idempotent, and the hook runs on every call.
    pub fn close(&self) {
        self.inner.closed.set(true);
        self.inner.incoming.close_and_wipe();
        self.inner.close_hook.run();
    }

    /// Appends `data` to the buffer, waking a receiver. [`ClosedResourceError`] after
    /// [`put_eof`](Self::put_eof) or [`close`](Self::close).
    pub fn put_data(&self, data: &[u8]) -> Result<()> {
        self.inner.incoming.put(data)
    }

    /// Marks the end of the data: receivers drain the buffer, then get EOF. Idempotent.
    pub fn put_eof(&self) {
        self.inner.incoming.close();
    }

    fn downgrade(&self) -> Weak<ReceiveInner> {
        Rc::downgrade(&self.inner)
    }
}

fn closed_receive() -> Error {
    Error::new(ClosedResourceError::new(
        "this MemoryReceiveStream was closed",
    ))
}

impl AsyncResource for MemoryReceiveStream {
    fn poll_close(&self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.close();
        Poll::Ready(Ok(()))
    }
}

impl ReceiveStream for MemoryReceiveStream {
    fn poll_receive(&self, cx: &mut Context<'_>, buf: &mut ReceiveBuf<'_>) -> Poll<Result<()>> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Poll::Ready(Err(closed_receive()));
        }
        let detector = &inner.detector;
        let this_receive = OpStamp::current(detector);
        if inner.hook_done.get() != Some(this_receive) {
            if !inner.hook_running.is_running(detector)
                && let Some(hook) = inner.receive_some_hook.start()
            {
                inner.hook_running.start(hook, detector);
            }
            std::task::ready!(inner.hook_running.poll(cx, detector))?;
            inner.hook_done.set(Some(this_receive));
        }
        // A close wakes the receiver with EOF; it must see its own close, not the EOF.
        std::task::ready!(inner.incoming.poll_get_into(cx, buf))?;
        inner.hook_done.set(None);
        if inner.closed.get() {
            return Poll::Ready(Err(closed_receive()));
        }
        Poll::Ready(Ok(()))
    }

    fn receive_conflict_detector(&self) -> Option<&ConflictDetector> {
        Some(&self.inner.detector)
    }
}

/// Moves data from `send`'s buffer to `receive`'s (Trio's `memory_stream_pump`): at most
/// `max_bytes` (all with `None`). A closed and drained `send` becomes EOF on `receive`.
/// Returns whether it moved anything (data or the EOF).
///
/// Errors: [`BrokenResourceError`] when `receive` was closed; the errors of
/// [`MemorySendStream::get_data_nowait`] (busy, `Some(0)`).
pub fn memory_stream_pump(
    send: &MemorySendStream,
    receive: &MemoryReceiveStream,
    max_bytes: Option<usize>,
) -> Result<bool> {
    let data = match send.get_data_nowait(max_bytes) {
        Ok(data) => data,
        Err(e) if e.is::<WouldBlock>() => return Ok(false),
        Err(e) => return Err(e),
    };
    let put = if data.is_empty() {
        receive.put_eof();
        Ok(())
    } else {
        receive.put_data(&data)
    };
    match put {
        Ok(()) => Ok(true),
        Err(e) if e.is::<ClosedResourceError>() => Err(Error::new(BrokenResourceError::new(
            "MemoryReceiveStream was closed",
        ))),
        Err(e) => Err(e),
    }
}

/// [`memory_stream_pump`] through weak handles: the pair's hooks must not keep the streams
/// alive (each stream holds its hooks). A dropped receive stream counts as closed.
fn pump_weak(send: &Weak<SendInner>, receive: &Weak<ReceiveInner>) -> Result<bool> {
    let Some(send) = send.upgrade() else {
        return Ok(false);
    };
    let send = MemorySendStream { inner: send };
    match receive.upgrade() {
        Some(receive) => memory_stream_pump(&send, &MemoryReceiveStream { inner: receive }, None),
        None => match send.get_data_nowait(None) {
            Err(e) if e.is::<WouldBlock>() => Ok(false),
            Err(e) => Err(e),
            Ok(_) => Err(Error::new(BrokenResourceError::new(
                "MemoryReceiveStream was dropped",
            ))),
        },
    }
}

/// A connected one-way pair of memory streams with unbounded buffering (Trio's
/// `memory_stream_one_way_pair`; an `os.pipe` with the ends in the order data flows).
///
/// The send stream's send-all hook and close hook call [`memory_stream_pump`], so data (and
/// EOF) reaches the receive stream as soon as it is sent. Rearrange as you like: remove the
/// send-all hook to simulate a stall, or pump by hand.
pub fn memory_stream_one_way_pair() -> (MemorySendStream, MemoryReceiveStream) {
    let send = MemorySendStream::new();
    let receive = MemoryReceiveStream::new();
    let (s, r) = (send.downgrade(), receive.downgrade());
    send.set_send_all_hook(Some(AsyncHook::new(move || {
        std::future::ready(pump_weak(&s, &r).map(drop))
    })));
    let (s, r) = (send.downgrade(), receive.downgrade());
    send.set_close_hook(Some(SyncHook::new(move || {
        // A close hook cannot report; a receive stream closed first has nothing to learn.
        let _ = pump_weak(&s, &r);
    })));
    (send, receive)
}

/// A memory stream: one [`MemorySendStream`] and one [`MemoryReceiveStream`], stapled.
pub type MemoryStapledStream = StapledStream<MemorySendStream, MemoryReceiveStream>;

/// A connected bidirectional pair of memory streams with unbounded buffering (Trio's
/// `memory_stream_pair`; a `socketpair` without the operating system): two
/// [`memory_stream_one_way_pair`]s stapled crosswise.
///
/// Every piece is public, so a test can reshape the flow. Here data from left to right
/// trickles one byte per second (on virtual time with `MockClock`'s autojump):
///
/// ```
/// use std::time::Duration;
/// use trio::stream::prelude::*;
/// use trio_test::{AsyncHook, MockClock, memory_stream_pair, memory_stream_pump};
///
/// # fn main() -> trio::Result<()> {
/// let clock = MockClock::new().with_autojump_threshold(0)?;
/// trio::RunConfig::new().clock(clock).run(async {
///     let (left, right) = memory_stream_pair();
///     let (send, receive) = (left.send_stream().clone(), right.receive_stream().clone());
///     left.send_stream().set_send_all_hook(Some(AsyncHook::new(move || {
///         let (send, receive) = (send.clone(), receive.clone());
///         async move {
///             while memory_stream_pump(&send, &receive, Some(1))? {
///                 trio::sleep(Duration::from_secs(1)).await?;
///             }
///             Ok(())
///         }
///     })));
///     let start = trio::current_time()?;
///     left.send_all(b"123").await?;
///     assert_eq!(trio::current_time()? - start, 3.0);
///     assert_eq!(right.receive_some(10).await?, b"123");
///     Ok(())
/// })
/// # }
/// ```
pub fn memory_stream_pair() -> (MemoryStapledStream, MemoryStapledStream) {
    let (send1, receive1) = memory_stream_one_way_pair();
    let (send2, receive2) = memory_stream_one_way_pair();
    (
        StapledStream::new(send1, receive2),
        StapledStream::new(send2, receive1),
    )
}
