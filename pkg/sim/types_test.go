package sim_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := sim.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := sim.Config{GraceTicks: 300, TombstoneTicks: 12000, TombstoneCap: 1000, MaxPlayers: 1000}
	if cfg != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", cfg, want)
	}
}

func TestConfigValidateRejectsUnusableRules(t *testing.T) {
	for name, mod := range map[string]func(*sim.Config){
		"zero config":          func(c *sim.Config) { *c = sim.Config{} },
		"negative grace":       func(c *sim.Config) { c.GraceTicks = -1 },
		"zero tombstone ticks": func(c *sim.Config) { c.TombstoneTicks = 0 },
		"zero tombstone cap":   func(c *sim.Config) { c.TombstoneCap = 0 },
		"zero max players":     func(c *sim.Config) { c.MaxPlayers = 0 },
	} {
		cfg := sim.DefaultConfig()
		mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate(%+v) accepted", name, cfg)
		}
	}
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("zero grace: %v", err)
	}
}

func TestEventValidate(t *testing.T) {
	long := strings.Repeat("a", game.MaxPlayerIDLen)
	tests := []struct {
		name string
		ev   sim.Event
		ok   bool
	}{
		{"join", joinEv("p1a2b3c4d5e6f7a8", 17, "alice"), true},
		{"join without name", joinEv("p", 1, ""), true},
		{"join with unicode name", joinEv("p", 1, "Zoë 🚀 日本"), true},
		{"join with 32-rune name", joinEv("p", 1, strings.Repeat("é", 32)), true},
		{"join at the largest seq", joinEv("p", sim.MaxCounter, ""), true},
		{"input with keys", keysEv("p", 18, 5), true},
		{"input with keys 0 (absent)", keysEv("p", 18, 0), true},
		{"input with data", inputEv("p", 18, 5), true},
		{"input with an object", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Data: []byte(`{"x":1}`)}, true},
		{"leave", leaveEv("p", 17), true},
		{"id with upper case, dash and underscore", joinEv("Ab-_9", 1, ""), true},
		{"id of max length", joinEv(long, 1, ""), true},

		{"unknown kind", sim.Event{Kind: "shoot", Player: "p", Seq: 1}, false},
		{"empty kind", sim.Event{Player: "p", Seq: 1}, false},
		{"empty player", joinEv("", 1, ""), false},
		{"player too long", joinEv(long+"a", 1, ""), false},
		{"player with colon", joinEv("a:b", 1, ""), false},
		{"player with dot", inputEv("a.b", 1, 0), false},
		{"player with space", leaveEv("a b", 1), false},
		{"join seq zero", joinEv("p", 0, ""), false},
		{"join seq above 2^53-1", joinEv("p", sim.MaxCounter+1, ""), false},
		{"input seq zero", inputEv("p", 0, 1), false},
		{"input seq 2^64-1", inputEv("p", 1<<64-1, 1), false},
		{"leave conn zero", leaveEv("p", 0), false},
		{"leave conn above 2^53-1", leaveEv("p", sim.MaxCounter+1), false},
		{"name too long", joinEv("p", 1, strings.Repeat("x", 33)), false},
		{"name with newline", joinEv("p", 1, "a\nb"), false},
		{"name with NUL", joinEv("p", 1, "a\x00"), false},
		{"name with invalid utf8", joinEv("p", 1, "a\xff"), false},
		{"name with zero width space", joinEv("p", 1, "a\u200bb"), false},
		{"keys and data", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Keys: 1, Data: []byte("1")}, false},
		{"data not JSON", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Data: []byte("{")}, false},
		{"data too large", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Data: []byte(`"` + strings.Repeat("x", sim.MaxDataBytes) + `"`)}, false},
		{"join with conn", sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1, Conn: 1}, false},
		{"join with keys", sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1, Keys: 1}, false},
		{"join with data", sim.Event{Kind: sim.KindJoin, Player: "p", Seq: 1, Data: []byte("1")}, false},
		{"input with name", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Name: "x"}, false},
		{"input with conn", sim.Event{Kind: sim.KindInput, Player: "p", Seq: 1, Conn: 1}, false},
		{"leave with seq", sim.Event{Kind: sim.KindLeave, Player: "p", Conn: 1, Seq: 2}, false},
		{"leave with keys", sim.Event{Kind: sim.KindLeave, Player: "p", Conn: 1, Keys: 1}, false},
		{"leave with name", sim.Event{Kind: sim.KindLeave, Player: "p", Conn: 1, Name: "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.ev, err, tt.ok)
			}
			if err != nil && !errors.Is(err, sim.ErrInvalidEvent) {
				t.Fatalf("error %v does not wrap ErrInvalidEvent", err)
			}
		})
	}
}

