//! The public face of the core layer (Trio's `trio.lowlevel`): what the higher layers (sync
//! primitives, channels, I/O) and advanced users build on.

pub use crate::core::checkpoint::{
    CancelShieldedCheckpoint, Checkpoint, CheckpointIfCancelled, RunStatistics,
    WaitAllTasksBlocked, cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled,
    current_clock, current_effective_deadline, current_root_task, current_seed, current_statistics,
    current_task, current_time, current_trio_token, spawn_system_task, wait_all_tasks_blocked,
};
pub use crate::core::entry::TrioToken;
pub use crate::core::instrument::{Instrument, add_instrument, remove_instrument};
pub use crate::core::io::{WaitIo, notify_closing, wait_readable, wait_writable};
pub use crate::core::local::{RunVar, TaskLocal};
pub use crate::core::parking::{
    Park, ParkingLot, ParkingLotStatistics, add_parking_lot_breaker, remove_parking_lot_breaker,
};
pub use crate::core::task::Task;
pub use crate::private::CheckpointSite;

/// Every function marked `#[checkpoint]` in the program: the cancellation points, as data.
pub fn checkpoint_sites() -> impl Iterator<Item = &'static CheckpointSite> {
    inventory::iter::<CheckpointSite>.into_iter()
}

/// A dump of the current run's task tree (names, states, wait channels). Fails outside a run.
pub fn task_dump() -> crate::Result<String> {
    crate::core::run::Runner::with_current(crate::core::dump::task_tree)
        .ok_or_else(|| crate::core::run::not_in_run("task_dump"))
}
