package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// A node's membership watcher is an R1 consumer that JetStream places on a random replica of the nodes
// bucket. When that replica's node dies, the watcher delivers nothing until it is started again: the node must
// keep listing the live nodes meanwhile (they are the failover targets it hands to its browsers), catch up
// within seconds, and only then drop the dead node.
func TestMembershipKeepsTheLiveNodesWhenTheNodeServingItsWatcherDies(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	observer, victim := watcherServedByAnotherNode(t, c)
	third := ""
	for _, m := range c.Members() {
		if m.Name != observer && m.Name != victim {
			third = m.Name
		}
	}
	t.Logf("%s's membership watcher is served by %s; killing %s, %s stays up", observer, victim, victim, third)
	url := c.Member(observer).Node.AdminURL() + "/api/cluster"
	view := func() map[string]members.Info {
		var v node.ClusterView
		getJSON(t, url, &v)
		out := map[string]members.Info{}
		for _, n := range v.Nodes {
			out[n.Name] = n
		}
		return out
	}
	// Let every node see every other before the fault.
	testingutil.WaitFor(t, 10*time.Second, observer+" lists 3 nodes", func() bool { return len(view()) == 3 })

	killed := time.Now()
	c.Kill(victim)
	// Past the 5 s staleness and well into the stream's Raft election: the live node must stay listed all
	// along, and a heartbeat it wrote after the kill must arrive (the watcher was restarted).
	var caughtUp time.Duration
	for time.Since(killed) < 12*time.Second {
		v := view()
		w, ok := v[third]
		if !ok {
			t.Fatalf("%v after killing %s, %s no longer lists the live node %s: %v", time.Since(killed).Round(time.Millisecond), victim, observer, third, v)
		}
		if caughtUp == 0 && w.Updated > killed.UnixMilli()+1000 {
			caughtUp = time.Since(killed)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if caughtUp == 0 {
		t.Fatalf("%s saw no heartbeat of %s written after %s died", observer, third, victim)
	}
	t.Logf("%s caught up with %s %v after the kill", observer, third, caughtUp.Round(time.Millisecond))
	testingutil.WaitFor(t, 10*time.Second, observer+" drops the dead "+victim, func() bool {
		_, ok := view()[victim]
		return !ok
	})

	c.Restart(victim)
	testingutil.WaitFor(t, 30*time.Second, observer+" lists the restarted "+victim+" as ready", func() bool {
		v, ok := view()[victim]
		return ok && v.Ready
	})
}

// watcherServedByAnotherNode finds a node whose membership watcher's consumer lives on another node and returns
// both. Placement is random; when every watcher happens to be served by its own node, one node is restarted to
// draw again.
func watcherServedByAnotherNode(t *testing.T, c *nodetest.Cluster) (observer, host string) {
	t.Helper()
	for attempt := range 10 {
		for _, m := range c.Members() {
			if h := watcherHost(t, m); h != "" && h != m.Name {
				return m.Name, h
			}
		}
		redraw := c.Members()[attempt%3].Name
		c.Stop(redraw)
		c.Restart(redraw)
		c.WaitReady(60 * time.Second)
	}
	t.Fatal("every membership watcher stayed on its own node through 10 restarts")
	return "", ""
}

// watcherHost names the node that serves m's membership watcher: the consumer of the nodes bucket whose
// delivery subject one of m's own connections subscribes to. "" while it is not found.
func watcherHost(t *testing.T, m *nodetest.Member) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mesh := m.Node.Mesh()
	cz, err := mesh.Server().Connz(&server.ConnzOptions{Subscriptions: true})
	if err != nil {
		t.Fatalf("connz of %s: %v", m.Name, err)
	}
	var subs []string
	for _, conn := range cz.Conns {
		subs = append(subs, conn.Subs...)
	}
	s, err := mesh.JetStream().Stream(ctx, wire.KVStream(wire.NodesBucket))
	if err != nil {
		t.Fatalf("nodes bucket stream: %v", err)
	}
	infos := s.ListConsumers(ctx)
	for ci := range infos.Info() {
		if ci.Cluster != nil && ci.Config.DeliverSubject != "" && slices.Contains(subs, ci.Config.DeliverSubject) {
			return ci.Cluster.Leader
		}
	}
	return ""
}
