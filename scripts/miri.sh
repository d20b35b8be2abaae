#!/usr/bin/env bash
# Runs the whole `trio` test suite under Miri (nightly, local; not in CI: it needs a nightly
# toolchain with the miri component). The unsafe code it checks: the run queue
# (core/run/run_queue.rs), the current-run and current-task pointers (core/run/runner.rs), the
# task wakers (core/waker.rs), the task-future allocator (core/task_future.rs) and the
# intrusive wait list under ParkingLot (core/wait_list.rs, core/parking.rs).
#
# Usage: scripts/miri.sh [--tree-borrows] [extra cargo test args, e.g. --test core_runtime]
# Tests that need real time, real I/O or processes are skipped (Miri has no epoll and is slow).
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-Zmiri-disable-isolation"
if [ "${1:-}" = "--tree-borrows" ]; then
    flags="$flags -Zmiri-tree-borrows"
    shift
fi
rustup +nightly component add miri rust-src >/dev/null 2>&1 || true
export MIRIFLAGS="$flags"
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
exec cargo +nightly miri test -p trio --tests "$@" -- \
    --skip mock_clock_rate_and_jump --skip core_io --skip real_io
