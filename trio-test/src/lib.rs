//! # trio-test: tools for testing trio code
//!
//! Trio's `trio.testing`, for trio-rs. Code written on trio can be tested deterministically:
//! on virtual time, with the interleavings you choose, without real sockets. A tour, from the
//! first test to the conformance suites.
//!
//! ## Test an async fn on virtual time
//!
//! [`MockClock`] is a clock whose time moves only when you say so: by
//! [`jump`](MockClock::jump), at a [`rate`](MockClock::with_rate), or by Trio's *autojump*:
//! once every task has been blocked for the autojump threshold (in real time), the clock jumps
//! to the next deadline. A test that sleeps an hour runs at once, and its sleeps end in the
//! order they would have. `#[trio::test(autojump)]` runs a test on it (threshold 0; your
//! crate needs trio-test as a dev-dependency), and fails a test whose tasks all block
//! forever with a task dump instead of hanging:
//!
//! ```
//! # async fn retry_after_timeout() -> trio::Result<u32> { trio::sleep(60).await?; Ok(3) }
//! #[trio::test(autojump)]
//! async fn gives_up_after_a_minute() -> trio::Result<()> {
//!     let start = trio::current_time()?;
//!     assert_eq!(retry_after_timeout().await?, 3);
//!     assert_eq!(trio::current_time()? - start, 60.0); // exactly: virtual time
//!     Ok(())
//! }
//! ```
//!
//! Without the attribute, give the clock to a run yourself; keep a clone to move time:
//!
//! ```
//! use trio_test::MockClock;
//!
//! # fn main() -> trio::Result<()> {
//! let clock = MockClock::new(); // no autojump: time stands still
//! let hand = clock.clone();
//! trio::RunConfig::new().clock(clock).run(async move {
//!     let deadline = trio::current_time()? + 30.0;
//!     hand.jump(30)?;
//!     assert!(trio::current_time()? >= deadline);
//!     Ok(())
//! })
//! # }
//! ```
//!
//! ## Let everything settle: `wait_all_tasks_blocked`
//!
//! [`wait_all_tasks_blocked`] returns once every other task is blocked: start some tasks,
//! let them run as far as they can, then check where they are. With
//! [`.cushion(seconds)`](WaitAllTasksBlocked::cushion), everything must have stayed blocked
//! that long (see its docs for Trio's rules, and how it meets autojump).
//!
//! ## Force an interleaving: `Sequencer`
//!
//! When a test is about one exact order across tasks, say it with a [`Sequencer`]: each task
//! takes its numbered [`step`](Sequencer::step), and step `n` begins only when step `n - 1`
//! has ended. A step cancelled while it waits breaks the sequence loudly rather than letting
//! the test pass without it.
//!
//! ## Check the checkpoint rule: `assert_checkpoints`
//!
//! Every async operation of trio is a checkpoint (a cancel point and a schedule point) and
//! every sync one is not. [`assert_checkpoints`] and [`assert_no_checkpoints`] check that of
//! your own operations, and trio's test-suite runs every async fn of trio through them:
//!
//! ```
//! use trio_test::{assert_checkpoints, assert_no_checkpoints};
//!
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let event = trio::Event::new();
//!     assert_no_checkpoints(async { event.set() }).await;
//!     assert_checkpoints(event.wait()).await?; // set already, and still a checkpoint
//!     Ok(())
//! })
//! # }
//! ```
//!
//! ## Test protocol code without sockets: memory streams
//!
//! [`memory_stream_pair`] is a `socketpair` in memory, with unbounded buffers;
//! [`memory_stream_one_way_pair`] one direction of it. Both are made of [`MemorySendStream`]
//! and [`MemoryReceiveStream`], whose hooks (and [`memory_stream_pump`]) reshape how data
//! flows: stall it, trickle it, drop it. [`lockstep_stream_pair`] and
//! [`lockstep_stream_one_way_pair`] have no buffer at all: a send waits for the receive.
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
//!
//! ## Conformance suites for your own streams and locks
//!
//! A new stream type runs Trio's generic stream checks with [`check_one_way_stream`],
//! [`check_two_way_stream`] or [`check_half_closeable_stream`]: EOF, closed and busy
//! resources, cancellation, close, flow control, a large transfer both ways. A new lock-like
//! primitive implements [`LockLike`] and runs [`check_lock_like`]: exclusion, fair hand-off,
//! lossless cancellation and drop, checkpoints. trio runs both suites on its own types.
//!
//! ```
//! use trio_test::{check_lock_like, check_two_way_stream, lockstep_stream_pair};
//!
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     check_lock_like(trio::Lock::new).await?;
//!     let maker = async || Ok(lockstep_stream_pair());
//!     check_two_way_stream(maker, Some(maker)).await
//! })
//! # }
//! ```
//!
//! ## Test a protocol over a fake network
//!
//! [`FakeNet`] is a network made of memory for one run: host names, TCP-like streams and UDP
//! datagrams, with latency, loss, partitions, refused and reset connections, all on the run's
//! clock. [`enable`](FakeNet::enable) plugs it into trio's per-run socket factory and resolver,
//! so the code under test keeps calling trio's real API (`open_tcp_stream` and its happy
//! eyeballs, `serve_tcp`, `SocketStream`, `trio::socket`) and meets a network that does exactly
//! what the test says, at exactly the virtual time it says. Its streams pass the conformance
//! suites above, also with latency and loss.
//!
//! ```
//! use trio::net::{ServeOptions, SocketListener, SocketStream, open_tcp_stream, serve_tcp};
//! use trio::stream::prelude::*;
//! use trio_test::{FakeNet, MockClock};
//!
//! /// The protocol under test: ask for a key, read the answer, give up after 5 seconds.
//! async fn fetch(key: &[u8]) -> trio::Result<Vec<u8>> {
//!     trio::fail_after(5, async {
//!         let stream = open_tcp_stream("cache.example", 6379).await?;
//!         stream.send_all(key).await?;
//!         stream.receive_some(1024).await
//!     })
//!     .await
//! }
//!
//! /// The server side.
//! async fn cache(stream: SocketStream) -> trio::Result<()> {
//!     let key = stream.receive_some(1024).await?;
//!     stream.send_all(&[&b"value of "[..], &key].concat()).await
//! }
//!
//! # fn main() -> trio::Result<()> {
//! let clock = MockClock::new().with_autojump_threshold(0)?;
//! trio::RunConfig::new().clock(clock).run(async {
//!     let net = FakeNet::new();
//!     net.add_host("cache.example", ["10.0.0.9"])?;
//!     net.set_latency(0.25)?; // each way
//!     net.enable()?;
//!     trio::open_nursery(|nursery| async move {
//!         let _: Vec<std::rc::Rc<SocketListener>> = nursery
//!             .start(|status| serve_tcp(cache, 6379, ServeOptions::new().task_status(status)))
//!             .await?;
//!
//!         let start = trio::current_time()?;
//!         assert_eq!(fetch(b"k").await?, b"value of k");
//!         assert_eq!(trio::current_time()? - start, 1.0); // connect and ask: two round trips
//!
//!         // The server's host drops off the network: the client gives up on time.
//!         let server: std::net::IpAddr = "10.0.0.9".parse()?;
//!         net.partition(server);
//!         assert!(fetch(b"k").await.unwrap_err().is::<trio::TooSlowError>());
//!         net.heal(server);
//!         assert_eq!(fetch(b"k").await?, b"value of k");
//!
//!         nursery.cancel_scope().cancel();
//!         Ok(())
//!     })
//!     .await
//! })
//! # }
//! ```
//!
//! The controls (see [`FakeNet`]): [`add_host`](FakeNet::add_host),
//! [`set_latency`](FakeNet::set_latency) and [`set_latency_for`](FakeNet::set_latency_for) a
//! slow host, [`set_loss`](FakeNet::set_loss) and [`drop_next`](FakeNet::drop_next) (lost
//! TCP packets are retransmitted on Linux's timers, lost datagrams are gone),
//! [`partition`](FakeNet::partition), [`refuse`](FakeNet::refuse),
//! [`reset_connections`](FakeNet::reset_connections), [`set_buffer_size`](
//! FakeNet::set_buffer_size) and [`set_lookup_delay`](FakeNet::set_lookup_delay).
//!
//! For servers that let the system pick their port, [`open_stream_to_socket_listener`]
//! connects a stream to a listener, on real sockets or fake ones.
//!
//! ## Certificates for TLS tests: `TestCa` (feature `tls`)
//!
//! With the `tls` feature, `TestCa` is a certificate authority made up for one test (Trio's
//! `trustme`): `ca.issue_cert(["localhost", "127.0.0.1"])?` signs a `LeafCert`, whose
//! `server_config()` presents it, while `ca.client_config()` trusts the CA and nothing else.
//! Both are rustls configurations for `trio::tls::SslStream`, `SslListener` and
//! `open_ssl_over_tcp_stream`; client certificates too
//! (`client_config_with_cert`, `server_config_requiring_client_cert`).
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
// Every `unsafe` block says why it is sound (a `// SAFETY:` comment); clippy checks it.
#![warn(clippy::undocumented_unsafe_blocks)]

