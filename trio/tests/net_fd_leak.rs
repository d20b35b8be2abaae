//! No file descriptor leaks: 1,000 connections whose connect or receive is cancelled at a
//! random point leave the process with the fds it had. Alone in its test binary, so no other
//! test opens fds meanwhile.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use trio::net::{open_tcp_listeners, open_tcp_stream};
use trio::stream::prelude::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// xorshift64: a seeded sequence, so a failure replays.
struct Rng(Cell<u64>);

impl Rng {
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x % n
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_thousand_cancelled_connects_and_receives_leak_no_fd() {
    let before = open_fds();
    common::run(async {
        let in_run = open_fds();
        let listeners = open_tcp_listeners(0, Some("127.0.0.1")).await?;
        let listener = Rc::new(listeners.into_iter().next().expect("a listener"));
        let port = listener.local_addr()?.port();
        let rng = Rc::new(Rng(Cell::new(0x9E37_79B9_7F4A_7C15)));
        trio::open_nursery(|nursery| async move {
            // The server: accepts, and for some connections sends a little after a while.
            let server = listener.clone();
            let server_rng = rng.clone();
            let accepting = nursery.clone();
            nursery.start_soon(async move {
                loop {
                    let stream = server.accept().await?;
                    let delay = server_rng.below(4);
                    accepting.start_soon(async move {
                        for _ in 0..delay {
                            trio::lowlevel::checkpoint().await?;
                        }
                        // The client may be gone already: a broken stream is fine here.
                        let _ = stream.send_all(b"hi").await;
                        let _ = stream.receive_some(16).await;
                        Ok(())
                    })?;
                }
            })?;
            let mut completed = 0;
            for _ in 0..1000 {
                let scope = trio::CancelScope::new();
                let canceller = scope.clone();
                let steps = rng.below(12);
                nursery.start_soon(async move {
                    for _ in 0..steps {
                        trio::lowlevel::checkpoint().await?;
                    }
                    canceller.cancel();
                    Ok(())
                })?;
                let done = scope
                    .run(async {
                        let stream = open_tcp_stream("127.0.0.1", port).await?;
                        stream.receive_some(16).await?;
                        Ok(())
                    })
                    .await?;
                completed += usize::from(done.is_some());
            }
            // Some attempts finished before their cancellation, most did not.
            assert!(completed < 1000, "no attempt was cancelled");
            nursery.cancel_scope().cancel();
            Ok(())
        })
        .await?;
        assert_eq!(open_fds(), in_run, "fds leaked inside the run");
        Ok(())
    });
    assert_eq!(open_fds(), before, "fds leaked by the run");
}
