#!/usr/bin/env bash
# Instructions per operation for every case of benches/callgrind.rs, under callgrind.
#
# Each case runs at two sizes (N1 and N2 operations); the difference of the two instruction
# counts divided by N2 - N1 is the cost of one operation, without process start-up and runtime
# creation. Usage: benches/callgrind.sh [case ...]   (default: every case)
# Environment: CARGO_TARGET_DIR (default target), N1 (default 20000), N2 (default 120000).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
n1="${N1:-20000}"
n2="${N2:-120000}"
cargo bench --bench callgrind --no-run >/dev/null 2>&1
bin=$(ls -t "$target"/release/deps/callgrind-* | grep -v '\.d$' | head -n 1)
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
