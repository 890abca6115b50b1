package arena_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

const fixtures = "../../pkg/protocol/testdata/fixtures/"

// The arena's payload fixtures, shared with the browser's arena module (frontend/src/games/games.test.ts).
func TestPayloadFixtures(t *testing.T) {
	var fx struct {
		Valid []struct {
			Payload string `json:"payload"`
			Keys    uint8  `json:"keys"`
		} `json:"valid"`
		Invalid []string `json:"invalid"`
	}
	data, err := os.ReadFile(fixtures + "games/arena.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	g, _ := arena.New(arena.DefaultConfig())
	for _, v := range fx.Valid {
		in, err := g.DecodeInput([]byte(v.Payload))
		if err != nil || g.InputKeys(in) != v.Keys {
			t.Errorf("%s: %v, %v; want keys %d", v.Payload, in, err, v.Keys)
		}
	}
	for _, p := range fx.Invalid {
		if _, err := g.DecodeInput([]byte(p)); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
	if len(fx.Valid) == 0 || len(fx.Invalid) == 0 {
		t.Fatal("no fixtures")
	}
}

// A tick of the arena is its whole state: the empty room's tick fixture restores; the other one has fractional
// positions, which no arena writes, and is refused.
func TestTickFixturesRestore(t *testing.T) {
	g, _ := arena.New(arena.DefaultConfig())
	info := g.Info()
	for file, ok := range map[string]bool{"tick_empty.json": true, "tick.json": false} {
		data, err := os.ReadFile(fixtures + "server/" + file)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			t.Fatal(err)
		}
		tk := msg.(*protocol.Tick)
		v, err := tk.View(&info.Schema)
		if err == nil {
			_, err = sim.Restore(g, sim.DefaultConfig(), sim.Seed(tk.Room), int64(tk.Seq), nil, nil, v)
		}
		if (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", file, err, ok)
		}
	}
}
