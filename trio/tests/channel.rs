//! Memory channels: buffering, rendezvous, close/clone rules, fairness, checkpoints, cancel
//! safety, `Stream`.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use trio::lowlevel::{checkpoint, wait_all_tasks_blocked};
use trio::{
    BrokenResourceError, ClosedResourceError, EndOfChannel, Event, MemoryChannelStatistics,
    WouldBlock, open_memory_channel, open_unbounded_memory_channel,
};

fn stats(
    buffered: usize,
    max: usize,
    senders: usize,
    receivers: usize,
    waiting_send: usize,
    waiting_receive: usize,
) -> (usize, usize, usize, usize, usize, usize) {
    (
        buffered,
        max,
        senders,
        receivers,
        waiting_send,
        waiting_receive,
    )
}

fn tuple(s: MemoryChannelStatistics) -> (usize, usize, usize, usize, usize, usize) {
    (
        s.current_buffer_used,
        s.max_buffer_size,
        s.open_send_channels,
        s.open_receive_channels,
        s.tasks_waiting_send,
        s.tasks_waiting_receive,
    )
}

#[test]
fn buffered_try_send_and_try_receive() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(2);
        assert_eq!(tuple(tx.statistics()), stats(0, 2, 1, 1, 0, 0));
        assert_err::<WouldBlock, _>(rx.try_receive());
        tx.try_send(1)?;
        no_yield(async { tx.try_send(2) }).await?;
        let full = tx.try_send(3).unwrap_err();
        assert!(full.is_would_block());
        assert_eq!(full.value(), &3);
        assert_eq!(full.into_value(), 3);
        assert_eq!(tuple(rx.statistics()), stats(2, 2, 1, 1, 0, 0));
        assert_eq!(no_yield(async { rx.try_receive() }).await?, 1);
        assert_eq!(rx.try_receive()?, 2);
        assert_err::<WouldBlock, _>(rx.try_receive());
        Ok(())
    });
}

#[test]
fn send_and_receive_are_checkpoints() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(1);
        yields(tx.send(1)).await?;
        assert_eq!(yields(rx.receive()).await?, 1);
        let (t, r) = (tx.clone(), rx.clone());
        in_cancelled_scope(async move {
            // Either could complete at once; both are cancel points all the same.
            let e = t.send(5).await.unwrap_err();
            assert!(e.error().is_cancelled());
            assert_eq!(e.into_value(), 5);
            t.try_send(6).map_err(|e| e.into_error())?;
            assert!(is_cancelled(r.receive().await));
            assert_eq!(r.try_receive()?, 6);
            Ok(())
        })
        .await?;
        // aclose closes even when cancelled, then checkpoints.
        let t = tx.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(t.aclose().await));
            assert!(t.is_closed());
            Ok(())
        })
        .await?;
        yields(tx.aclose()).await?;
        yields(rx.aclose()).await?;
        Ok(())
    });
}

#[test]
fn send_error_converts_with_question_mark() {
    run(async {
        let (tx, _rx) = open_memory_channel::<u32>(0);
        let scope = trio::CancelScope::new();
        scope.cancel();
        // `?` on a SendError keeps the Cancelled, so the scope absorbs it.
        let out = scope
            .run(async {
                tx.send(1).await?;
                Ok(())
            })
            .await?;
        assert_eq!(out, None);
        assert!(scope.cancelled_caught());
        let e = tx.try_send(2).unwrap_err();
        assert!(format!("{e:?}").contains("WouldBlock"));
        assert!(e.to_string().contains("would block"));
        let (v, err) = e.into_parts();
        assert_eq!(v, 2);
        assert!(err.is::<WouldBlock>());
        Ok(())
    });
}

#[test]
fn rendezvous_send_waits_for_a_receiver() {
    run(async {
        let (tx, rx) = open_memory_channel::<&'static str>(0);
        assert!(tx.try_send("x").unwrap_err().is_would_block());
        let sent_at = Rc::new(Cell::new(0.0));
        let s = sent_at.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                tx.send("hello").await?;
                s.set(trio::current_time()?);
                Ok(())
            })?;
            trio::sleep(3.0).await?;
            assert_eq!(tuple(rx.statistics()), stats(0, 0, 1, 1, 1, 0));
            assert_eq!(rx.try_receive()?, "hello");
            assert_eq!(tuple(rx.statistics()), stats(0, 0, 1, 1, 0, 0));
            Ok(())
        })
        .await?;
        assert_eq!(sent_at.get(), 3.0);
        Ok(())
    });
}

