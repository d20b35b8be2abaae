//! A client for `echo_server`: sends each message and prints what comes back.
//!
//! ```text
//! cargo run --example echo_server            # prints: listening on 127.0.0.1:PORT
//! cargo run --example echo_client -- PORT hello world
//! ```
//!
//! Messages are sent one after the other on one connection; the client waits for each echo
//! before sending the next, then half-closes the connection and waits for the server to
//! close it too.

use trio::net::open_tcp_stream;
use trio::stream::prelude::*;

#[trio::main]
async fn main() -> trio::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || {
        trio::Error::new(trio::UsageError::new(
            "usage: echo_client PORT [MESSAGE...]",
        ))
    };
    let port: u16 = args
        .next()
        .ok_or_else(usage)?
        .parse()
        .map_err(|_| usage())?;
    let mut messages: Vec<String> = args.collect();
    if messages.is_empty() {
        messages.push("hello".into());
    }
    let stream = open_tcp_stream("127.0.0.1", port).await?;
    for message in &messages {
        stream.send_all(message.as_bytes()).await?;
        let mut echoed = Vec::new();
        while echoed.len() < message.len() {
            let data = stream.receive_some(65536).await?;
            if data.is_empty() {
                return Err(trio::Error::new(std::io::Error::other(
                    "the server closed the connection early",
                )));
            }
            echoed.extend_from_slice(&data);
        }
        println!("{}", String::from_utf8_lossy(&echoed));
    }
    stream.send_eof().await?;
    // The server closes its side once it has seen our EOF.
    assert!(stream.receive_some(1).await?.is_empty());
    stream.aclose().await
}
