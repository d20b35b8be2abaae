//! Trio's generic stream tests (`trio/testing/_check_streams.py`): conformance suites that any
//! stream implementation can run from its tests.
//!
//! A suite gets a *stream maker*, an async closure returning a fresh connected pair, and
//! optionally a *clogged* maker whose pair is in a state where `send_all` and
//! `wait_send_all_might_not_block` block until the other side receives (a
//! [`lockstep_stream_one_way_pair`](crate::lockstep_stream_one_way_pair), or a socket pair
//! whose buffers were filled first); pass [`no_clogged()`] when there is none. A failed check
//! panics with a message naming it; an error the suite did not expect is returned.
//!
//! What is checked, as in Trio: data goes through; an empty send is harmless; `receive_some`
//! rejects a zero size; two concurrent receives (or sends, or a send and a
//! `wait_send_all_might_not_block`, or a send and a `send_eof`) get `BusyResourceError`; a
//! closed receiver makes the sender's `send_all` fail with `BrokenResourceError`, and stay
//! failed; operations on a closed stream fail with `ClosedResourceError`, also for a task
//! blocked in them when the close happens; closing is idempotent and closes even when
//! cancelled; the receiver sees the data sent before a close, then EOF; operations in a
//! cancelled scope fail with `Cancelled`, and the stream can still be closed afterwards;
//! `wait_send_all_might_not_block` wakes when a receive starts; a megabyte each way at once,
//! in random chunk sizes, arrives intact; `send_eof` gives the peer EOF while the other
//! direction keeps working. Operations that succeed must have made a cancel point and a
//! schedule point (Trio's `assert_checkpoints`).
//!
//! Where Rust differs:
//! - Trio's checks of argument types (`bytearray`, `memoryview`, a float `max_bytes`, a
//!   negative one, `None`) have no counterpart: the types rule them out. The suite sends from
//!   a slice of a larger buffer and receives with both `receive_some` and `receive_into`.
//! - The busy checks cancel and fail when both operations block, where Trio's would hang.

mod one_way;

use std::future::Future;
use std::rc::Rc;

use trio::lowlevel::{current_task, wait_all_tasks_blocked};
use trio::stream::prelude::*;
use trio::{ClosedResourceError, Error, Result, aclose_forcefully, open_nursery};

use crate::checkpoints::Points;
use one_way::{both, expect_busy};

/// Checks a one-way stream implementation (Trio's `check_one_way_stream`): `stream_maker`
/// returns a connected (send, receive) pair, `clogged_stream_maker` one whose sends block
/// until the receiver receives ([`no_clogged()`] if you have none).
///
/// # Panics
/// When the stream fails a check; the message names it.
///
/// # Checkpoint
/// Yes: it runs many stream operations.
///
/// # Cancel safety
/// Cancelled, it stops where it was; the streams it made are dropped.
///
/// ```
/// use trio_test::{check_one_way_stream, lockstep_stream_one_way_pair};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let maker = async || Ok(lockstep_stream_one_way_pair());
///     check_one_way_stream(maker, Some(maker)).await
/// })
/// # }
/// ```
pub async fn check_one_way_stream<S, R, M, C>(
    mut stream_maker: M,
    mut clogged_stream_maker: Option<C>,
) -> Result<()>
where
    S: SendStream + 'static,
    R: ReceiveStream + 'static,
    M: AsyncFnMut() -> Result<(S, R)>,
    C: AsyncFnMut() -> Result<(S, R)>,
{
    one_way::check(&mut stream_maker, clogged_stream_maker.as_mut()).await
}

/// Checks a two-way stream implementation (Trio's `check_two_way_stream`): everything
/// [`check_one_way_stream`] checks, in both directions, and both directions at once.
///
/// # Panics
/// When the stream fails a check; the message names it.
///
/// # Checkpoint
/// Yes: it runs many stream operations.
///
/// # Cancel safety
/// Cancelled, it stops where it was; the streams it made are dropped.
pub async fn check_two_way_stream<A, B, M, C>(
    mut stream_maker: M,
    mut clogged_stream_maker: Option<C>,
) -> Result<()>
where
    A: Stream + 'static,
    B: Stream + 'static,
    M: AsyncFnMut() -> Result<(A, B)>,
    C: AsyncFnMut() -> Result<(A, B)>,
{
    check_two_way(&mut stream_maker, clogged_stream_maker.as_mut()).await
}

