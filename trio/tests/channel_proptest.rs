//! Property test: random send / receive / try / close / clone / cancel / drop sequences on a
//! memory channel never lose or duplicate a value, and the statistics stay consistent.
//!
//! One task drives every operation: each blocking operation is a boxed future (inside its own
//! cancel scope) that the driver polls by hand, so the test controls exactly when each one
//! runs, is cancelled, or is dropped.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use common::*;
use proptest::prelude::*;
use trio::{CancelScope, MemoryReceiveChannel, MemorySendChannel, open_memory_channel};

#[derive(Clone, Debug)]
enum Op {
    StartSend(usize),
    StartReceive(usize),
    TrySend(usize),
    TryReceive(usize),
    PollAll,
    Cancel(usize),
    Drop(usize),
    CloseSender(usize),
    CloseReceiver(usize),
    CloneSender(usize),
    CloneReceiver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize).prop_map(Op::StartSend),
        4 => (0..4usize).prop_map(Op::StartReceive),
        2 => (0..4usize).prop_map(Op::TrySend),
        2 => (0..4usize).prop_map(Op::TryReceive),
        4 => Just(Op::PollAll),
        2 => (0..8usize).prop_map(Op::Cancel),
        2 => (0..8usize).prop_map(Op::Drop),
        1 => (0..4usize).prop_map(Op::CloseSender),
        1 => (0..4usize).prop_map(Op::CloseReceiver),
        1 => (0..4usize).prop_map(Op::CloneSender),
        1 => (0..4usize).prop_map(Op::CloneReceiver),
    ]
}

/// How a blocking operation ended.
#[derive(Debug)]
enum Outcome {
    Sent(u64),
    NotSent(u64),
    Received(u64),
    NotReceived,
}

type OpFuture = Pin<Box<dyn Future<Output = trio::Result<Option<Outcome>>>>>;

struct Pending {
    future: OpFuture,
    scope: CancelScope,
    is_send: bool,
    /// The value a send carries.
    value: Option<u64>,
}

#[derive(Default)]
struct Model {
    next_value: u64,
    sent: HashSet<u64>,
    not_sent: HashSet<u64>,
    /// Values of send futures dropped before they finished: may or may not have arrived.
    unknown: HashSet<u64>,
    received: Vec<u64>,
    /// Sent values that were still in the channel when the last receiver closed.
    maybe_dropped: HashSet<u64>,
    dropped_receives: usize,
}

impl Model {
    fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Sent(v) => assert!(self.sent.insert(v)),
            Outcome::NotSent(v) => assert!(self.not_sent.insert(v)),
            Outcome::Received(v) => self.received.push(v),
            Outcome::NotReceived => {}
        }
    }
}

struct Driver {
    senders: Vec<Rc<MemorySendChannel<u64>>>,
    receivers: Vec<Rc<MemoryReceiveChannel<u64>>>,
    pending: Vec<Pending>,
    model: Model,
    max_buffer: usize,
    receivers_all_closed: bool,
}

impl Driver {
    fn open_senders(&self) -> usize {
        self.senders.iter().filter(|s| !s.is_closed()).count()
    }

    fn open_receivers(&self) -> usize {
        self.receivers.iter().filter(|r| !r.is_closed()).count()
    }

    /// Polls pending operation `i` once; records and removes it if it finished.
    async fn poll_one(&mut self, i: usize) -> bool {
        let polled = poll_once(&mut self.pending[i].future).await;
        match polled {
            Poll::Pending => false,
            Poll::Ready(result) => {
                let outcome = result
                    .expect("op bodies do not fail")
                    .expect("not absorbed");
                self.pending.remove(i);
                self.model.record(outcome);
                true
            }
        }
    }

