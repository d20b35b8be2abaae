//! Unix-domain stream sockets: [`open_unix_socket`] and [`open_unix_listener`] (Trio's
//! `open_unix_socket`); the streams and listeners are the same [`SocketStream`] and
//! [`SocketListener`] as for TCP.

use std::path::Path;

use super::{SocketListener, SocketStream};
use crate::Result;
use crate::socket::{Domain, SockAddr, Socket, Type};

/// Connects to the Unix-domain socket at `path` (Trio's `open_unix_socket`). You need read
/// and write permission on it.
///
/// # Checkpoint
/// Yes: a connect.
///
/// # Cancel safety
/// Cancelled, it closes the socket it opened.
pub async fn open_unix_socket(path: impl AsRef<Path>) -> Result<SocketStream> {
    let addr = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.connect(&addr).await?;
    SocketStream::new(socket)
}

/// Listens on a new Unix-domain socket at `path`, which must not exist yet (remove a stale
/// one first), with the largest backlog the system allows. Not a checkpoint.
pub fn open_unix_listener(path: impl AsRef<Path>) -> Result<SocketListener> {
    let addr = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&addr)?;
    socket.listen(0xFFFF)?;
    SocketListener::new(socket)
}