/// Checks a half-closeable stream implementation (Trio's `check_half_closeable_stream`):
/// everything [`check_two_way_stream`] checks, and `send_eof`.
///
/// # Panics
/// When the stream fails a check; the message names it.
///
/// # Checkpoint
/// Yes: it runs many stream operations.
///
/// # Cancel safety
/// Cancelled, it stops where it was; the streams it made are dropped.
///
/// ```
/// use trio_test::{check_half_closeable_stream, memory_stream_pair, no_clogged};
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     check_half_closeable_stream(async || Ok(memory_stream_pair()), no_clogged()).await
/// })
/// # }
/// ```
pub async fn check_half_closeable_stream<A, B, M, C>(
    mut stream_maker: M,
    mut clogged_stream_maker: Option<C>,
) -> Result<()>
where
    A: HalfCloseableStream + 'static,
    B: HalfCloseableStream + 'static,
    M: AsyncFnMut() -> Result<(A, B)>,
    C: AsyncFnMut() -> Result<(A, B)>,
{
    check_half_closeable(&mut stream_maker, clogged_stream_maker.as_mut()).await
}

/// The type of [`no_clogged()`]: a maker that is never called.
pub type NoClogged<A, B> = fn() -> std::future::Ready<Result<(A, B)>>;

/// "No clogged stream maker", for the second argument of the suites (a plain `None` would
/// leave its type open).
pub fn no_clogged<A, B>() -> Option<NoClogged<A, B>> {
    None
}

/// Makes a pair and shares both ends.
async fn make<A, B>(maker: &mut impl AsyncFnMut() -> Result<(A, B)>) -> Result<(Rc<A>, Rc<B>)> {
    let (a, b) = maker().await?;
    Ok((Rc::new(a), Rc::new(b)))
}

/// Runs `body`, then closes both resources forcefully whatever happened (Trio's
/// `_ForceCloseBoth`).
async fn force_close_both<A, B>(a: &A, b: &B, body: impl Future<Output = Result<()>>) -> Result<()>
where
    A: AsyncResource + ?Sized,
    B: AsyncResource + ?Sized,
{
    let result = body.await;
    let first = aclose_forcefully(a).await;
    let second = aclose_forcefully(b).await;
    result.and(first).and(second)
}

/// Awaits `fut`; if it succeeds, asserts it made a cancel point and a schedule point on the
/// way (Trio's `assert_checkpoints`, which also looks at successes only).
async fn checkpointed<T>(what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let task = current_task()?;
    let before = Points::of(&task);
    let out = fut.await;
    if out.is_ok() {
        if let Some(missing) = before.missing_since(Points::of(&task)) {
            panic!("{what} succeeded without {missing}");
        }
    }
    out
}

/// Asserts that `result` failed with error kind `E`; returns the error.
#[track_caller]
fn expect_err<E: std::error::Error + 'static, T: std::fmt::Debug>(
    what: &str,
    result: Result<T>,
) -> Error {
    match result {
        Err(e) if e.is::<E>() => e,
        other => panic!(
            "{what}: expected {}, got {other:?}",
            std::any::type_name::<E>()
        ),
    }
}

/// Asserts that a nursery failed with a group of exactly one error, of kind `E` (Trio's
/// `_assert_raises(E, wrapped=True)`).
#[track_caller]
fn expect_group_of<E: std::error::Error + 'static>(what: &str, result: Result<()>) {
    let ok = match &result {
        Err(e) => e
            .as_group()
            .is_some_and(|g| g.len() == 1 && g.errors()[0].is::<E>()),
        Ok(()) => false,
    };
    assert!(
        ok,
        "{what}: expected a group of one {}, got {result:?}",
        std::any::type_name::<E>()
    );
}

/// A deterministic generator for the random chunk sizes and test data (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// How much each direction carries in the duplex check (Trio's `DUPLEX_TEST_SIZE`).
const DUPLEX_TEST_SIZE: usize = 1 << 20;
/// The largest chunk sent or received at once there (Trio's `CHUNK_SIZE_MAX`).
const CHUNK_SIZE_MAX: usize = 1 << 14;

async fn check_two_way<A, B, M, C>(maker: &mut M, mut clogged: Option<&mut C>) -> Result<()>
where
    A: Stream + 'static,
    B: Stream + 'static,
    M: AsyncFnMut() -> Result<(A, B)>,
    C: AsyncFnMut() -> Result<(A, B)>,
{
    one_way::check(maker, clogged.as_deref_mut()).await?;

    let mut flipped = async || {
        let (a, b) = maker().await?;
        Ok((b, a))
    };
    let mut flipped_clogged = clogged.map(|clogged| {
        async move || {
            let (a, b) = clogged().await?;
            Ok((b, a))
        }
    });
    one_way::check(&mut flipped, flipped_clogged.as_mut()).await?;

    let (s1, s2) = make(maker).await?;
    force_close_both(&*s1, &*s2, async {
        // Both directions at once, a megabyte each way in random chunk sizes.
        let data = Rc::new(Rng::new(0).bytes(DUPLEX_TEST_SIZE));
        let reversed: Rc<Vec<u8>> = Rc::new(data.iter().rev().copied().collect());
        let (a1, a2, b1, b2) = (s1.clone(), s1.clone(), s2.clone(), s2.clone());
        let (d1, d2, d3, d4) = (data.clone(), reversed.clone(), reversed, data);
        open_nursery(|n| async move {
            n.start_soon(async move { sender(&*a1, &d1, 1).await })?;
            n.start_soon(async move { sender(&*b1, &d2, 2).await })?;
            n.start_soon(async move { receiver(&*a2, &d3, 3).await })?;
            n.start_soon(async move { receiver(&*b2, &d4, 4).await })?;
            Ok(())
        })
        .await?;

        // Closing one end gives the other EOF.
        let (a, b) = (s1.clone(), s2.clone());
        both(
            async move {
                let got = b.receive_some(10).await?;
                assert_eq!(
                    got, b"",
                    "receive_some after the peer closed must return EOF"
                );
                b.aclose().await
            },
            async move { a.aclose().await },
        )
        .await
    })
    .await
}

