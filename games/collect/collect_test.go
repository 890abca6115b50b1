package collect_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/game/gametest"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

func target(w, h int) func(r *rand.Rand) []byte {
	return func(r *rand.Rand) []byte {
		if r.IntN(2) == 0 {
			return fmt.Appendf(nil, `{"x":%d,"y":%d}`, r.IntN(w+1), r.IntN(h+1))
		}
		return fmt.Appendf(nil, `{"y":%d,"x":%d}`, r.IntN(h+1), r.IntN(w+1))
	}
}

var invalidTargets = [][]byte{[]byte(`{}`), []byte(`{"x":1}`), []byte(`{"x":1,"y":2,"z":3}`), []byte(`{"x":-1,"y":2}`),
	[]byte(`{"x":1001,"y":2}`), []byte(`{"x":1.5,"y":2}`), []byte(`{"x":"1","y":2}`), []byte(`{"x":1,"y":null}`),
	[]byte(`{"x":1,"x":2,"y":3}`), []byte(`[1,2]`), []byte(`{"up":true}`), []byte(`{"x":1e2,"y":2}`)}

func TestCollectPassesTheConformanceKit(t *testing.T) {
	// The default rules, and a small, busy field where players reach pickups and rounds end within a script.
	small := collect.Config{Width: 60, Height: 40, Speed: 9, Radius: 12, Pickups: 5, RoundTicks: 30}
	for _, cfg := range []collect.Config{collect.DefaultConfig(), small} {
		g, err := collect.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gametest.Run(t, g, gametest.Config{Input: target(cfg.Width, cfg.Height), Invalid: invalidTargets})
	}
}

// field runs collect inside the framework's roster.
type field struct {
	t *testing.T
	g *collect.Game
	r *sim.Room
	v game.View
}

func newField(t *testing.T, cfg collect.Config) *field {
	g, err := collect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &field{t: t, g: g, r: sim.New(g, sim.DefaultConfig(), 1)}
}

func (f *field) apply(ev sim.Event) {
	f.t.Helper()
	if ok, err := f.r.Apply(ev); !ok || err != nil {
		f.t.Fatalf("Apply(%+v) = %v, %v", ev, ok, err)
	}
}

func (f *field) view() *game.View {
	f.r.View(&f.v)
	return &f.v
}

// me returns the player's fields x, y, tx, ty, score, last.
func (f *field) me(id string) []int64 {
	f.t.Helper()
	p, ok := f.view().Player(id)
	if !ok {
		f.t.Fatalf("no player %s", id)
	}
	return p
}

func TestPlayersWalkToTheirTargetAndStop(t *testing.T) {
	f := newField(t, collect.Config{Width: 1000, Height: 1000, Speed: 10, Radius: 1, Pickups: 1, RoundTicks: 100000})
	f.apply(sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1})
	start := f.me("p")
	if start[2] != start[0] || start[3] != start[1] {
		t.Fatalf("a new player stands still: %v", start)
	}
	tx, ty := (start[0]+300)%1000, (start[1]+400)%1000
	f.apply(sim.Event{Kind: sim.KindInput, Player: "p", Seq: 2, Data: json.RawMessage(fmt.Sprintf(`{"x":%d,"y":%d}`, tx, ty))})
	prev := start
	for i := 0; i < 200; i++ {
		f.r.Step()
		cur := f.me("p")
		dx, dy := cur[0]-prev[0], cur[1]-prev[1]
		if dx*dx+dy*dy > 100 {
			t.Fatalf("moved (%d, %d) in one tick at speed 10", dx, dy)
		}
		prev = cur
	}
	if prev[0] != tx || prev[1] != ty {
		t.Fatalf("at (%d, %d) after 200 ticks, target (%d, %d)", prev[0], prev[1], tx, ty)
	}
	// A leave stops the player where it is.
	f.apply(sim.Event{Kind: sim.KindInput, Player: "p", Seq: 3, Data: json.RawMessage(`{"x":0,"y":0}`)})
	f.r.Step()
	f.apply(sim.Event{Kind: sim.KindLeave, Player: "p", Conn: 1})
	here := f.me("p")
	f.r.Step()
	if now := f.me("p"); now[0] != here[0] || now[1] != here[1] || now[2] != here[0] {
		t.Fatalf("moved after leaving: %v then %v", here, now)
	}
}

