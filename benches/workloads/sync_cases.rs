//! The sync cases: channel ping-pong, uncontended and contended locks. As in `core_cases`,
//! each function runs `iters` operations in a running runtime and returns the time taken.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::rt::{Tokio, split2, trio_run};

/// trio: ping-pong over two `open_memory_channel(cap)` channels between two tasks (both
/// spawned in one nursery). One iteration is one round trip: send on ping, receive it in the
/// echo task, send it back on pong, receive it (two one-way messages).
pub fn trio_pingpong(cap: usize, iters: u64) -> Duration {
    trio_run(async move {
        let (ping_tx, ping_rx) = trio::open_memory_channel::<u64>(cap);
        let (pong_tx, pong_rx) = trio::open_memory_channel::<u64>(cap);
        let start = Instant::now();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                for _ in 0..iters {
                    let v = ping_rx.receive().await?;
                    pong_tx.send(v).await?;
                }
                Ok(())
            })?;
            n.start_soon(async move {
                for i in 0..iters {
                    ping_tx.send(i).await?;
                    black_box(pong_rx.receive().await?);
                }
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        Ok(start.elapsed())
    })
}

/// tokio: the same round trip between two `spawn_local` tasks over two `mpsc::channel(1)`s (tokio's smallest bounded
/// channel; it has no rendezvous channel, so this is also the comparison for trio's cap 0).
pub fn tokio_pingpong_mpsc(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let start = Instant::now();
        let echo = tokio::task::spawn_local(async move {
            for _ in 0..iters {
                let v = ping_rx.recv().await.expect("ping");
                pong_tx.send(v).await.expect("pong");
            }
        });
        let client = tokio::task::spawn_local(async move {
            for i in 0..iters {
                ping_tx.send(i).await.expect("ping");
                black_box(pong_rx.recv().await.expect("pong"));
            }
        });
        echo.await.expect("join");
        client.await.expect("join");
        start.elapsed()
    })
}

/// tokio: a round trip as request/response: the request goes over an `mpsc::channel(1)` with
/// a fresh `oneshot` sender for the reply (a oneshot per round trip: the usual tokio idiom for
/// a rendezvous-like exchange).
pub fn tokio_pingpong_oneshot(rt: &Tokio, iters: u64) -> Duration {
    type Request = (u64, tokio::sync::oneshot::Sender<u64>);
    rt.run(async move {
        let (req_tx, mut req_rx) = tokio::sync::mpsc::channel::<Request>(1);
        let start = Instant::now();
        let echo = tokio::task::spawn_local(async move {
            for _ in 0..iters {
                let (v, reply) = req_rx.recv().await.expect("request");
                reply.send(v).expect("reply");
            }
        });
        let client = tokio::task::spawn_local(async move {
            for i in 0..iters {
                let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
                req_tx.send((i, reply_tx)).await.expect("request");
                black_box(reply_rx.await.expect("reply"));
            }
        });
        echo.await.expect("join");
        client.await.expect("join");
        start.elapsed()
    })
}

/// tokio: a rendezvous built from tokio parts, for trio's cap 0: each one-way message goes over
/// an `mpsc::channel(1)` with a `oneshot` that the receiver completes once it has taken the
/// message, and the sender waits for it (trio's cap-0 `send` returns only when a receiver has
/// the value). Two messages and two acknowledgements per round trip.
pub fn tokio_pingpong_rendezvous(rt: &Tokio, iters: u64) -> Duration {
    type Message = (u64, tokio::sync::oneshot::Sender<()>);
    async fn send(tx: &tokio::sync::mpsc::Sender<Message>, v: u64) {
        let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
        tx.send((v, ack_tx)).await.expect("send");
        ack_rx.await.expect("ack");
    }
    async fn recv(rx: &mut tokio::sync::mpsc::Receiver<Message>) -> u64 {
        let (v, ack) = rx.recv().await.expect("recv");
        ack.send(()).expect("ack");
        v
    }
    rt.run(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<Message>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<Message>(1);
        let start = Instant::now();
        let echo = tokio::task::spawn_local(async move {
            for _ in 0..iters {
                let v = recv(&mut ping_rx).await;
                send(&pong_tx, v).await;
            }
        });
        let client = tokio::task::spawn_local(async move {
            for i in 0..iters {
                send(&ping_tx, i).await;
                black_box(recv(&mut pong_rx).await);
            }
        });
        echo.await.expect("join");
        client.await.expect("join");
        start.elapsed()
    })
}

/// trio: `Lock::lock` + guard drop with nobody else around. `lock` is a checkpoint, so each
/// acquire also yields once to the scheduler (Trio semantics; tokio's `Mutex::lock` does not).
pub fn trio_lock_uncontended(iters: u64) -> Duration {
    trio_run(async move {
        let lock = trio::Lock::new();
        let start = Instant::now();
        for _ in 0..iters {
            let guard = lock.lock().await?;
            drop(black_box(guard));
        }
        Ok(start.elapsed())
    })
}