async fn sender<S: SendStream + ?Sized>(s: &S, data: &[u8], seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    let mut rest = data;
    while !rest.is_empty() {
        let n = rng.range(1, CHUNK_SIZE_MAX).min(rest.len());
        s.send_all(&rest[..n]).await?;
        rest = &rest[n..];
    }
    Ok(())
}

async fn receiver<R: ReceiveStream + ?Sized>(r: &R, expected: &[u8], seed: u64) -> Result<()> {
    let mut rng = Rng::new(seed);
    let mut got = Vec::with_capacity(expected.len());
    while got.len() < expected.len() {
        let chunk = r.receive_some(rng.range(1, CHUNK_SIZE_MAX)).await?;
        assert!(
            !chunk.is_empty(),
            "EOF after {} of {} bytes",
            got.len(),
            expected.len()
        );
        got.extend_from_slice(&chunk);
    }
    assert!(got == expected, "the duplex transfer corrupted the data");
    Ok(())
}

async fn check_half_closeable<A, B, M, C>(maker: &mut M, mut clogged: Option<&mut C>) -> Result<()>
where
    A: HalfCloseableStream + 'static,
    B: HalfCloseableStream + 'static,
    M: AsyncFnMut() -> Result<(A, B)>,
    C: AsyncFnMut() -> Result<(A, B)>,
{
    check_two_way(maker, clogged.as_deref_mut()).await?;

    let (s1, s2) = make(maker).await?;
    // Trio's `isinstance(s, HalfCloseableStream)`: what `StapledStream` asks before it sends
    // EOF through a stream rather than closing it.
    for (side, stream) in [
        ("first", s1.as_half_closeable().is_some()),
        ("second", s2.as_half_closeable().is_some()),
    ] {
        assert!(
            stream,
            "the {side} stream is a HalfCloseableStream, but its SendStream::as_half_closeable \
             returns None (implement it as Some(self))"
        );
    }
    force_close_both(&*s1, &*s2, async {
        let (a, b) = (s1.clone(), s2.clone());
        both(async move { send_x_then_eof(&*a).await }, async move {
            expect_x_then_eof(&*b).await
        })
        .await?;

        // Now sending is refused...
        expect_err::<ClosedResourceError, _>("send_all after send_eof", s1.send_all(b"y").await);
        // ... but sending EOF again is fine...
        checkpointed("send_eof", s1.send_eof()).await?;
        // ... and the other direction still works.
        let (a, b) = (s1.clone(), s2.clone());
        both(async move { send_x_then_eof(&*b).await }, async move {
            expect_x_then_eof(&*a).await
        })
        .await
    })
    .await?;

    if let Some(clogged) = clogged {
        // send_all and send_eof at once.
        let (s1, s2) = make(clogged).await?;
        force_close_both(&*s1, &*s2, async {
            let (a, b) = (s1.clone(), s1.clone());
            expect_busy(
                "concurrent send_all and send_eof",
                true,
                async move { a.send_all(b"x").await },
                async move { b.send_eof().await },
            )
            .await;
            Ok(())
        })
        .await?;

        // wait_send_all_might_not_block and send_eof at once.
        let (s1, s2) = make(clogged).await?;
        force_close_both(&*s1, &*s2, async {
            let (a, b) = (s1.clone(), s1.clone());
            expect_busy(
                "concurrent wait_send_all_might_not_block and send_eof",
                true,
                async move { a.wait_send_all_might_not_block().await },
                async move { b.send_eof().await },
            )
            .await;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

async fn send_x_then_eof<S: HalfCloseableStream + ?Sized>(s: &S) -> Result<()> {
    s.send_all(b"x").await?;
    checkpointed("send_eof", s.send_eof()).await
}

async fn expect_x_then_eof<R: ReceiveStream + ?Sized>(r: &R) -> Result<()> {
    wait_all_tasks_blocked().await?;
    assert_eq!(r.receive_some(10).await?, b"x", "data before EOF lost");
    assert_eq!(r.receive_some(10).await?, b"", "no EOF after send_eof");
    Ok(())
}
