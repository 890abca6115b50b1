// Package cluster runs Tickmesh node processes for the tools and the tests that need real processes
// (cmd/localcluster, cmd/failbench, cmd/chaos, test/e2e, test/chaos): it lays nodes out on ports or hosts, starts
// them with their credentials in the environment, stops (SIGTERM), kills (SIGKILL), freezes and thaws
// (SIGSTOP, SIGCONT) and restarts them, probes /readyz, /api/cluster and /metrics, finds and moves stream
// leaders, publishes player events below the gateway and cuts nodes off from their peers with route links.
// pkg/node/nodetest is its in-process counterpart.
//
//   - node.go: Node, one node's addresses and flags; Local and OnHosts lay out a cluster.
//   - command.go: Command starts one process in its own process group, its output appended to a log file.
//   - proc.go: Cluster, the node processes this process started and waits for.
//   - pid.go: processes known by a pid file (started by another invocation), signalled and stopped by pid.
//   - probe.go: the nodes' HTTP endpoints and the Prometheus text they serve.
//   - nats.go: connections pinned to one node, stream leaders, event publishing.
//   - observe.go: Observer, a node's ticks and lease as its relay sees them.
//   - links.go: route links, the TCP relays that let one machine partition a node, and the cut files through
//     which another process cuts and heals nodes.
//   - secrets.go: the credentials of a cluster, drawn per test cluster or kept in a state directory with the
//     nats CLI contexts of its users.
//   - build.go: building the node binary.
//
// Goroutines: a Cluster owns one waiter per process it started (Close waits for them); an Observer owns its
// lease watcher (Close waits for it); Links own one acceptor per link and two pumps per connection (Close waits
// for them); a Cluster with ParentDeath starts processes from one goroutine locked to its OS thread, which
// lives as long as the program (the parent-death signal fires when the thread that started a child exits).
// Everything else, Links.Follow included, runs in its caller's goroutine.
package cluster
