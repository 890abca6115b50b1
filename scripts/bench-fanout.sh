#!/bin/sh
# Fan-out benchmark on the full path owner → NATS → relay node → sockets (see docs/BENCHMARKS.md).
#
# Two nodes form a cluster: the owner node (pinned to core 1, with a "seed" load generator holding one client in
# each room, so that it takes every room's lease first) and the relay node (pinned to core 0), to which the
# measured load generator (core 1) connects its clients. The relay node only relays: its CPU and memory are the
# gateway's cost, without the game loops.
#
# Usage: scripts/bench-fanout.sh <node binary> <loadgen binary> [loadgen flags...]
# Defaults: 1000 clients in 20 rooms, idle, 30 s. Example: scripts/bench-fanout.sh bin/tickmesh-node bin/loadgen -n 5000 -rooms 100
# BENCH_NODE_FLAGS adds node flags (e.g. -pprof: profiles on the admin ports, relay 127.0.0.1:29080, owner :29081).
# BENCH_SINGLE=1 runs one node that is owner and relay at once (the setup of the first runs in BENCHMARKS.md).
# The nodes start with credentials drawn for the run (never with -dev-insecure), as in production.
set -eu
node=$1; loadgen=$2; shift 2
. "$(dirname "$0")/bench-lib.sh"
pin0="" pin1=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then pin0="taskset -c 0"; pin1="taskset -c 1"; fi
if [ $# -eq 0 ]; then set -- -n 1000 -rooms 20 -ramp 10s -duration 30s; fi
rooms=1 prev=""
for a in "$@"; do
  if [ "$prev" = "-rooms" ]; then rooms=$a; fi
  case $a in -rooms=*) rooms=${a#-rooms=} ;; esac
  prev=$a
done

common="-max-conns-per-ip 100000 -max-conns 100000 -max-rooms-per-ip 1000 -max-rooms 1000 -log-level warn ${BENCH_NODE_FLAGS:-}"
if [ "${BENCH_SINGLE:-}" = 1 ]; then
  $pin0 "$node" -name relay -http 127.0.0.1:28080 -admin-http 127.0.0.1:29080 -nats 127.0.0.1:24222 -data "$dir/relay" $common 2>"$dir/relay.log" &
  relay=$!; pids="$relay"
  ready 28080 "$dir/relay.log"
else
  # With two nodes, a node leading an ownership stream owns no room while the other can (docs/FAILOVER.md), so
  # who owns the rooms depends on which node led those streams when the seed created them: the relay node ends
  # up owning every room in about half of the starts, and its CPU would include every game loop. The cluster is
  # started again (up to 5 times) until the owner node owns every room and the relay node none.
  attempt=0
  while :; do
    attempt=$((attempt+1))
    $pin1 "$node" -name owner -http 127.0.0.1:28081 -admin-http 127.0.0.1:29081 -nats 127.0.0.1:24223 -cluster 127.0.0.1:26223 \
      -routes 127.0.0.1:26222 -data "$dir/owner" $common 2>"$dir/owner.log" &
    pids="$!"
    $pin0 "$node" -name relay -http 127.0.0.1:28080 -admin-http 127.0.0.1:29080 -nats 127.0.0.1:24222 -cluster 127.0.0.1:26222 \
      -routes 127.0.0.1:26223 -data "$dir/relay" $common 2>"$dir/relay.log" &
    relay=$!; pids="$pids $relay"
    ready 28081 "$dir/owner.log"
    ready 28080 "$dir/relay.log"
    # One client per room on the owner node, for the whole run: the owner node wants every room first and
    # creates them; the relay node's campaigns then only watch.
    $pin1 "$loadgen" -url ws://127.0.0.1:28081/ws -n "$rooms" -rooms "$rooms" -ramp 1s -duration 24h -name seed \
      >"$dir/seed.out" 2>&1 &
    pids="$pids $!"
    sleep 4
    owned=""
    i=0
    while [ $i -lt 20 ]; do
      curl -fs http://127.0.0.1:29080/api/cluster >"$dir/cluster.json" || true
      owned=$(owners "$dir/cluster.json")
      case $owned in "$rooms 0"|"$((rooms + 1)) 0") break ;; esac # the lobby may count too
      i=$((i+1)); sleep 1
    done
    case $owned in "$rooms 0"|"$((rooms + 1)) 0") break ;; esac
    echo "bench-fanout: attempt $attempt: rooms owned by owner and relay: ${owned:-unknown}; starting the cluster again" >&2
    stop_all
    rm -rf "$dir/owner" "$dir/relay"
    [ $attempt -lt 5 ] || { echo "bench-fanout: the relay node still owned rooms after $attempt starts" >&2; exit 1; }
  done
fi
$pin1 "$loadgen" -url ws://127.0.0.1:28080/ws -pid "$relay" "$@"
if [ "${BENCH_SINGLE:-}" != 1 ] && curl -fs http://127.0.0.1:29080/api/cluster >"$dir/cluster.json"; then
  set -- $(owners "$dir/cluster.json")
  echo "rooms owned      at the end: owner node ${1:-?}, relay node ${2:-?}"
  [ "${2:-0}" = 0 ] || echo "bench-fanout: WARNING: the relay node owned rooms at the end: its CPU includes their game loops" >&2
fi
