package arena_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// Prediction fixtures shared with the TypeScript client: frontend/src/predict/arena.test.ts replays every file of
// testdata/predict/ through the browser's predictor (frontend/src/predict/arena.ts) and must reproduce each
// expected state exactly. The files are generated from the real simulation by this test:
//
//	go test ./games/arena -run TestPredictFixtures -update
//
// Without -update the test regenerates every fixture in memory and fails if a committed file differs, so a change
// to the movement rules that is not mirrored in TypeScript fails here or in the TypeScript suite, never silently.
var updatePredict = flag.Bool("update", false, "rewrite the prediction fixtures in testdata/predict")

const predictDir = "testdata/predict"

// predictState is the part of a player the client predicts (the tick's member names).
type predictState struct {
	X      int        `json:"x"`
	Y      int        `json:"y"`
	VX     int        `json:"vx"`
	VY     int        `json:"vy"`
	Keys   arena.Keys `json:"keys"`
	Ack    uint64     `json:"ack"`
	Conn   uint64     `json:"conn"`
	Online bool       `json:"online"`
}

// predictOp is one event or step of a fixture with the player's state after it.
type predictOp struct {
	Op      string       `json:"op"` // join, input, leave or step
	Seq     uint64       `json:"seq,omitempty"`
	Keys    arena.Keys   `json:"keys,omitempty"`
	Conn    uint64       `json:"conn,omitempty"`
	Applied bool         `json:"applied"` // events: whether Apply changed the state; steps: always true
	State   predictState `json:"state"`
}

type predictConfig struct {
	Width  int `json:"width"`
	Height int `json:"height"`
	Speed  int `json:"speed"`
}

type predictFixture struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Config      predictConfig `json:"config"`
	Seed        uint64        `json:"seed"`
	Player      string        `json:"player"`
	Ops         []predictOp   `json:"ops"`
}

// predictScript builds one fixture by running the real arena inside the framework's roster, as an owner does.
type predictScript struct {
	t   *testing.T
	cfg arena.Config
	w   *world
	f   predictFixture
}

func newPredictScript(t *testing.T, name, desc string, w, h, speed int, seed uint64) *predictScript {
	cfg := arena.Config{Width: w, Height: h, Speed: speed}
	return &predictScript{t: t, cfg: cfg, w: newWorld(t, cfg, seed), f: predictFixture{
		Name: name, Description: desc, Config: predictConfig{w, h, speed}, Seed: seed, Player: "p1",
	}}
}

func (p *predictScript) record(op predictOp) {
	pl := p.w.player(p.f.Player)
	op.State = predictState{pl.X, pl.Y, pl.VX, pl.VY, pl.Keys, pl.Ack, pl.Conn, pl.Online}
	p.f.Ops = append(p.f.Ops, op)
}

func (p *predictScript) event(op predictOp, ev sim.Event) *predictScript {
	ok, err := p.w.r.Apply(ev)
	if err != nil {
		p.t.Fatalf("%s: Apply(%+v): %v", p.f.Name, ev, err)
	}
	op.Applied = ok
	p.record(op)
	return p
}

func (p *predictScript) join(seq uint64) *predictScript {
	return p.event(predictOp{Op: "join", Seq: seq}, sim.Event{Kind: sim.KindJoin, Player: p.f.Player, Seq: seq, Name: "alice"})
}

func (p *predictScript) input(seq uint64, k arena.Keys) *predictScript {
	return p.event(predictOp{Op: "input", Seq: seq, Keys: k}, sim.Event{Kind: sim.KindInput, Player: p.f.Player, Seq: seq, Keys: uint8(k)})
}

func (p *predictScript) leave(conn uint64) *predictScript {
	return p.event(predictOp{Op: "leave", Conn: conn}, sim.Event{Kind: sim.KindLeave, Player: p.f.Player, Conn: conn})
}

func (p *predictScript) steps(n int) *predictScript {
	for range n {
		p.w.r.Step()
		p.record(predictOp{Op: "step", Applied: true})
	}
	return p
}