#[test]
fn try_send_hands_straight_to_a_waiting_receiver() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                assert_eq!(rx.receive().await?, 7);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(tx.statistics().tasks_waiting_receive, 1);
            tx.try_send(7).map_err(|e| e.into_error())?;
            assert_eq!(tx.statistics().tasks_waiting_receive, 0);
            Ok(())
        })
        .await
    });
}

#[test]
fn unbounded_never_blocks() {
    run(async {
        let (tx, rx) = open_unbounded_memory_channel::<usize>();
        for i in 0..1000 {
            tx.try_send(i).map_err(|e| e.into_error())?;
        }
        let s = rx.statistics();
        assert_eq!(
            (s.current_buffer_used, s.max_buffer_size),
            (1000, usize::MAX)
        );
        for i in 0..1000 {
            assert_eq!(rx.try_receive()?, i);
        }
        Ok(())
    });
}

#[test]
fn last_sender_closing_ends_the_channel_after_the_buffer_drains() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(5);
        let tx2 = tx.clone();
        assert_eq!(rx.statistics().open_send_channels, 2);
        tx.try_send(1).map_err(|e| e.into_error())?;
        tx.close();
        tx.close(); // idempotent
        assert_eq!(rx.statistics().open_send_channels, 1);
        assert_err::<ClosedResourceError, _>(tx.try_send(9).map_err(|e| e.into_error()));
        assert_err::<ClosedResourceError, _>(tx.send(9).await.map_err(|e| e.into_error()));
        tx2.try_send(2).map_err(|e| e.into_error())?;
        drop(tx2); // dropping closes
        assert_eq!(rx.statistics().open_send_channels, 0);
        assert_eq!(rx.receive().await?, 1);
        assert_eq!(rx.receive().await?, 2);
        assert_err::<EndOfChannel, _>(rx.receive().await);
        assert_err::<EndOfChannel, _>(rx.try_receive());
        Ok(())
    });
}

#[test]
fn last_sender_closing_wakes_blocked_receivers_with_end_of_channel() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let ended = Log::default();
        let e = ended.clone();
        trio::open_nursery(|n| async move {
            for i in 0..2 {
                let (rx, e) = (rx.clone(), e.clone());
                n.start_soon(async move {
                    assert_err::<EndOfChannel, _>(rx.receive().await);
                    e.push(i);
                    Ok(())
                })?;
            }
            drop(rx);
            wait_all_tasks_blocked().await?;
            assert_eq!(tx.statistics().tasks_waiting_receive, 2);
            tx.close();
            Ok(())
        })
        .await?;
        assert_eq!(ended.get().len(), 2);
        Ok(())
    });
}

#[test]
fn closing_a_handle_fails_only_its_own_blocked_tasks() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let shared_tx = Rc::new(tx.clone());
        let got = Log::default();
        let g = got.clone();
        trio::open_nursery(|n| async move {
            // Two tasks blocked on the same handle, one on another clone.
            for v in [1, 2] {
                let t = shared_tx.clone();
                n.start_soon(async move {
                    let e = t.send(v).await.unwrap_err();
                    assert!(e.error().is::<ClosedResourceError>());
                    assert_eq!(e.into_value(), v);
                    Ok(())
                })?;
            }
            let t = tx.clone();
            n.start_soon(async move {
                trio::sleep(1.0).await?;
                t.send(3).await?;
                Ok(())
            })?;
            trio::sleep(2.0).await?;
            assert_eq!(rx.statistics().tasks_waiting_send, 3);
            shared_tx.close();
            assert_eq!(rx.statistics().tasks_waiting_send, 1);
            g.push(rx.receive().await?);
            // Receivers: close one shared handle with a blocked task; the other clone is fine.
            let shared_rx = Rc::new(rx.clone());
            let r = shared_rx.clone();
            n.start_soon(async move {
                assert_err::<ClosedResourceError, _>(r.receive().await);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            shared_rx.close();
            assert_err::<ClosedResourceError, _>(shared_rx.try_receive());
            assert_eq!(rx.statistics().open_receive_channels, 1);
            tx.try_send(4).map_err(|e| e.into_error()).unwrap_err();
            Ok(())
        })
        .await?;
        assert_eq!(got.get(), [3]);
        Ok(())
    });
}

