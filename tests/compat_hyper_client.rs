//! `trio::compat::{http2_client, http1_client}` (feature `hyper`): a hyper client connection
//! scoped to a body, against hyper's server on trio over loopback TCP. The body's value comes
//! out, its error and the connection's both come out, and when the body returns (or its
//! scope is cancelled) the connection is gone.

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use trio::compat::{NurseryExecutor, TrioTimer, cancellable, http1_client, http2_client};
use trio::net::SocketStream;
use trio::stream::prelude::*;
use trio::{CancelScope, Error, Result, UsageError};

#[path = "common/virtual_loopback.rs"]
mod virtual_loopback;

use virtual_loopback::{run, tcp_pair};

async fn hello(
    request: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let text = format!("hello {}", request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Serves HTTP/2 on `stream` until the client goes away (the connection's streams in a
/// nursery of their own); returns how the connection ended.
async fn serve_http2(stream: SocketStream) -> Result<std::result::Result<(), hyper::Error>> {
    let ended = Rc::new(Cell::new(None));
    let slot = ended.clone();
    trio::open_nursery(|streams| async move {
        let connection = hyper::server::conn::http2::Builder::new(NurseryExecutor::new(streams))
            .timer(TrioTimer::new()?)
            .serve_connection(stream, service_fn(hello));
        slot.set(Some(cancellable(connection).await?));
        Ok(())
    })
    .await?;
    Ok(ended.take().expect("the connection ended"))
}

async fn get_text<B>(
    sender: &mut hyper::client::conn::http2::SendRequest<B>,
    path: &str,
) -> Result<String>
where
    B: hyper::body::Body + Default + Send + 'static,
{
    let request = Request::get(format!("http://localhost{path}")).body(B::default())?;
    let response = cancellable(sender.send_request(request))
        .await?
        .map_err(Error::new)?;
    let body = cancellable(response.into_body().collect())
        .await?
        .map_err(Error::new)?;
    Ok(String::from_utf8(body.to_bytes().to_vec()).expect("utf-8"))
}

/// A hyper error inside `error` (itself, or in its groups).
fn hyper_error(error: &Error) -> Option<&hyper::Error> {
    error
        .leaves()
        .into_iter()
        .find_map(|e| e.downcast_ref::<hyper::Error>())
}

#[test]
fn http2_client_returns_the_body_s_value_and_closes_the_connection() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let server_ended = Rc::new(Cell::new(false));
        let flag = server_ended.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                // The client's connection closes when its body returns: the server's ends
                // cleanly, without the client dropping anything by hand.
                serve_http2(server).await?.expect("a clean end");
                flag.set(true);
                Ok(())
            })?;
            let timer = TrioTimer::new()?;
            let texts = http2_client(
                client,
                |builder| {
                    builder.timer(timer);
                },
                |sender| async move {
                    // Three requests at once on the one connection.
                    let (mut a, mut b, mut c) = (sender.clone(), sender.clone(), sender);
                    trio::join((
                        async move { get_text::<Empty<Bytes>>(&mut a, "/a").await },
                        async move { get_text(&mut b, "/b").await },
                        async move { get_text(&mut c, "/c").await },
                    ))
                    .await
                },
            )
            .await?;
            assert_eq!(
                texts,
                ("hello /a".into(), "hello /b".into(), "hello /c".into())
            );
            // No task of the client is left: only the server's connection, ending.
            Ok(())
        })
        .await?;
        assert!(server_ended.get());
        Ok(())
    });
}

#[test]
fn http2_client_body_error_comes_out_and_tears_the_connection_down() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                serve_http2(server).await?.expect("a clean end");
                Ok(())
            })?;
            let err = http2_client(
                client,
                |_| {},
                |mut sender| async move {
                    assert_eq!(
                        get_text::<Empty<Bytes>>(&mut sender, "/x").await?,
                        "hello /x"
                    );
                    // The sender is still alive: only the scope ends the connection.
                    Err::<(), _>(Error::new(UsageError::new("the body gave up")))
                },
            )
            .await
            .expect_err("the body's error");
            let group = err.as_group().expect("a nursery's group");
            assert_eq!(group.errors().len(), 1, "{err:?}");
            let usage = group.errors()[0]
                .downcast_ref::<UsageError>()
                .expect("the body's error");
            assert!(usage.to_string().contains("the body gave up"));
            Ok(())
        })
        .await
    });
}

