//! `recv`: the receive loop in Rust's form (`while let Some(v) = rx.recv().await? { ... }`),
//! with every guarantee of `receive`; send and receive errors asked the same questions.

mod common;

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;
use trio::{CancelScope, ClosedResourceError, Event, open_memory_channel};

#[test]
fn a_recv_loop_ends_with_none_when_every_sender_is_closed() {
    let log = Log::default();
    let got = log.clone();
    run(async move {
        let (tx, rx) = open_memory_channel::<u32>(0);
        trio::open_nursery(|nursery| async move {
            let tx2 = tx.clone();
            nursery.start_soon(async move {
                for i in 0..3 {
                    tx.send(i).await?;
                }
                Ok(())
            })?;
            nursery.start_soon(async move {
                for i in 10..12 {
                    tx2.send(i).await?;
                }
                Ok(())
            })?;
            while let Some(v) = rx.recv().await? {
                log.push(v);
            }
            // The end stays the end.
            assert_eq!(rx.recv().await?, None);
            Ok(())
        })
        .await
    });
    let mut got = got.get();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 10, 11]);
}

#[test]
fn recv_drains_the_buffer_before_the_end() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(3);
        tx.try_send(1)?;
        tx.try_send(2)?;
        tx.close();
        assert_eq!(rx.recv().await?, Some(1));
        assert_eq!(rx.recv().await?, Some(2));
        assert_eq!(rx.recv().await?, None);
        Ok(())
    });
}

#[test]
fn a_blocked_recv_gets_none_when_the_last_sender_closes() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                assert_eq!(rx.recv().await?, None);
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(tx.statistics().tasks_waiting_receive, 1);
            tx.close();
            Ok(())
        })
        .await
    });
}

#[test]
fn recv_on_a_closed_handle_is_an_error_not_the_end() {
    run(async {
        let (_tx, rx) = open_memory_channel::<u32>(0);
        let rx2 = rx.clone();
        rx2.close();
        let e = assert_err::<ClosedResourceError, _>(rx2.recv().await);
        assert!(e.is_closed() && !e.is_end_of_channel());
        // Closed (by another task) while blocked: the blocked recv fails the same way.
        let shared = std::rc::Rc::new(rx);
        let r = shared.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                assert!(r.recv().await.unwrap_err().is_closed());
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            shared.close();
            Ok(())
        })
        .await
    });
}

#[test]
fn recv_is_a_checkpoint_on_every_normal_return() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(1);
        tx.try_send(1)?;
        assert_eq!(yields(rx.recv()).await?, Some(1));
        tx.close();
        // The end found without waiting is a normal return too: it yields.
        assert_eq!(yields(rx.recv()).await?, None);
        assert_eq!(yields(rx.recv()).await?, None);
        Ok(())
    });
}

#[test]
fn recv_is_a_cancel_point_even_with_a_value_ready_or_at_the_end() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(1);
        tx.try_send(5)?;
        let r = rx.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(r.recv().await));
            Ok(())
        })
        .await?;
        // Nothing was taken.
        assert_eq!(rx.try_receive()?, 5);
        tx.close();
        let r = rx.clone();
        in_cancelled_scope(async move {
            assert!(is_cancelled(r.recv().await));
            Ok(())
        })
        .await?;
        Ok(())
    });
}

#[test]
fn a_recv_cancelled_after_the_hand_off_returns_the_value() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let scope = CancelScope::new();
        let sc = scope.clone();
        trio::open_nursery(|nursery| async move {
            nursery.start_soon(async move {
                let got = sc.run(rx.recv()).await?;
                assert_eq!(got, Some(Some(42))); // delivered before the cancel: returned
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            tx.try_send(42)?;
            scope.cancel();
            Ok(())
        })
        .await
    });
}

#[test]
fn a_dropped_recv_gives_its_value_to_the_next_receiver() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(0);
        let (go, got) = (Event::new(), Log::default());
        let g = got.clone();
        trio::open_nursery(|nursery| async move {
            let (r, go2) = (rx.clone(), go.clone());
            nursery.start_soon(async move {
                let mut fut = Box::pin(r.recv());
                assert!(poll_once(&mut fut).await.is_pending());
                go2.wait().await?;
                drop(fut); // was handed 1: it must go on
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            let r = rx.clone();
            nursery.start_soon(async move {
                while let Some(v) = r.recv().await? {
                    g.push(v);
                }
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            tx.try_send(1)?;
            go.set();
            wait_all_tasks_blocked().await?;
            drop(tx);
            Ok(())
        })
        .await?;
        assert_eq!(got.get(), [1]);
        Ok(())
    });
}

#[test]
fn a_recv_dropped_during_its_schedule_point_puts_the_value_back() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(2);
        tx.try_send(4)?;
        tx.try_send(5)?;
        let mut fut = Box::pin(rx.recv());
        assert!(poll_once(&mut fut).await.is_pending());
        assert_eq!(rx.statistics().current_buffer_used, 1);
        drop(fut);
        assert_eq!(rx.try_receive()?, 4);
        assert_eq!(rx.try_receive()?, 5);
        // Dropped during the schedule point before `Ok(None)`: nothing to give back.
        tx.close();
        let mut fut = Box::pin(rx.recv());
        assert!(poll_once(&mut fut).await.is_pending());
        drop(fut);
        assert_eq!(rx.recv().await?, None);
        Ok(())
    });
}

#[test]
fn send_and_receive_errors_are_asked_the_same_questions() {
    run(async {
        let (tx, rx) = open_memory_channel::<u32>(1);
        // Would block.
        tx.try_send(1)?;
        let send = tx.try_send(2).unwrap_err();
        assert!(send.is_would_block() && !send.is_closed() && !send.is_broken());
        assert!(send.is::<trio::WouldBlock>());
        assert_eq!(rx.try_receive()?, 1);
        let receive = rx.try_receive().unwrap_err();
        assert!(receive.is_would_block() && !receive.is_closed() && !receive.is_broken());

        // Closed handle.
        let (t, r) = (tx.clone(), rx.clone());
        t.close();
        r.close();
        let send = t.try_send(3).unwrap_err();
        let receive = r.try_receive().unwrap_err();
        assert!(send.is_closed() && receive.is_closed());
        assert!(send.downcast_ref::<ClosedResourceError>().is_some());

        // Cancelled.
        let (t, r) = (tx.clone(), rx.clone());
        in_cancelled_scope(async move {
            let send = t.send(4).await.unwrap_err();
            let receive = r.recv().await.unwrap_err();
            assert!(send.is_cancelled() && receive.is_cancelled());
            Ok(())
        })
        .await?;

        // The other side gone: broken for the sender, the end for the receiver.
        let (tx2, rx2) = open_memory_channel::<u32>(1);
        drop(rx2);
        let send = tx2.send(5).await.unwrap_err();
        assert!(send.is_broken() && !send.is_closed());
        assert_eq!(send.into_value(), 5);
        drop(tx);
        assert_eq!(rx.recv().await?, None);
        assert!(rx.receive().await.unwrap_err().is_end_of_channel());
        assert!(rx.try_receive().unwrap_err().is_end_of_channel());
        Ok(())
    });
}
