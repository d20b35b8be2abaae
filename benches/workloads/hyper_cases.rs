//! hyper HTTP/1 in one process, for instruction counts: a hyper server and a hyper client on
//! one keep-alive loopback TCP connection, both in one trio run (or both on one tokio
//! current_thread runtime). One operation is one request: the client sends `GET /`, the
//! server's handler answers `Hello, World!`, the client reads the whole body.
//!
//! The `_timer` cases give the server a timer (`TrioTimer`, hyper-util's `TokioTimer`), which
//! turns on hyper's default 30 s `header_read_timeout`: hyper arms it before each request head
//! is read and drops it once the head is in, so the difference between a `_timer` case and its
//! plain one is the timer's cost per request. The client has no timer in any case.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};

use super::rt::trio_run;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, World!",
    ))))
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("/")
        .header("host", "localhost")
        .body(Empty::new())
        .expect("a request")
}

/// `n` requests, server and client on trio; the server with `TrioTimer` when `timer`.
pub fn trio_hyper1(n: u64, timer: bool) -> Duration {
    use trio::compat::{TrioTimer, cancellable};
    trio_run(async move {
        let listeners = trio::net::open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let port = listeners[0].local_addr()?.port();
        let client = trio::net::open_tcp_stream("127.0.0.1", port).await?;
        let server = trio::stream::ListenerExt::accept(&listeners[0]).await?;
        let mut builder = hyper::server::conn::http1::Builder::new();
        if timer {
            builder.timer(TrioTimer::new()?);
        }
        let elapsed = std::rc::Rc::new(std::cell::Cell::new(Duration::ZERO));
        let measured = elapsed.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                cancellable(builder.serve_connection(server, service_fn(hello)))
                    .await?
                    .expect("the server connection");
                Ok(())
            })?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(client)
                .await
                .expect("handshake");
            nursery.start_soon(async move {
                cancellable(connection)
                    .await?
                    .expect("the client connection");
                Ok(())
            })?;
            let start = Instant::now();
            for _ in 0..n {
                let response = sender.send_request(request()).await.expect("a response");
                let body = response.into_body().collect().await.expect("a body");
                assert_eq!(body.to_bytes().len(), 13);
            }
            measured.set(start.elapsed());
            // Dropping the sender ends the client connection, then the server's.
            drop(sender);
            Ok(())
        })
        .await?;
        Ok(elapsed.get())
    })
}

/// `n` requests, server and client on one tokio current_thread runtime (`spawn_local`); the
/// server with hyper-util's `TokioTimer` when `timer`.
pub fn tokio_hyper1(n: u64, timer: bool) -> Duration {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // trio's sockets have TCP_NODELAY on from the start.
        client.set_nodelay(true).unwrap();
        server.set_nodelay(true).unwrap();
        let mut builder = hyper::server::conn::http1::Builder::new();
        if timer {
            builder.timer(TokioTimer::new());
        }
        let server_task = tokio::task::spawn_local(async move {
            builder
                .serve_connection(TokioIo::new(server), service_fn(hello))
                .await
                .expect("the server connection");
        });
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .expect("handshake");
        let client_task = tokio::task::spawn_local(async move {
            connection.await.expect("the client connection");
        });
        let start = Instant::now();
        for _ in 0..n {
            let response = sender.send_request(request()).await.expect("a response");
            let body = response.into_body().collect().await.expect("a body");
            assert_eq!(body.to_bytes().len(), 13);
        }
        let elapsed = start.elapsed();
        drop(sender);
        client_task.await.unwrap();
        server_task.await.unwrap();
        elapsed
    })
}
