//! I/O: the reactor (the driver the run loop owns) and the APIs tasks use to wait on it.
//!
//! - `reactor.rs`: the driver. mio's poller, a slab of registrations with per-direction
//!   readiness and one waker each, and the fixed tokens of the other drivers' self-pipes
//!   (the entry queue's waker, Ctrl-C). More kinds of readiness plug in the same way: a
//!   driver with an fd (a signal self-pipe, a pidfd for process waits) registers it here.
//! - `wait.rs`: Trio's `wait_readable`, `wait_writable` and `notify_closing` on raw fds.
//! - `registration.rs`: [`FdRegistration`], the poll-level readiness that sockets, pipes and
//!   process handles are built on.

pub(crate) mod reactor;
mod registration;
mod wait;

pub use registration::FdRegistration;
pub use wait::{WaitIo, notify_closing, wait_readable, wait_writable};
