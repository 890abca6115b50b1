package room_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The relay's Epoch hook fires once per new epoch, at its first accepted tick, with the time since the last
// tick of the epoch before; not for the first tick after subscribing, nor for refused ticks.
func TestRelayReportsTheFirstTickOfANewEpochWithTheGap(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	nc := c.Members()[0].Node.Mesh().Conn()
	type call struct {
		from, to fence.Position
		gap      time.Duration
	}
	var mu sync.Mutex
	var calls []call
	r := room.NewRelay(nc, fence.New(), room.RelayHooks{Epoch: func(_ string, from fence.Position, to *room.Tick, gap time.Duration) {
		mu.Lock()
		calls = append(calls, call{from, to.Pos, gap})
		mu.Unlock()
	}})
	defer r.Close()
	got := make(chan fence.Position, 16)
	stop, err := r.Listen("relaytest", func(_ string, tk *room.Tick) { got <- tk.Pos })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const pause = 150 * time.Millisecond
	for _, p := range []fence.Position{{Epoch: 3, Seq: 10}, {Epoch: 3, Seq: 11}, {Epoch: 2, Seq: 12}, {Epoch: 4, Seq: 12}, {Epoch: 4, Seq: 13}} {
		if p.Epoch == 4 && p.Seq == 12 {
			time.Sleep(pause)
		}
		if err := nc.PublishMsg(wire.TickMsg("relaytest", p.Epoch, p.Seq, []byte(`{}`))); err != nil {
			t.Fatal(err)
		}
		if p.Epoch == 2 {
			continue // fenced: never delivered
		}
		select {
		case pos := <-got:
			if pos != p {
				t.Fatalf("delivered %+v, want %+v", pos, p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("tick %+v not delivered", p)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 {
		t.Fatalf("Epoch hook calls %+v, want one", calls)
	}
	if cl := calls[0]; cl.from != (fence.Position{Epoch: 3, Seq: 11}) || cl.to != (fence.Position{Epoch: 4, Seq: 12}) || cl.gap < pause || cl.gap > 5*time.Second {
		t.Fatalf("Epoch hook %+v, want 3/11 → 4/12 after at least %v", cl, pause)
	}
}
