#!/bin/sh
# The relay against a minimal Go broadcast server (issue #22, docs/BENCHMARKS.md "Rooms"): for each shape, in one
# run, (a) the relay node of scripts/bench-fanout.sh (relay on core 0, owner node and loadgen on core 1) with
# loadgen speaking protocol 1, so that the relay sends JSON ticks, then (b) cmd/plainrelay (internal/plainrelay)
# on core 0 under the same loadgen flags, measured by loadgen through -pid. Both get the same sockets: a room of
# S players is S-1 measured sockets plus, on the relay, bench-fanout.sh's seed client on the owner node; the
# plain server lists one extra player in each room's tick in its place (-extra-players 1), so that the frames
# are as large. It prints per shape the CPU per delivered message of each, the delivered fraction, the average
# tick frame on the wire, and the ratio relay / plain.
#
# Usage: scripts/bench-baseline.sh <node binary> <loadgen binary> <plainrelay binary> [more loadgen flags...]
# BENCH_SHAPES are the shapes, rooms x players (default "250x4 20x50"); BENCH_DURATION each run's measurement
# window (default 30s), BENCH_RAMP its ramp (default 10s); BENCH_OUT the directory of the reports (default
# bench-baseline-<UTC time>): each run's table (.txt) and JSON (.json). A quick check that it runs:
#   BENCH_SHAPES=5x4 BENCH_DURATION=3s BENCH_RAMP=1s task bench:baseline
set -eu
node=$1; loadgen=$2; plain=$3; shift 3
out=${BENCH_OUT:-bench-baseline-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
pin0="" pin1=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then pin0="taskset -c 0"; pin1="taskset -c 1"; fi
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true' EXIT INT TERM

# field <name> <loadgen JSON>: the first value of the member (the server's, for the CPU per message); 0 if none.
field() { [ -f "$2" ] || { echo 0; return; }; awk -v k="\"$1\":" 'index($0, k) { v = $NF; sub(/,$/, "", v); print v; f = 1; exit } END { if (!f) print 0 }' "$2"; }

summary=""
for shape in ${BENCH_SHAPES:-250x4 20x50}; do
  rooms=${shape%x*}; size=${shape#*x}
  n=$((rooms * (size - 1)))
  flags="-n $n -rooms $rooms -ramp ${BENCH_RAMP:-10s} -duration ${BENCH_DURATION:-30s} -protocol 1"
  echo "== $rooms rooms of $size players ($n measured sockets): the relay" | tee "$out/relay-$shape.txt"
  sh "$(dirname "$0")/bench-fanout.sh" "$node" "$loadgen" $flags -json "$out/relay-$shape.json" "$@" | tee -a "$out/relay-$shape.txt"

  echo "== $rooms rooms of $size players ($n measured sockets): the plain server" | tee "$out/plain-$shape.txt"
  $pin0 "$plain" -http 127.0.0.1:28090 -extra-players 1 -max-sockets $((n + 100)) -max-rooms $((rooms + 10)) \
    >"$out/plain-$shape.log" 2>&1 &
  pid=$!
  i=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:28090/ws)" != 000 ]; do
    i=$((i+1)); [ $i -gt 100 ] && { echo "plainrelay not listening:"; cat "$out/plain-$shape.log"; exit 1; }
    sleep 0.1
  done
  $pin1 "$loadgen" -url ws://127.0.0.1:28090/ws -pid "$pid" $flags -json "$out/plain-$shape.json" "$@" | tee -a "$out/plain-$shape.txt"
  kill "$pid" 2>/dev/null || true; wait "$pid" || true; pid=""

  summary="$summary$shape"
  for k in cpu_us_per_message fraction_delivered bytes_per_tick; do
    summary="$summary $(field $k "$out/relay-$shape.json") $(field $k "$out/plain-$shape.json")"
  done
  summary="$summary
"
done
echo "== the relay against the plain server: CPU per delivered message, delivered / expected, tick frame on the wire"
printf '%s' "$summary" | awk 'BEGIN { printf "%-8s %10s %10s %12s %10s %10s %12s %12s\n", "shape", "relay µs", "plain µs",
    "relay/plain", "relay del.", "plain del.", "relay bytes", "plain bytes" }
  { printf "%-8s %10.2f %10.2f %12s %10.4f %10.4f %12.1f %12.1f\n", $1, $2, $3, ($3 > 0 ? sprintf("%.2f", $2 / $3) : "-"),
    $4, $5, $6, $7 }'
echo "reports in $out"