/// trio: `Lock::try_lock` + guard drop: the acquire/release bookkeeping without the schedule
/// point.
pub fn trio_lock_try(iters: u64) -> Duration {
    trio_run(async move {
        let lock = trio::Lock::new();
        let start = Instant::now();
        for _ in 0..iters {
            let guard = lock.try_lock()?;
            drop(black_box(guard));
        }
        Ok(start.elapsed())
    })
}

/// tokio: `Mutex::lock` + guard drop with nobody else around.
pub fn tokio_lock_uncontended(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let mutex = tokio::sync::Mutex::new(0u64);
        let start = Instant::now();
        for _ in 0..iters {
            let mut guard = mutex.lock().await;
            *guard += 1;
            drop(black_box(guard));
        }
        start.elapsed()
    })
}

/// tokio: `Mutex::lock` + unlock + `yield_now()`: the same work as trio's `lock()`, whose
/// acquire is a schedule point even when the lock is free (Trio's rule); tokio's `lock()`
/// returns without yielding.
pub fn tokio_lock_uncontended_yield(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let mutex = tokio::sync::Mutex::new(0u64);
        let start = Instant::now();
        for _ in 0..iters {
            let mut guard = mutex.lock().await;
            *guard += 1;
            drop(black_box(guard));
            tokio::task::yield_now().await;
        }
        start.elapsed()
    })
}

/// trio: two tasks that each loop { lock, checkpoint while holding it, unlock }, so every
/// acquire waits for the other task's hand-off. One iteration is one acquire+release.
pub fn trio_lock_contended(iters: u64) -> Duration {
    let (a, b) = split2(iters);
    trio_run(async move {
        let lock = trio::Lock::new();
        let start = Instant::now();
        trio::open_nursery(|n| async move {
            for count in [a, b] {
                let lock = lock.clone();
                n.start_soon(async move {
                    for _ in 0..count {
                        let guard = lock.lock().await?;
                        trio::lowlevel::checkpoint().await?;
                        drop(guard);
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(start.elapsed())
    })
}

/// tokio: the same with `Mutex` and `yield_now` while holding it.
pub fn tokio_lock_contended(rt: &Tokio, iters: u64) -> Duration {
    let (a, b) = split2(iters);
    rt.run(async move {
        let mutex = Rc::new(tokio::sync::Mutex::new(0u64));
        let start = Instant::now();
        let handles = [a, b].map(|count| {
            let mutex = mutex.clone();
            tokio::task::spawn_local(async move {
                for _ in 0..count {
                    let mut guard = mutex.lock().await;
                    *guard += 1;
                    tokio::task::yield_now().await;
                    drop(guard);
                }
            })
        });
        for handle in handles {
            handle.await.expect("join");
        }
        black_box(*mutex.lock().await);
        start.elapsed()
    })
}

/// trio: the cap-1 round trip with a timeout around each wait for the reply (the reply
/// blocks, so the timeout's scope enters the cancel tree and its deadline the heap).
pub fn trio_pingpong_timeout(iters: u64) -> Duration {
    trio_run(async move {
        let (ping_tx, ping_rx) = trio::open_memory_channel::<u64>(1);
        let (pong_tx, pong_rx) = trio::open_memory_channel::<u64>(1);
        let start = Instant::now();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                for _ in 0..iters {
                    let v = ping_rx.receive().await?;
                    pong_tx.send(v).await?;
                }
                Ok(())
            })?;
            n.start_soon(async move {
                for i in 0..iters {
                    ping_tx.send(i).await?;
                    black_box(trio::fail_after(10.0, pong_rx.receive()).await?);
                }
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        Ok(start.elapsed())
    })
}

/// tokio: the same, `tokio::time::timeout` around each `recv` of the reply.
pub fn tokio_pingpong_timeout(rt: &Tokio, iters: u64) -> Duration {
    rt.run(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(1);
        let start = Instant::now();
        let echo = tokio::task::spawn_local(async move {
            for _ in 0..iters {
                let v = ping_rx.recv().await.expect("ping");
                pong_tx.send(v).await.expect("pong");
            }
        });
        let client = tokio::task::spawn_local(async move {
            for i in 0..iters {
                ping_tx.send(i).await.expect("ping");
                let reply = tokio::time::timeout(Duration::from_secs(10), pong_rx.recv());
                black_box(reply.await.expect("in time").expect("pong"));
            }
        });
        echo.await.expect("join");
        client.await.expect("join");
        start.elapsed()
    })
}
