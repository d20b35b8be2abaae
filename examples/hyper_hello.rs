//! An HTTP/1 hello-world server: hyper 1.x on trio (the `hyper` feature of the workspace).
//!
//! ```text
//! cargo run --features hyper --example hyper_hello          # port 0: the system picks one
//! cargo run --features hyper --example hyper_hello -- 8080
//! curl http://127.0.0.1:8080/world                            # hello, /world
//! ```
//!
//! The first line of output is exactly `listening on 127.0.0.1:PORT`. Every connection is a
//! task of the server's nursery (`serve_listeners`), and hyper's connection future runs in it
//! under `trio::compat::cancellable`, so trio's cancellation reaches it. hyper's timeouts run
//! on `TrioTimer` (a client that does not send its request head within 10 s is cut off).
//!
//! Ctrl-C shuts down gracefully: hyper's `graceful_shutdown` runs on every connection, in a
//! shielded scope for up to 5 s (a response being written is finished, an idle keep-alive
//! connection is closed), then the process ends by SIGINT as every `#[trio::main]` program
//! does. A handler that was waiting in a trio operation when Ctrl-C came has seen the
//! cancellation like every other task (its scopes hang under the cancelled one); the grace
//! period is for hyper's own work, not for such a handler to carry on.

use std::convert::Infallible;
use std::io::Write;
use std::pin::pin;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use trio::compat::{TrioTimer, cancellable};
use trio::net::{ServeOptions, SocketStream, open_tcp_listeners, serve_listeners};
use trio::{CancelScope, move_on_after};

/// How long connections get to finish their requests after Ctrl-C.
const GRACE_PERIOD: f64 = 5.0;

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = format!("hello, {}\n", request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Serves one connection until the client is done, or, once cancelled, shuts it down
/// gracefully within the grace period. A connection's error is reported and forgotten: a
/// handler's error would stop the whole server (Trio's rule).
async fn serve_connection(stream: SocketStream, timer: TrioTimer) -> trio::Result<()> {
    let peer = stream.peer_addr().ok().flatten();
    let mut connection = pin!(
        hyper::server::conn::http1::Builder::new()
            .timer(timer)
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(stream, service_fn(hello))
    );
    // Polled through a reference, so a cancellation leaves the connection here to shut down.
    let result = match cancellable(connection.as_mut()).await {
        Ok(result) => result,
        Err(cancelled) => {
            connection.as_mut().graceful_shutdown();
            let grace = CancelScope::new();
            grace.set_shield(true);
            let finished = grace
                .run(move_on_after(
                    GRACE_PERIOD,
                    cancellable(connection.as_mut()),
                ))
                .await?;
            if let Some(Some(Err(e))) = finished {
                eprintln!("hyper_hello: {peer:?}: {e}");
            }
            return Err(cancelled);
        }
    };
    if let Err(e) = result {
        eprintln!("hyper_hello: {peer:?}: {e}");
    }
    Ok(())
}

fn port_argument() -> trio::Result<u16> {
    match std::env::args().nth(1) {
        None => Ok(0),
        Some(arg) => arg.parse().map_err(|_| {
            trio::Error::new(trio::UsageError::new(format!(
                "usage: hyper_hello [PORT]; {arg:?} is not a port number"
            )))
        }),
    }
}

#[trio::main]
async fn main() -> trio::Result<()> {
    let port = port_argument()?;
    let listeners = open_tcp_listeners(port, Some("127.0.0.1")).await?;
    let addr = listeners[0].local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    let timer = TrioTimer::new()?;
    let handler = move |stream| serve_connection(stream, timer.clone());
    serve_listeners(handler, listeners, ServeOptions::new()).await
}
