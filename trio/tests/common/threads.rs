//! Helpers for tests of `to_thread` / `from_thread`: named events that a worker thread can
//! set in the run (through `from_thread`), and a gate that trio tasks open for workers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use trio::Event;
use trio::lowlevel::RunVar;

/// The run's named events.
static EVENTS: RunVar<HashMap<&'static str, Event>> = RunVar::with_default("events", HashMap::new);

/// The event called `name` of the current run.
pub fn event(name: &'static str) -> Event {
    EVENTS
        .with(|events| events.entry(name).or_default().clone())
        .expect("inside a run")
}

/// From a `to_thread` worker: sets the event `name` in the run (in the waiting task).
pub fn set_from_worker(name: &'static str) {
    trio::from_thread::run_sync(move || event(name).set()).expect("from_thread::run_sync");
}

/// A gate that blocks worker threads until opened (thread-safe).
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Blocks until the gate is open.
    pub fn wait(&self) {
        let mut open = self.0.0.lock().unwrap();
        while !*open {
            open = self.0.1.wait(open).unwrap();
        }
    }
}

/// Counts of a [`Gauge`].
#[derive(Default)]
struct Counts {
    now: usize,
    high_water: usize,
    total: usize,
}

/// A counter that threads move up and down, with its high-water mark, and a way to wait
/// (in a thread) until it reaches a value.
#[derive(Clone, Default)]
pub struct Gauge(Arc<(Mutex<Counts>, Condvar)>);

impl Gauge {
    /// One more running; returns the new count.
    pub fn enter(&self) -> usize {
        let mut g = self.0.0.lock().unwrap();
        g.now += 1;
        g.high_water = g.high_water.max(g.now);
        g.total += 1;
        self.0.1.notify_all();
        g.now
    }

    pub fn leave(&self) {
        self.0.0.lock().unwrap().now -= 1;
        self.0.1.notify_all();
    }

    pub fn now(&self) -> usize {
        self.0.0.lock().unwrap().now
    }

    pub fn high_water(&self) -> usize {
        self.0.0.lock().unwrap().high_water
    }

    pub fn total(&self) -> usize {
        self.0.0.lock().unwrap().total
    }

    /// Blocks (a thread) until `n` are running, failing after `limit`.
    pub fn wait_for(&self, n: usize, limit: Duration) {
        let start = Instant::now();
        let mut g = self.0.0.lock().unwrap();
        while g.now != n {
            let left = limit
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("gauge stuck at {} waiting for {n}", g.now));
            g = self.0.1.wait_timeout(g, left).unwrap().0;
        }
    }
}