mod check_locks;
mod check_streams;
mod checkpoints;
mod clock;
mod fake_net;
mod lockstep;
mod memory_streams;
mod network;
mod sequencer;
#[cfg(feature = "tls")]
mod tls;

pub use check_locks::{LockLike, check_lock_like};

pub use check_streams::{
    NoClogged, check_half_closeable_stream, check_one_way_stream, check_two_way_stream, no_clogged,
};
pub use checkpoints::{assert_checkpoints, assert_no_checkpoints};
pub use clock::MockClock;
pub use fake_net::{FakeNet, FakeNetStatistics, IntoIpAddr, NetTarget};
pub use lockstep::{
    LockstepReceiveStream, LockstepSendStream, LockstepStapledStream, lockstep_stream_one_way_pair,
    lockstep_stream_pair,
};
pub use memory_streams::{
    AsyncHook, MemoryReceiveStream, MemorySendStream, MemoryStapledStream, SyncHook,
    memory_stream_one_way_pair, memory_stream_pair, memory_stream_pump,
};
pub use network::open_stream_to_socket_listener;
pub use sequencer::{Sequencer, SequencerStep};
#[cfg(feature = "tls")]
pub use tls::{LeafCert, TestCa};

#[doc(inline)]
pub use trio::lowlevel::WaitAllTasksBlocked;
/// Trio's `trio.testing.wait_all_tasks_blocked`, here so that tests find it with the other
/// tools (it is `trio::lowlevel::wait_all_tasks_blocked`).
///
/// # Cushion semantics, as in Trio
/// - The waiter wakes once every *other* task is blocked: nothing runnable, no I/O or
///   deadline ready. With the default cushion (0) that is as soon as the run goes idle.
/// - [`.cushion(seconds)`](WaitAllTasksBlocked::cushion) asks that everything has stayed
///   blocked for that long, in **real** time, not the clock's: a task that wakes (a sleep that
///   ends, a message that arrives) starts the count again. It is for tests where tasks talk
///   through something real (a socket, a thread) and the run is idle for a moment between a
///   send and its receive.
/// - Among several waiters, those with the smallest cushion wake first, all of them together
///   when their cushions are equal; waking them starts the count again for the others.
/// - A mock clock autojumps only when nobody waits here: a waiter, whatever its cushion, is
///   woken before the clock jumps to the next deadline. So on an autojump clock, sleeping
///   tasks stay asleep until every waiter is done; at rate 0 without autojump, a sleep ends
///   only when you [`jump`](crate::MockClock::jump) the clock.
///
/// A [`Sequencer`] often says the order a test needs more plainly than waiting for idleness.
///
/// # trio's documentation of it
#[doc(inline)]
pub use trio::lowlevel::wait_all_tasks_blocked;
/// Trio's `trio.testing.active_thread_count` and `trio.testing.wait_all_threads_completed`
/// (they live in `trio::to_thread`).
#[doc(inline)]
pub use trio::to_thread::{active_thread_count, wait_all_threads_completed};
