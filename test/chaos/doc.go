// Package chaos is Tickmesh's chaos suite: it runs the real node binary (cmd/node) on three simulated hosts,
// plays the lobby with WebSocket bots, injects faults and checks the invariants of docs/FAILOVER.md on what
// the bots and per-node recorders observed. docs/CHAOS.md describes the harness, the faults, the invariants
// and the results of recorded runs.
//
//   - netns.go: the hosts are Linux network namespaces on one bridge (in a namespace of its own); the harness
//     reaches every node from its own namespace through a veth; partitions are nftables rules in the node
//     namespaces that match peer node addresses only, so bots and recorders are never cut off.
//   - the node processes (started with `ip netns exec`, signalled, probed) are internal/cluster's, with fresh
//     random credentials per run.
//   - bots.go: pkg/client players that keep their resume token and seq counter across reconnects.
//   - record.go: the store of everything observed and the streaming checks; NATS tick recorders per node.
//   - faults.go: the fault kinds and their injection.
//   - check.go: the per-fault checks (inputs, tick gaps).
//   - suite.go: the run: health waits, fault loop, convergence.
//   - report.go: the result and its markdown report.
//
// The suite needs root (network namespaces, nftables). TestChaosShort is the short run; cmd/chaos runs the
// long suite. Every goroutine the harness starts is owned by a component that waits for it on Close.
package chaos