    /// Polls every pending operation until none finishes in a whole round: then each one
    /// still pending is parked.
    async fn settle(&mut self) {
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < self.pending.len() {
                if self.poll_one(i).await {
                    progressed = true;
                } else {
                    i += 1;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn start_send(&mut self, h: usize) -> Pending {
        let tx = self.senders[h % self.senders.len()].clone();
        let v = self.model.next_value;
        self.model.next_value += 1;
        let scope = CancelScope::new();
        let body = async move {
            Ok(match tx.send(v).await {
                Ok(()) => Outcome::Sent(v),
                Err(e) => Outcome::NotSent(e.into_value()),
            })
        };
        Pending {
            future: Box::pin(scope.run(body)),
            scope,
            is_send: true,
            value: Some(v),
        }
    }

    fn start_receive(&mut self, h: usize) -> Pending {
        let rx = self.receivers[h % self.receivers.len()].clone();
        let scope = CancelScope::new();
        let body = async move {
            Ok(match rx.receive().await {
                Ok(v) => Outcome::Received(v),
                Err(_) => Outcome::NotReceived,
            })
        };
        Pending {
            future: Box::pin(scope.run(body)),
            scope,
            is_send: false,
            value: None,
        }
    }

    fn note_close_of_last_receiver(&mut self) {
        if !self.receivers_all_closed && self.open_receivers() == 0 {
            self.receivers_all_closed = true;
            let received: HashSet<u64> = self.model.received.iter().copied().collect();
            // Sends still pending may already have put their value in the buffer.
            let pending = self.pending.iter().filter_map(|p| p.value.as_ref());
            let in_channel = self
                .model
                .sent
                .iter()
                .chain(&self.model.unknown)
                .chain(pending);
            let gone: Vec<u64> = in_channel
                .filter(|v| !received.contains(v))
                .copied()
                .collect();
            self.model.maybe_dropped.extend(gone);
        }
    }

    async fn apply(&mut self, op: Op) {
        match op {
            Op::StartSend(h) => {
                let p = self.start_send(h);
                self.pending.push(p);
                let last = self.pending.len() - 1;
                self.poll_one(last).await;
            }
            Op::StartReceive(h) => {
                let p = self.start_receive(h);
                self.pending.push(p);
                let last = self.pending.len() - 1;
                self.poll_one(last).await;
            }
            Op::TrySend(h) => {
                let v = self.model.next_value;
                self.model.next_value += 1;
                match self.senders[h % self.senders.len()].try_send(v) {
                    Ok(()) => self.model.record(Outcome::Sent(v)),
                    Err(e) => self.model.record(Outcome::NotSent(e.into_value())),
                }
            }
            Op::TryReceive(h) => {
                if let Ok(v) = self.receivers[h % self.receivers.len()].try_receive() {
                    self.model.record(Outcome::Received(v));
                }
            }
            Op::PollAll => self.settle().await,
            Op::Cancel(i) if !self.pending.is_empty() => {
                let i = i % self.pending.len();
                self.pending[i].scope.cancel();
                self.poll_one(i).await;
            }
            Op::Drop(i) if !self.pending.is_empty() => {
                let p = self.pending.remove(i % self.pending.len());
                if let Some(v) = p.value {
                    self.model.unknown.insert(v);
                } else {
                    self.model.dropped_receives += 1;
                }
                drop(p);
            }
            Op::Cancel(_) | Op::Drop(_) => {}
            Op::CloseSender(h) => self.senders[h % self.senders.len()].close(),
            Op::CloseReceiver(h) => {
                self.receivers[h % self.receivers.len()].close();
                self.note_close_of_last_receiver();
            }
            Op::CloneSender(h) => {
                let c = (*self.senders[h % self.senders.len()]).clone();
                self.senders.push(Rc::new(c));
            }
            Op::CloneReceiver(h) => {
                let c = (*self.receivers[h % self.receivers.len()]).clone();
                self.receivers.push(Rc::new(c));
            }
        }
    }

    /// Statistics that must hold after any operation.
    fn check_stats(&self, settled: bool) {
        let s = self.senders[0].statistics();
        assert_eq!(s, self.receivers[0].statistics());
        assert_eq!(s.max_buffer_size, self.max_buffer);
        assert_eq!(s.open_send_channels, self.open_senders());
        assert_eq!(s.open_receive_channels, self.open_receivers());
        let sends = self.pending.iter().filter(|p| p.is_send).count();
        let receives = self.pending.len() - sends;
        assert!(s.tasks_waiting_send <= sends, "{s:?}");
        assert!(s.tasks_waiting_receive <= receives, "{s:?}");
        assert!(
            s.tasks_waiting_send == 0 || s.tasks_waiting_receive == 0,
            "{s:?}"
        );
        if s.tasks_waiting_receive > 0 {
            assert_eq!(s.current_buffer_used, 0, "{s:?}");
        }
        if s.tasks_waiting_send > 0 {
            assert!(s.current_buffer_used >= self.max_buffer, "{s:?}");
        }
        assert!(
            s.current_buffer_used <= self.max_buffer.saturating_add(self.model.dropped_receives),
            "{s:?}"
        );
        if settled {
            assert_eq!(s.tasks_waiting_send, sends, "{s:?}");
            assert_eq!(s.tasks_waiting_receive, receives, "{s:?}");
        }
    }

    /// Drops what is left, closes the senders and drains the channel.
    async fn finish(&mut self) {
        self.settle().await;
        self.check_stats(true);
        for p in std::mem::take(&mut self.pending) {
            if let Some(v) = p.value {
                self.model.unknown.insert(v);
            }
        }
        for tx in &self.senders {
            tx.close();
        }
        if let Some(rx) = self.receivers.iter().find(|r| !r.is_closed()).cloned() {
            loop {
                match rx.try_receive() {
                    Ok(v) => self.model.record(Outcome::Received(v)),
                    Err(e) => {
                        assert!(e.is::<trio::EndOfChannel>(), "{e:?}");
                        break;
                    }
                }
            }
        }
        let s = self.senders[0].statistics();
        assert_eq!((s.tasks_waiting_send, s.tasks_waiting_receive), (0, 0));
    }

    fn check_values(&self) {
        let m = &self.model;
        let mut seen = HashSet::new();
        for v in &m.received {
            assert!(
                seen.insert(*v),
                "value {v} received twice: {:?}",
                m.received
            );
            assert!(*v < m.next_value, "value {v} was never sent");
            assert!(
                !m.not_sent.contains(v),
                "value {v} failed to send but arrived"
            );
        }
        for v in &m.sent {
            assert!(
                seen.contains(v) || m.maybe_dropped.contains(v),
                "value {v} was sent but lost (received {:?})",
                m.received
            );
        }
    }
}

fn check(max_buffer: usize, ops: Vec<Op>) {
    check_with(max_buffer, ops, false);
}

/// With `fifo`, receives are all `try_receive` (no receive future can reorder deliveries), so
/// values must arrive in the order they were created: senders block and are served in order.
fn check_with(max_buffer: usize, ops: Vec<Op>, fifo: bool) {
    let ops: Vec<Op> = if fifo {
        ops.into_iter()
            .map(|op| match op {
                Op::StartReceive(h) => Op::TryReceive(h),
                op => op,
            })
            .collect()
    } else {
        ops
    };
    run(async move {
        let (tx, rx) = open_memory_channel::<u64>(max_buffer);
        let mut d = Driver {
            senders: vec![Rc::new(tx)],
            receivers: vec![Rc::new(rx)],
            pending: Vec::new(),
            model: Model::default(),
            max_buffer,
            receivers_all_closed: false,
        };
        for op in ops {
            let settled = matches!(op, Op::PollAll);
            d.apply(op).await;
            d.check_stats(settled);
        }
        d.finish().await;
        d.check_values();
        if fifo {
            let r = &d.model.received;
            assert!(r.windows(2).all(|w| w[0] < w[1]), "out of order: {r:?}");
        }
        Ok(())
    });
}

/// 512 cases, or `PROPTEST_CASES` (more for a soak run, fewer under Miri).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_value_lost_or_duplicated(
        max_buffer in prop_oneof![Just(0usize), Just(1), Just(2), Just(5), Just(usize::MAX)],
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        check(max_buffer, ops);
    }

    #[test]
    fn values_arrive_in_fifo_order(
        max_buffer in prop_oneof![Just(0usize), Just(1), Just(3)],
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        check_with(max_buffer, ops, true);
    }
}

#[test]
fn regression_drop_after_hand_off_then_close() {
    use Op::*;
    check(
        0,
        vec![
            StartReceive(0),
            StartSend(0),
            Drop(0),
            CloseSender(0),
            PollAll,
            TryReceive(0),
        ],
    );
    check(
        1,
        vec![
            StartReceive(0),
            CloneReceiver(0),
            StartReceive(1),
            TrySend(0),
            Drop(0),
        ],
    );
}
