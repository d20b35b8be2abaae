#!/usr/bin/env bash
# User-space instructions per request of the echo servers (docs/benchmarks.md, "Receives that
# yield first"): each server runs under callgrind while a Python client makes N1, then N2,
# lock-step round trips of 64 bytes on each of C connections; the difference of the two
# totals divided by the requests between them leaves out start-up and shutdown.
#
# Usage: benches/echo_callgrind.sh [C]      (N1, N2 from the environment; 1000 and 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-1}
n1=${N1:-1000}
n2=${N2:-5000}
bin=$(cargo bench -p trio-benches --bench echo --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == "echo":
        print(m["executable"])')
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# Total instructions of `server KIND` for N round trips on each connection.
total() {
    local kind=$1 n=$2
    valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$bin" server "$kind" \
        >"$dir/port" 2>/dev/null &
    local pid=$!
    for _ in $(seq 150); do grep -q port "$dir/port" 2>/dev/null && break; sleep 0.2; done
    python3 benches/echo_client.py "$(awk '/port/{print $2}' "$dir/port")" "$n" "$conns"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk '/^summary:/{print $2}' "$dir/out"
}

for kind in trio tokio; do
    a=$(total "$kind" "$n1")
    b=$(total "$kind" "$n2")
    python3 -c "print(f'$kind {$conns} conns: {($b - $a) / (($n2 - $n1) * $conns):.0f} Ir/request')"
done
