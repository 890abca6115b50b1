package game_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := game.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := game.Config{Width: 1000, Height: 1000, Speed: 10, GraceTicks: 300, TombstoneTicks: 12000, TombstoneCap: 1000, MaxPlayers: 1000}
	if cfg != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", cfg, want)
	}
}

func TestConfigValidateRejectsUnusableRules(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*game.Config)
		ok   bool
	}{
		{"default", func(*game.Config) {}, true},
		{"zero grace", func(c *game.Config) { c.GraceTicks = 0 }, true},
		{"speed just below min side", func(c *game.Config) { c.Width, c.Height, c.Speed = 50, 20, 19 }, true},
		{"zero config", func(c *game.Config) { *c = game.Config{} }, false},
		{"zero width", func(c *game.Config) { c.Width = 0 }, false},
		{"negative height", func(c *game.Config) { c.Height = -1 }, false},
		{"huge width", func(c *game.Config) { c.Width = game.MaxArenaSize + 1 }, false},
		{"zero speed", func(c *game.Config) { c.Speed = 0 }, false},
		{"negative speed", func(c *game.Config) { c.Speed = -5 }, false},
		{"speed equal to min side", func(c *game.Config) { c.Width, c.Height, c.Speed = 50, 20, 20 }, false},
		{"negative grace", func(c *game.Config) { c.GraceTicks = -1 }, false},
		{"zero tombstone ticks", func(c *game.Config) { c.TombstoneTicks = 0 }, false},
		{"zero tombstone cap", func(c *game.Config) { c.TombstoneCap = 0 }, false},
		{"zero max players", func(c *game.Config) { c.MaxPlayers = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := game.DefaultConfig()
			tt.mod(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", cfg, err, tt.ok)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	long := strings.Repeat("a", game.MaxPlayerIDLen)
	tests := []struct {
		name string
		ev   game.Event
		ok   bool
	}{
		{"join", joinEv("p1a2b3c4d5e6f7a8", 17, "alice"), true},
		{"join without name", joinEv("p", 1, ""), true},
		{"join with unicode name", joinEv("p", 1, "Zoë 🚀 日本"), true},
		{"join with 32-rune name", joinEv("p", 1, strings.Repeat("é", 32)), true},
		{"input", inputEv("p", 18, 5), true},
		{"input releasing keys", inputEv("p", 18, 0), true},
		{"input all keys", inputEv("p", 18, 15), true},
		{"leave", leaveEv("p", 17), true},
		{"id with upper case, dash and underscore", joinEv("Ab-_9", 1, ""), true},
		{"id of max length", joinEv(long, 1, ""), true},

		{"unknown kind", game.Event{Kind: "shoot", Player: "p", Seq: 1}, false},
		{"empty kind", game.Event{Player: "p", Seq: 1}, false},
		{"empty player", joinEv("", 1, ""), false},
		{"player too long", joinEv(long+"a", 1, ""), false},
		{"player with colon", joinEv("a:b", 1, ""), false},
		{"player with dot", inputEv("a.b", 1, 0), false},
		{"player with space", leaveEv("a b", 1), false},
		{"join seq zero", joinEv("p", 0, ""), false},
		{"input seq zero", inputEv("p", 0, 1), false},
		{"leave conn zero", leaveEv("p", 0), false},
		{"name too long", joinEv("p", 1, strings.Repeat("x", 33)), false},
		{"name with newline", joinEv("p", 1, "a\nb"), false},
		{"name with NUL", joinEv("p", 1, "a\x00"), false},
		{"name with invalid utf8", joinEv("p", 1, "a\xff"), false},
		{"name with zero width space", joinEv("p", 1, "a\u200bb"), false},
		{"keys 16", inputEv("p", 1, 16), false},
		{"keys 255", inputEv("p", 1, 255), false},
		{"join with conn", game.Event{Kind: game.KindJoin, Player: "p", Seq: 1, Conn: 1}, false},
		{"join with keys", game.Event{Kind: game.KindJoin, Player: "p", Seq: 1, Keys: 1}, false},
		{"input with name", game.Event{Kind: game.KindInput, Player: "p", Seq: 1, Name: "x"}, false},
		{"input with conn", game.Event{Kind: game.KindInput, Player: "p", Seq: 1, Conn: 1}, false},
		{"leave with seq", game.Event{Kind: game.KindLeave, Player: "p", Conn: 1, Seq: 2}, false},
		{"leave with keys", game.Event{Kind: game.KindLeave, Player: "p", Conn: 1, Keys: 1}, false},
		{"leave with name", game.Event{Kind: game.KindLeave, Player: "p", Conn: 1, Name: "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.ev, err, tt.ok)
			}
			if err != nil && !errors.Is(err, game.ErrInvalidEvent) {
				t.Fatalf("error %v does not wrap ErrInvalidEvent", err)
			}
		})
	}
}

func TestEventMsgID(t *testing.T) {
	tests := []struct {
		ev   game.Event
		want string
	}{
		{joinEv("p1a2b3c4d5e6f7a8", 17, "alice"), "p1a2b3c4d5e6f7a8:join:17"},
		{inputEv("p1a2b3c4d5e6f7a8", 18, 5), "p1a2b3c4d5e6f7a8:input:18"},
		{leaveEv("p1a2b3c4d5e6f7a8", 17), "p1a2b3c4d5e6f7a8:leave:17"},
	}
	for _, tt := range tests {
		if got := tt.ev.MsgID(); got != tt.want {
			t.Errorf("MsgID(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

func TestEventWireFormatMatchesArchitectureDoc(t *testing.T) {
	wire := []string{
		`{"kind":"join","player":"p1a2b3c4d5e6f7a8","name":"alice","seq":17}`,
		`{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":18,"keys":5}`,
		`{"kind":"leave","player":"p1a2b3c4d5e6f7a8","conn":17}`,
	}
	want := []game.Event{
		joinEv("p1a2b3c4d5e6f7a8", 17, "alice"),
		inputEv("p1a2b3c4d5e6f7a8", 18, game.KeyUp|game.KeyLeft),
		leaveEv("p1a2b3c4d5e6f7a8", 17),
	}
	for i, w := range wire {
		var ev game.Event
		if err := json.Unmarshal([]byte(w), &ev); err != nil {
			t.Fatal(err)
		}
		if ev != want[i] {
			t.Errorf("decoded %s as %+v, want %+v", w, ev, want[i])
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("Validate(%s): %v", w, err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != w {
			t.Errorf("encoded %+v as %s, want %s", ev, b, w)
		}
	}
}

func TestSpawnIsDeterministicAndInsideArena(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.Width, cfg.Height = 37, 5
	seen := map[[2]int]bool{}
	for seed := range uint64(50) {
		for _, id := range []string{"a", "b", "p1a2b3c4d5e6f7a8", "Z_-9"} {
			x, y := game.Spawn(seed, id, cfg)
			if x2, y2 := game.Spawn(seed, id, cfg); x2 != x || y2 != y {
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
	cfg := game.DefaultConfig()
	got := [][2]int{}
	for _, c := range []struct {
		seed uint64
		id   string
	}{{0, "a"}, {1, "a"}, {1, "b"}, {42, "p1a2b3c4d5e6f7a8"}} {
		x, y := game.Spawn(c.seed, c.id, cfg)
		got = append(got, [2]int{x, y})
	}
	want := [][2]int{{302, 28}, {558, 337}, {381, 776}, {951, 4}}
	if !slices.Equal(got, want) {
		t.Fatalf("spawn points %v, want %v", got, want)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 1
	s := game.NewState(9)
	mustApply(t, s, cfg, joinEv("a", 1, "alice"))
	mustApply(t, s, cfg, joinEv("b", 1, "bob"))
	mustApply(t, s, cfg, leaveEv("b", 1))
	s.Step(cfg)
	c := s.Clone()
	if marshal(t, c) != marshal(t, s) {
		t.Fatal("clone differs from original")
	}
	orig := marshal(t, s)
	mustApply(t, c, cfg, inputEv("a", 2, game.KeyDown))
	c.Players[0].Name = "changed"
	c.Gone[0].Ack = 99
	steps(c, cfg, 3)
	if marshal(t, s) != orig {
		t.Fatal("mutating the clone changed the original")
	}
}

func TestEmptyStateMarshalsPlayersAsArray(t *testing.T) {
	want := `{"seed":5,"tick":0,"players":[]}`
	for name, s := range map[string]*game.State{
		"NewState":      game.NewState(5),
		"Clone of zero": (&game.State{Seed: 5}).Clone(),
		"after Apply": func() *game.State {
			s := &game.State{Seed: 5}
			s.Apply(game.DefaultConfig(), leaveEv("x", 1))
			return s
		}(),
		"with empty Gone": {Seed: 5, Players: []game.Player{}, Gone: []game.Tombstone{}},
	} {
		if got := marshal(t, s); got != want {
			t.Errorf("%s: marshal = %s, want %s", name, got, want)
		}
	}
	s := &game.State{Seed: 5}
	s.Step(game.DefaultConfig())
	if got := marshal(t, s); got != `{"seed":5,"tick":1,"players":[]}` {
		t.Errorf("after Step: marshal = %s", got)
	}
}

// State must stay embeddable: a custom MarshalJSON would be promoted and
// hide the other fields of a struct embedding it.
func TestStateCanBeEmbeddedInSnapshot(t *testing.T) {
	type snapshot struct {
		game.State
		Epoch uint64 `json:"epoch"`
	}
	b, err := json.Marshal(snapshot{State: *game.NewState(1), Epoch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"seed":1,"tick":0,"players":[],"epoch":7}`; string(b) != want {
		t.Fatalf("marshal = %s, want %s", b, want)
	}
}

func TestStateJSONRoundTripsByteIdentically(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.GraceTicks = 2
	s := game.NewState(11)
	mustApply(t, s, cfg, joinEv("a", 1, "alice"))
	mustApply(t, s, cfg, joinEv("b", 3, "bob"))
	mustApply(t, s, cfg, joinEv("c", 3, "carol"))
	mustApply(t, s, cfg, inputEv("a", 2, game.KeyUp|game.KeyRight))
	mustApply(t, s, cfg, leaveEv("b", 3))
	steps(s, cfg, 2)
	mustApply(t, s, cfg, leaveEv("c", 3))
	s.Step(cfg)

	b1 := marshal(t, s)
	var d game.State
	if err := json.Unmarshal([]byte(b1), &d); err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	if b2 := marshal(t, &d); b2 != b1 {
		t.Fatalf("round trip changed bytes:\n%s\n%s", b1, b2)
	}
	// The decoded state carries on exactly like the original.
	mustApply(t, s, cfg, inputEv("a", 5, game.KeyDown))
	mustApply(t, &d, cfg, inputEv("a", 5, game.KeyDown))
	steps(s, cfg, 4)
	steps(&d, cfg, 4)
	if marshal(t, s) != marshal(t, &d) {
		t.Fatal("decoded state diverged")
	}
	if !strings.Contains(b1, `"away":2`) || !strings.Contains(b1, `"gone":[{"id":"b","ack":3,"tick":2}]`) {
		t.Fatalf("unexpected encoding %s", b1)
	}
}

func TestStateValidateDetectsBrokenInvariants(t *testing.T) {
	cfg := game.DefaultConfig()
	good := func() *game.State {
		s := game.NewState(1)
		s.Tick = 10
		s.Players = []game.Player{
			{ID: "a", X: 1, Y: 2, Ack: 3, Conn: 3, Online: true},
			{ID: "b", X: 1000, Y: 1000, Ack: 5, Conn: 4, AwaySince: 9},
		}
		s.Gone = []game.Tombstone{{ID: "c", Ack: 1, Tick: 10}}
		return s
	}
	if err := good().Validate(cfg); err != nil {
		t.Fatalf("valid state rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*game.State)
	}{
		{"unsorted players", func(s *game.State) { s.Players[0], s.Players[1] = s.Players[1], s.Players[0] }},
		{"duplicate player", func(s *game.State) { s.Players[1].ID = "a" }},
		{"bad id", func(s *game.State) { s.Players[0].ID = "" }},
		{"outside arena", func(s *game.State) { s.Players[1].X = 1001 }},
		{"negative position", func(s *game.State) { s.Players[0].Y = -1 }},
		{"bad keys", func(s *game.State) { s.Players[0].Keys = 16 }},
		{"conn above ack", func(s *game.State) { s.Players[0].Conn = 4 }},
		{"zero conn", func(s *game.State) { s.Players[0].Conn = 0 }},
		{"online but away", func(s *game.State) { s.Players[0].AwaySince = 1 }},
		{"away in the future", func(s *game.State) { s.Players[1].AwaySince = 11 }},
		{"bad name", func(s *game.State) { s.Players[0].Name = "\x01" }},
		{"player with tombstone", func(s *game.State) { s.Gone[0].ID = "a" }},
		{"tombstone in the future", func(s *game.State) { s.Gone[0].Tick = 11 }},
		{"unsorted tombstones", func(s *game.State) { s.Gone = append(s.Gone, game.Tombstone{ID: "b0"}) }},
		{"negative tick", func(s *game.State) { s.Tick = -1; s.Players[1].AwaySince = 0; s.Gone = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mutate(s)
			if err := s.Validate(cfg); err == nil {
				t.Fatalf("Validate accepted %s", marshal(t, s))
			}
		})
	}
}
