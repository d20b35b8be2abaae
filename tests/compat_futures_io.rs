//! futures-io's `AsyncRead`/`AsyncWrite` on trio streams (feature `futures-io`), driven by
//! futures-util's io helpers: over real loopback TCP (`SocketStream` itself) and over
//! trio-test's memory streams (through `trio::compat::Io`).

use std::cell::RefCell;
use std::io::{ErrorKind, IoSlice};
use std::rc::Rc;

use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use trio::ClosedResourceError;
use trio::compat::{Io, cancellable};
use trio::stream::prelude::*;
use trio_test::{memory_stream_one_way_pair, memory_stream_pair};

#[path = "common/virtual_loopback.rs"]
mod virtual_loopback;

use virtual_loopback::{run, tcp_pair};

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn tcp_write_all_then_close_reads_to_end_and_can_still_reply() {
    run(async {
        let (mut client, mut server) = tcp_pair().await?;
        let data = payload(3 << 20);
        let received = Rc::new(RefCell::new(Vec::new()));
        let (sent, got) = (data.clone(), received.clone());
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                client.write_all(&sent).await?;
                // `close` sends EOF: the socket can still read the reply.
                client.close().await?;
                let mut reply = String::new();
                client.read_to_string(&mut reply).await?;
                assert_eq!(reply, "got it");
                Ok(())
            })?;
            let mut all = Vec::new();
            server.read_to_end(&mut all).await?;
            *got.borrow_mut() = all;
            server.write_all(b"got it").await?;
            server.close().await?;
            Ok(())
        })
        .await?;
        assert!(*received.borrow() == data, "the data arrived intact");
        Ok(())
    });
}

#[test]
fn tcp_vectored_write_sends_every_slice_at_once() {
    run(async {
        let (mut client, server) = tcp_pair().await?;
        let bufs = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cd")];
        // A fresh socket has room for four bytes: `writev` takes all of them.
        assert_eq!(client.write_vectored(&bufs).await?, 4);
        client.close().await?;
        let mut io = Io::new(&server);
        let mut text = String::new();
        io.read_to_string(&mut text).await?;
        assert_eq!(text, "abcd");
        Ok(())
    });
}

#[test]
fn a_reader_and_a_writer_task_share_one_socket_through_rc() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let client = Rc::new(client);
        let data = payload(1 << 20);
        let (sent, expected) = (data.clone(), data.len());
        trio::open_nursery(|nursery| async move {
            // The server echoes everything back, then closes its side.
            nursery.start_soon(async move {
                let mut server = Io::new(server);
                let (mut reader, mut writer) =
                    (Io::new(server.get_ref()), Io::new(server.get_ref()));
                futures_util::io::copy(&mut reader, &mut writer).await?;
                server.close().await?;
                Ok(())
            })?;
            let writer = client.clone();
            nursery.start_soon(async move {
                let mut io = Io::new(writer);
                io.write_all(&sent).await?;
                io.close().await?;
                Ok(())
            })?;
            let mut echoed = Vec::new();
            Io::new(client).read_to_end(&mut echoed).await?;
            assert_eq!(echoed.len(), expected);
            assert!(echoed == data, "the echo is the data");
            Ok(())
        })
        .await
    });
}

#[test]
fn copy_between_memory_streams() {
    run(async {
        let (left, right) = memory_stream_pair();
        let (a, b) = memory_stream_pair();
        let data = payload(100_000);
        let sent = data.clone();
        let received = Rc::new(RefCell::new(Vec::new()));
        let got = received.clone();
        trio::open_nursery(|nursery| async move {
            // left -> right, copied by futures-util into a -> b.
            nursery.start_soon(async move {
                let mut writer = Io::new(left);
                writer.write_all(&sent).await?;
                writer.close().await?;
                Ok(())
            })?;
            nursery.start_soon(async move {
                let mut from = Io::new(right);
                let mut to = Io::new(a);
                let copied = futures_util::io::copy(&mut from, &mut to).await?;
                assert_eq!(copied, 100_000);
                to.close().await?;
                Ok(())
            })?;
            let mut all = Vec::new();
            Io::new(b).read_to_end(&mut all).await?;
            *got.borrow_mut() = all;
            Ok(())
        })
        .await?;
        assert!(*received.borrow() == data);
        Ok(())
    });
}

#[test]
fn close_closes_a_stream_that_cannot_half_close() {
    run(async {
        let (send, receive) = memory_stream_one_way_pair();
        let mut writer = Io::new(send);
        writer.write_all(b"last words").await?;
        writer.close().await?;
        // Not half-closeable: closed for good, so writing again is an error...
        let err = writer.write_all(b"more").await.expect_err("closed");
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        assert!(err.get_ref().is_some_and(|e| e.is::<ClosedResourceError>()));
        // ...which `?` turns back into trio's error.
        let back: trio::Error = err.into();
        assert!(back.is::<ClosedResourceError>());
        // The reader sees the data, then EOF.
        let mut text = String::new();
        Io::new(receive).read_to_string(&mut text).await?;
        assert_eq!(text, "last words");
        Ok(())
    });
}

#[test]
fn reading_from_a_closed_stream_is_a_not_connected_error() {
    run(async {
        let (left, _right) = memory_stream_pair();
        left.aclose().await?;
        let mut buf = [0u8; 8];
        let err = Io::new(&left).read(&mut buf).await.expect_err("closed");
        assert_eq!(err.kind(), ErrorKind::NotConnected);
        // An empty buffer reads nothing, without asking the stream.
        assert_eq!(Io::new(&left).read(&mut []).await?, 0);
        Ok(())
    });
}

#[test]
fn a_read_loop_obeys_a_deadline_under_cancellable() {
    run(async {
        let (left, _right) = memory_stream_pair();
        let start = trio::current_time()?;
        let mut io = Io::new(left);
        let mut sink = Vec::new();
        // Nothing ever arrives: only the deadline ends the read.
        let outcome = trio::move_on_after(2.5, cancellable(io.read_to_end(&mut sink))).await?;
        assert!(outcome.is_none());
        assert_eq!(trio::current_time()? - start, 2.5);
        Ok(())
    });
}
