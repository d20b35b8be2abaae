//! The `console` feature: tokio-console's `runtime.spawn` spans and `runtime::waker` events,
//! in the shapes console-subscriber reads (`core/run/console.rs`).
//!
//! Built only with `--features console` (`required-features` in trio/Cargo.toml).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use trio::lowlevel::wait_all_tasks_blocked;
use trio::{Event as TrioEvent, open_nursery};

/// The fields of a span or event, as text (numbers as their decimal digits).
#[derive(Default, Debug, Clone)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

#[derive(Default)]
struct Seen {
    /// Spawn spans by span id: (target, whether it had a parent, fields).
    spawns: HashMap<u64, (String, bool, Fields)>,
    /// How often each span was entered.
    enters: HashMap<u64, u64>,
    /// Waker events: (op, span id they are filed under).
    wakers: Vec<(String, u64)>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() != "runtime.spawn" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let has_parent = attrs.parent().is_some() || attrs.is_contextual();
        self.0.lock().unwrap().spawns.insert(
            id.into_u64(),
            (attrs.metadata().target().into(), has_parent, fields),
        );
    }

    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        *self
            .0
            .lock()
            .unwrap()
            .enters
            .entry(id.into_u64())
            .or_default() += 1;
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != "runtime::waker" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let op = fields.0["op"].clone();
        let id = fields.0["task.id"].parse().unwrap();
        self.0.lock().unwrap().wakers.push((op, id));
    }
}

impl Seen {
    /// The span id of the task named `name`.
    fn span_of(&self, name: &str) -> u64 {
        let found: Vec<u64> = self
            .spawns
            .iter()
            .filter(|(_, (_, _, f))| f.0.get("task.name").map(String::as_str) == Some(name))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one span for task {name:?}: {:?}",
            self.spawns
        );
        found[0]
    }

    /// The waker operations filed under `span`, in order.
    fn ops_of(&self, span: u64) -> Vec<&str> {
        self.wakers
            .iter()
            .filter(|(_, id)| *id == span)
            .map(|(op, _)| op.as_str())
            .collect()
    }
}

/// Live wakers after `ops`, as the console counts them: clones minus drops.
fn live_wakers(ops: &[&str]) -> i64 {
    ops.iter()
        .map(|op| match *op {
            "waker.clone" => 1,
            "waker.drop" => -1,
            _ => 0,
        })
        .sum()
}

/// Runs, under a capturing subscriber, a nursery with a task named `waiter` that makes
/// `checkpoints` checkpoints and then waits for an event, set once every task is blocked;
/// `others` starts more tasks first.
fn capture_run_with_waiter(
    waiter: &'static str,
    checkpoints: usize,
    others: impl FnOnce(&trio::Nursery) -> trio::Result<()> + 'static,
) -> Capture {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        trio::run(async move {
            open_nursery(|nursery| async move {
                let event = TrioEvent::new();
                let set_later = event.clone();
                nursery.start_soon_named(waiter, async move {
                    for _ in 0..checkpoints {
                        trio::lowlevel::checkpoint().await?;
                    }
                    event.wait().await
                })?;
                others(&nursery)?;
                wait_all_tasks_blocked().await?;
                set_later.set();
                Ok(())
            })
            .await
        })
    })
    .unwrap();
    capture
}

#[test]
fn every_task_has_a_spawn_span_in_consoles_shape_entered_for_each_step() {
    let capture = capture_run_with_waiter("waiter", 3, |_| Ok(()));
    let seen = capture.0.lock().unwrap();
    let span = seen.span_of("waiter");
    let (target, has_parent, fields) = &seen.spawns[&span];
    assert_eq!(target, "runtime::spawn");
    assert!(!has_parent, "task spans never nest");
    assert_eq!(fields.0["kind"], "task");
    assert!(
        fields.0["loc.file"].ends_with("debug_console.rs"),
        "{fields:?}"
    );
    let source = include_str!("debug_console.rs");
    let spawn_line = source
        .lines()
        .position(|l| l.contains("nursery.start_soon_named(waiter,"))
        .unwrap()
        + 1;
    assert_eq!(fields.0["loc.line"], spawn_line.to_string());
    assert!(fields.0.contains_key("loc.col") && fields.0.contains_key("task.id"));
    // Three checkpoints, a wait and the wake-up: five steps at least.
    assert!(
        seen.enters[&span] >= 5,
        "entered {} times",
        seen.enters[&span]
    );
    assert!(seen.spawns.len() >= 3, "init and main have spans too");
}

#[test]
fn waker_events_are_filed_under_the_tasks_span_and_balance_out() {
    let capture = capture_run_with_waiter("blocked", 0, |nursery| {
        // A waker cloned by hand (as a foreign future stores one) and woken.
        nursery.start_soon_named("by-hand", async move {
            let waker = std::future::poll_fn(|cx| std::task::Poll::Ready(cx.waker().clone())).await;
            waker.wake_by_ref();
            waker.wake();
            Ok(())
        })
    });
    let seen = capture.0.lock().unwrap();
    for (op, id) in &seen.wakers {
        assert!(
            seen.spawns.contains_key(id),
            "{op} filed under {id}, not a task span"
        );
    }
    assert_eq!(
        seen.ops_of(seen.span_of("by-hand")),
        [
            "waker.clone",
            "waker.clone",
            "waker.wake_by_ref",
            "waker.drop",
            "waker.drop"
        ],
        "the run's own reference, the clone, one wake-up (the second wake finds the task \
         scheduled already), the clone consumed by `wake`, and the run letting go"
    );
    let blocked = seen.span_of("blocked");
    assert!(
        seen.ops_of(blocked).contains(&"waker.wake_by_ref"),
        "a task woken through its key (Event::set) is reported as woken"
    );
    for name in ["blocked", "by-hand"] {
        let ops = seen.ops_of(seen.span_of(name));
        assert_eq!(live_wakers(&ops), 0, "{name}: every waker accounted for");
    }
}

#[test]
fn a_blocked_task_is_never_reported_as_having_lost_its_waker() {
    let capture = capture_run_with_waiter("parked", 0, |_| Ok(()));
    let seen = capture.0.lock().unwrap();
    let ops = seen.ops_of(seen.span_of("parked"));
    // While it lived (everything before its last event, the run letting go) it held at
    // least one waker: the run's.
    for end in 1..ops.len() {
        assert!(
            live_wakers(&ops[..end]) >= 1,
            "a live task with no waker: {ops:?}"
        );
    }
}

#[test]
fn without_a_subscriber_that_wants_them_there_are_no_console_spans() {
    let capture = Capture::default();
    let filtered = tracing_subscriber::registry().with(capture.clone().with_filter(
        tracing_subscriber::filter::Targets::new().with_target("trio", tracing::Level::TRACE),
    ));
    tracing::subscriber::with_default(filtered, || {
        trio::run(async {
            open_nursery(
                |n| async move { n.start_soon(async { trio::lowlevel::checkpoint().await }) },
            )
            .await
        })
        .unwrap();
    });
    let seen = capture.0.lock().unwrap();
    assert!(seen.spawns.is_empty() && seen.wakers.is_empty());
}
