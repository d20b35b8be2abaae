//! The core layer: run loop, tasks, nurseries, cancel scopes, parking lot, reactor, entry
//! queue, Ctrl-C, instruments and local storage.
//!
//! Everything above this layer (sync primitives, channels, timeouts, I/O) is built from what
//! `trio::lowlevel` exports; nothing above reaches into these modules' internals.

pub(crate) mod cancel;
pub(crate) mod checkpoint;
pub(crate) mod clock;
pub(crate) mod deadlines;
pub(crate) mod dump;
pub(crate) mod entry;
pub(crate) mod instrument;
pub(crate) mod io;
pub(crate) mod ki;
pub(crate) mod local;
pub(crate) mod nursery;
pub(crate) mod parking;
pub(crate) mod run;
pub(crate) mod seconds;
pub(crate) mod task;
pub(crate) mod task_future;
pub(crate) mod wait_list;
