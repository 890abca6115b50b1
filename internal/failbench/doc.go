// Package failbench is the failover benchmark behind cmd/failbench (`task bench:failover`): Run starts three real
// node processes, injects each fault many times and reports the tick gap the surviving nodes see and the stale
// ticks published and accepted. Config's fields are cmd/failbench's flags (-bin is Bin, -n is N, ...).
//
// It builds nothing: Config.Bin names the node binary, which is first copied into a temporary directory. Nodes
// n1..n3 (internal/cluster's processes) listen on 127.0.0.1 at Config.Ports plus 0, 1, 2 (far from the development
// cluster's), route to each other with credentials drawn for the run, keep their data and logs in the temporary
// directory (kept with -keep) and run in their own process groups; Run stops every one of them when it ends or
// ctx ends (SIGTERM, SIGKILL after 10 s), and a parent-death signal kills them should failbench itself be killed.
// load-owner's busy processes are the running program re-executed with BurnEnv set: its main calls Burn then.
//
// Faults, each repeated -n times (-reps overrides per fault, -faults selects):
//
//	kill-owner          SIGKILL the room's owner
//	term-owner          SIGTERM the room's owner (graceful shutdown: it releases its lease)
//	kill-owners-leader  SIGKILL the leader of the KV_owners stream while it is not the owner
//	kill-inputs-leader  SIGKILL the leader of the INPUTS stream while it is not the owner; a bot publishes an
//	                    input about every tick period through the third node, and the input → applied latency is
//	                    measured (also over a 30 s baseline without a fault)
//	stop-owner          SIGSTOP the owner for twice the lease TTL, then SIGCONT
//	cut-owner           partition the owner from its peers (its route links stall, as on a real network) until
//	                    the others have taken over and 3 s more, then heal
//	load-owner          for -load-for, keep every core busy with other processes and pause the owner's process
//	                    for 100-300 ms (SIGSTOP/SIGCONT, as a long GC pause or a descheduled VM would) every 1-2 s;
//	                    goal: no takeover at all
//
// The room is the lobby unless -room names another (Config.Room): its game follows the nodes' default rule
// (collect-… rooms play the collect game). A room other than the lobby closes when it has no players, so a keeper
// (keeper.go: one pkg/client player on the nodes' WebSocket endpoints in turn) holds it open for the whole run;
// its welcome names the game, which decides the bot's inputs (the arena's keys, collect's target points).
//
// With -random, each fault is injected at a random moment up to -random-max after every node is ready and every
// observer has had ticks for a second without a gap (the gap window's lead, so that the window never holds a
// restarted node's own start), as users do, without waiting for the owner to be agreed on or for the stream
// leaders to be placed; the report counts the repetitions in which the owner led a placed stream when the fault
// came.
//
// Before every repetition the cluster must be stable: all three nodes ready, the same room owner and epoch on
// every node for 2 s, ticks arriving everywhere, and the owner leading none of KV_owners, KV_snapshots and
// INPUTS (waited for up to 10 s: that is the placement the nodes keep by themselves). The nodes put every leader
// they move on one peer, so before a leader fault -isolate (default true) moves the other streams' leaders to
// the third node: each leader fault then loses one stream's leader only. A killed node is restarted with the
// same flags and data directory after each repetition.
//
// Observation: failbench subscribes to the room's tick subject (game.<room>.tick) on every node's NATS client port (pinned to that node,
// also across reconnects) and passes each tick through a fence (pkg/fence) that, like a node's relay, is also
// raised by the lease epochs of the owners bucket. The temporary directory's events.log records the timeline:
// faults, tick-free stretches per node, the nodes' tick, pause and renewal counters every 500 ms, slow inputs.
// Per fault it reports
//
//   - the tick gap: on each surviving node, the longest stretch of [fault − 1 s, recovery + 2 s] without an
//     accepted tick; per repetition the maximum over the surviving nodes; p50, p99 (nearest rank) and max over
//     the repetitions;
//   - stale published: ticks that arrived with an epoch lower than one the observer had already seen (a relay
//     must drop them), summed over the observers;
//   - fenced by nodes: the increase of tickmesh_room_ticks_fenced_total on the nodes that ran throughout;
//   - stale accepted: ticks a fenced observer accepted although the benchmark had already seen a higher epoch
//     anywhere (a tick or a lease on any node): a superseded owner's tick that got through a fence. Goal: 0.
//
// Recovery is the first accepted tick of a new epoch on every surviving node (owner faults), or a new stream
// leader followed by a tick on every surviving node (leader faults). A repetition that does not recover within
// -recovery-timeout counts as failed.
//
// Goroutines: the nodes' waiters and the observers' lease watchers are internal/cluster's; failbench runs, during
// a repetition, a sampler of the nodes' metrics and, for the input faults, the bot (one goroutine, and one per
// publish in flight), and waits for them before the next.
package failbench
