#!/bin/sh
# Input benchmark on a local 3-node cluster (see docs/BENCHMARKS.md, "Inputs"): three nodes n1..n3 routed to each
# other, and cmd/loadgen with its clients spread round robin over the three, each sending -input-rate inputs a
# second (or one run per rate of -input-steps). loadgen samples every node (/proc for CPU and memory, /metrics for
# the events stored, the INPUTS messages and the leader of INPUTS) and reports the leader's CPU per event, the
# input → acknowledging tick latency, the inputs answered not_ready and, with -input-steps, the highest
# sustained cluster-wide input rate.
#
# Usage: scripts/bench-inputs.sh <node binary> <loadgen binary> [loadgen flags...]
# Defaults: 1000 clients in 20 rooms at 2 inputs/s each, 30 s. Example, stepping the rate:
#   scripts/bench-inputs.sh bin/tickmesh-node bin/loadgen -n 500 -rooms 20 -input-steps 2,5,10,20 -duration 20s
# BENCH_NODE_FLAGS adds node flags (e.g. "-input-batch-max 1": one event per INPUTS message, as before batches).
# Nothing is pinned: three nodes and loadgen share the machine's cores.
set -eu
node=$1; loadgen=$2; shift 2
. "$(dirname "$0")/bench-lib.sh"
if [ $# -eq 0 ]; then set -- -n 1000 -rooms 20 -ramp 10s -duration 30s -input-rate 2; fi

common="-max-conns-per-ip 100000 -max-conns 100000 -max-rooms-per-ip 1000 -max-rooms 1000 -log-level warn ${BENCH_NODE_FLAGS:-}"
nodes="" urls=""
for i in 1 2 3; do
  routes=""
  for j in 1 2 3; do [ "$j" = "$i" ] || routes="${routes:+$routes,}127.0.0.1:2632$j"; done
  "$node" -name "n$i" -http "127.0.0.1:2818$i" -admin-http "127.0.0.1:2918$i" -nats "127.0.0.1:2432$i" \
    -cluster "127.0.0.1:2632$i" -routes "$routes" -data "$dir/n$i" $common 2>"$dir/n$i.log" &
  pids="$pids $!"
  nodes="$nodes -node n$i=$!@127.0.0.1:2918$i"
  urls="${urls:+$urls,}ws://127.0.0.1:2818$i/ws"
done
for i in 1 2 3; do ready "2818$i" "$dir/n$i.log"; done
# shellcheck disable=SC2086 # $nodes is a list of flags
"$loadgen" -url "$urls" $nodes "$@"
