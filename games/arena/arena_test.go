package arena_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/game/gametest"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// randomKeys is a valid arena payload: a keys object with a random subset of its members.
func randomKeys(r *rand.Rand) []byte {
	var parts []string
	for _, k := range []string{"up", "down", "left", "right"} {
		switch r.IntN(3) {
		case 1:
			parts = append(parts, `"`+k+`":true`)
		case 2:
			parts = append(parts, `"`+k+`":false`)
		}
	}
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return []byte("{" + strings.Join(parts, ",") + "}")
}

var invalidKeys = [][]byte{[]byte(`[]`), []byte(`{"up":1}`), []byte(`{"up":"true"}`), []byte(`{"up":null}`),
	[]byte(`{"jump":true}`), []byte(`{"up":true,"up":false}`), []byte(`{"Up":true}`), []byte(`5`), []byte(`{"up":true}x`)}

func TestArenaPassesTheConformanceKit(t *testing.T) {
	for _, cfg := range []arena.Config{arena.DefaultConfig(), {Width: 60, Height: 40, Speed: 7}} {
		g, err := arena.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		gametest.Run(t, g, gametest.Config{Input: randomKeys, Invalid: invalidKeys})
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := arena.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := arena.DefaultConfig(), (arena.Config{Width: 1000, Height: 1000, Speed: 10}); got != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", got, want)
	}
}

func TestConfigValidateRejectsUnusableRules(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*arena.Config)
		ok   bool
	}{
		{"default", func(*arena.Config) {}, true},
		{"speed just below min side", func(c *arena.Config) { c.Width, c.Height, c.Speed = 50, 20, 19 }, true},
		{"zero config", func(c *arena.Config) { *c = arena.Config{} }, false},
		{"zero width", func(c *arena.Config) { c.Width = 0 }, false},
		{"negative height", func(c *arena.Config) { c.Height = -1 }, false},
		{"huge width", func(c *arena.Config) { c.Width = arena.MaxArenaSize + 1 }, false},
		{"zero speed", func(c *arena.Config) { c.Speed = 0 }, false},
		{"negative speed", func(c *arena.Config) { c.Speed = -5 }, false},
		{"speed equal to min side", func(c *arena.Config) { c.Width, c.Height, c.Speed = 50, 20, 20 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := arena.DefaultConfig()
			tt.mod(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", cfg, err, tt.ok)
			}
			if _, err := arena.New(cfg); (err == nil) != tt.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", cfg, err, tt.ok)
			}
		})
	}
}

func TestInfoDeclaresTheTickLayout(t *testing.T) {
	g, _ := arena.New(arena.DefaultConfig())
	info := g.Info()
	var names []string
	for _, f := range info.Schema.Globals {
		names = append(names, f.Name)
	}
	names = append(names, "|")
	for _, f := range info.Schema.Player {
		names = append(names, f.Name)
	}
	// The members of a protocol 1 tick, in their order (docs/PROTOCOL.md).
	if got := strings.Join(names, " "); got != "width height | x y vx vy keys" {
		t.Fatalf("schema %q", got)
	}
	if len(info.Schema.Objects) != 0 {
		t.Fatalf("objects %+v", info.Schema.Objects)
	}
	want := []game.Param{{Name: "width", Value: 1000}, {Name: "height", Value: 1000}, {Name: "speed", Value: 10}}
	if !slices.Equal(info.Params, want) {
		t.Fatalf("params %+v, want %+v", info.Params, want)
	}
}

func TestJoinSpawnsTheNewPlayer(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 42)
	w.join("p1", 17)
	x, y := arena.Spawn(42, "p1", arena.DefaultConfig())
	if p := w.player("p1"); p != (pl{X: x, Y: y, Ack: 17, Conn: 17, Online: true}) {
		t.Fatalf("player = %+v, want at (%d, %d)", p, x, y)
	}
}

func TestLeaveStopsThePlayer(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 3)
	w.place("p", 500, 500)
	w.keys("p", 4, arena.KeyUp|arena.KeyLeft)
	w.steps(2)
	w.leave("p", 3)
	w.steps(5)
	want := pl{X: 480, Y: 480, Ack: 4, Conn: 3, Online: false, Away: 2}
	if p := w.player("p"); p != want {
		t.Fatalf("player = %+v, want %+v", p, want)
	}
}

func TestRejoinKeepsThePositionAndReleasesTheKeys(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 1)
	w.place("p", 100, 200)
	w.keys("p", 2, arena.KeyDown)
	w.leave("p", 1)
	w.steps(10)
	w.join("p", 3)
	if p := w.player("p"); p != (pl{X: 100, Y: 200, Ack: 3, Conn: 3, Online: true}) {
		t.Fatalf("player = %+v", p)
	}
	// A new connection while online releases the keys too.
	w.keys("p", 4, arena.KeyRight)
	w.join("p", 5)
	if p := w.player("p"); p.Keys != 0 || p.VX != 0 || p.VY != 0 {
		t.Fatalf("player = %+v, want no keys", p)
	}
}

func TestJoinOvertakenByItsInputsKeepsTheirKeys(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 5)
	// The new connection's inputs (9, 10) arrive before its join (8), while the old connection is still online.
	w.keys("p", 9, arena.KeyUp)
	w.keys("p", 10, arena.KeyRight)
	w.join("p", 8)
	if p := w.player("p"); !p.Online || p.Conn != 8 || p.Ack != 10 || p.Keys != arena.KeyRight || p.VX != 10 {
		t.Fatalf("player = %+v, want online on conn 8 moving right", p)
	}
}

