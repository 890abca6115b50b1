// Package roombench is the room-count benchmark behind cmd/roombench (`task bench:rooms`, issue #22): the same
// number of clients spread over more and more rooms on a local 3-node cluster, to show what a room costs the
// cluster. Config's fields are cmd/roombench's flags (-clients is Clients, ...).
//
// For each room count it starts a fresh cluster (internal/cluster's node processes n1..n3 on 127.0.0.1, with
// credentials drawn for the run and the per-IP limits raised for one client machine), connects the clients
// (pkg/client, client i to room i mod R and node (i + i div R) mod 3: a room with several players has them on
// several nodes, and with one player per room the rooms' players spread over the nodes), waits
// -settle, and measures for -duration:
//
//   - the cluster's CPU (the three node processes' utime + stime, /proc) in ms per second, and per room per
//     second as the difference against the first room count (same clients: the sockets cost the same);
//   - replicated writes per second: the growth of the last sequence of the streams KV_owners, KV_snapshots and
//     INPUTS (every message is stored by each replica);
//   - resident memory of the three nodes, and per room against the first room count;
//   - ticks delivered (against 20 per second per client) and the tick delivery latency p99 (receive time minus
//     the owner's publish time in the tick; same machine, same clock).
//
// Then, with -failover, it waits until no room has changed owner or epoch for 3 s (balance may still be handing
// rooms over; at most 60 s, noted if it never settles), SIGKILLs the node that owns the most rooms (/api/cluster
// "owners") and measures, for each of its rooms that has a client on another node, the tick gap those clients
// saw: from the last tick before the kill to the first tick of a newer epoch. It reports p50, p99 and max over
// the rooms, the rooms that did not tick again within -recovery-timeout, and which nodes took them over; a room
// handed over between the view and the kill is counted apart, not measured.
//
// It builds nothing: Config.Bin names the node binary, copied into a temporary directory first (kept with -keep, with
// the nodes' data and logs). Goroutines: one per client (its pkg/client Run), waited for before the next room
// count; the nodes' waiters are internal/cluster's.
package roombench