func TestEventMsgID(t *testing.T) {
	for _, tt := range []struct {
		ev   sim.Event
		want string
	}{
		{joinEv("p1a2b3c4d5e6f7a8", 17, "alice"), "p1a2b3c4d5e6f7a8:join:17"},
		{keysEv("p1a2b3c4d5e6f7a8", 18, 5), "p1a2b3c4d5e6f7a8:input:18"},
		{leaveEv("p1a2b3c4d5e6f7a8", 17), "p1a2b3c4d5e6f7a8:leave:17"},
	} {
		if got := tt.ev.MsgID(); got != tt.want {
			t.Errorf("MsgID(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// The events nodes wrote before games had payloads (the first three) keep their exact bytes; a payload travels
// as "data".
func TestEventWireFormatMatchesArchitectureDoc(t *testing.T) {
	for _, c := range []struct {
		wire string
		ev   sim.Event
	}{
		{`{"kind":"join","player":"p1a2b3c4d5e6f7a8","name":"alice","seq":17}`, joinEv("p1a2b3c4d5e6f7a8", 17, "alice")},
		{`{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":18,"keys":5}`, keysEv("p1a2b3c4d5e6f7a8", 18, 5)},
		{`{"kind":"leave","player":"p1a2b3c4d5e6f7a8","conn":17}`, leaveEv("p1a2b3c4d5e6f7a8", 17)},
		{`{"kind":"input","player":"p1a2b3c4d5e6f7a8","seq":19,"data":{"x":120,"y":40}}`,
			sim.Event{Kind: sim.KindInput, Player: "p1a2b3c4d5e6f7a8", Seq: 19, Data: []byte(`{"x":120,"y":40}`)}},
	} {
		var ev sim.Event
		if err := json.Unmarshal([]byte(c.wire), &ev); err != nil {
			t.Fatal(err)
		}
		if !ev.Equal(c.ev) {
			t.Errorf("decoded %s as %+v, want %+v", c.wire, ev, c.ev)
		}
		if err := ev.Validate(); err != nil {
			t.Errorf("Validate(%s): %v", c.wire, err)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.wire {
			t.Errorf("encoded %+v as %s, want %s", ev, b, c.wire)
		}
	}
}

func TestRoomEncodingRoundTripsByteIdentically(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 2
	r := newRoom(cfg)
	mustApply(t, r, joinEv("a", 1, "alice"))
	mustApply(t, r, joinEv("b", 3, "bob \"the\" <builder>"))
	mustApply(t, r, joinEv("c", 3, "carol"))
	mustApply(t, r, inputEv("a", 2, 9))
	mustApply(t, r, leaveEv("b", 3))
	steps(r, 2)
	mustApply(t, r, leaveEv("c", 3))
	r.Step()

	b1 := encode(r)
	d, from, err := sim.Decode(r.Game(), cfg, []byte(b1))
	if err != nil || from != "" {
		t.Fatalf("Decode: %v (from %q)", err, from)
	}
	if b2 := encode(d); b2 != b1 {
		t.Fatalf("round trip changed bytes:\n%s\n%s", b1, b2)
	}
	// The decoded room carries on exactly like the original.
	for _, x := range []*sim.Room{r, d} {
		mustApply(t, x, inputEv("a", 5, 4))
		steps(x, 4)
	}
	if encode(r) != encode(d) {
		t.Fatal("decoded room diverged")
	}
	want := `{"game":"probe","seed":1,"tick":3,"steps":3,"removed":1,"players":[{"id":"a","name":"alice","joins":1,"leaves":0,"inputs":1,"last":9,"ack":2,"conn":1,"online":true},{"id":"c","name":"carol","joins":1,"leaves":1,"inputs":0,"last":0,"ack":3,"conn":3,"online":false,"away":2}],"gone":[{"id":"b","ack":3,"tick":2}]}`
	if b1 != want {
		t.Fatalf("encoding\n%s\nwant\n%s", b1, want)
	}
}

func TestRoomDecodeRefusesBrokenEncodings(t *testing.T) {
	g := probeGame(true)
	good := `{"game":"probe","seed":1,"tick":3,"steps":3,"removed":0,"players":[{"id":"a","name":"alice","joins":1,"leaves":0,"inputs":1,"last":9,"ack":2,"conn":1,"online":true}]}`
	if _, _, err := sim.Decode(g, sim.DefaultConfig(), []byte(good)); err != nil {
		t.Fatalf("good encoding refused: %v", err)
	}
	for name, enc := range map[string]string{
		"not JSON":             `{`,
		"no seed":              strings.Replace(good, `"seed":1,`, ``, 1),
		"fractional tick":      strings.Replace(good, `"tick":3`, `"tick":3.5`, 1),
		"a global missing":     strings.Replace(good, `"steps":3,`, ``, 1),
		"a field missing":      strings.Replace(good, `"last":9,`, ``, 1),
		"a field out of range": strings.Replace(good, `"last":9`, `"last":1001`, 1),
		"conn above ack":       strings.Replace(good, `"conn":1`, `"conn":3`, 1),
		"ack above 2^53-1":     strings.Replace(good, `"ack":2`, `"ack":9007199254740992`, 1),
		"players not array":    strings.Replace(good, `"players":[`, `"players":{"x":[`, 1) + "}",
	} {
		if _, _, err := sim.Decode(g, sim.DefaultConfig(), []byte(enc)); err == nil {
			t.Errorf("%s: decoded %s", name, enc)
		}
	}
}

// legacyArenaSnapshot is the state of a snapshot written by nodes before the game API (pkg/game.State, as
// json.Marshal wrote it): the arena's players with their roster, tombstones, no game name, no globals.
const legacyArenaSnapshot = `{"seed":12345,"tick":950,"players":[{"id":"pa","name":"alice","x":510,"y":20,"vx":10,"vy":0,"keys":8,"ack":42,"conn":41,"online":true},{"id":"pb","name":"bob","x":0,"y":1000,"vx":0,"vy":0,"keys":0,"ack":7,"conn":7,"online":false,"away":900}],"gone":[{"id":"pc","ack":3,"tick":800}]}`

// A rolling upgrade keeps the lobby: a new owner restores the snapshot an old owner wrote.
func TestSnapshotStateFromBeforeGamesRestoresTheArena(t *testing.T) {
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	r, from, err := sim.Decode(g, sim.DefaultConfig(), []byte(legacyArenaSnapshot))
	if err != nil || from != "" {
		t.Fatalf("Decode: %v (from %q)", err, from)
	}
	if r.Tick() != 950 || r.Seed() != 12345 {
		t.Fatalf("tick %d seed %d", r.Tick(), r.Seed())
	}
	if p := player(t, r, "pb"); p.Online || p.AwaySince != 900 || p.Ack != 7 {
		t.Fatalf("bob = %+v", p)
	}
	if tomb, ok := r.Tombstone("pc"); !ok || tomb.Ack != 3 {
		t.Fatalf("tombstone %+v %v", tomb, ok)
	}
	var v game.View
	r.View(&v)
	if f, _ := v.Player("pa"); f[0] != 510 || f[2] != 10 || f[4] != 8 {
		t.Fatalf("alice's fields %v", f)
	}
	if v.Globals[0] != 1000 || v.Globals[1] != 1000 {
		t.Fatalf("globals %v, want the arena's size", v.Globals)
	}
	// Alice keeps walking right, exactly as the old simulation would have moved her.
	r.Step()
	r.View(&v)
	if f, _ := v.Player("pa"); f[0] != 520 {
		t.Fatalf("alice at x %d after a step, want 520", f[0])
	}
	// A replayed old event is still recognised as old.
	mustIgnore(t, r, keysEv("pa", 42, 1))
	mustIgnore(t, r, joinEv("pc", 3, ""))
	// And the encoding is now the new one, which decodes to the same room.
	d, _, err := sim.Decode(g, sim.DefaultConfig(), r.AppendJSON(nil))
	if err != nil || encode(d) != encode(r) {
		t.Fatalf("re-decoded: %v\n%s\n%s", err, encode(d), encode(r))
	}
}

// When an operator maps a room to another game, the new owner keeps the roster (sequence numbers, tombstones:
// no old event applies again) and the new game starts over with every player joined.
func TestSnapshotOfAnotherGameKeepsTheRosterAndStartsTheGameOver(t *testing.T) {
	g, err := collect.New(collect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]string{
		"from before games": legacyArenaSnapshot,
		"named":             strings.Replace(legacyArenaSnapshot, `{"seed"`, `{"game":"arena","width":1000,"height":1000,"seed"`, 1),
	} {
		r, from, err := sim.Decode(g, sim.DefaultConfig(), []byte(enc))
		if err != nil || from != "arena" {
			t.Fatalf("%s: Decode: %v (from %q)", name, err, from)
		}
		if r.Tick() != 0 || len(r.Players()) != 2 || r.Game() != g {
			t.Fatalf("%s: %s", name, encode(r))
		}
		if p := player(t, r, "pa"); p.Ack != 42 || !p.Online {
			t.Fatalf("%s: alice %+v", name, p)
		}
		if p := player(t, r, "pb"); p.Online || p.AwaySince != 0 {
			t.Fatalf("%s: bob %+v", name, p)
		}
		mustIgnore(t, r, joinEv("pc", 3, ""))
		var v game.View
		r.View(&v)
		if len(v.Players) != 2 || len(v.Objects[0]) != collect.DefaultConfig().Pickups {
			t.Fatalf("%s: view %+v", name, v)
		}
	}
}

func TestRestoreNeedsTheGamesPlayersToBeTheRosters(t *testing.T) {
	r := newRoom(sim.DefaultConfig())
	mustApply(t, r, joinEv("a", 1, ""))
	mustApply(t, r, joinEv("b", 1, ""))
	var v game.View
	r.View(&v)
	if _, err := sim.Restore(r.Game(), r.Config(), r.Seed(), r.Tick(), r.Players(), r.Gone(), &v); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Restore(r.Game(), r.Config(), r.Seed(), r.Tick(), r.Players()[:1], nil, &v); err == nil {
		t.Fatal("a game with a player the roster lacks was restored")
	}
	v.Players[1].ID = "c"
	if _, err := sim.Restore(r.Game(), r.Config(), r.Seed(), r.Tick(), r.Players(), nil, &v); err == nil {
		t.Fatal("a game with other players than the roster was restored")
	}
}

func TestGameRules(t *testing.T) {
	rules, err := sim.ParseGameRules(sim.DefaultGameRules)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := arena.New(arena.DefaultConfig())
	c, _ := collect.New(collect.DefaultConfig())
	gs, err := sim.NewGames(rules, a, c)
	if err != nil {
		t.Fatal(err)
	}
	for room, want := range map[string]string{"lobby": "arena", "collect-1": "collect", "collect-": "collect",
		"collect": "arena", "x-collect-1": "arena", "arena-9": "arena"} {
		if got := gs.For(room).Info().Name; got != want {
			t.Errorf("room %s plays %s, want %s", room, got, want)
		}
	}
	rules, err = sim.ParseGameRules(" lobby = collect , c-* = arena, c-x* = collect, * = arena ")
	if err != nil {
		t.Fatal(err)
	}
	gs, err = sim.NewGames(rules, a, c)
	if err != nil {
		t.Fatal(err)
	}
	for room, want := range map[string]string{"lobby": "collect", "lobby2": "arena", "c-1": "arena", "c-x1": "collect"} {
		if got := gs.For(room).Info().Name; got != want {
			t.Errorf("room %s plays %s, want %s", room, got, want)
		}
	}
	for _, bad := range []string{"", "collect-*=collect", "*=arena,*=collect", "a*b=arena,*=arena", "Lobby=arena,*=arena",
		"*=", "=arena", "*=Arena", "*", "x**=arena,*=arena"} {
		if _, err := sim.ParseGameRules(bad); !errors.Is(err, sim.ErrBadGameRules) {
			t.Errorf("ParseGameRules(%q) = %v", bad, err)
		}
	}
	rules, _ = sim.ParseGameRules("*=chess")
	if _, err := sim.NewGames(rules, a, c); !errors.Is(err, sim.ErrBadGameRules) || !strings.Contains(err.Error(), "arena, collect") {
		t.Errorf("an unknown game: %v", err)
	}
}