#[test]
fn last_receiver_closing_breaks_senders_and_drops_the_buffer() {
    run(async {
        let (tx, rx) = open_memory_channel::<Rc<()>>(1);
        let token = Rc::new(());
        tx.try_send(token.clone()).map_err(|e| e.into_error())?;
        let rx2 = rx.clone();
        let token2 = token.clone();
        trio::open_nursery(|n| async move {
            let token = token2;
            let (t, tok) = (tx.clone(), token.clone());
            n.start_soon(async move {
                let e = t.send(tok).await.unwrap_err();
                assert!(e.error().is::<BrokenResourceError>());
                drop(e); // the value comes back, and is dropped here
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(Rc::strong_count(&token), 4);
            rx.close();
            assert_eq!(tx.statistics().tasks_waiting_send, 1); // one receiver is left
            drop(rx2);
            assert_eq!(tx.statistics().tasks_waiting_send, 0);
            assert_eq!(tx.statistics().current_buffer_used, 0);
            assert_err::<BrokenResourceError, _>(
                tx.try_send(token.clone()).map_err(|e| e.into_error()),
            );
            Ok(())
        })
        .await?;
        assert_eq!(Rc::strong_count(&token), 1);
        Ok(())
    });
}

#[test]
fn clones_of_closed_handles_are_closed() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(1);
        let keep = tx.clone();
        tx.close();
        assert_err::<ClosedResourceError, _>(tx.try_clone().map(drop));
        let c = tx.clone();
        assert!(c.is_closed());
        assert_eq!(rx.statistics().open_send_channels, 1);
        let rx2 = rx.try_clone()?;
        assert_eq!(rx.statistics().open_receive_channels, 2);
        rx2.close();
        assert!(rx2.clone().is_closed());
        assert_err::<ClosedResourceError, _>(rx2.try_clone().map(drop));
        assert!(format!("{keep:?}").contains("MemorySendChannel"));
        assert!(format!("{rx:?}").contains("open_receive_channels: 1"));
        Ok(())
    });
}

#[test]
fn values_whose_drop_uses_the_channel() {
    // A buffered value holding a send handle of its own channel: dropping the buffer (last
    // receiver closed) closes that handle, which must not find the channel borrowed.
    struct Msg(#[allow(dead_code)] Option<trio::MemorySendChannel<Msg>>);
    run(async {
        let (tx, rx) = open_memory_channel::<Msg>(4);
        tx.try_send(Msg(Some(tx.clone())))
            .map_err(|e| e.into_error())?;
        tx.try_send(Msg(None)).map_err(|e| e.into_error())?;
        assert_eq!(rx.statistics().open_send_channels, 2);
        drop(rx);
        assert_eq!(tx.statistics().open_send_channels, 1);
        Ok(())
    });
}

async fn receivers_round_robin() -> trio::Result<Vec<usize>> {
    let (tx, rx) = open_memory_channel::<usize>(0);
    let order = Log::default();
    let o = order.clone();
    trio::open_nursery(|n| async move {
        for id in 0..3 {
            let (rx, o) = (rx.clone(), o.clone());
            n.start_soon(async move {
                loop {
                    match rx.receive().await {
                        Ok(_) => o.push(id),
                        Err(e) if e.is::<EndOfChannel>() => return Ok(()),
                        Err(e) => return Err(e),
                    }
                    checkpoint().await?;
                }
            })?;
        }
        drop(rx);
        for i in 0..30 {
            tx.send(i).await?;
        }
        Ok(())
    })
    .await?;
    Ok(order.get())
}

#[test]
fn three_looping_receivers_take_strict_turns() {
    let order = run(receivers_round_robin());
    assert_eq!(order.len(), 30);
    assert_round_robin(&order, 3);
}

#[test]
fn three_looping_senders_take_strict_turns() {
    for capacity in [0, 1] {
        let got = run(async move {
            let (tx, rx) = open_memory_channel::<usize>(capacity);
            let got = Log::default();
            let g = got.clone();
            trio::open_nursery(|n| async move {
                for id in 0..3 {
                    let tx = tx.clone();
                    n.start_soon(async move {
                        for _ in 0..10 {
                            tx.send(id).await?;
                        }
                        Ok(())
                    })?;
                }
                drop(tx);
                trio::sleep(1.0).await?; // all three senders are blocked by now
                while let Ok(v) = rx.receive().await {
                    g.push(v);
                }
                Ok(())
            })
            .await?;
            Ok(got.get())
        });
        assert_eq!(got.len(), 30);
        // With a buffer the first value got in before the others blocked.
        assert_round_robin(&got[capacity..], 3);
    }
}

#[test]
fn cancelled_send_and_receive_have_no_effect() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let out = trio::move_on_after(1.0, async { tx.send(1).await.map_err(|e| e.into_error()) })
            .await?;
        assert_eq!(out, None);
        assert_eq!(tx.statistics().tasks_waiting_send, 0);
        assert_eq!(trio::move_on_after(1.0, rx.receive()).await?, None);
        assert_eq!(tx.statistics().tasks_waiting_receive, 0);
        // The cancelled value never shows up.
        tx.close();
        assert_err::<EndOfChannel, _>(rx.try_receive());
        Ok(())
    });
}