// walk holds k until the player has not moved for two steps (it is against the walls k pushes into).
func (p *predictScript) walk(seq uint64, k arena.Keys) *predictScript {
	p.input(seq, k)
	still := 0
	for i := 0; still < 2; i++ {
		if i > 2*max(p.cfg.Width, p.cfg.Height) {
			p.t.Fatalf("%s: keys %d never reached a wall", p.f.Name, k)
		}
		before := p.f.Ops[len(p.f.Ops)-1].State
		p.steps(1)
		after := p.f.Ops[len(p.f.Ops)-1].State
		if before.X == after.X && before.Y == after.Y {
			still++
		} else {
			still = 0
		}
	}
	return p
}

func predictFixtures(t *testing.T) []predictFixture {
	all := []*predictScript{
		newPredictScript(t, "press_and_release", "default rules: hold right for three steps, release, stand still", 1000, 1000, 10, 1).
			join(1).input(2, arena.KeyRight).steps(3).input(3, 0).steps(2),
		newPredictScript(t, "inputs_take_effect_at_the_next_step", "several inputs between two steps: only the last one moves the player, at the next step", 1000, 1000, 10, 2).
			join(1).steps(1).input(2, arena.KeyUp).input(3, arena.KeyDown).input(4, arena.KeyLeft).steps(2).input(5, arena.KeyDown).input(6, 0).steps(1),
		newPredictScript(t, "diagonals", "every diagonal: both axes move at full speed (no normalisation)", 1000, 1000, 10, 3).
			join(1).input(2, arena.KeyUp|arena.KeyRight).steps(2).input(3, arena.KeyUp|arena.KeyLeft).steps(2).
			input(4, arena.KeyDown|arena.KeyLeft).steps(2).input(5, arena.KeyDown|arena.KeyRight).steps(2),
		newPredictScript(t, "opposite_keys", "opposite keys cancel on their axis; the keys are kept as sent", 1000, 1000, 10, 4).
			join(1).input(2, arena.KeyUp|arena.KeyDown).steps(2).input(3, arena.KeyLeft|arena.KeyRight).steps(2).
			input(4, arena.AllKeys).steps(2).input(5, arena.KeyUp|arena.KeyDown|arena.KeyRight).steps(2).
			input(6, arena.KeyLeft|arena.KeyRight|arena.KeyDown).steps(2),
		newPredictScript(t, "walls_small_arena", "a 60 x 40 arena at speed 7: into each wall, sliding along it, clamped at every edge", 60, 40, 7, 5).
			join(1).walk(2, arena.KeyLeft).walk(3, arena.KeyUp).walk(4, arena.KeyRight).walk(5, arena.KeyDown).
			walk(6, arena.KeyLeft).walk(7, arena.KeyUp|arena.KeyRight).walk(8, arena.KeyDown|arena.KeyLeft),
		newPredictScript(t, "corners_default_arena", "default rules: diagonally into every corner of the 1000 x 1000 arena", 1000, 1000, 10, 6).
			join(1).walk(2, arena.KeyUp|arena.KeyLeft).walk(3, arena.KeyDown|arena.KeyRight).
			walk(4, arena.KeyUp|arena.KeyRight).walk(5, arena.KeyDown|arena.KeyLeft),
		newPredictScript(t, "odd_sizes", "a 333 x 97 arena at speed 13, not a multiple of the speed: the last step before a wall is short", 333, 97, 13, 7).
			join(1).walk(2, arena.KeyRight|arena.KeyDown).walk(3, arena.KeyLeft).walk(4, arena.KeyUp),
		newPredictScript(t, "stale_and_duplicate_inputs", "inputs at or below ack are ignored, gaps in seq are fine", 1000, 1000, 10, 8).
			join(5).input(4, arena.KeyRight).input(5, arena.KeyRight).steps(1).input(9, arena.KeyDown).input(9, arena.KeyUp).
			input(7, arena.KeyLeft).steps(2).input(12, 0).input(10, arena.KeyRight).steps(1),
		newPredictScript(t, "rejoin", "a new connection's join clears keys and velocity; a join overtaken by its own input keeps them", 1000, 1000, 10, 9).
			join(1).input(2, arena.KeyRight).steps(2).join(3).steps(1).input(4, arena.KeyDown).steps(1).
			input(6, arena.KeyLeft).join(5).steps(2).join(5).join(4).steps(1),
		newPredictScript(t, "leave_and_offline_input", "a leave stops the player; an input while offline only consumes its seq; a rejoin does not restore keys", 1000, 1000, 10, 10).
			join(1).input(2, arena.KeyDown).steps(1).leave(2).leave(1).steps(1).input(3, arena.KeyUp).steps(2).
			join(4).steps(1).input(5, arena.KeyUp).steps(1),
	}
	out := make([]predictFixture, len(all))
	for i, s := range all {
		out[i] = s.f
	}
	return out
}

