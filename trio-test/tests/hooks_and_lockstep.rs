//! Hooks that wait, poll-level waits moving between tasks, and lockstep streams.

mod common;

use std::rc::Rc;

use common::*;
use trio::lowlevel::wait_all_tasks_blocked;
use trio::stream::prelude::*;
use trio::{
    BrokenResourceError, ClosedResourceError, current_time, move_on_after, open_nursery, sleep,
};
use trio_test::{
    AsyncHook, MemoryReceiveStream, MemorySendStream, lockstep_stream_one_way_pair,
    memory_stream_one_way_pair,
};

#[test]
fn send_all_returns_when_its_hook_is_done() {
    run(async {
        let s = MemorySendStream::new();
        let log = Log::default();
        let l = log.clone();
        s.set_send_all_hook(Some(AsyncHook::new(move || {
            let l = l.clone();
            async move {
                sleep(1.0).await?;
                l.push("hook done");
                Ok(())
            }
        })));
        let start = current_time()?;
        s.send_all(b"abc").await?;
        assert_eq!(current_time()? - start, 1.0);
        assert_eq!(log.take(), ["hook done"]);
        assert_eq!(s.get_data_nowait(None)?, b"abc");
        Ok(())
    });
}

#[test]
fn a_cancelled_send_all_takes_its_waiting_hook_with_it() {
    run(async {
        let s = MemorySendStream::new();
        let log = Log::default();
        let l = log.clone();
        s.set_send_all_hook(Some(AsyncHook::new(move || {
            let l = l.clone();
            async move {
                sleep(1.0).await?;
                l.push(format!("hook done at {}", current_time()?));
                Ok(())
            }
        })));
        let start = current_time()?;
        // Cancelled while the hook sleeps: the data is buffered (as Trio's send_all may have
        // sent part of its data when cancelled).
        assert_eq!(move_on_after(0.5, s.send_all(b"a")).await?, None);
        assert!(log.take().is_empty());
        assert_eq!(s.get_data_nowait(None)?, b"a");
        // The next send runs its own hook only (Trio cancels the hook with its send_all).
        s.send_all(b"b").await?;
        assert_eq!(log.take(), [format!("hook done at {}", start + 1.5)]);
        assert_eq!(s.get_data_nowait(None)?, b"b");
        Ok(())
    });
}

#[test]
fn a_failing_hook_fails_the_operation() {
    run(async {
        let s = MemorySendStream::new();
        s.set_send_all_hook(Some(AsyncHook::new(|| async {
            Err(BrokenResourceError::new("the hook says no").into())
        })));
        assert_err::<BrokenResourceError, _>(s.send_all(b"x").await);
        s.set_wait_send_all_might_not_block_hook(Some(AsyncHook::new(|| async {
            sleep(1.0).await?;
            Err(BrokenResourceError::new("later").into())
        })));
        assert_err::<BrokenResourceError, _>(s.wait_send_all_might_not_block().await);
        let r = MemoryReceiveStream::new();
        r.set_receive_some_hook(Some(AsyncHook::new(|| async {
            Err(BrokenResourceError::new("the hook says no").into())
        })));
        r.put_data(b"kept")?;
        assert_err::<BrokenResourceError, _>(r.receive_some(10).await);
        // Nothing was taken.
        r.set_receive_some_hook(None);
        assert_eq!(r.receive_some(10).await?, b"kept");
        Ok(())
    });
}

#[test]
fn a_receive_hook_that_waits_runs_before_the_receive_looks_for_data() {
    run(async {
        let r = MemoryReceiveStream::new();
        let r1 = r.clone();
        r.set_receive_some_hook(Some(AsyncHook::new(move || {
            let r1 = r1.clone();
            async move {
                sleep(1.0).await?;
                r1.put_data(b"from the hook")
            }
        })));
        let start = current_time()?;
        assert_eq!(r.receive_some(100).await?, b"from the hook");
        assert_eq!(current_time()? - start, 1.0);
        Ok(())
    });
}

#[test]
fn a_poll_level_wait_moves_to_the_task_that_polls_next() {
    run(async {
        let (s, r) = memory_stream_one_way_pair();
        let r = Rc::new(r);
        open_nursery(|n| {
            let (r1, r2) = (r.clone(), r.clone());
            async move {
                // One task starts a receive and abandons it while parked...
                n.start_soon(async move {
                    let mut receive = Box::pin(r1.receive_some(10));
                    assert!(poll_once(&mut receive).await.is_pending());
                    assert!(poll_once(&mut receive).await.is_pending());
                    Ok(())
                })?;
                wait_all_tasks_blocked().await?;
                // ... and another receives: the data must wake this one.
                n.start_soon(async move {
                    assert_eq!(r2.receive_some(10).await?, b"data");
                    Ok(())
                })?;
                wait_all_tasks_blocked().await?;
                s.send_all(b"data").await
            }
        })
        .await
    });
}

