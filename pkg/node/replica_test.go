package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// TestStreamLeaderReportsEachReplicasLag: only a stream's leader reports its replicas, current while they keep
// up, and a replica that is down falls behind by the entries written since.
func TestStreamLeaderReportsEachReplicasLag(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const stream = "LAGTEST"
	m1 := c.Member("n1").Node.Mesh()
	if _, err := m1.EnsureStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{"lagtest.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	var leader string
	testingutil.WaitFor(t, 30*time.Second, stream+" leader", func() bool {
		l, _, err := m1.StreamLeader(ctx, stream)
		leader = l
		return err == nil && l != ""
	})
	var followers []string
	for _, m := range c.Members() {
		if m.Name != leader {
			followers = append(followers, m.Name)
		}
	}
	series := func(metric, replica string) string {
		return fmt.Sprintf(`%s{replica=%q,stream=%q}`, metric, replica, stream)
	}
	testingutil.WaitFor(t, 30*time.Second, "both replicas current on the leader", func() bool {
		return c.Metric(leader, series("tickmesh_jetstream_replica_current", followers[0])) == 1 &&
			c.Metric(leader, series("tickmesh_jetstream_replica_current", followers[1])) == 1
	})
	for _, f := range followers {
		for _, r := range append([]string{leader}, followers...) {
			if got := c.Metric(f, series("tickmesh_jetstream_replica_current", r)); got != 0 {
				t.Errorf("follower %s reports replica %s of %s: only the leader knows its replicas", f, r, stream)
			}
		}
	}

	down := followers[0]
	c.Kill(down)
	js := c.Member(leader).Node.Mesh().JetStream()
	const writes = 20
	for i := range writes {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Publish(pctx, "lagtest.x", []byte{byte(i)})
		pcancel()
		if err != nil {
			t.Fatalf("publish %d with one replica down: %v", i, err)
		}
	}
	testingutil.WaitFor(t, 30*time.Second, down+" behind by every write since it died", func() bool {
		return c.Metric(leader, series("tickmesh_jetstream_replica_lag", down)) >= writes &&
			c.Metric(leader, series("tickmesh_jetstream_replica_current", down)) == 0
	})
	if lag := c.Metric(leader, series("tickmesh_jetstream_replica_lag", followers[1])); lag != 0 {
		t.Errorf("the live replica %s lags by %d after every write was acknowledged by a majority", followers[1], lag)
	}
}