// encodePredictFixture writes one op per line, so that a diff shows which step changed.
func encodePredictFixture(t *testing.T, f predictFixture) []byte {
	var b bytes.Buffer
	head := f
	head.Ops = nil
	h, err := json.Marshal(head) // "ops":null last: replaced below
	if err != nil {
		t.Fatal(err)
	}
	b.Write(bytes.TrimSuffix(h, []byte(`"ops":null}`)))
	b.WriteString("\n\"ops\":[\n")
	for i, op := range f.Ops {
		o, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(o)
		if i < len(f.Ops)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

func TestPredictFixtures(t *testing.T) {
	fixtures := predictFixtures(t)
	want := map[string][]byte{}
	for _, f := range fixtures {
		want[f.Name+".json"] = encodePredictFixture(t, f)
	}
	if *updatePredict {
		if err := os.RemoveAll(predictDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(predictDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(predictDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(predictDir)
	if err != nil {
		t.Fatalf("%v (generate the fixtures with: go test ./games/arena -run TestPredictFixtures -update)", err)
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(have, names) {
		t.Fatalf("%s holds %v, the generator makes %v (run go test ./games/arena -run TestPredictFixtures -update)", predictDir, have, names)
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(predictDir, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[n]) {
			t.Errorf("%s/%s differs from what the simulation produces (run go test ./games/arena -run TestPredictFixtures -update, then make frontend/src/predict/arena.ts reproduce it)", predictDir, n)
		}
	}
}

// TestPredictFixturesCoverTheRules guards the scripts: the fixtures must reach every wall, corner, ignored event
// and key combination the TypeScript predictor is held to.
func TestPredictFixturesCoverTheRules(t *testing.T) {
	var walls [4]bool // left, top, right, bottom
	ignored, offline, cancel, diagonal, shortStep := false, false, false, false, false
	for _, f := range predictFixtures(t) {
		var prev *predictState
		for i := range f.Ops {
			op := &f.Ops[i]
			st := op.State
			walls[0] = walls[0] || st.X == 0
			walls[1] = walls[1] || st.Y == 0
			walls[2] = walls[2] || st.X == f.Config.Width
			walls[3] = walls[3] || st.Y == f.Config.Height
			ignored = ignored || (op.Op != "step" && !op.Applied)
			offline = offline || (op.Op == "input" && op.Applied && !st.Online)
			cancel = cancel || (st.Keys&(arena.KeyUp|arena.KeyDown) == arena.KeyUp|arena.KeyDown && st.VY == 0)
			diagonal = diagonal || (st.VX != 0 && st.VY != 0)
			if op.Op == "step" && prev != nil && prev.VX != 0 {
				if d := st.X - prev.X; d != 0 && d != prev.VX {
					shortStep = true
				}
			}
			prev = &op.State
		}
	}
	if walls != [4]bool{true, true, true, true} || !ignored || !offline || !cancel || !diagonal || !shortStep {
		t.Fatalf("fixtures miss a rule: walls %v ignored %v offline %v cancel %v diagonal %v short step %v",
			walls, ignored, offline, cancel, diagonal, shortStep)
	}
}
