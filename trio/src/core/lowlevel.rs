//! The public face of the core layer, re-exported as `trio::lowlevel` (Trio's
//! `trio.lowlevel`) together with the one low-level item of a higher layer,
//! `start_thread_soon`.

pub use super::blocked::DescribeWait;
pub use super::checkpoint::{
    CancelShieldedCheckpoint, Checkpoint, CheckpointIfCancelled, SleepForever,
    cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled, current_task_if_not_cancelled,
    sleep_forever, wake_on_cancel,
};
pub use super::dump::{Wchan, task_dump, task_dump_data, wchan};
pub use super::dump_data::{
    ScopeKind, ScopeNode, TaskDump, TaskKind, TaskNode, TaskState, WaitFor,
};
pub use super::entry::TrioToken;
pub use super::external::ExternalWait;
pub use super::idle::{WaitAllTasksBlocked, wait_all_tasks_blocked};
pub use super::introspect::{
    RunStatistics, add_instrument, current_clock, current_effective_deadline, current_root_task,
    current_seed, current_statistics, current_task, current_time, current_trio_token, in_trio_run,
    in_trio_task, remove_instrument, spawn_system_task,
};
pub use super::io::{FdRegistration, WaitIo, notify_closing, wait_readable, wait_writable};
pub use super::local::{RunVar, RunVarToken, TaskLocal};
pub use super::parking::{
    Park, ParkingLot, ParkingLotStatistics, add_parking_lot_breaker, remove_parking_lot_breaker,
};
pub use super::run::debug_hooks::SlowStep;
pub use super::run::instruments::Instrument;
pub use super::task::Task;
pub use super::timeout::Timeout;
pub use crate::private::CheckpointSite;

/// Every function marked `#[checkpoint]` in the program: the cancellation points, as data.
pub fn checkpoint_sites() -> impl Iterator<Item = &'static CheckpointSite> {
    inventory::iter::<CheckpointSite>.into_iter()
}
