package arena_test

import (
	"encoding/json"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// world runs an arena inside the framework's roster, as a room owner does.
type world struct {
	t testing.TB
	g *arena.Game
	r *sim.Room
}

// pl is a player as a tick shows it: the roster's members and the arena's.
type pl struct {
	X, Y, VX, VY int
	Keys         arena.Keys
	Ack, Conn    uint64
	Online       bool
	Away         int64
}

func newWorld(t testing.TB, cfg arena.Config, seed uint64) *world {
	t.Helper()
	g, err := arena.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, g: g, r: sim.New(g, sim.DefaultConfig(), seed)}
}

func (w *world) apply(ev sim.Event) bool {
	w.t.Helper()
	ok, err := w.r.Apply(ev)
	if err != nil {
		w.t.Fatalf("Apply(%+v): %v", ev, err)
	}
	return ok
}

func (w *world) join(id string, seq uint64) {
	w.t.Helper()
	if !w.apply(sim.Event{Kind: sim.KindJoin, Player: id, Seq: seq, Name: id}) {
		w.t.Fatalf("join %s %d ignored", id, seq)
	}
}

// keys sends an input the way a gateway does for the arena: the bitmask in the event's keys.
func (w *world) keys(id string, seq uint64, k arena.Keys) {
	w.t.Helper()
	if !w.apply(sim.Event{Kind: sim.KindInput, Player: id, Seq: seq, Keys: uint8(k)}) {
		w.t.Fatalf("input %s %d ignored", id, seq)
	}
}

// data sends an input with a JSON payload.
func (w *world) data(id string, seq uint64, payload string) {
	w.t.Helper()
	if !w.apply(sim.Event{Kind: sim.KindInput, Player: id, Seq: seq, Data: json.RawMessage(payload)}) {
		w.t.Fatalf("input %s %d ignored", id, seq)
	}
}

func (w *world) leave(id string, conn uint64) {
	w.t.Helper()
	if !w.apply(sim.Event{Kind: sim.KindLeave, Player: id, Conn: conn}) {
		w.t.Fatalf("leave %s %d ignored", id, conn)
	}
}

func (w *world) steps(n int) {
	for range n {
		w.r.Step()
	}
}

func (w *world) player(id string) pl {
	w.t.Helper()
	p, ok := w.r.Player(id)
	if !ok {
		w.t.Fatalf("player %q not found", id)
	}
	var v game.View
	w.r.View(&v)
	f, ok := v.Player(id)
	if !ok {
		w.t.Fatalf("the arena has no player %q", id)
	}
	return pl{X: int(f[0]), Y: int(f[1]), VX: int(f[2]), VY: int(f[3]), Keys: arena.Keys(f[4]),
		Ack: p.Ack, Conn: p.Conn, Online: p.Online, Away: p.AwaySince}
}

// place moves player id to (x, y) by restoring the room from a View that has it there.
func (w *world) place(id string, x, y int) {
	w.t.Helper()
	var v game.View
	w.r.View(&v)
	f, ok := v.Player(id)
	if !ok {
		w.t.Fatalf("player %q not found", id)
	}
	f[0], f[1] = int64(x), int64(y)
	r, err := sim.Restore(w.g, w.r.Config(), w.r.Seed(), w.r.Tick(), w.r.Players(), w.r.Gone(), &v)
	if err != nil {
		w.t.Fatal(err)
	}
	w.r = r
}
