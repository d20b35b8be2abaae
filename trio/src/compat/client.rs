//! hyper's client connections scoped to a body (feature `hyper`): [`http2_client`] and
//! [`http1_client`].
//!
//! hyper's client handshake gives a `SendRequest` and a `Connection` future that must be
//! polled for the requests to make progress; with HTTP/2 it is even spawned on the executor
//! and lives until the last `SendRequest` is dropped. Left to itself that is a background task
//! nobody waits for. Here the connection runs in a nursery of its own beside the caller's
//! body, the way Trio scopes every task: the body gets the `SendRequest`, and when it returns
//! the connection (and every task hyper started for it) is cancelled and waited for, so
//! nothing of it outlives the call.

use std::cell::Cell;
use std::error::Error as StdError;
use std::future::Future;
use std::rc::Rc;

use hyper::body::Body;
use hyper::client::conn::{http1, http2};
use hyper::rt::bounds::Http2ClientConnExec;
use hyper::rt::{Read, Write};

use super::{NurseryExecutor, cancellable};
use crate::{Error, Nursery, Result, open_nursery};

/// Runs an HTTP/2 client connection over `io` for as long as `body` runs: `body` gets the
/// connection's `SendRequest` (clone it for concurrent requests), and when it returns, the
/// connection is closed and its tasks are cancelled before `http2_client` returns `body`'s
/// result.
///
/// `configure` sets up hyper's builder (timer, window sizes, keep-alive, ...); its executor is
/// a [`NurseryExecutor`] on the connection's nursery, so the connection task and the tasks
/// hyper spawns for it (request body pipes) are children of that nursery.
///
/// ```no_run
/// # async fn example(stream: trio::net::SocketStream) -> trio::Result<()> {
/// use trio::compat::{TrioTimer, cancellable, http2_client};
///
/// let timer = TrioTimer::new()?;
/// let statuses = http2_client(
///     stream,
///     |builder| {
///         builder.timer(timer);
///     },
///     |sender| async move {
///         // Two requests at once on the one connection.
///         let get = |path: &str| {
///             let mut sender = sender.clone();
///             let request = hyper::Request::get(format!("http://localhost{path}"))
///                 .body(String::new());
///             async move {
///                 let response = cancellable(sender.send_request(request?)).await?;
///                 Ok(response.map_err(trio::Error::new)?.status())
///             }
///         };
///         trio::join((get("/a"), get("/b"))).await
///     },
/// )
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As a nursery's: `body`'s error, the handshake's or the connection's (a `hyper::Error`)
/// cancels the rest, and all of them come out together in an
/// [`ErrorGroup`](crate::ErrorGroup). hyper's HTTP/2 connection reports a broken connection
/// (a protocol error, the peer gone) to the requests on it rather than through its own
/// future, so with HTTP/2 it comes out as the error of the request `body` was waiting for.
/// The connection ending on its own is not an error (it ends when every `SendRequest` is
/// dropped); requests made after that fail with hyper's error.
///
/// # Checkpoint
/// Yes: a cancel point on entry (in a cancelled scope the handshake does not start), and the
/// schedule point of leaving its nursery.
///
/// # Cancel safety
/// Cancelled, the connection is dropped at once (not shut down gracefully), which fails the
/// requests still in flight with hyper's error; `body` itself sees the cancellation at its
/// next trio checkpoint. hyper's futures (`send_request`, a response body) do not look at
/// cancel scopes: await them under [`cancellable`] to get `Cancelled` at once instead.
pub async fn http2_client<I, B, T, C, F, Fut>(io: I, configure: C, body: F) -> Result<T>
where
    I: Read + Write + Unpin + 'static,
    B: Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    NurseryExecutor: Http2ClientConnExec<B, I>,
    C: FnOnce(&mut http2::Builder<NurseryExecutor>),
    F: FnOnce(http2::SendRequest<B>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    scoped(|nursery: Nursery| async move {
        let mut builder = http2::Builder::new(NurseryExecutor::new(nursery.clone()));
        configure(&mut builder);
        let (sender, connection) = cancellable(builder.handshake::<I, B>(io))
            .await?
            .map_err(Error::new)?;
        nursery.start_soon_named("http2_client connection", async move {
            cancellable(connection).await?.map_err(Error::new)
        })?;
        body(sender).await
    })
    .await
}

/// Runs an HTTP/1 client connection over `io` for as long as `body` runs: `body` gets the
/// connection's `SendRequest`, and when it returns the connection is closed before
/// `http1_client` returns `body`'s result. `configure` sets up hyper's builder.
///
/// HTTP/1 sends one request at a time (`SendRequest::ready` waits until the connection can
/// take the next one). The connection is driven without hyper's upgrade support; for an
/// HTTP upgrade (`hyper::upgrade::on`), use hyper's `handshake` and
/// `Connection::with_upgrades` directly, which need an `io` that is `Send`
/// ([`SocketStream`](crate::net::SocketStream) is).
///
/// ```no_run
/// # async fn example(stream: trio::net::SocketStream) -> trio::Result<()> {
/// use trio::compat::{cancellable, http1_client};
///
/// let status = http1_client(stream, |_| {}, |mut sender| async move {
///     let request = hyper::Request::get("/").header("host", "localhost").body(String::new())?;
///     let response = cancellable(sender.send_request(request)).await?;
///     Ok(response.map_err(trio::Error::new)?.status())
/// })
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`http2_client`]'s; an HTTP/1 connection also fails with its own error (a response
/// hyper cannot parse, the peer gone mid-response).
///
/// # Checkpoint
/// As [`http2_client`]: a cancel point on entry, a schedule point on return.
///
/// # Cancel safety
/// As [`http2_client`]'s.
pub async fn http1_client<I, B, T, C, F, Fut>(io: I, configure: C, body: F) -> Result<T>
where
    I: Read + Write + Unpin + 'static,
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    C: FnOnce(&mut http1::Builder),
    F: FnOnce(http1::SendRequest<B>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    scoped(|nursery: Nursery| async move {
        let mut builder = http1::Builder::new();
        configure(&mut builder);
        let (sender, connection) = cancellable(builder.handshake::<I, B>(io))
            .await?
            .map_err(Error::new)?;
        nursery.start_soon_named("http1_client connection", async move {
            cancellable(connection).await?.map_err(Error::new)
        })?;
        body(sender).await
    })
    .await
}

/// Runs `body` in a fresh nursery and cancels the nursery (the connection task `body` started
/// in it) once `body` has returned its value; the value comes out when the nursery is done.
async fn scoped<T, F, Fut>(body: F) -> Result<T>
where
    F: FnOnce(Nursery) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let output = Rc::new(Cell::new(None));
    let slot = output.clone();
    open_nursery(|nursery| async move {
        let value = body(nursery.clone()).await?;
        slot.set(Some(value));
        nursery.cancel_scope().cancel();
        Ok(())
    })
    .await?;
    // The nursery only returns Ok after its body did, which left the value.
    output.take().ok_or_else(|| {
        Error::new(crate::TrioInternalError {
            message: "a scoped hyper client's nursery ended without its body's value".into(),
        })
    })
}
