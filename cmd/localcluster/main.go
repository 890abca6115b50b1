// Command localcluster runs a local three-node Tickmesh cluster for development, behind nginx when it is
// installed, and pokes at it: the Taskfile's `task up`, `task kill -- n2` and friends call it.
//
//	localcluster up [-nginx auto|on|off] [-bin bin/tickmesh-node]   start n1..n3 (and nginx), wait until signalled
//	localcluster down                                              stop everything this checkout started, up included
//	localcluster kill|stop|start|freeze|thaw <node>                 SIGKILL, SIGTERM, restart, SIGSTOP, SIGCONT
//	localcluster cut <node> | heal [node]                          stall a node's routes to its peers (a partition) / undo
//	localcluster status                                            each process: alive? /readyz?
//	localcluster owner                                             rooms, owners and epochs (GET /api/cluster)
//
// Every command takes -dir (state directory, default .tickmesh) and the port flags -base-http, -base-admin,
// -base-nats, -base-route, -base-link and -nginx-port; node i (1-based) listens on base+i-1. `up` holds a route link (a
// TCP relay, internal/cluster's Links) in front of each node's route port on -base-link; the nodes dial and
// advertise the links, so that `cut` can partition a node although all share loopback. `up` records the settings
// it used in <dir>/cluster.json, which the other commands read, so they need no flags but -dir, and its own pid
// in <dir>/up.pid, so that `down` ends it too: the nodes `start` restarts are not its children, and it cannot
// learn of their end by waiting for them.
//
// The nodes start with credentials, never with the development switch: `up` draws them once per state
// directory into <dir>/secrets.env (mode 0600; route user and password, SESSION_SECRET, the admin, viewer and
// sys users of the NATS client port) and writes nats CLI contexts for them to <dir>/nats/{viewer,admin,sys}.json.
// Every start reads the same file, so a restarted node rejoins and its players' resume tokens stay valid.
//
// Layout under <dir>: data/<node> (JetStream), logs/<node>.log and logs/nginx.log, run/<name>.pid (one per
// running process, nginx included), nginx/ (nginx's prefix: generated nginx.conf, its pid file, error and access
// logs, temp directories). Each process runs in its own process group, so a Ctrl-C in the terminal reaches only
// `up`, which then stops them all: SIGTERM, and SIGKILL after 10 s. A pid file counts only while its process is
// alive and still the one started here (its command line names this checkout's data or nginx directory), so
// stale files never make a command signal an unrelated process.
//
// Goroutines: `up` runs one waiter per child it started and, with route links, one that follows the cut file
// (besides the links' own); it waits for all of them before it returns.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tickmesh/tickmesh/internal/cli"
)

func main() { cli.Main("localcluster", "\n\n"+usage, run) }

const usage = `usage: localcluster <command> [flags] [node]

commands:
  up       start n1..n3 (and nginx as load balancer when installed), wait for readiness, run until Ctrl-C
  down     stop every process recorded in <dir>/run (SIGTERM, SIGKILL after 10 s), then up
  kill     SIGKILL a node            stop   SIGTERM a node and wait
  start    start a stopped node      status each process and its /readyz
  freeze   SIGSTOP a node            thaw   SIGCONT a node
  owner    rooms with their owner and epoch (GET /api/cluster)
  cut      cut a node off from its peers: its route links stall (a partition; HTTP and NATS client ports stay up)
  heal     reconnect a node that was cut off (no node: every one)

flags (every command):
  -dir .tickmesh       state directory (data, logs, pid files, nginx prefix)
  -base-http 8081      node i listens for HTTP on 127.0.0.1:base+i-1
  -base-admin 9091     admin listeners (/metrics, /api/cluster, /cluster.html)
  -base-nats 4222      NATS client ports
  -base-route 6222     NATS route ports
  -base-link 6232      route links held by up, which the nodes dial (0: none, and no cut)
  -nginx-port 8080     load balancer port
flags (up, start):
  -bin bin/tickmesh-node   node binary
flags (up):
  -nginx auto          auto: use nginx when installed; on: require it; off: no load balancer
  -prometheus auto     auto: run Prometheus on 127.0.0.1:9099 when installed; off; or host:port (requires it)
  -ready-timeout 90s   how long to wait for every node's /readyz
`

// run executes one command. ctx ends when the process is asked to stop (SIGINT, SIGTERM).
func run(ctx context.Context, args []string, stdout io.Writer) error {
	cmd, err := parseArgs(args)
	if err != nil {
		return err
	}
	if cmd.name == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	c, err := loadLocal(cmd)
	if err != nil {
		return err
	}
	switch cmd.name {
	case "up":
		return up(ctx, c, cmd.opts, stdout)
	case "down":
		return down(ctx, c, stdout)
	case "kill", "stop", "freeze", "thaw":
		return signalNode(ctx, c, cmd.name, cmd.node, stdout)
	case "start":
		return startNode(c, cmd.node, stdout)
	case "cut", "heal":
		return setCut(c, cmd.name, cmd.node, stdout)
	case "status":
		return status(c, stdout)
	case "owner":
		return owner(c, stdout)
	}
	return cli.Usagef("unknown command %q", cmd.name)
}
