#!/bin/sh
# Memory per idle socket of the relay node, measured inside one process (see docs/BENCHMARKS.md, Fan-out):
# bench-fanout.sh runs the two nodes at 2 ticks/s with BASE clients (default 1000) for the whole run; once they
# are all open, a second load generator adds MORE clients (default 8000) to the same rooms and reports the
# relay's RSS before and after them: (RSS with BASE+MORE − RSS with BASE) ÷ MORE is the marginal RSS per socket.
# Comparing two separate runs instead mixes in how much JetStream happened to cache in each (±8 MB).
#
# Usage: scripts/bench-idle-memory.sh <node binary> <loadgen binary>
# BASE, MORE and ROOMS (default 100) change the counts; BENCH_NODE_FLAGS adds node flags; GOGC and GC_PERCENT
# in the environment reach the nodes.
set -eu
node=$1; loadgen=$2
base=${BASE:-1000}; more=${MORE:-8000}; rooms=${ROOMS:-100}
pin1=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then pin1="taskset -c 1"; fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

# The base clients are open about 30 s after the start (nodes, seed clients, a 20 s ramp); the added ones ramp
# for 30 s and are measured for 20 s, well within the base run's 90 s.
(
  sleep 35
  pid=$(pgrep -f -- "-name relay -http 127.0.0.1:28080" | head -1)
  $pin1 "$loadgen" -url ws://127.0.0.1:28080/ws -pid "$pid" -n "$more" -rooms "$rooms" -ramp 30s -duration 20s \
    -tick-rate 2 -name more >"$out" 2>&1 || cat "$out" >&2
) &
added=$!
BENCH_NODE_FLAGS="-tick-rate 2 ${BENCH_NODE_FLAGS:-}" sh "$(dirname "$0")/bench-fanout.sh" "$node" "$loadgen" \
  -n "$base" -rooms "$rooms" -ramp 20s -duration 90s -tick-rate 2 2>&1 | sed 's/^/base: /'
wait "$added"
sed 's/^/added: /' "$out"
