#!/bin/sh
# Protocol 1 and 2 side by side (docs/BENCHMARKS.md, "Protocol 2"): rooms of 10, 50, 200 and 1000 players, with
# every player moving and with 10 % moving, about 1000 sockets in each row (BENCH_SOCKETS). Each row is a fresh
# two-node setup of scripts/bench-fanout.sh (relay node on core 0, owner node and loadgen on core 1) in which
# loadgen runs the same load in protocol 1, then in protocol 2 with the same players, and prints them side by side.
#
# Usage: scripts/bench-protocols.sh <node binary> <loadgen binary> [more loadgen flags...]
# BENCH_DURATION sets each run's measurement window (default 30s), BENCH_RAMP its ramp (default 10s); BENCH_OUT the
# directory of the reports (default bench-protocols-<UTC time>), which gets each row's table (.txt) and JSON
# (.json); BENCH_SIZES and BENCH_MOVING the rows (default "10 50 200 1000" and "1 0.1"); BENCH_SOCKETS the sockets
# of a row (default 1000: rooms of a size get BENCH_SOCKETS/size rooms, at least one). A quick check that it runs:
#   BENCH_SOCKETS=20 BENCH_SIZES=10 BENCH_MOVING=0.5 BENCH_DURATION=2s BENCH_RAMP=1s task bench:protocols -- -between 1s
set -eu
node=$1; loadgen=$2; shift 2
out=${BENCH_OUT:-bench-protocols-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
for size in ${BENCH_SIZES:-10 50 200 1000}; do
  rooms=$((${BENCH_SOCKETS:-1000} / size))
  if [ "$rooms" -lt 1 ]; then rooms=1; fi
  n=$((rooms * (size - 1))) # each room: size-1 measured clients and bench-fanout.sh's seed client
  for moving in ${BENCH_MOVING:-1 0.1}; do
    name="players$size-moving$moving"
    echo "== rooms of $size players ($rooms rooms, $n measured sockets), moving $moving" | tee "$out/$name.txt"
    sh "$(dirname "$0")/bench-fanout.sh" "$node" "$loadgen" -n "$n" -rooms "$rooms" -ramp "${BENCH_RAMP:-10s}" \
      -duration "${BENCH_DURATION:-30s}" -moving "$moving" -protocol 1,2 -json "$out/$name.json" "$@" | tee -a "$out/$name.txt"
  done
done
echo "reports in $out"
