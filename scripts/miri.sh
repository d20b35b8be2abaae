#!/usr/bin/env bash
# Runs the `trio` test suite under Miri (nightly, local; not in CI: it needs a nightly toolchain
# with the miri component). The unsafe code it checks: the run queue (core/run/run_queue.rs),
# the current-run and current-task pointers (core/run/runner.rs), the task wakers
# (core/waker.rs), the task-future allocator (core/task_future.rs) and the intrusive wait list
# under ParkingLot (core/wait_list.rs, core/parking.rs).
#
# Usage: scripts/miri.sh [--tree-borrows] [extra cargo test args]
# Test files that need the operating system Miri does not model (epoll, sockets, processes,
# signals, real sleeps) or a cargo feature are left out, and so is the one test that asserts
# on wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
flags="-Zmiri-disable-isolation"
if [ "${1:-}" = "--tree-borrows" ]; then
    flags="$flags -Zmiri-tree-borrows"
    shift
fi
rustup +nightly component add miri rust-src >/dev/null 2>&1 || true
targets=()
for file in trio/tests/*.rs; do
    name=$(basename "$file" .rs)
    case "$name" in
        core_io | core_layout | checkpoint_rule | net_* | socket* | process* | fs_* | signal* \
            | thread* | debug_signal | debug_slow_steps | debug_tracing) ;;
        *) targets+=(--test "$name") ;;
    esac
done
export MIRIFLAGS="$flags"
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
exec cargo +nightly miri test --no-fail-fast -p trio --lib "${targets[@]}" "$@" -- \
    --skip mock_clock_rate_and_jump
