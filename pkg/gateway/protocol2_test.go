package gateway_test

import (
	"bytes"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// joinProto dials node name and joins room r ("" for the lobby) speaking protocol proto.
func joinProto(t *testing.T, c *nodetest.Cluster, name, player, r string, proto int) *client {
	t.Helper()
	cl := dial(t, c, name, player, dialOpts{proto: proto})
	cl.helloIn(r, "", 1)
	if w := cl.waitWelcome(); w.Protocol != proto {
		t.Fatalf("%s: welcome of protocol %d, want %d", player, w.Protocol, proto)
	}
	return cl
}

// sameTicks checks that every tick both clients received (by position) is the same tick: what the protocol 2
// client's frames made is what the protocol 1 client got as JSON. It returns how many they shared.
func sameTicks(t *testing.T, a, b *client) int {
	t.Helper()
	byPos := map[[2]uint64]*protocol.Tick{}
	for _, r := range a.received() {
		byPos[[2]uint64{r.pos.Epoch, r.pos.Seq}] = a.decoded(r)
	}
	shared := 0
	for _, r := range b.received() {
		ta, ok := byPos[[2]uint64{r.pos.Epoch, r.pos.Seq}]
		if !ok {
			continue
		}
		shared++
		ja, _ := protocol.Encode(ta)
		jb, _ := protocol.Encode(b.decoded(r))
		if !bytes.Equal(ja, jb) {
			t.Fatalf("tick %+v:\n%s got %s\n%s got %s", r.pos, a.name, ja, b.name, jb)
		}
	}
	return shared
}

// Protocol 1 and 2 are served from the same ticks, side by side, for both games: a protocol 2 socket gets a
// keyframe first and deltas after it, and what they make is, tick for tick, the JSON a protocol 1 socket gets on
// the same node and a protocol 2 socket on another.
func TestProtocol1And2AreServedFromTheSameTicks(t *testing.T) {
	c := nodetest.StartCluster(t, 2)
	lobbyOwner(t, c, 0)
	for _, r := range []string{"", "collect-7"} {
		t.Run("room "+r, func(t *testing.T) {
			p1 := joinProto(t, c, "n1", "json", r, protocol.Version)
			p2 := joinProto(t, c, "n1", "binary", r, protocol.Version2)
			far := joinProto(t, c, "n2", "far", r, protocol.Version2)
			if r == "" {
				p2.input(protocol.KeyRight | protocol.KeyDown)
				far.input(protocol.KeyLeft)
			} else {
				p2.data(`{"x":900,"y":100}`)
				far.data(`{"x":10,"y":990}`)
			}
			p2.waitTick(waitShort, "both moving", func(tk *protocol.Tick) bool {
				a, ok1 := find(tk, p2.id())
				b, ok2 := find(tk, far.id())
				return ok1 && ok2 && a.Ack == 2 && b.Ack == 2
			})
			p1.waitTicks(40)
			p2.waitTicks(1)
			far.waitTicks(1)
			if n := sameTicks(t, p1, p2); n < 30 {
				t.Fatalf("%d ticks shared by the protocol 1 and 2 sockets of n1", n)
			}
			if n := sameTicks(t, p2, far); n < 30 {
				t.Fatalf("%d ticks shared by the protocol 2 sockets of n1 and n2", n)
			}
			for _, cl := range []*client{p2, far} {
				keys, deltas := cl.frameKinds()
				if keys < 1 || deltas < 30 || keys > deltas/10 {
					t.Fatalf("%s: %d keyframes, %d deltas", cl.name, keys, deltas)
				}
			}
			// Moving players were seen moving through deltas.
			a, _ := find(p2.last(), p2.id())
			if r == "" && (a.VX <= 0 || a.VY <= 0) {
				t.Fatalf("%s is not moving: %+v", p2.name, a)
			}
		})
	}
}