func TestTouchingAPickupScoresItAndAnotherAppears(t *testing.T) {
	f := newField(t, collect.DefaultConfig())
	f.apply(sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1})
	pickups := f.view().Objects[0]
	if len(pickups) != collect.DefaultConfig().Pickups {
		t.Fatalf("%d pickups", len(pickups))
	}
	first := pickups[0]
	f.apply(sim.Event{Kind: sim.KindInput, Player: "p", Seq: 2, Data: json.RawMessage(fmt.Sprintf(`{"x":%d,"y":%d}`, first.Fields[0], first.Fields[1]))})
	var scored int64
	for i := 0; i < 200 && scored == 0; i++ {
		f.r.Step()
		scored = f.me("p")[4]
	}
	if scored < 1 || scored > collect.MaxValue {
		t.Fatalf("score %d after walking onto a pickup", scored)
	}
	v := f.view()
	if len(v.Objects[0]) != collect.DefaultConfig().Pickups {
		t.Fatalf("%d pickups after one was taken", len(v.Objects[0]))
	}
	for _, o := range v.Objects[0] {
		if o.ID == first.ID {
			t.Fatalf("the pickup taken is still there: %+v", o)
		}
	}
	// The one that appeared in the taken one's slot was spawned at the tick it was taken: its id says so.
	slot := first.ID % int64(collect.DefaultConfig().Pickups)
	for _, o := range v.Objects[0] {
		if o.ID%int64(collect.DefaultConfig().Pickups) == slot && o.ID/int64(collect.DefaultConfig().Pickups) != f.r.Tick() {
			t.Fatalf("the new pickup %+v was not spawned at tick %d", o, f.r.Tick())
		}
	}
}

func TestRoundsEndAndScoresMoveToLast(t *testing.T) {
	cfg := collect.Config{Width: 20, Height: 20, Speed: 5, Radius: 30, Pickups: 3, RoundTicks: 10}
	f := newField(t, cfg)
	f.apply(sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1})
	// The radius covers the whole field: every pickup is taken every tick.
	for range 9 {
		f.r.Step()
	}
	v := f.view()
	if v.Globals[2] != 1 || v.Globals[3] != 10 {
		t.Fatalf("round %d ends %d at tick 9", v.Globals[2], v.Globals[3])
	}
	score := f.me("p")[4]
	if score < 9*3 {
		t.Fatalf("score %d after 9 ticks taking 3 pickups each", score)
	}
	f.r.Step() // tick 10: the round ends
	v = f.view()
	me := f.me("p")
	if v.Globals[2] != 2 || v.Globals[3] != 20 || me[4] != 0 || me[5] < score {
		t.Fatalf("after the round: round %d ends %d, score %d last %d (was %d)", v.Globals[2], v.Globals[3], me[4], me[5], score)
	}
}

func TestPickupsComeFromTheSeedAndTheTick(t *testing.T) {
	g, _ := collect.New(collect.DefaultConfig())
	var a, b, c game.View
	g.New(1).View(&a)
	g.New(1).View(&b)
	g.New(2).View(&c)
	if !a.Equal(&b) {
		t.Fatal("two rooms with the same seed have different pickups")
	}
	if a.Equal(&c) {
		t.Fatal("two rooms with different seeds have the same pickups")
	}
	// Restore checks every pickup against its id.
	bad := a.Clone()
	bad.Objects[0][0].Fields[0] = (bad.Objects[0][0].Fields[0] + 1) % 1000
	if _, err := g.Restore(1, 0, bad); err == nil {
		t.Fatal("a pickup moved away from where its id puts it was restored")
	}
	bad = a.Clone()
	bad.Objects[0] = bad.Objects[0][1:]
	if _, err := g.Restore(1, 0, bad); err == nil {
		t.Fatal("a room with a pickup missing was restored")
	}
	if _, err := g.Restore(1, 1200, &a); err == nil {
		t.Fatal("round 1 at tick 1200 was restored")
	}
}

func TestDecodeInputIsStrict(t *testing.T) {
	g, _ := collect.New(collect.DefaultConfig())
	for payload, want := range map[string]collect.Target{`{"x":0,"y":0}`: {}, `{"y":1000,"x":1000}`: {X: 1000, Y: 1000}, ` {"x": 5, "y": 6} `: {X: 5, Y: 6}} {
		got, err := g.DecodeInput([]byte(payload))
		if err != nil || got != want {
			t.Errorf("DecodeInput(%s) = %v, %v; want %v", payload, got, err, want)
		}
	}
	for _, p := range invalidTargets {
		if _, err := g.DecodeInput(p); !errors.Is(err, game.ErrPayload) {
			t.Errorf("DecodeInput(%s) = %v, want ErrPayload", p, err)
		}
	}
	// collect takes no key bitmasks: an input event without data is invalid.
	f := newField(t, collect.DefaultConfig())
	f.apply(sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1})
	if _, err := f.r.Apply(sim.Event{Kind: sim.KindInput, Player: "p", Seq: 2, Keys: 1}); !errors.Is(err, sim.ErrInvalidEvent) {
		t.Fatalf("keys: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := collect.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*collect.Config){
		"zero":        func(c *collect.Config) { *c = collect.Config{} },
		"speed 1":     func(c *collect.Config) { c.Speed = 1 },
		"huge":        func(c *collect.Config) { c.Width = collect.MaxSize + 1 },
		"no pickups":  func(c *collect.Config) { c.Pickups = 0 },
		"no round":    func(c *collect.Config) { c.RoundTicks = 0 },
		"zero radius": func(c *collect.Config) { c.Radius = 0 },
	} {
		c := collect.DefaultConfig()
		mod(&c)
		if _, err := collect.New(c); err == nil {
			t.Errorf("%s: New(%+v) accepted", name, c)
		}
	}
}
