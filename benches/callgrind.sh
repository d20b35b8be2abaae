#!/usr/bin/env bash
# Instructions per operation for every case of benches/callgrind.rs, under callgrind.
#
# Each case runs at two sizes (N1 and N2 operations); the difference of the two instruction
# counts divided by N2 - N1 is the cost of one operation, without process start-up and runtime
# creation. Usage: benches/callgrind.sh [case ...]   (default: every case)
# Environment: N1 (default 20000), N2 (default 120000); cargo's own (CARGO_TARGET_DIR, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
n1="${N1:-20000}"
n2="${N2:-120000}"
# Cargo names the executable it built in its JSON messages; taking it from there (not from a
# listing of target/release/deps) cannot pick a stale binary of an older build or another package.
bin=$(cargo bench -p trio-benches --bench callgrind --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "callgrind.sh: building the callgrind bench failed; run" >&2
    echo "  cargo bench -p trio-benches --bench callgrind --no-run" >&2
    exit 1
fi
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
    mapfile -t cases < <("$bin" --list)
fi
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
printf '%-24s %12s\n' case 'Ir/op'
for case in "${cases[@]}"; do
    a=$(count "$case" "$n1")
    b=$(count "$case" "$n2")
    awk -v c="$case" -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" \
        'BEGIN { printf "%-24s %12.1f\n", c, (b - a) / (n2 - n1) }'
done