#[test]
fn http2_client_connection_error_comes_out_through_the_request() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let sibling_cancelled = Rc::new(Cell::new(false));
        let flag = sibling_cancelled.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                // Not HTTP/2: garbage where the server's SETTINGS belong, then the socket
                // closes.
                server
                    .send_all(b"this is not an HTTP/2 server\r\n\r\n")
                    .await?;
                drop(server);
                Ok(())
            })?;
            let err = http2_client(
                client,
                |_| {},
                |mut sender| async move {
                    // hyper's HTTP/2 connection task reports a broken connection to the requests
                    // on it (its `Connection` future just ends): the request's error fails the
                    // body, which cancels the rest of it.
                    trio::open_nursery(|inner| async move {
                        inner.start_soon(async move {
                            let outcome = trio::sleep_forever().await;
                            flag.set(outcome.as_ref().is_err_and(Error::is_cancelled));
                            outcome
                        })?;
                        get_text::<Empty<Bytes>>(&mut sender, "/").await?;
                        Ok(())
                    })
                    .await
                },
            )
            .await
            .expect_err("the connection's error");
            assert!(hyper_error(&err).is_some(), "a hyper error: {err:?}");
            Ok(())
        })
        .await?;
        assert!(sibling_cancelled.get());
        Ok(())
    });
}

#[test]
fn cancelling_the_scope_around_http2_client_drops_the_connection() {
    run(async {
        let (client, server) = tcp_pair().await?;
        let scope = CancelScope::new();
        let canceller = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                // The client's connection is dropped without a GOAWAY: the server sees the
                // socket close, and the connection ends (with an error or without one).
                let _ = serve_http2(server).await?;
                Ok(())
            })?;
            let outcome = scope
                .run(http2_client(
                    client,
                    |_| {},
                    move |mut sender| async move {
                        assert_eq!(
                            get_text::<Empty<Bytes>>(&mut sender, "/one").await?,
                            "hello /one"
                        );
                        canceller.cancel();
                        // A hyper future not under `cancellable`: it does not see the scope, but
                        // the connection it waits on is dropped, so it fails.
                        let request =
                            Request::get("http://localhost/two").body(Empty::<Bytes>::new())?;
                        let err = sender
                            .send_request(request)
                            .await
                            .expect_err("no connection");
                        assert!(err.is_canceled() || err.is_closed(), "{err:?}");
                        trio::lowlevel::checkpoint().await?;
                        unreachable!("the checkpoint raises Cancelled");
                        #[allow(unreachable_code)]
                        Ok(())
                    },
                ))
                .await?;
            assert!(outcome.is_none(), "the scope absorbed the cancellation");
            Ok(())
        })
        .await
    });
}

#[test]
fn http1_client_sends_requests_in_turn_and_closes_the_connection() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TrioTimer::new()?)
                    .serve_connection(server, service_fn(hello));
                // Ends when the client's connection closes the socket.
                cancellable(connection).await?.expect("a clean end");
                Ok(())
            })?;
            let texts = http1_client(
                client,
                |builder| {
                    builder.title_case_headers(true);
                },
                |mut sender| async move {
                    let mut texts = Vec::new();
                    for path in ["/1", "/2"] {
                        cancellable(sender.ready()).await?.map_err(Error::new)?;
                        let request = Request::get(path)
                            .header("host", "localhost")
                            .body(Empty::<Bytes>::new())?;
                        let response = cancellable(sender.send_request(request))
                            .await?
                            .map_err(Error::new)?;
                        let body = cancellable(response.into_body().collect())
                            .await?
                            .map_err(Error::new)?;
                        texts.push(String::from_utf8(body.to_bytes().to_vec()).expect("utf-8"));
                    }
                    Ok(texts)
                },
            )
            .await?;
            assert_eq!(texts, ["hello /1", "hello /2"]);
            Ok(())
        })
        .await
    });
}

#[test]
fn http1_client_connection_error_comes_out() {
    run(async {
        let (client, server) = tcp_pair().await?;
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                // Reads the request, then answers with something that is not HTTP.
                let _ = server.receive_some(4096).await?;
                server.send_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await?;
                Ok(())
            })?;
            let err = http1_client(
                client,
                |_| {},
                |mut sender| async move {
                    let request = Request::get("/")
                        .header("host", "localhost")
                        .body(Empty::<Bytes>::new())?;
                    // The request fails with the parse error, and so does the connection.
                    cancellable(sender.send_request(request))
                        .await?
                        .map_err(Error::new)?;
                    Ok(())
                },
            )
            .await
            .expect_err("a parse error");
            let hyper_err = hyper_error(&err).expect("a hyper error");
            assert!(hyper_err.is_parse(), "{hyper_err:?}");
            Ok(())
        })
        .await
    });
}
