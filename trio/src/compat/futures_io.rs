//! futures-io's `AsyncRead` and `AsyncWrite` for [`Io`] and [`SocketStream`] (feature
//! `futures-io`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::{Io, poll_close_write, poll_read_slice};
use crate::net::SocketStream;
use crate::stream::{ReceiveStream, SendStream};

/// Reads with the stream's `poll_receive`, straight into the caller's buffer.
impl<S: ReceiveStream> AsyncRead for Io<S> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_read_slice(&self.stream, cx, buf)
    }
}

/// Writes with the stream's `poll_send` / `poll_send_vectored` / `poll_flush`; `poll_close`
/// sends EOF on a half-closeable stream and closes any other.
impl<S: SendStream> AsyncWrite for Io<S> {
    forward_writes!(this => &this.stream);

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close_write(&self.stream, cx)
    }
}

/// Reads as [`Io`] does: `recv` into the caller's buffer.
impl AsyncRead for SocketStream {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_read_slice(&*self, cx, buf)
    }
}

/// Writes as [`Io`] does; `poll_close` is `shutdown(SHUT_WR)` (the socket stays open for
/// reading until it is dropped or closed).
impl AsyncWrite for SocketStream {
    forward_writes!(this => &*this);

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_close_write(&*self, cx)
    }
}
