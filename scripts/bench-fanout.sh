#!/bin/sh
# Fan-out benchmark: one node pinned to core 0, the load generator pinned to core 1 (see docs/BENCHMARKS.md).
# Usage: scripts/bench-fanout.sh <node binary> <loadgen binary> [loadgen flags...]
# Defaults: 1000 clients in 20 rooms, idle, 30 s. Example: scripts/bench-fanout.sh bin/tickmesh-node bin/loadgen -n 5000 -rooms 100
set -eu
node=$1; loadgen=$2; shift 2
dir=$(mktemp -d)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pin_node="" pin_lg=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then pin_node="taskset -c 0"; pin_lg="taskset -c 1"; fi
$pin_node "$node" -name bench -http 127.0.0.1:28080 -nats 127.0.0.1:24222 -data "$dir/data" \
  -max-conns-per-ip 100000 -max-conns 100000 -log-level warn 2>"$dir/node.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
until curl -fs http://127.0.0.1:28080/readyz >/dev/null 2>&1; do
  i=$((i+1)); [ $i -gt 300 ] && { echo "node not ready:"; cat "$dir/node.log"; exit 1; }
  sleep 0.1
done
if [ $# -eq 0 ]; then set -- -n 1000 -rooms 20 -ramp 10s -duration 30s; fi
$pin_lg "$loadgen" -url ws://127.0.0.1:28080/ws -pid $pid "$@"
