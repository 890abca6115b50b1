package failbench

import (
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/game"
)

// The bot's inputs are ones its room's game accepts.
func TestBotInputsAreValidForTheirGame(t *testing.T) {
	a, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := collect.New(collect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []game.Game{a, c} {
		name := g.Info().Name
		in, err := inputFor(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for seq := uint64(2); seq < 200; seq++ {
			ev := in("fb1", seq)
			if ev.Seq != seq || ev.Player != "fb1" {
				t.Fatalf("%s: event %+v", name, ev)
			}
			if ev.Data == nil {
				if _, ok := g.(game.LegacyKeys); !ok || ev.Keys > 15 {
					t.Fatalf("%s: keys %d for a game without them", name, ev.Keys)
				}
				continue
			}
			if _, err := g.DecodeInput(ev.Data); err != nil {
				t.Fatalf("%s: input %s refused: %v", name, ev.Data, err)
			}
		}
	}
	if _, err := inputFor("chess"); err == nil {
		t.Error("inputs for an unknown game")
	}
}