#[test]
fn cancel_after_hand_off_still_completes() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let scope = trio::CancelScope::new();
        let sc = scope.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let got = sc.run(rx.receive()).await?;
                assert_eq!(got, Some(42)); // delivered before the cancel: returned
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            tx.try_send(42).map_err(|e| e.into_error())?;
            scope.cancel();
            Ok(())
        })
        .await?;
        // And for a sender whose value was taken just before the cancel.
        let (tx, rx) = open_memory_channel::<u32>(0);
        let scope = trio::CancelScope::new();
        let sc = scope.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let sent = sc
                    .run(async { tx.send(7).await.map_err(|e| e.into_error()) })
                    .await?;
                assert_eq!(sent, Some(()));
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(rx.try_receive()?, 7);
            scope.cancel();
            Ok(())
        })
        .await
    });
}

#[test]
fn dropped_receive_gives_its_value_to_the_next_receiver() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let (go, got) = (Event::new(), Log::default());
        let g = got.clone();
        trio::open_nursery(|n| async move {
            let (r, go2) = (rx.clone(), go.clone());
            n.start_soon(async move {
                let mut fut = Box::pin(r.receive());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut); // was handed 1: it must go on
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let (r, g2) = (rx.clone(), g.clone());
            n.start_soon(async move {
                g2.push(r.receive().await?);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(tx.statistics().tasks_waiting_receive, 2);
            tx.try_send(1).map_err(|e| e.into_error())?;
            go.set();
            Ok(())
        })
        .await?;
        assert_eq!(got.get(), [1]);
        Ok(())
    });
}

#[test]
fn channel_does_not_end_while_a_value_is_in_flight() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let go = Event::new();
        let r = rx.clone();
        let go2 = go.clone();
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let mut fut = Box::pin(r.receive());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut); // gives 1 back after the last sender closed
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            tx.try_send(1).map_err(|e| e.into_error())?;
            drop(tx);
            // Not the end yet: the value handed out may come back.
            assert_err::<WouldBlock, _>(rx.try_receive());
            go.set();
            assert_eq!(rx.receive().await?, 1);
            assert_err::<EndOfChannel, _>(rx.receive().await);
            Ok(())
        })
        .await
    });
}

