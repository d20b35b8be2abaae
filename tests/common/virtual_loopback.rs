//! What the adapter tests (`compat_*.rs`) share: a run on virtual time, and a loopback TCP
//! pair. A module of its own, not in `common/mod.rs`: it needs trio-test, which the root
//! package has only with the features those tests require.

use std::future::Future;

use trio::Result;
use trio::net::{SocketStream, open_tcp_listeners, open_tcp_stream};
use trio::stream::prelude::*;
use trio_test::MockClock;

/// Runs `main` on virtual time (autojump), failing on deadlock; panics on error.
pub fn run<F: Future<Output = Result<()>> + 'static>(main: F) {
    trio::RunConfig::new()
        .clock(MockClock::new().with_autojump_threshold(0).unwrap())
        .fail_on_deadlock(true)
        .ctrl_c(false)
        .run(main)
        .expect("the run failed");
}

/// A connected loopback TCP pair: (client, server).
pub async fn tcp_pair() -> Result<(SocketStream, SocketStream)> {
    let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
    let port = listeners[0].local_addr()?.port();
    let client = open_tcp_stream("127.0.0.1", port).await?;
    let server = listeners[0].accept().await?;
    Ok((client, server))
}
