//! The README's example of trio-test, kept compiling and passing here.

use trio::stream::prelude::*;
use trio_test::{assert_checkpoints, memory_stream_pair};

#[trio::test(autojump)]
async fn a_silent_peer_times_out() -> trio::Result<()> {
    let (client, _server) = memory_stream_pair(); // the server never answers
    let start = trio::current_time()?;
    let reply = trio::move_on_after(30, client.receive_some(1024)).await?;
    assert!(reply.is_none());
    assert_eq!(trio::current_time()? - start, 30.0); // exactly, and at once: the clock jumped
    assert_checkpoints(client.send_all(b"still there?")).await?;
    Ok(())
}
