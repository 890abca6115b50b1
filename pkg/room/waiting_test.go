package room

import (
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// TestInputToTickSamplesAreBounded: the arrival times kept between two ticks for the input → tick histogram
// stop at maxWaiting, however many events one tick period applies; the events themselves are all applied.
func TestInputToTickSamplesAreBounded(t *testing.T) {
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	met := newMetrics()
	tm := &term{room: "bounded", cfg: DefaultConfig("n1"), met: met, series: met.room("bounded"), acks: newAcks(), state: sim.New(g, sim.DefaultConfig(), sim.Seed("bounded"))}
	now := time.Now()
	tm.apply(inbound{evs: []sim.Event{{Kind: sim.KindJoin, Player: "p1", Name: "one", Seq: 1}}, at: now})
	const events = maxWaiting + 500
	for i := range events {
		tm.apply(inbound{evs: []sim.Event{{Kind: sim.KindInput, Player: "p1", Seq: uint64(i + 2), Keys: uint8(i % 2)}}, at: now})
	}
	if len(tm.waiting) != maxWaiting {
		t.Fatalf("%d arrival times kept, want the bound %d", len(tm.waiting), maxWaiting)
	}
	if ack := tm.state.Players()[0].Ack; ack != events+1 {
		t.Fatalf("ack %d: every event is applied, sampled or not (want %d)", ack, events+1)
	}
	// A replayed event (no arrival time) is applied and not sampled.
	tm.waiting = tm.waiting[:0]
	tm.apply(inbound{evs: []sim.Event{{Kind: sim.KindInput, Player: "p1", Seq: events + 2}}})
	if len(tm.waiting) != 0 {
		t.Fatalf("a replayed event was sampled")
	}
}
