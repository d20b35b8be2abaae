//! The `tracing` feature (issue 15): a span per task, named as the task and parented as the
//! task tree; events for cancellations with their reason, nursery failures and slow steps;
//! tracing-subscriber's fmt output shows them with their task context.
//!
//! Built only with `--features tracing` (`required-features` in trio/Cargo.toml).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use trio::lowlevel::{sleep_forever, wait_all_tasks_blocked};
use trio::{CancelScope, open_nursery};

/// The fields of a span or event as `name=value` text.
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The task name of a span, kept in its extensions.
struct TaskName(String);

/// What the test subscriber saw.
#[derive(Default)]
struct Seen {
    /// (task name, parent task name)
    spans: Vec<(String, Option<String>)>,
    /// (target, fields, names of the spans around the event, innermost first)
    events: Vec<(String, Fields, Vec<String>)>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        // Only trio's task spans (with `--all-features`, tokio-console's spans are there too).
        if attrs.metadata().name() != "task" {
            return;
        }
        attrs.record(&mut fields);
        let name = fields.get("name").unwrap_or("?").to_string();
        let span = ctx.span(id).expect("a new span");
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<TaskName>().map(|n| n.0.clone()));
        span.extensions_mut().insert(TaskName(name.clone()));
        self.0.lock().unwrap().spans.push((name, parent));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .filter_map(|s| s.extensions().get::<TaskName>().map(|n| n.0.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let target = event.metadata().target().to_string();
        self.0.lock().unwrap().events.push((target, fields, scope));
    }
}

#[test]
fn spans_follow_the_task_tree_and_events_say_what_went_wrong() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let result = tracing::subscriber::with_default(subscriber, || {
        trio::RunConfig::new()
            .ctrl_c(false)
            .detect_slow_steps(0.001)
            .on_slow_step(|_| {})
            .run(async {
                let outcome = open_nursery(|nursery| async move {
                    nursery.start_soon_named("parent", async {
                        open_nursery(|inner| async move {
                            inner.start_soon_named("sleeper", async { sleep_forever().await })?;
                            Ok(())
                        })
                        .await
                    })?;
                    nursery.start_soon_named("blocker", async {
                        std::thread::sleep(Duration::from_millis(5));
                        Ok(())
                    })?;
                    wait_all_tasks_blocked().await?;
                    nursery.start_soon_named("failer", async {
                        Err(trio::Error::new(std::io::Error::other("broken on purpose")))
                    })?;
                    Ok(())
                })
                .await;
                assert!(outcome.is_err(), "the failer's error comes out");
                CancelScope::new()
                    .run(async {
                        let scope = CancelScope::new();
                        scope.cancel_with_reason("no longer needed");
                        scope.run(sleep_forever()).await
                    })
                    .await?;
                Ok(())
            })
    });
    result.expect("the run");
    let seen = capture.0.lock().unwrap();
    let parent_of = |name: &str| {
        seen.spans
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no span for {name}: {:?}", seen.spans))
            .1
            .clone()
    };
    assert_eq!(parent_of("<init>"), None);
    assert_eq!(parent_of("<main>").as_deref(), Some("<init>"));
    assert_eq!(parent_of("parent").as_deref(), Some("<main>"));
    assert_eq!(parent_of("sleeper").as_deref(), Some("parent"));

    let failure = seen
        .events
        .iter()
        .find(|(target, _, _)| target == "trio::nursery")
        .expect("a nursery failure event");
    assert_eq!(failure.1.get("failed"), Some(r#"task "failer""#));
    assert!(
        failure
            .1
            .get("error")
            .unwrap()
            .contains("broken on purpose")
    );

    let cancel = seen
        .events
        .iter()
        .find(|(target, fields, _)| {
            target == "trio::cancel" && fields.get("reason") == Some("no longer needed")
        })
        .expect("the explicit cancellation with its reason");
    assert_eq!(cancel.2.first().map(String::as_str), Some("<main>"));
    let sibling_cancel = seen
        .events
        .iter()
        .find(|(target, fields, _)| {
            target == "trio::cancel" && fields.get("failed_task") == Some("failer")
        })
        .expect("the nursery cancelled for the failure");
    assert!(
        sibling_cancel
            .1
            .get("reason")
            .unwrap()
            .contains("broken on purpose")
    );

    let slow = seen
        .events
        .iter()
        .find(|(target, fields, _)| {
            target == "trio::slow_step" && fields.get("task") == Some("blocker")
        })
        .expect("the slow step");
    assert!(
        slow.1
            .get("spawn_site")
            .unwrap()
            .contains("debug_tracing.rs")
    );
    assert_eq!(
        slow.2.first().map(String::as_str),
        Some("blocker"),
        "reported inside the task's span"
    );
}

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fmt_output_shows_the_task_context() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        trio::RunConfig::new().ctrl_c(false).run(async {
            open_nursery(|nursery| async move {
                nursery.start_soon_named("worker", async {
                    let scope = CancelScope::new();
                    scope.cancel_with_reason("shutting down");
                    scope.run(sleep_forever()).await?;
                    Ok(())
                })?;
                Ok(())
            })
            .await
        })
    })
    .expect("the run");
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("shutting down"))
        .unwrap_or_else(|| panic!("no cancellation line in\n{text}"));
    assert!(
        line.contains(
            r#"task{name=<main> id=1}:task{name=worker id=2}: trio::cancel: cancel scope cancelled"#
        ),
        "{line}"
    );
}
