//! [`start_thread_soon`]: Trio's `trio.lowlevel.start_thread_soon`, the worker-thread cache
//! without a run around it.

use std::ffi::{CStr, CString};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::cache::{self, Job};
use crate::{Error, Result};

/// Runs `f` in a worker thread of trio's cache (the threads [`to_thread`](crate::to_thread)
/// uses), then calls `deliver` with its outcome in that same thread: `Ok(value)`, or
/// `Err(payload)` if `f` panicked.
///
/// The low-level primitive under `to_thread`, for code that manages its own waiting (say,
/// `deliver` wakes a task or sends through a
/// [`TrioToken`](crate::lowlevel::TrioToken)). It needs no run and may be called from any
/// thread. Nothing limits how many threads it starts; `deliver` must be quick and must not
/// block, because the worker counts as idle again while it runs. A panic in `deliver` is
/// reported by the panic hook and the worker goes on.
///
/// `name`, if given, is the OS name of the thread while `f` runs (cut to the platform's
/// limit, as [`Options::thread_name`](crate::to_thread::Options::thread_name)).
///
/// Fails only when no thread can be started; then neither `f` nor `deliver` runs.
pub fn start_thread_soon<T, F, D>(f: F, deliver: D, name: Option<&str>) -> Result<()>
where
    F: FnOnce() -> T + Send + 'static,
    D: FnOnce(std::thread::Result<T>) + Send + 'static,
    T: Send + 'static,
{
    let job = SoonJob {
        f: Some(f),
        outcome: None,
        deliver,
        name: name.map(cache::os_name),
    };
    cache::start_thread_soon(Box::new(job)).map_err(|e| {
        Error::new(std::io::Error::new(
            e.kind(),
            format!("start_thread_soon could not start a worker thread: {e}"),
        ))
    })
}

struct SoonJob<F, T, D> {
    f: Option<F>,
    outcome: Option<std::thread::Result<T>>,
    deliver: D,
    name: Option<CString>,
}

impl<F, T, D> Job for SoonJob<F, T, D>
where
    F: FnOnce() -> T + Send + 'static,
    D: FnOnce(std::thread::Result<T>) + Send + 'static,
    T: Send + 'static,
{
    fn thread_name(&self) -> Option<&CStr> {
        self.name.as_deref()
    }

    fn work(&mut self) {
        if let Some(f) = self.f.take() {
            self.outcome = Some(catch_unwind(AssertUnwindSafe(f)));
        }
    }

    fn deliver(self: Box<Self>) {
        let SoonJob {
            outcome, deliver, ..
        } = *self;
        if let Some(outcome) = outcome {
            deliver(outcome);
        }
    }
}
