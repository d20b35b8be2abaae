//! A TCP echo server: every connection gets back what it sends, until it closes.
//!
//! ```text
//! cargo run --example echo_server          # port 0: the system picks one
//! cargo run --example echo_server -- 4000
//! ```
//!
//! The first line of output is exactly `listening on 127.0.0.1:PORT`. Talk to it with
//! `cargo run --example echo_client -- PORT hello`, or `nc 127.0.0.1 PORT`. It serves any
//! number of connections at once, each in a task of its own, until Ctrl-C.
//!
//! To see what every task is doing, send it SIGUSR1: it prints its task dump (the task tree,
//! what each task waits for, its cancel scopes) to stderr and goes on serving.
//!
//! ```text
//! kill -USR1 $(pgrep -f 'examples/echo_server')
//! ```

use std::io::Write;

use trio::net::{ServeOptions, SocketStream, open_tcp_listeners, serve_listeners};
use trio::stream::prelude::*;

/// Echoes one connection until the client closes it. A client that breaks the connection is
/// reported and forgotten: a handler's error would stop the whole server (Trio's rule).
async fn echo(stream: SocketStream) -> trio::Result<()> {
    let peer = stream.peer_addr().ok().flatten();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match stream.receive_into(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.is_cancelled() => return Err(e),
            Err(e) => {
                eprintln!("echo_server: {peer:?}: {e}");
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = stream.send_all(&buf[..n]).await {
            if e.is_cancelled() {
                return Err(e);
            }
            eprintln!("echo_server: {peer:?}: {e}");
            return Ok(());
        }
    }
}

fn port_argument() -> trio::Result<u16> {
    match std::env::args().nth(1) {
        None => Ok(0),
        Some(arg) => arg.parse().map_err(|_| {
            trio::Error::new(trio::UsageError::new(format!(
                "usage: echo_server [PORT]; {arg:?} is not a port number"
            )))
        }),
    }
}

fn main() {
    // As `#[trio::main]` (an error exits with status 1, Ctrl-C ends the process by SIGINT),
    // with the task dump on SIGUSR1.
    trio::run_main_with(trio::RunConfig::new().dump_on_signal(true), serve());
}

async fn serve() -> trio::Result<()> {
    let port = port_argument()?;
    let listeners = open_tcp_listeners(port, Some("127.0.0.1")).await?;
    let addr = listeners[0].local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    serve_listeners(echo, listeners, ServeOptions::new()).await
}
