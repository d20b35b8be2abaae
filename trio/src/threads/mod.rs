//! Threads: [`to_thread`] runs blocking code in worker threads, [`from_thread`] calls back
//! into a run from other threads (Trio's `trio.to_thread` and `trio.from_thread`).
//!
//! - `cache.rs`: the process-wide cache of worker threads (reuse, idle exit, OS names);
//! - `link.rs`: what a call shares with its worker (outcome, waker, `from_thread` requests,
//!   the cancellation it saw) and the reply channel a `from_thread` call blocks on;
//! - `to_thread.rs`: the calling task's side (limiter, external wait, cancellation, abandon);
//! - `from_thread.rs`: the worker's way back (in the waiting task, or through a `TrioToken`);
//! - `soon.rs`: `lowlevel::start_thread_soon`, the cache with no run around it.
//!
//! Built on `lowlevel` only: completions and requests reach the run through task wakers and
//! `TrioToken::run_sync_soon` (the entry queue, which wakes the reactor), and each call holds
//! a `lowlevel::ExternalWait` while its thread runs its own code.

mod cache;
pub mod from_thread;
mod link;
mod soon;
pub mod to_thread;

pub use soon::start_thread_soon;
