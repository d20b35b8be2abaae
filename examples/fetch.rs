//! Fetches a page over plain HTTP/1.0 with `open_tcp_stream`, which resolves the host name
//! (in a worker thread) and connects with happy eyeballs, and prints the response.
//!
//! ```text
//! cargo run --example fetch -- example.com
//! cargo run --example fetch -- localhost 8000 /index.html
//! ```

use std::io::Write;

use trio::net::open_tcp_stream;
use trio::stream::prelude::*;

#[trio::main]
async fn main() -> trio::Result<()> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "example.com".into());
    let port: u16 = match args.next() {
        Some(port) => port.parse().map_err(|_| {
            trio::Error::new(trio::UsageError::new(
                "usage: fetch [HOST] [PORT] [PATH]; the port is a number",
            ))
        })?,
        None => 80,
    };
    let path = args.next().unwrap_or_else(|| "/".into());
    // Give up after 10 seconds, wherever it is (resolving, connecting, receiving).
    trio::fail_after(10.0, async {
        let stream = open_tcp_stream(&host, port).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.send_all(request.as_bytes()).await?;
        let mut stdout = std::io::stdout();
        loop {
            let data = stream.receive_some(65536).await?;
            if data.is_empty() {
                break;
            }
            stdout.write_all(&data)?;
        }
        stdout.flush()?;
        Ok(())
    })
    .await
}
