package security

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// TestChurnFromOneAddressKeepsTheRoomTickingAndItsSnapshotBounded: a client joins and leaves as a new player
// over and over. Every player that leaves becomes a tombstone once its grace is over; the room keeps at most
// TombstoneCap of them, so its snapshot stays bounded and the room keeps ticking for everyone.
func TestChurnFromOneAddressKeepsTheRoomTickingAndItsSnapshotBounded(t *testing.T) {
	const tombCap = 10
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) {
		cfg.Room.Sim.TombstoneCap = tombCap
		cfg.Room.Sim.GraceTicks = 20 // 1 s, the shortest grace a node takes
		cfg.Room.SnapshotInterval = 200 * time.Millisecond
	})
	n := c.Member("n1").Node
	alice := joinLobby(t, n, "alice")
	for range 4 * tombCap {
		p := dialPlayer(t, wsURL(n), "churn", nil)
		p.hello("", 1)
		p.waitWelcome()
		p.waitPresent()
		p.ws.Close()
	}
	nc, _, err := connectAs(t, c, "n1", c.Secrets.AdminUser, c.Secrets.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var gone int
	testingutil.WaitFor(t, 20*time.Second, "a snapshot with the churned players buried", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		kv, err := js.KeyValue(ctx, wire.SnapshotsBucket)
		if err != nil {
			return false
		}
		e, err := kv.Get(ctx, room.Lobby)
		if err != nil {
			return false
		}
		players, g, err := testingutil.SnapshotRoster(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		gone = g
		if gone > tombCap {
			t.Fatalf("snapshot holds %d tombstones, more than the cap of %d", gone, tombCap)
		}
		return gone == tombCap && players == 1
	})
	alice.keepsPlaying(20)
}

// TestAHelloFarAboveThePlayersAckIsAnsweredAndCanBeCorrected: a resumed hello whose seq is more than
// sim.MaxSeqJump above the player's ack would be refused by the owner; the node answers bad_field with the ack
// to continue from, and the same socket's corrected hello is welcomed.
func TestAHelloFarAboveThePlayersAckIsAnsweredAndCanBeCorrected(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	n := c.Member("n1").Node
	alice := joinLobby(t, n, "alice")
	w := alice.waitWelcome()
	alice.waitPresent()

	again := dialPlayer(t, wsURL(n), "alice-again", nil)
	again.hello(w.Resume, 2+sim.MaxSeqJump)
	testingutil.WaitFor(t, 10*time.Second, "bad_field for the far seq", func() bool { return again.errorCount(protocol.CodeBadField) == 1 })
	again.hello(w.Resume, 2)
	if got := again.waitWelcome(); got.Player != w.Player {
		t.Fatalf("welcomed as %q, want %q", got.Player, w.Player)
	}
	again.keepsPlaying(10)
}
