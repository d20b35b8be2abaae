//! # trio: structured concurrency and async I/O for humans
//!
//! A Rust implementation of [Trio](https://trio.readthedocs.io)'s design:
//!
//! - **Structured concurrency.** Every task lives in a nursery ([`open_nursery`]); a nursery
//!   waits for all its children; a child's error cancels its siblings and comes out of the
//!   nursery in an [`ErrorGroup`]. Nothing runs in the background unsupervised.
//! - **Cancellation you can reason about.** [`CancelScope`]s with deadlines and shields.
//!   Cancellation is level-triggered and surfaces only at checkpoints, as `Err(Cancelled)`.
//!   Every async fn of the library is a checkpoint; sync fns never are.
//! - **Ctrl-C is cancellation.** [`run`] turns SIGINT into the cancellation of everything;
//!   shielded cleanup runs, and `run` returns `Err(KeyboardInterrupt)` (carrying the error
//!   the cleanup failed with, if it did). `#[trio::main]` then ends the program by SIGINT.
//!
//! ```
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     // At most 0.5 s for the whole batch; each child sleeps a little.
//!     let done = trio::move_on_after(0.5, trio::open_nursery(|nursery| async move {
//!         for i in 0..3 {
//!             nursery.start_soon(async move {
//!                 trio::sleep(0.01 * i as f64).await?;
//!                 Ok(())
//!             })?;
//!         }
//!         Ok(())
//!     }))
//!     .await?;
//!     assert!(done.is_some());
//!     Ok(())
//! })
//! # }
//! ```
//!
//! The layers, bottom up (imports only go down): [`lowlevel`] (the run loop, tasks, cancel
//! status, `ParkingLot`, reactor), then timeouts and the rest of the API built on it, up to
//! the byte streams of [`stream`] (Trio's `trio.abc` interfaces), the sockets of [`socket`]
//! and the networking of [`net`] (`open_tcp_stream`, `serve_tcp`, `SocketStream`), with TLS
//! in `trio::tls` (the `tls` feature: `SslStream`, `SslListener`, on rustls). Child
//! processes are in [`process`] ([`run_process`], [`open_process`]), files and paths in
//! [`fs`] ([`open_file`], [`Path`], `fs::read`, ...). Foreign futures, futures-io and hyper
//! meet trio in [`compat`] (features `futures-io` and `hyper`).
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (a `// SAFETY:` comment); clippy checks it.
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod channel;
pub mod compat;
mod core;
mod error;
pub mod fs;
pub mod join;
#[doc(hidden)]
pub mod __private {
    //! Macro support; not a public API.
    pub use crate::private::*;
}
pub mod net;
mod private;
pub mod process;
mod signal;
pub mod socket;
pub mod stream;
pub mod sync;
mod sys;
mod threads;
mod timeouts;
#[cfg(feature = "tls")]
pub mod tls;

pub mod lowlevel {
    //! Trio's `trio.lowlevel`: what the higher layers (sync primitives, channels, I/O) and
    //! advanced users build on. Almost all of it is the public face of the core layer (the
    //! run loop); [`start_thread_soon`] is the worker-thread cache's.
    //!
    //! Everything above `core` reaches the run through this module and the crate root;
    //! nothing above it names `crate::core`.

    pub use crate::core::lowlevel::*;
    pub use crate::threads::start_thread_soon;
}
pub use crate::threads::{from_thread, to_thread};

pub use crate::channel::{
    MemoryChannelStatistics, MemoryReceiveChannel, MemorySendChannel, SafeChannelReceiver,
    SafeChannelSender, SendError, as_safe_channel, open_memory_channel,
    open_unbounded_memory_channel,
};
pub use crate::core::{
    CancelScope, Clock, Instrument, IntoSeconds, Nursery, NurseryRun, RunConfig, ScopeRun, Start,
    SystemClock, TaskStatus, open_nursery, run,
};
pub use crate::error::{
    BrokenResourceError, BusyResourceError, CancelSource, Cancelled, ClosedResourceError,
    DeadlockError, EndOfChannel, Error, ErrorGroup, KeyboardInterrupt, Result, RunFinishedError,
    TaskPanicked, TooSlowError, TrioInternalError, UsageError, WouldBlock,
};
pub use crate::fs::{Path, open_file, wrap_file};
pub use crate::join::{join, join_all, race, race_all};
pub use crate::lowlevel::Timeout;
pub use crate::lowlevel::{SleepForever, sleep_forever};
pub use crate::private::run_main_with;
pub use crate::process::{Process, open_process, run_process};
pub use crate::signal::{SignalReceiver, open_signal_receiver};
pub use crate::stream::{
    AsyncResource, AsyncResourceExt, ConflictDetector, HalfCloseableStream, HalfCloseableStreamExt,
    Listener, ListenerExt, ReceiveBuf, ReceiveStream, ReceiveStreamExt, SendStream, SendStreamExt,
    StapledStream, Stream, aclose_forcefully,
};
pub use crate::sync::{
    Borrower, CapacityLimiter, CapacityLimiterGuard, Condition, Event, Lock, LockGuard, Semaphore,
    SemaphoreGuard, StrictFIFOLock,
};
pub use crate::timeouts::{
    FailAfter, current_effective_deadline, current_time, fail_after, fail_at, move_on_after,
    move_on_at, sleep, sleep_until,
};
pub use trio_macros::{checkpoint, main, test, wchan};
