//! Memory channels: send values between tasks of one run (Trio's `open_memory_channel`).
//!
//! [`open_memory_channel`] gives a connected pair, a [`MemorySendChannel`] and a
//! [`MemoryReceiveChannel`], with a buffer of `max_buffer` values: 0 makes a rendezvous
//! channel (each `send` waits for a `receive`), [`open_unbounded_memory_channel`] a buffer that
//! never fills. The rules are Trio's:
//!
//! - **Fair.** A value goes to the receiver that has waited longest; a blocked sender's value
//!   enters the buffer in the order the senders blocked.
//! - **Checkpoints.** `send`, `recv`, `receive` and `aclose` are checkpoints, even when they
//!   need not wait; `try_send`, `try_receive` and `close` never are.
//! - **Clone and close.** Each handle (each clone) is closed on its own, by `close`, `aclose`
//!   or drop. Closing a handle fails that handle's own blocked tasks with
//!   [`ClosedResourceError`](crate::ClosedResourceError). When the last send handle closes,
//!   receivers see the end once the buffer is drained: `recv` returns `Ok(None)`, Trio's
//!   `receive` fails with [`EndOfChannel`](crate::EndOfChannel). When the last receive handle
//!   closes, senders get [`BrokenResourceError`](crate::BrokenResourceError) and buffered
//!   values are dropped.
//! - **Errors.** Send and receive errors are asked the same questions:
//!   [`is_cancelled`](crate::Error::is_cancelled), [`is_closed`](crate::Error::is_closed),
//!   [`is_broken`](crate::Error::is_broken), [`is_would_block`](crate::Error::is_would_block)
//!   (and [`is_end_of_channel`](crate::Error::is_end_of_channel) for a receive) on a
//!   [`trio::Error`](crate::Error) and on a [`SendError`], which also hands the value back.
//! - **Lossless cancellation.** A cancelled or dropped `send`, `recv` or `receive` either had no effect
//!   or completed. A value handed to a receiver whose future is dropped before it returned the
//!   value goes to the next receiver, or back to the front of the buffer.
//!
//! [`as_safe_channel`] runs a producer in a task of its own that makes values only when a
//! body asks for them (Trio's `@as_safe_channel`).
//!
//! ```
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let (tx, rx) = trio::open_memory_channel::<u32>(0);
//!     trio::open_nursery(|nursery| async move {
//!         nursery.start_soon(async move {
//!             for i in 0..3 {
//!                 tx.send(i).await?;
//!             }
//!             Ok(()) // dropping `tx` closes it: the receiver sees the end
//!         })?;
//!         let mut got = Vec::new();
//!         while let Some(v) = rx.recv().await? {
//!             got.push(v);
//!         }
//!         assert_eq!(got, [0, 1, 2]);
//!         Ok(())
//!     })
//!     .await
//! })
//! # }
//! ```

mod receive;
mod safe;
mod send;
mod state;

use std::cell::RefCell;
use std::rc::Rc;

pub use receive::{MemoryReceiveChannel, ReceiveFuture, RecvFuture};
pub use safe::{SafeChannelReceiver, SafeChannelSender, as_safe_channel};
pub use send::{MemorySendChannel, SendError, SendFuture};

use crate::lowlevel::DescribeWait;
use state::{HandleCore, State};

/// Statistics of a memory channel, the same from every handle.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryChannelStatistics {
    /// Values in the buffer. It can briefly be one over `max_buffer_size` after a receive
    /// that was handed a value is dropped (the value goes back to the front).
    pub current_buffer_used: usize,
    /// The buffer's capacity (`usize::MAX`: unbounded).
    pub max_buffer_size: usize,
    /// Send handles not yet closed.
    pub open_send_channels: usize,
    /// Receive handles not yet closed.
    pub open_receive_channels: usize,
    /// Tasks blocked in `send`.
    pub tasks_waiting_send: usize,
    /// Tasks blocked in `receive`.
    pub tasks_waiting_receive: usize,
    /// The most values the buffer has held at once since the channel was opened (a value
    /// handed straight to a waiting receiver never enters the buffer). Draining the buffer
    /// does not lower it: it is the figure to size `max_buffer_size` from.
    pub peak_buffer_used: usize,
}

fn statistics<T>(state: &State<T>) -> MemoryChannelStatistics {
    MemoryChannelStatistics {
        current_buffer_used: state.buffer.len(),
        max_buffer_size: state.max_buffer,
        open_send_channels: state.open_send,
        open_receive_channels: state.open_recv,
        tasks_waiting_send: state.senders.len(),
        tasks_waiting_receive: state.receivers.len(),
        peak_buffer_used: state.peak_buffer,
    }
}

impl<T> DescribeWait for RefCell<State<T>> {
    /// "buffer 0/1; waiting: 1 to send, 0 to receive; open handles: 1 send, 1 receive".
    fn describe_wait(&self) -> String {
        let Ok(state) = self.try_borrow() else {
            return "channel state being changed".to_string();
        };
        let s = statistics(&state);
        let max = if s.max_buffer_size == usize::MAX {
            "unbounded".to_string()
        } else {
            s.max_buffer_size.to_string()
        };
        format!(
            "buffer {}/{max}; waiting: {} to send, {} to receive; open handles: {} send, {} \
             receive",
            s.current_buffer_used,
            s.tasks_waiting_send,
            s.tasks_waiting_receive,
            s.open_send_channels,
            s.open_receive_channels
        )
    }
}

/// Opens a memory channel whose buffer holds `max_buffer` values (0: rendezvous).
///
/// Returns the sending and the receiving handle. See the [module docs](self) for the rules.
pub fn open_memory_channel<T: 'static>(
    max_buffer: usize,
) -> (MemorySendChannel<T>, MemoryReceiveChannel<T>) {
    let state = Rc::new(RefCell::new(State::new(max_buffer)));
    {
        // Task dumps show a blocked send or receive with the channel's statistics.
        let st = state.borrow();
        st.senders.set_label("MemorySendChannel::send");
        st.receivers.set_label("MemoryReceiveChannel::receive");
        st.senders.set_describer(&state);
        st.receivers.set_describer(&state);
    }
    let tx = MemorySendChannel {
        state: state.clone(),
        handle: Rc::new(HandleCore::default()),
    };
    let rx = MemoryReceiveChannel::new(state, Rc::new(HandleCore::default()));
    (tx, rx)
}

/// Opens a memory channel with an unbounded buffer: `send` never waits (Trio's
/// `open_memory_channel(math.inf)`). Prefer a bound when the producer can outrun the
/// consumer: the bound is what pushes back.
pub fn open_unbounded_memory_channel<T: 'static>() -> (MemorySendChannel<T>, MemoryReceiveChannel<T>)
{
    open_memory_channel(usize::MAX)
}