#[test]
fn a_lockstep_send_waits_until_everything_was_received() {
    run(async {
        let (s, r) = lockstep_stream_one_way_pair();
        let log = Log::default();
        let (l1, l2) = (log.clone(), log.clone());
        open_nursery(|n| async move {
            n.start_soon(async move {
                s.send_all(b"1234567").await?;
                l1.push("sent");
                Ok(())
            })?;
            n.start_soon(async move {
                for _ in 0..3 {
                    // The sender goes as far as it can before each receive.
                    wait_all_tasks_blocked().await?;
                    let got = r.receive_some(3).await?;
                    l2.push(String::from_utf8(got).expect("ascii"));
                }
                Ok(())
            })?;
            Ok(())
        })
        .await?;
        // The send ends after the last receive (maybe before that receive has returned).
        let log = log.take();
        assert_eq!(log[..2], ["123", "456"]);
        assert!(
            log[2..] == ["7", "sent"] || log[2..] == ["sent", "7"],
            "{log:?}"
        );
        Ok(())
    });
}

#[test]
fn a_cancelled_lockstep_send_leaves_its_data_and_the_next_send_waits_for_it() {
    run(async {
        let (s, r) = lockstep_stream_one_way_pair();
        assert_eq!(move_on_after(1.0, s.send_all(b"old")).await?, None);
        let s = Rc::new(s);
        let sent = Log::default();
        let (s1, sent1) = (s.clone(), sent.clone());
        open_nursery(|n| async move {
            n.start_soon(async move {
                s1.send_all(b"new").await?;
                sent1.push("sent");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            assert_eq!(r.receive_some(10).await?, b"old");
            wait_all_tasks_blocked().await?;
            // The new data is handed over, and its send waits for it to be received.
            assert_eq!(sent.len(), 0);
            assert_eq!(r.receive_some(10).await?, b"new");
            wait_all_tasks_blocked().await?;
            assert_eq!(sent.take(), ["sent"]);
            Ok(())
        })
        .await?;
        // Closing either end ends the other's operations.
        s.close();
        assert_err::<ClosedResourceError, _>(s.send_all(b"").await);
        Ok(())
    });
}

#[test]
fn a_cancelled_receive_some_takes_its_waiting_hook_with_it() {
    run(async {
        let r = MemoryReceiveStream::new();
        let log = Log::default();
        let l = log.clone();
        r.set_receive_some_hook(Some(AsyncHook::new(move || {
            let l = l.clone();
            async move {
                l.push(format!("hook started at {}", current_time()?));
                sleep(1.0).await?;
                l.push("hook done");
                Ok(())
            }
        })));
        r.put_data(b"x")?;
        let start = current_time()?;
        assert_eq!(move_on_after(0.5, r.receive_some(10)).await?, None);
        // Nothing was taken, and the next receive runs the hook afresh.
        assert_eq!(r.receive_some(10).await?, b"x");
        assert_eq!(
            log.take(),
            [
                format!("hook started at {start}"),
                format!("hook started at {}", start + 0.5),
                "hook done".to_string()
            ]
        );
        Ok(())
    });
}

#[test]
fn a_cancelled_lockstep_receive_stops_counting_as_waiting() {
    run(async {
        let (s, r) = lockstep_stream_one_way_pair();
        assert_eq!(move_on_after(1.0, r.receive_some(10)).await?, None);
        // No receive waits now: the sender's wait blocks until one starts.
        let log = Log::default();
        let l = log.clone();
        open_nursery(|n| async move {
            n.start_soon(async move {
                s.wait_send_all_might_not_block().await?;
                l.push("wait returned");
                Ok(())
            })?;
            wait_all_tasks_blocked().await?;
            log.push("receive starting");
            let scope = trio::CancelScope::new();
            scope.cancel();
            // A receive that is already cancelled never waits: it does not count.
            assert!(scope.run(r.receive_some(10)).await?.is_none());
            wait_all_tasks_blocked().await?;
            log.push("receive waiting");
            let got = move_on_after(1.0, r.receive_some(10)).await?;
            assert!(got.is_none());
            assert_eq!(
                log.take(),
                ["receive starting", "receive waiting", "wait returned"]
            );
            Ok(())
        })
        .await
    });
}
