//! WebSocket on trio (root feature `websocket`): async-tungstenite, which needs only
//! futures-io's `AsyncRead`/`AsyncWrite`, over trio's `SocketStream` (which implements them),
//! client and server both on trio over loopback TCP; once with async-tungstenite's own
//! handshake, once after an HTTP/1 upgrade through hyper (`hyper::upgrade::on`), the way a
//! hyper server accepts WebSockets.

use std::convert::Infallible;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode, header};
use trio::compat::cancellable;
use trio::net::SocketStream;
use trio::{Error, Nursery, Result};

#[path = "common/virtual_loopback.rs"]
mod virtual_loopback;

use virtual_loopback::{run, tcp_pair};

/// What the client sends: text and binary messages of several sizes (the largest spans many
/// reads and writes of the socket).
fn messages() -> Vec<Message> {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    vec![
        Message::text("hello"),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::text("é ü — unicode survives"),
        Message::binary(big),
        Message::text(""),
        Message::text("last"),
    ]
}

/// Echoes every text and binary message until the client's close, which tungstenite answers;
/// returns the close frame the client sent.
async fn echo(mut ws: WebSocketStream<SocketStream>) -> Result<Option<CloseFrame>> {
    let mut close = None;
    while let Some(message) = cancellable(ws.next()).await? {
        match message.map_err(Error::new)? {
            message @ (Message::Text(_) | Message::Binary(_)) => {
                cancellable(ws.send(message)).await?.map_err(Error::new)?;
            }
            // The reply goes out with the next read, which then ends the stream.
            Message::Close(frame) => close = Some(frame),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    Ok(close.flatten())
}

/// Sends every message of [`messages`], checks each echo, then closes the connection with a
/// close handshake (code 1000, "bye") and reads until the server's answer ends the stream.
async fn talk(mut ws: WebSocketStream<SocketStream>) -> Result<()> {
    for message in messages() {
        cancellable(ws.send(message.clone()))
            .await?
            .map_err(Error::new)?;
        let echoed = cancellable(ws.next())
            .await?
            .expect("an echo, not the end")
            .map_err(Error::new)?;
        assert_eq!(echoed, message);
    }
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    cancellable(ws.close(Some(frame.clone())))
        .await?
        .map_err(Error::new)?;
    // The server's close frame comes back (tungstenite echoes the code), then the end.
    match cancellable(ws.next()).await? {
        Some(Ok(Message::Close(Some(answer)))) => assert_eq!(answer.code, CloseCode::Normal),
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    match cancellable(ws.next()).await? {
        None | Some(Err(WsError::ConnectionClosed)) => {}
        other => panic!("expected the end of the stream, got {other:?}"),
    }
    Ok(())
}

#[test]
fn websocket_echo_over_trio_sockets() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let ws = cancellable(async_tungstenite::accept_async(server))
                    .await?
                    .map_err(Error::new)?;
                let close = echo(ws).await?.expect("the client's close frame");
                assert_eq!(close.code, CloseCode::Normal);
                assert_eq!(close.reason.as_str(), "bye");
                Ok(())
            })?;
            let (ws, response) = cancellable(async_tungstenite::client_async(
                "ws://localhost/echo",
                client,
            ))
            .await?
            .map_err(Error::new)?;
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            talk(ws).await
        })
        .await
    });
}

/// The socket under an upgraded connection, as a WebSocket that first reads whatever hyper
/// had already read past the HTTP head.
async fn websocket_from(upgraded: Upgraded, role: Role) -> Result<WebSocketStream<SocketStream>> {
    let parts = upgraded.downcast::<SocketStream>().map_err(|_| {
        Error::new(std::io::Error::other(
            "not the SocketStream hyper was given",
        ))
    })?;
    Ok(WebSocketStream::from_partially_read(parts.io, parts.read_buf.to_vec(), role, None).await)
}

/// The server's handler: answers a WebSocket upgrade with 101 and echoes on the upgraded
/// connection in a task of `nursery`.
async fn upgrade_handler(
    nursery: Nursery,
    mut request: Request<Incoming>,
) -> std::result::Result<Response<Empty<Bytes>>, Infallible> {
    let key = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let is_websocket = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let (true, Some(key)) = (is_websocket, key) else {
        let mut response = Response::new(Empty::new());
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return Ok(response);
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let started = nursery.start_soon(async move {
        // Ready once the 101 response is written and the connection hands the socket over.
        let upgraded = cancellable(on_upgrade).await?.map_err(Error::new)?;
        let close = echo(websocket_from(upgraded, Role::Server).await?).await?;
        assert_eq!(
            close.expect("the client's close frame").reason.as_str(),
            "bye"
        );
        Ok(())
    });
    let mut response = Response::new(Empty::new());
    if started.is_err() {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(response);
    }
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    let accept = derive_accept_key(key.as_bytes());
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        header::HeaderValue::from_str(&accept).expect("base64 is a header value"),
    );
    Ok(response)
}

#[test]
fn websocket_echo_after_a_hyper_http1_upgrade() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            let sockets = nursery.clone();
            nursery.start_soon(async move {
                let service = service_fn(move |request| upgrade_handler(sockets.clone(), request));
                // `with_upgrades` needs a `Send` connection: `SocketStream` is one.
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(server, service)
                    .with_upgrades();
                cancellable(connection).await?.map_err(Error::new)?;
                Ok(())
            })?;
            let (mut sender, connection) =
                cancellable(hyper::client::conn::http1::handshake(client))
                    .await?
                    .map_err(Error::new)?;
            nursery.start_soon(async move {
                cancellable(connection.with_upgrades())
                    .await?
                    .map_err(Error::new)?;
                Ok(())
            })?;
            let key = async_tungstenite::tungstenite::handshake::client::generate_key();
            let request = Request::get("/echo")
                .header(header::HOST, "localhost")
                .header(header::UPGRADE, "websocket")
                .header(header::CONNECTION, "Upgrade")
                .header(header::SEC_WEBSOCKET_VERSION, "13")
                .header(header::SEC_WEBSOCKET_KEY, &key)
                .body(Empty::<Bytes>::new())?;
            let response = cancellable(sender.send_request(request))
                .await?
                .map_err(Error::new)?;
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            let accept = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
            assert_eq!(
                accept.map(|v| v.as_bytes()),
                Some(derive_accept_key(key.as_bytes()).as_bytes())
            );
            let upgraded = cancellable(hyper::upgrade::on(response))
                .await?
                .map_err(Error::new)?;
            talk(websocket_from(upgraded, Role::Client).await?).await?;
            Ok(())
        })
        .await
    });
}