#[test]
fn dropped_receive_puts_its_value_back_at_the_buffer_front() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(2);
        let go = Event::new();
        let r = rx.clone();
        let (t, go2) = (tx.clone(), go.clone());
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                let mut fut = Box::pin(r.receive());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            t.try_send(1).map_err(|e| e.into_error())?; // handed to the parked receive
            t.try_send(2).map_err(|e| e.into_error())?;
            t.try_send(3).map_err(|e| e.into_error())?;
            go.set();
            Ok(())
        })
        .await?;
        // 1 went back in front, one over capacity for a moment.
        assert_eq!(rx.statistics().current_buffer_used, 3);
        assert_eq!(rx.try_receive()?, 1);
        assert_eq!(rx.try_receive()?, 2);
        assert_eq!(rx.try_receive()?, 3);

        // Dropped during the schedule point after an immediate receive: back in front too.
        tx.try_send(4).map_err(|e| e.into_error())?;
        tx.try_send(5).map_err(|e| e.into_error())?;
        let mut fut = Box::pin(rx.receive());
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(rx.statistics().current_buffer_used, 1);
        drop(fut);
        assert_eq!(rx.try_receive()?, 4);
        assert_eq!(rx.try_receive()?, 5);
        Ok(())
    });
}

#[test]
fn dropped_send_while_waiting_unsends() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let mut fut = Box::pin(tx.send(1));
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(tx.statistics().tasks_waiting_send, 1);
        drop(fut);
        assert_eq!(tx.statistics().tasks_waiting_send, 0);
        assert_err::<WouldBlock, _>(rx.try_receive());
        // Dropped after its value was taken: the send completed, the value stays received.
        let mut fut = Box::pin(tx.send(2));
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(rx.try_receive()?, 2);
        drop(fut);
        assert_err::<WouldBlock, _>(rx.try_receive());
        Ok(())
    });
}

#[test]
fn receiver_is_a_stream() {
    use futures_core::Stream;
    use std::pin::Pin;

    async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
    }

    run(async {
        let (tx, mut rx) = open_memory_channel::<u32>(0);
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                for i in 0..3 {
                    tx.send(i).await?;
                }
                Ok(())
            })?;
            let mut got = Vec::new();
            for _ in 0..3 {
                // Each value is a checkpoint, as `receive` (the end need not be).
                got.push(yields(next(&mut rx)).await.expect("a value")?);
            }
            assert!(next(&mut rx).await.is_none());
            assert_eq!(got, [0, 1, 2]);
            // Cancellation comes out as an item; then the stream ends.
            let item = in_cancelled_scope(async { Ok(next(&mut rx).await) }).await?;
            assert!(matches!(item, Some(Some(Err(ref e))) if e.is_cancelled()));
            assert!(next(&mut rx).await.is_none());
            Ok(())
        })
        .await
    });
}

#[test]
fn a_stream_item_handed_over_to_a_dropped_receiver_is_not_lost() {
    use futures_core::Stream;
    use std::pin::Pin;
    use std::task::Poll;

    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let mut waiting = rx.clone();
        // One poll of the stream: its receive parks (the channel is empty).
        let polled =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut waiting).poll_next(cx))).await;
        assert!(polled.is_pending());
        // A rendezvous send succeeds at once: the value is handed to the parked item.
        tx.try_send(7).map_err(trio::Error::from)?;
        // The handle goes away before taking it: the value goes back to the channel.
        drop(waiting);
        assert_eq!(rx.try_receive()?, 7);
        assert_eq!(rx.statistics().current_buffer_used, 0);
        Ok(())
    });
}

/// Trio's `test_statistics`, the high-water mark: `peak_buffer_used` follows the most values
/// the buffer held at once and does not drop when the buffer drains; a value handed straight
/// to a waiting receiver never enters the buffer.
#[test]
fn peak_buffer_used_is_a_high_water_mark() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(2);
        assert_eq!(tx.statistics(), rx.statistics());
        assert_eq!(tx.statistics().peak_buffer_used, 0);
        tx.try_send(1).map_err(|e| e.into_error())?;
        assert_eq!(tx.statistics().peak_buffer_used, 1);
        tx.try_send(2).map_err(|e| e.into_error())?;
        assert_eq!(rx.statistics().peak_buffer_used, 2);
        rx.try_receive()?;
        rx.try_receive()?;
        let s = rx.statistics();
        assert_eq!((s.current_buffer_used, s.peak_buffer_used), (0, 2));
        let (tx0, rx0) = open_memory_channel::<u32>(0);
        trio::open_nursery(|n| async move {
            n.start_soon(async move {
                rx0.receive().await?;
                assert_eq!(rx0.statistics().peak_buffer_used, 0);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            tx0.send(7).await.map_err(|e| e.into_error())
        })
        .await
    });
}
