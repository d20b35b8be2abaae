//! Trio's `trio.testing.open_stream_to_socket_listener`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use trio::Result;
use trio::net::{SocketListener, SocketStream};
use trio::socket::{SockAddr, Socket, Type};

/// Connects a [`SocketStream`] to `listener` (Trio's `open_stream_to_socket_listener`): to the
/// address it listens on, with a wildcard address (`0.0.0.0`, `::`) replaced by the loopback
/// address of its family. For the tests of servers that let the system pick their port:
///
/// ```
/// use trio::net::open_tcp_listeners;
/// use trio::stream::prelude::*;
/// use trio_test::open_stream_to_socket_listener;
///
/// # fn main() -> trio::Result<()> {
/// trio::run(async {
///     let listeners = open_tcp_listeners(0, None).await?; // port 0 on every interface
///     let client = open_stream_to_socket_listener(&listeners[0]).await?;
///     let server = listeners[0].accept().await?;
///     client.send_all(b"ping").await?;
///     assert_eq!(server.receive_some(16).await?, b"ping");
///     Ok(())
/// })
/// # }
/// ```
///
/// The socket comes from [`Socket::new`], so on a [`FakeNet`](crate::FakeNet) it is a fake one,
/// like the listener. A Unix listener gets a connection to its path.
///
/// Errors: what the listener's `local_addr` and the `connect` fail with.
///
/// # Checkpoint
/// Yes: it connects.
///
/// # Cancel safety
/// Cancelled, it closes the socket it was connecting.
pub async fn open_stream_to_socket_listener(listener: &SocketListener) -> Result<SocketStream> {
    let socket = listener.socket();
    let local = socket.local_addr()?;
    let target = match local.as_socket() {
        Some(addr) => SockAddr::from(loopback_if_wildcard(addr)),
        None => local,
    };
    let client = Socket::new(socket.domain()?, Type::STREAM, None)?;
    client.connect(&target).await?;
    SocketStream::new(client)
}

/// `addr` with a wildcard IP replaced by its family's loopback address.
fn loopback_if_wildcard(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
