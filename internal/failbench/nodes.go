package failbench

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/tickmesh/tickmesh/internal/cluster"
)

// layout is n1..n3 on 127.0.0.1, their data under dir/data, routing to each other through the route links (held
// by failbench) when -link-port is set.
func layout(o Config, dir string) []cluster.Node {
	return cluster.Local(3, o.Ports, filepath.Join(dir, "data"))
}

// newCluster lays out n1..n3 (layout) and their logs in dir. The nodes get fresh random credentials and nothing of
// failbench's own environment (NODE_NAME, LEASE_TTL, ... there would change them), and die with failbench should
// it be killed.
func newCluster(o Config, dir string, logf func(string, ...any)) (*cluster.Cluster, error) {
	nodes := layout(o, dir)
	flags := []string{"-cluster-name", "failbench", "-log-level", o.LogLevel}
	if o.LeaseTTL > 0 {
		flags = append(flags, "-lease-ttl", o.LeaseTTL.String())
	}
	if o.TickRate > 0 {
		flags = append(flags, "-tick-rate", strconv.Itoa(o.TickRate))
	}
	for i := range nodes {
		nodes[i].Flags = flags
	}
	return cluster.New(cluster.Config{Bin: o.Bin, Nodes: nodes, Env: cluster.CleanEnv(), LogDir: dir, ParentDeath: true, Logf: logf})
}

// checkPorts fails when one of the cluster's ports is taken.
func checkPorts(o Config) error {
	var ls []cluster.Listen
	for _, n := range cluster.Local(3, o.Ports, "") {
		ls = append(ls, n.Listens()...)
		if n.Link != "" {
			ls = append(ls, cluster.Listen{Addr: n.Link, What: n.Name + " route link"})
		}
	}
	if err := cluster.CheckFree(ls); err != nil {
		return fmt.Errorf("%w; or choose others with -http-port, -admin-port, -nats-port, -route-port, -link-port", err)
	}
	return nil
}

// Metrics failbench reads from the nodes' /metrics, each of the benchmark's room (series).
const (
	fencedMetric = "tickmesh_room_ticks_fenced_total" // ticks a node's relay dropped
	ticksMetric  = "tickmesh_room_ticks_total"        // ticks a node published as owner
	ownedMetric  = "tickmesh_room_owned"              // 1 while the node owns the room
	pausesMetric = "tickmesh_room_pauses_total"       // owner loop found itself paused and re-confirmed its lease
	// renewErrorsMetric counts lease renewals with an unknown outcome.
	renewErrorsMetric = "tickmesh_room_lease_renew_errors_total"
)

// series is the benchmark room's series of metric, as /metrics names it.
func (b *bench) series(metric string) string { return fmt.Sprintf("%s{room=%q}", metric, b.o.Room) }

// i is the index of the node called name.
func (b *bench) i(name string) int { return b.c.Index(name) }

// others returns the node names except the given ones.
func (b *bench) others(except ...string) []string {
	var out []string
	for _, n := range b.c.Names() {
		skip := false
		for _, e := range except {
			skip = skip || n == e
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// ready reports whether the node answers /readyz with 200.
func (b *bench) ready(ctx context.Context, name string) bool {
	_, code, _ := cluster.Readyz(ctx, b.c.Node(b.i(name)))
	return code == http.StatusOK
}

// roomOwner asks the node who owns the benchmark's room.
func (b *bench) roomOwner(ctx context.Context, name string) (owner string, epoch uint64, err error) {
	v, err := cluster.View(ctx, b.c.Node(b.i(name)))
	if err != nil {
		return "", 0, err
	}
	owner, epoch = cluster.RoomOwner(v, b.o.Room)
	return owner, epoch, nil
}

// metrics reads the node's /metrics.
func (b *bench) metrics(ctx context.Context, name string) (cluster.Metrics, error) {
	return cluster.ReadMetrics(ctx, b.c.Node(b.i(name)))
}
