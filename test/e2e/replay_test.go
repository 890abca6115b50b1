package e2e

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	harness "github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// TestTakeoverTicksBeforeTheMetaLeaderIsBack is the regression test for the replay stall the chaos suite found:
// a takeover replayed the input stream through a consumer, and creating a consumer needs the JetStream meta
// leader. When the owner's node was also the meta leader, SIGKILLing it made the new owner wait for NATS's 4-9
// s meta election before its first tick. Replay now reads with direct gets, which any replica answers, so the
// new owner ticks while the meta leader is still being elected. (An in-process cluster cannot show it: an
// in-process server shutdown hands the meta leadership over at once; a SIGKILLed process cannot.)
func TestTakeoverTicksBeforeTheMetaLeaderIsBack(t *testing.T) {
	c := startCluster(t)
	var owner string
	var epoch uint64
	waitFor(t, 30*time.Second, "a lobby owner", func() bool { owner, epoch = c.owner(); return owner != "" })
	ownerIdx, err := strconv.Atoi(strings.TrimPrefix(owner, "n"))
	if err != nil {
		t.Fatalf("owner %q: %v", owner, err)
	}

	nc, err := nats.Connect(c.natsURL, nats.UserInfo(c.secrets.AdminUser, c.secrets.AdminPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The owner moves the stream leaders off its node by itself; wait for it, so that only the meta leader dies
	// with the owner.
	for _, stream := range wire.PlacedStreams {
		waitFor(t, 60*time.Second, stream+" leader off the owner", func() bool {
			l, err := harness.StreamLeader(context.Background(), js, stream)
			return err == nil && l != "" && l != owner
		})
	}
	sys, err := harness.ConnectSys(c.nodes, c.secrets, "e2e-sys")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	waitFor(t, 60*time.Second, "the meta leader on the owner's node", func() bool {
		if c.isMetaLeader(ownerIdx) {
			return true
		}
		_ = harness.MoveMetaLeader(context.Background(), sys, owner)
		time.Sleep(time.Second)
		return c.isMetaLeader(ownerIdx)
	})
	if o, e := c.owner(); o != owner || e != epoch {
		t.Fatalf("the lobby moved to %s/%d while the meta leader moved", o, e)
	}

	// The first tick of a new epoch that reaches this client (connected to the survivors too).
	var mu sync.Mutex
	var firstNew time.Time
	sub, err := nc.Subscribe(wire.TickSubject("lobby"), func(m *nats.Msg) {
		e, _, _ := wire.ParseTickHeader(m.Header)
		mu.Lock()
		if e > epoch && firstNew.IsZero() {
			firstNew = time.Now()
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	c.run("kill", owner)
	killed := time.Now()
	var metaBack time.Time
	for time.Since(killed) < 30*time.Second && metaBack.IsZero() {
		for i := 1; i <= 3; i++ {
			if i != ownerIdx && c.isMetaLeader(i) {
				metaBack = time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if metaBack.IsZero() {
		t.Fatal("no meta leader within 30 s of the kill")
	}
	mu.Lock()
	first := firstNew
	mu.Unlock()
	if first.IsZero() {
		t.Fatalf("no tick of a new epoch before the meta leader was back (%v after the kill)", metaBack.Sub(killed))
	}
	t.Logf("first tick of the new owner %v after the kill; meta leader back after %v", first.Sub(killed), metaBack.Sub(killed))
	if !first.Before(metaBack) {
		t.Fatal("the new owner ticked only after the meta leader was back")
	}
}

// isMetaLeader reads node i's (1-based) tickmesh_jetstream_meta_leader gauge (false when the node does not answer).
func (c *cluster) isMetaLeader(i int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	m, err := harness.ReadMetrics(ctx, c.nodes[i-1])
	return err == nil && m["tickmesh_jetstream_meta_leader"] == 1
}