func TestInputWhileOfflineDoesNotMove(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 1)
	w.place("p", 500, 500)
	w.leave("p", 1)
	w.keys("p", 2, arena.KeyRight) // an input of the old connection arriving after its leave
	w.steps(3)
	if p := w.player("p"); p.Ack != 2 || p.Keys != 0 || p.X != 500 || p.Online {
		t.Fatalf("player = %+v, want offline at rest with ack 2", p)
	}
}

func TestKeysAsDataAndAsBitmaskAreTheSameInput(t *testing.T) {
	a := newWorld(t, arena.DefaultConfig(), 9)
	b := newWorld(t, arena.DefaultConfig(), 9)
	a.join("p", 1)
	b.join("p", 1)
	a.data("p", 2, `{"up":true,"left":true,"down":false}`)
	b.keys("p", 2, arena.KeyUp|arena.KeyLeft)
	a.steps(3)
	b.steps(3)
	if ea, eb := a.r.AppendJSON(nil), b.r.AppendJSON(nil); string(ea) != string(eb) {
		t.Fatalf("\n%s\n%s", ea, eb)
	}
}

func TestDecodeInputIsStrict(t *testing.T) {
	g, _ := arena.New(arena.DefaultConfig())
	for payload, want := range map[string]arena.Keys{
		`{}`: 0, `{"up":true}`: arena.KeyUp, `{"right":true,"down":true}`: arena.KeyRight | arena.KeyDown,
		`{"up":false,"down":false,"left":true,"right":false}`: arena.KeyLeft, ` { "up" : true } `: arena.KeyUp,
	} {
		got, err := g.DecodeInput([]byte(payload))
		if err != nil || got != want {
			t.Errorf("DecodeInput(%s) = %v, %v; want %d", payload, got, err, want)
		}
	}
	for _, p := range invalidKeys {
		if _, err := g.DecodeInput(p); !errors.Is(err, game.ErrPayload) {
			t.Errorf("DecodeInput(%s) = %v, want ErrPayload", p, err)
		}
	}
	long := []byte(`{"up":true` + strings.Repeat(" ", 200) + `}`)
	if _, err := g.DecodeInput(long); err == nil {
		t.Error("an input over the bound was accepted")
	}
}

func TestLegacyKeysRoundTrip(t *testing.T) {
	g, _ := arena.New(arena.DefaultConfig())
	var lk game.LegacyKeys = g
	for m := range uint8(16) {
		in, err := lk.KeysInput(m)
		if err != nil || lk.InputKeys(in) != m {
			t.Fatalf("mask %d: %v, %v", m, in, err)
		}
	}
	if _, err := lk.KeysInput(16); err == nil {
		t.Fatal("mask 16 accepted")
	}
	// Through the framework: an event with keys 16 is refused.
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 1)
	if _, err := w.r.Apply(sim.Event{Kind: sim.KindInput, Player: "p", Seq: 2, Keys: 16}); !errors.Is(err, sim.ErrInvalidEvent) {
		t.Fatalf("keys 16: %v", err)
	}
}

func TestSpawnIsDeterministicAndInsideArena(t *testing.T) {
	cfg := arena.Config{Width: 37, Height: 5, Speed: 1}
	seen := map[[2]int]bool{}
	for seed := range uint64(50) {
		for _, id := range []string{"a", "b", "p1a2b3c4d5e6f7a8", "Z_-9"} {
			x, y := arena.Spawn(seed, id, cfg)
			if x2, y2 := arena.Spawn(seed, id, cfg); x2 != x || y2 != y {
				t.Fatalf("Spawn(%d, %q) not deterministic", seed, id)
			}
			if x < 0 || x > cfg.Width || y < 0 || y > cfg.Height {
				t.Fatalf("Spawn(%d, %q) = (%d, %d) outside %dx%d", seed, id, x, y, cfg.Width, cfg.Height)
			}
			seen[[2]int{x, y}] = true
		}
	}
	if len(seen) < 50 {
		t.Fatalf("only %d distinct spawn points out of 200", len(seen))
	}
}

func TestSpawnIsStableAcrossReleases(t *testing.T) {
	// Pinned values: changing the hash would change replays of old snapshots.
	cfg := arena.DefaultConfig()
	got := [][2]int{}
	for _, c := range []struct {
		seed uint64
		id   string
	}{{0, "a"}, {1, "a"}, {1, "b"}, {42, "p1a2b3c4d5e6f7a8"}} {
		x, y := arena.Spawn(c.seed, c.id, cfg)
		got = append(got, [2]int{x, y})
	}
	want := [][2]int{{302, 28}, {558, 337}, {381, 776}, {951, 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("spawn points %v, want %v", got, want)
	}
}

func TestRestoreRefusesAnotherArena(t *testing.T) {
	small, _ := arena.New(arena.Config{Width: 500, Height: 500, Speed: 10})
	big, _ := arena.New(arena.DefaultConfig())
	var v game.View
	small.New(1).View(&v)
	if _, err := big.Restore(1, 0, &v); err == nil {
		t.Fatal("a 500x500 arena restored as a 1000x1000 one")
	}
}
