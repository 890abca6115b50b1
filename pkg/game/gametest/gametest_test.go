package gametest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// counter is a small correct game: each player has a position that its input (an integer 0..9) adds to every
// tick; it is the base that the broken games below break one way each.
type counter struct {
	info game.Info
	flaw string
}

var flawGlobal int64 // used by the "global state" flaw

func newCounter(flaw string) *counter {
	return &counter{flaw: flaw, info: game.Info{
		Name:          "counter",
		Schema:        game.Schema{Globals: []game.Field{{Name: "total", Min: 0, Max: 1 << 40}}, Player: []game.Field{{Name: "pos", Min: 0, Max: 1 << 40}, {Name: "speed", Min: 0, Max: 9}}},
		MaxInputBytes: 4,
	}}
}

func (g *counter) Info() game.Info { return g.info }

func (g *counter) New(uint64) game.State { return &counterState{g: g, players: map[string]*[2]int64{}} }

func (g *counter) Restore(_ uint64, _ int64, v *game.View) (game.State, error) {
	if g.flaw != "restore accepts anything" {
		if err := g.info.Schema.Check(v); err != nil {
			return nil, err
		}
	}
	s := &counterState{g: g, players: map[string]*[2]int64{}}
	if len(v.Globals) > 0 {
		s.total = v.Globals[0]
	}
	for _, p := range v.Players {
		if len(p.Fields) < 2 {
			continue
		}
		if g.flaw == "restore keeps the view" {
			s.players[p.ID] = (*[2]int64)(p.Fields)
			continue
		}
		s.players[p.ID] = &[2]int64{p.Fields[0], p.Fields[1]}
	}
	return s, nil
}

func (g *counter) DecodeInput(data []byte) (game.Payload, error) {
	if len(data) > g.info.MaxInputBytes && g.flaw != "no size bound" {
		return nil, fmt.Errorf("too long")
	}
	s := strings.TrimSpace(string(data))
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 9 || s != strconv.Itoa(n) {
		return nil, fmt.Errorf("want 0..9")
	}
	return int64(n), nil
}

type counterState struct {
	g       *counter
	total   int64
	hidden  int64 // state the View does not carry ("hidden state")
	players map[string]*[2]int64
}

func (s *counterState) Apply(e game.Event) {
	switch e.Kind {
	case game.Join:
		if s.players[e.Player] == nil {
			s.players[e.Player] = &[2]int64{}
		}
		s.players[e.Player][1] = 0
	case game.Leave:
		s.players[e.Player][1] = 0
	case game.Input:
		s.players[e.Player][1] = e.Input.(int64)
	case game.Remove:
		delete(s.players, e.Player)
	}
}

func (s *counterState) Step(int64) {
	for _, p := range s.players {
		p[0] += p[1]
		s.total += p[1]
	}
	switch s.g.flaw {
	case "global state":
		flawGlobal++
		s.total += flawGlobal % 2
	case "hidden state":
		s.hidden++
		if s.hidden%7 == 0 {
			s.total++
		}
	}
}

func (s *counterState) View(v *game.View) {
	v.Reset(&s.g.info.Schema)
	v.Globals[0] = s.total
	if s.g.flaw == "out of range" && len(s.players) > 2 {
		v.Globals[0] = -1
	}
	ids := make([]string, 0, len(s.players))
	for id := range s.players {
		ids = append(ids, id)
	}
	if s.g.flaw != "unsorted view" {
		slices.Sort(ids)
	}
	for _, id := range ids {
		if s.g.flaw == "view aliases the state" {
			v.Players = append(v.Players, game.PlayerView{ID: id, Fields: s.players[id][:]})
			continue
		}
		copy(v.AddPlayer(id, 2), s.players[id][:])
	}
}

func counterInput(r *rand.Rand) []byte { return []byte(strconv.Itoa(r.IntN(10))) }

func TestTheKitPassesACorrectGame(t *testing.T) {
	Run(t, newCounter(""), Config{Input: counterInput, Invalid: [][]byte{[]byte("10"), []byte("-1"), []byte("1.0")}})
	if err := Check(newCounter(""), Config{Input: counterInput, Scripts: 8}); err != nil {
		t.Fatal(err)
	}
	if err := Check(newCounter("hidden state"), Config{Input: counterInput, Scripts: 16}); err == nil {
		t.Fatal("Check passed a game with hidden state")
	}
}

// Each broken game fails the property that guards against its flaw (and the kit as a whole).
func TestTheKitCatchesBrokenGames(t *testing.T) {
	for flaw, prop := range map[string]string{
		"global state":             "Determinism",
		"hidden state":             "SnapshotRestore",
		"no size bound":            "Inputs",
		"restore keeps the view":   "RestoreValidates",
		"view aliases the state":   "RestoreValidates",
		"restore accepts anything": "RestoreValidates",
		"out of range":             "Determinism",
		"unsorted view":            "Determinism",
	} {
		t.Run(flaw, func(t *testing.T) {
			g := newCounter(flaw)
			c := Config{Input: counterInput, Scripts: 16}
			c.defaults()
			var failed []string
			for _, p := range properties {
				if err := p.check(g, &c); err != nil {
					failed = append(failed, p.name)
					t.Logf("%s: %v", p.name, err)
				}
			}
			if !slices.Contains(failed, prop) {
				t.Fatalf("the kit did not catch %q with %s (failed: %v)", flaw, prop, failed)
			}
		})
	}
}
