//! # trio-test: tools for testing trio code
//!
//! Trio's `trio.testing`, for trio-rs:
//!
//! - [`MockClock`]: virtual time with a rate and Trio's autojump. Use it with
//!   `#[trio::test(autojump)]`, or pass it to `trio::RunConfig::clock` yourself.
//! - **Memory streams**, to test protocol code without sockets: [`memory_stream_pair`] (a
//!   `socketpair` in memory, with unbounded buffers), [`memory_stream_one_way_pair`], and the
//!   pieces they are made of ([`MemorySendStream`], [`MemoryReceiveStream`] with their hooks,
//!   [`memory_stream_pump`]) to reshape how data flows: stall it, trickle it, drop it.
//!   [`lockstep_stream_pair`] and [`lockstep_stream_one_way_pair`] have no buffering at all.
//! - **Stream conformance suites**: [`check_one_way_stream`], [`check_two_way_stream`] and
//!   [`check_half_closeable_stream`] run Trio's generic stream checks on any implementation
//!   of the `trio::stream` traits.
//!
//! ```
//! use trio::stream::prelude::*;
//! use trio_test::{MockClock, memory_stream_pair};
//!
//! /// The protocol under test: echo one message, upper-cased.
//! async fn shout<S: Stream + ?Sized>(stream: &S) -> trio::Result<()> {
//!     let message = stream.receive_some(1024).await?;
//!     stream.send_all(&message.to_ascii_uppercase()).await
//! }
//!
//! # fn main() -> trio::Result<()> {
//! let clock = MockClock::new().with_autojump_threshold(0)?;
//! trio::RunConfig::new().clock(clock).run(async {
//!     let (client, server) = memory_stream_pair();
//!     trio::open_nursery(|nursery| async move {
//!         nursery.start_soon(async move { shout(&server).await })?;
//!         client.send_all(b"hello").await?;
//!         assert_eq!(client.receive_some(1024).await?, b"HELLO");
//!         Ok(())
//!     })
//!     .await
//! })
//! # }
//! ```
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (a `// SAFETY:` comment); clippy checks it.
#![warn(clippy::undocumented_unsafe_blocks)]

mod check_locks;
mod check_streams;
mod checkpoints;
mod clock;
mod lockstep;
mod memory_streams;
mod sequencer;

pub use check_locks::{LockLike, check_lock_like};

pub use check_streams::{
    NoClogged, check_half_closeable_stream, check_one_way_stream, check_two_way_stream, no_clogged,
};
pub use checkpoints::{assert_checkpoints, assert_no_checkpoints};
pub use clock::MockClock;
pub use lockstep::{
    LockstepReceiveStream, LockstepSendStream, LockstepStapledStream, lockstep_stream_one_way_pair,
    lockstep_stream_pair,
};
pub use memory_streams::{
    AsyncHook, MemoryReceiveStream, MemorySendStream, MemoryStapledStream, SyncHook,
    memory_stream_one_way_pair, memory_stream_pair, memory_stream_pump,
};
pub use sequencer::{Sequencer, SequencerStep};

#[doc(inline)]
pub use trio::lowlevel::{WaitAllTasksBlocked, wait_all_tasks_blocked};
