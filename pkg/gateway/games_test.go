package gateway_test

import (
	"fmt"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Each room plays the game the node's rule gives it (by default collect-... rooms collect, the others the
// arena): the welcome says which, with the game's parameters, and inputs are the game's to validate.
func TestEachRoomPlaysItsGameAndValidatesItsInputs(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	lobbyOwner(t, c, 0)

	a := join(t, c, "n1", "alice")
	w := a.waitWelcome()
	want := protocol.Params{{Name: "width", Value: 1000}, {Name: "height", Value: 1000}, {Name: "speed", Value: 10}, {Name: "tick_rate", Value: 20}}
	if w.Game != "arena" || fmt.Sprint(w.Params) != fmt.Sprint(want) {
		t.Fatalf("lobby welcome: game %q params %v", w.Game, w.Params)
	}
	// The arena takes its keys as data too.
	right := a.data(`{"right":true}`)
	a.waitTick(waitShort, "alice moving right", func(tk *protocol.Tick) bool {
		p, ok := find(tk, a.id())
		return ok && p.Ack >= right && p.VX > 0
	})
	a.data(`{"x":1,"y":2}`)
	a.waitError(protocol.CodeBadField)

	b := dial(t, c, "n1", "bob", dialOpts{})
	b.helloIn("collect-1", "", 1)
	w = b.waitWelcome()
	if w.Game != "collect" || w.Room != "collect-1" {
		t.Fatalf("collect welcome: %+v", w)
	}
	if r, ok := w.Params.Param("round_ticks"); !ok || r != 1200 {
		t.Fatalf("collect params %v", w.Params)
	}
	target := b.data(`{"x":500,"y":400}`)
	tk := b.waitTick(waitShort, "bob's target applied", func(tk *protocol.Tick) bool {
		p, ok := find(tk, b.id())
		return ok && p.Ack >= target
	})
	p, _ := tk.Player(b.id())
	if tx, _ := tk.Field(&p, "tx"); tx != 500 {
		t.Fatalf("bob's target x %v", tx)
	}
	if pickups, ok := tk.ObjectsOf("pickups"); !ok || len(pickups) != 12 {
		t.Fatalf("pickups %v %v", pickups, ok)
	}
	// Keys are not collect's input, nor is a target outside the field; neither is forwarded.
	before := b.nextSeq()
	b.input(protocol.KeyRight)
	b.waitError(protocol.CodeBadField)
	b.data(`{"x":5000,"y":1}`)
	b.waitTicks(5)
	if p, _ := find(b.last(), b.id()); p.Ack >= before {
		t.Fatalf("a refused input was applied: ack %d", p.Ack)
	}
	if n := len(b.errorCodes()); n < 2 {
		t.Fatalf("errors %v, want two bad_field", b.errorCodes())
	}
}
