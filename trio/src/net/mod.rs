//! High-level networking: Trio's `SocketStream`, `SocketListener`, `open_tcp_stream`,
//! `open_tcp_listeners`, `serve_tcp`, `serve_listeners` and `open_unix_socket` (layer 4 of
//! docs/architecture.md, on [`trio::socket`](crate::socket) and the
//! [`trio::stream`](crate::stream) traits).
//!
//! A client:
//!
//! ```no_run
//! use trio::stream::prelude::*;
//!
//! # fn main() -> trio::Result<()> {
//! trio::run(async {
//!     let stream = trio::net::open_tcp_stream("example.com", 80).await?;
//!     stream.send_all(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n").await?;
//!     loop {
//!         let data = stream.receive_some(65536).await?;
//!         if data.is_empty() {
//!             break; // the server closed the connection
//!         }
//!         print!("{}", String::from_utf8_lossy(&data));
//!     }
//!     Ok(())
//! })
//! # }
//! ```
//!
//! A server: [`serve_tcp`] runs a handler per connection (see its example, and
//! `examples/echo_server.rs`).
//!
//! Every stream here is a [`SocketStream`]; everything written for the stream traits
//! (protocols, TLS, tests on memory streams) works on it unchanged.

mod listener;
mod serve;
mod stream;
mod tcp;
mod unix;

pub use listener::SocketListener;
pub use serve::{ACCEPT_RETRY_DELAY, ServeOptions, serve_listeners, serve_tcp};
pub use stream::{DEFAULT_RECEIVE_SIZE, SocketStream};
pub use tcp::{
    ConnectError, ConnectOptions, DEFAULT_HAPPY_EYEBALLS_DELAY, open_tcp_listeners,
    open_tcp_listeners_with, open_tcp_stream, open_tcp_stream_with,
};
pub use unix::{open_unix_listener, open_unix_socket};
