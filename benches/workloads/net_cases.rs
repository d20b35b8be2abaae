//! Socket micro-benchmarks: one `poll_receive` that finds data, and one Pending → ready cycle
//! (a receive that finds nothing, a one-byte write from the peer, the reactor's wake-up, the
//! receive that gets it), for trio's `SocketStream::poll_receive` and tokio's
//! `TcpStream::poll_read`, over loopback TCP.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use trio::stream::{ReceiveBuf, ReceiveStream};

use super::rt::trio_run;

/// Bytes written at a time for the hit cases; reads of one byte each use them up.
const CHUNK: usize = 65536;

async fn trio_pair() -> trio::Result<(trio::net::SocketStream, trio::net::SocketStream)> {
    let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
    let port = listeners[0].local_addr()?.port();
    let client = trio::net::open_tcp_stream("127.0.0.1", port).await?;
    let server = trio::stream::ListenerExt::accept(&listeners[0]).await?;
    Ok((client, server))
}

/// Writes all of `data` with plain non-blocking sends (the peer's buffers hold a chunk).
fn write_all_sync(sys: &socket2::Socket, mut data: &[u8]) {
    while !data.is_empty() {
        match sys.send(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("send: {e}"),
        }
    }
}

pub fn trio_poll_receive_hit(n: u64) -> Duration {
    trio_run(async move {
        let (client, server) = trio_pair().await?;
        let peer = client.socket().socket2()?;
        let chunk = vec![7u8; CHUNK];
        let mut left = 0;
        let mut byte = [0u8; 1];
        let start = Instant::now();
        for _ in 0..n {
            if left == 0 {
                write_all_sync(&peer, &chunk);
                left = CHUNK;
            }
            poll_fn(|cx| {
                let mut buf = ReceiveBuf::new(&mut byte);
                server.poll_receive(cx, &mut buf)
            })
            .await?;
            left -= 1;
        }
        Ok(start.elapsed())
    })
}

pub fn trio_poll_receive_cycle(n: u64) -> Duration {
    trio_run(async move {
        let (client, server) = trio_pair().await?;
        let peer = client.socket().socket2()?;
        let mut byte = [0u8; 1];
        let start = Instant::now();
        for _ in 0..n {
            let mut sent = false;
            poll_fn(|cx| {
                let mut buf = ReceiveBuf::new(&mut byte);
                match server.poll_receive(cx, &mut buf) {
                    Poll::Pending if !sent => {
                        sent = true;
                        write_all_sync(&peer, b"x");
                        Poll::Pending
                    }
                    other => other,
                }
            })
            .await?;
        }
        Ok(start.elapsed())
    })
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn tokio_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

fn tokio_write_all_sync(peer: &tokio::net::TcpStream, mut data: &[u8]) {
    while !data.is_empty() {
        match peer.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("send: {e}"),
        }
    }
}

pub fn tokio_poll_read_hit(n: u64) -> Duration {
    tokio_rt().block_on(async move {
        let (client, mut server) = tokio_pair().await;
        let chunk = vec![7u8; CHUNK];
        let mut left = 0;
        let mut byte = [0u8; 1];
        let start = Instant::now();
        for _ in 0..n {
            if left == 0 {
                tokio_write_all_sync(&client, &chunk);
                left = CHUNK;
            }
            poll_fn(|cx| {
                let mut buf = tokio::io::ReadBuf::new(&mut byte);
                tokio::io::AsyncRead::poll_read(Pin::new(&mut server), cx, &mut buf)
            })
            .await
            .unwrap();
            left -= 1;
        }
        start.elapsed()
    })
}

pub fn tokio_poll_read_cycle(n: u64) -> Duration {
    tokio_rt().block_on(async move {
        let (client, mut server) = tokio_pair().await;
        let mut byte = [0u8; 1];
        let start = Instant::now();
        for _ in 0..n {
            let mut sent = false;
            poll_fn(|cx| {
                let mut buf = tokio::io::ReadBuf::new(&mut byte);
                match tokio::io::AsyncRead::poll_read(Pin::new(&mut server), cx, &mut buf) {
                    Poll::Pending if !sent => {
                        sent = true;
                        tokio_write_all_sync(&client, b"x");
                        Poll::Pending
                    }
                    other => other,
                }
            })
            .await
            .unwrap();
        }
        start.elapsed()
    })
}
