//! `trio::as_safe_channel`: Trio's `test_channel.py` `as_safe_channel` tests, with the async
//! generator as a producer closure and the `async with` block as the body.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::*;
use trio::lowlevel::{checkpoint, wait_all_tasks_blocked};
use trio::{CancelScope, ClosedResourceError, Error, SafeChannelSender, as_safe_channel};

fn oops(message: &str) -> Error {
    Error::new(std::io::Error::other(message.to_string()))
}

fn message(e: &Error) -> String {
    e.downcast_ref::<std::io::Error>()
        .map(|io| io.to_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// `test_as_safe_channel_exhaust`, and values come in order.
#[test]
fn the_body_sees_every_value_then_the_end() {
    run(async {
        let got = as_safe_channel(
            |tx| async move {
                for i in 0..3 {
                    tx.send(i).await?;
                }
                Ok(())
            },
            |rx| async move {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await? {
                    got.push(v);
                }
                assert!(rx.receive().await.is_err_and(|e| e.is_end_of_channel()));
                Ok(got)
            },
        )
        .await?;
        assert_eq!(got, [0, 1, 2]);
        Ok(())
    });
}

/// `test_as_safe_channel_broken_resource` and `_close_before_iteration`: a closed receiver
/// fails with ClosedResourceError, and leaving the body is not an error.
#[test]
fn a_closed_receiver_is_closed_and_leaving_is_fine() {
    run(async {
        as_safe_channel(
            |tx| async move {
                tx.send(1).await?;
                tx.send(2).await
            },
            |rx| async move {
                assert_eq!(rx.receive().await?, 1);
                rx.aclose().await?;
                assert_err::<ClosedResourceError, _>(rx.receive().await);
                Ok(())
            },
        )
        .await?;
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        as_safe_channel(
            move |tx: SafeChannelSender<()>| async move {
                c.set(true);
                tx.send(()).await
            },
            |rx| async move {
                rx.aclose().await?;
                assert_err::<ClosedResourceError, _>(rx.receive().await);
                Ok(())
            },
        )
        .await?;
        assert!(!called.get(), "never asked for a value: never called");
        Ok(())
    });
}

/// `test_as_safe_channel_cancelled`: cancelled before anything was asked for, the producer
/// is never called.
#[test]
fn a_body_cancelled_before_asking_never_starts_the_producer() {
    run(async {
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        let cs = CancelScope::new();
        let inner = cs.clone();
        let out = cs
            .run(as_safe_channel(
                move |tx: SafeChannelSender<()>| async move {
                    c.set(true);
                    tx.send(()).await
                },
                move |_rx| async move {
                    inner.cancel();
                    checkpoint().await
                },
            ))
            .await?;
        assert_eq!(out, None);
        assert!(!called.get());
        Ok(())
    });
}

/// `test_as_safe_channel_no_race`: the producer's error after its last value comes out as
/// itself (a group of one is unwrapped), after the body saw the end.
#[test]
fn the_producers_error_comes_out_as_itself() {
    run(async {
        let seen = Log::default();
        let s = seen.clone();
        let e = as_safe_channel(
            |tx| async move {
                tx.send(1).await?;
                Err(oops("oae"))
            },
            |rx| async move {
                while let Some(v) = rx.recv().await? {
                    s.push(v);
                }
                Ok(())
            },
        )
        .await
        .unwrap_err();
        assert_eq!(message(&e), "oae");
        assert!(e.as_group().is_none());
        assert_eq!(seen.get(), [1]);
        Ok(())
    });
}

/// `test_as_safe_channel_buffer_size_too_small` and `_no_interleave`: the producer is asked
/// for a value only when the body wants one, never ahead.
#[test]
fn nothing_is_made_ahead_of_a_request() {
    run(async {
        let asked_again = Rc::new(Cell::new(false));
        let a = asked_again.clone();
        let out = trio::move_on_after(5.0, async {
            as_safe_channel(
                move |tx| async move {
                    tx.send(1).await?;
                    a.set(true);
                    tx.send(2).await
                },
                |rx| async move {
                    assert_eq!(rx.receive().await?, 1);
                    checkpoint().await?;
                    wait_all_tasks_blocked().await?;
                    trio::sleep_forever().await
                },
            )
            .await
        })
        .await?;
        assert_eq!(out, None);
        assert!(!asked_again.get());
        Ok(())
    });
}

/// `test_as_safe_channel_genexit_finally`: the body's error and the producer's error from
/// its cleanup both come out, in a group.
#[test]
fn errors_of_the_body_and_of_the_producers_cleanup_make_a_group() {
    run(async {
        let events = Log::default();
        let ev = events.clone();
        let e = as_safe_channel(
            move |tx| async move {
                let sent = tx.send(1).await;
                ev.push(format!(
                    "send: cancelled={}",
                    sent.unwrap_err().is_cancelled()
                ));
                Err(oops("agen"))
            },
            |rx| async move {
                assert_eq!(rx.receive().await?, 1);
                Err::<(), _>(oops("iterator"))
            },
        )
        .await
        .unwrap_err();
        let group = e.as_group().expect("two errors make a group");
        let mut messages: Vec<String> = group.errors().iter().map(message).collect();
        messages.sort();
        assert_eq!(messages, ["agen", "iterator"]);
        assert_eq!(events.get(), ["send: cancelled=true"]);
        Ok(())
    });
}

/// `test_as_safe_channel_nested_loop`.
#[test]
fn safe_channels_nest() {
    async fn two(tx: SafeChannelSender<i32>) -> trio::Result<()> {
        for i in 0..2 {
            tx.send(i).await?;
        }
        Ok(())
    }
    run(async {
        let pairs = as_safe_channel(two, |outer| async move {
            let mut pairs = Vec::new();
            while let Some(i) = outer.recv().await? {
                let inner = as_safe_channel(two, |rx| async move {
                    let mut got = Vec::new();
                    while let Some(j) = rx.recv().await? {
                        got.push(j);
                    }
                    Ok(got)
                })
                .await?;
                pairs.extend(inner.into_iter().map(|j| (i, j)));
            }
            Ok(pairs)
        })
        .await?;
        assert_eq!(pairs, [(0, 0), (0, 1), (1, 0), (1, 1)]);
        Ok(())
    });
}

/// `test_as_safe_channel_doesnt_leak_cancellation`: a cancellation inside the producer that
/// its own scope absorbs stays there.
#[test]
fn a_cancellation_inside_the_producer_stays_there() {
    run(async {
        let n = as_safe_channel(
            |tx| async move {
                tx.send(()).await?;
                let cs = CancelScope::new();
                cs.cancel();
                cs.run(tx.send(())).await?;
                Ok(())
            },
            |rx| async move {
                let mut n = 0;
                while rx.recv().await?.is_some() {
                    n += 1;
                }
                Ok(n)
            },
        )
        .await?;
        assert_eq!(n, 1);
        Ok(())
    });
}

/// `test_as_safe_channel_multiple_receiver`: two tasks receive from clones of the receiver;
/// each request gets one value, in the order the requests were made.
#[test]
fn several_tasks_can_receive() {
    run(async {
        let go = trio::Event::new();
        let g = go.clone();
        as_safe_channel(
            |tx| async move {
                g.wait().await?;
                tx.send(0).await?;
                tx.send(1).await
            },
            |rx| async move {
                trio::open_nursery(|n| async move {
                    for expected in 0..2 {
                        let r = rx.clone();
                        n.start(move |status| async move {
                            status.started(())?;
                            assert_eq!(r.receive().await?, expected);
                            Ok(())
                        })
                        .await?;
                    }
                    go.set();
                    Ok(())
                })
                .await
            },
        )
        .await?;
        Ok(())
    });
}

/// `test_as_safe_channel_multi_cancel`: the body's cancellation comes first, then the
/// producer's cleanup is cancelled too; the enclosing scope absorbs both.
#[test]
fn cancelling_the_body_cancels_the_producers_cleanup() {
    run(async {
        let events = Log::default();
        let (ev, ev2) = (events.clone(), events.clone());
        let cs = CancelScope::new();
        let inner = cs.clone();
        let out = cs
            .run(as_safe_channel(
                move |tx| async move {
                    let _ = tx.send(()).await;
                    if checkpoint().await.is_err() {
                        ev.push("agen cancel");
                    }
                    Ok(())
                },
                move |rx| async move {
                    rx.receive().await?;
                    inner.cancel();
                    if let Err(e) = checkpoint().await {
                        ev2.push("body cancel");
                        return Err(e);
                    }
                    Ok(())
                },
            ))
            .await?;
        assert_eq!(out, None);
        assert_eq!(events.get(), ["body cancel", "agen cancel"]);
        Ok(())
    });
}

/// `test_as_safe_channel_close_between_iteration`: another task closing the receiver fails
/// the body's receive with ClosedResourceError.
#[test]
fn closing_the_receiver_from_another_task_fails_the_loop() {
    run(async {
        let closed_seen = as_safe_channel(
            |tx| async move {
                loop {
                    tx.send(()).await?;
                }
            },
            |rx| async move {
                let rx = Rc::new(rx);
                let closed_seen = Rc::new(Cell::new(false));
                let seen = closed_seen.clone();
                trio::open_nursery(|n| async move {
                    let closer = rx.clone();
                    n.start_soon(async move {
                        checkpoint().await?;
                        closer.aclose().await
                    })?;
                    loop {
                        match rx.recv().await {
                            Ok(Some(())) => {}
                            Ok(None) => panic!("the producer never ends"),
                            Err(e) => {
                                assert!(e.is::<ClosedResourceError>(), "{e:?}");
                                seen.set(true);
                                return Ok(());
                            }
                        }
                    }
                })
                .await?;
                Ok(closed_seen.get())
            },
        )
        .await?;
        assert!(closed_seen);
        Ok(())
    });
}

/// A request made by a receive that was then cancelled stays: the producer makes the value
/// and waits with it; when the body closes its receiver instead of receiving, the producer's
/// send fails as broken and it ends without an error.
#[test]
fn a_producer_whose_receiver_closed_ends_quietly() {
    run(async {
        let producer_end = Rc::new(Cell::new(None));
        let end = producer_end.clone();
        as_safe_channel(
            move |tx| async move {
                let sent = tx.send(7).await;
                end.set(Some(sent.as_ref().is_err_and(|e| e.is_broken())));
                sent?;
                unreachable!("the receiver was closed");
            },
            |rx| async move {
                assert_eq!(in_cancelled_scope(rx.receive()).await?, None);
                wait_all_tasks_blocked().await?;
                assert_eq!(rx.statistics().tasks_waiting_send, 1);
                rx.close();
                wait_all_tasks_blocked().await?;
                Ok(())
            },
        )
        .await?;
        assert_eq!(producer_end.get(), Some(true));
        Ok(())
    });
}
