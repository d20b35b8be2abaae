//! The core layer: the run loop, tasks, nurseries, cancel scopes, the parking lot, and the
//! drivers the loop owns (reactor, deadlines, entry queue, Ctrl-C).
//!
//! Inside, three kinds of module (docs/architecture.md tells the whole story):
//!
//! - **The run** — `run/` (the runner, spawn, the loop, the run queue, instruments), `task`,
//!   `waker`, `task_future`, `nursery`, `start`, `cancel`, `parking` and `wait_list`. These know
//!   each other, as Trio's `_run.py` does: a task lives in a nursery, a nursery is a cancel
//!   scope, a scope wakes tasks, the loop runs them.
//! - **Drivers** — `io/reactor`, `deadlines`, `entry`, `ki`, `clock`, `storage`. Each is owned by
//!   the runner and knows nothing of it: it keeps its own state, returns results, and leaves
//!   their meaning to the loop. They import no module of the run.
//! - **APIs** — `checkpoint`, `external`, `idle`, `introspect`, `local`, `dump`, `io/wait`,
//!   `io/registration`: what tasks call. They reach the runner through `Runner::with_current`
//!   and are imported by nothing in the run.
//!
//! [`lowlevel`] is the public face of this layer; the crate root re-exports the rest (run,
//! nurseries, cancel scopes, clocks). Nothing above this layer names `crate::core`.

pub(crate) mod blocked;
pub(crate) mod cancel;
pub(crate) mod cancel_scope;
pub(crate) mod checkpoint;
pub(crate) mod clock;
pub(crate) mod deadlines;
pub(crate) mod dump;
pub(crate) mod dump_data;
pub(crate) mod dump_signal;
pub(crate) mod entry;
pub(crate) mod external;
pub(crate) mod idle;
pub(crate) mod introspect;
pub(crate) mod io;
pub(crate) mod ki;
pub(crate) mod local;
pub mod lowlevel;
pub(crate) mod nursery;
pub(crate) mod parking;
pub(crate) mod run;
pub(crate) mod start;
pub(crate) mod storage;
pub(crate) mod task;
pub(crate) mod task_future;
pub(crate) mod timeout;
pub(crate) mod wait_list;
pub(crate) mod waker;

pub use cancel_scope::{CancelScope, ScopeRun};
pub use clock::{Clock, IntoSeconds, SystemClock};
pub use nursery::{Nursery, NurseryRun, open_nursery};
pub use run::instruments::Instrument;
pub use run::{RunConfig, run};
pub use start::{Start, TaskStatus};
