package collect_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

const fixtures = "../../pkg/protocol/testdata/fixtures/"

// collect's payload fixtures, shared with the browser's collect module (frontend/src/games/games.test.ts).
func TestPayloadFixtures(t *testing.T) {
	var fx struct {
		Valid []struct {
			Payload string `json:"payload"`
			X       int    `json:"x"`
			Y       int    `json:"y"`
		} `json:"valid"`
		Invalid []string `json:"invalid"`
	}
	data, err := os.ReadFile(fixtures + "games/collect.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	g, _ := collect.New(collect.DefaultConfig())
	for _, v := range fx.Valid {
		in, err := g.DecodeInput([]byte(v.Payload))
		if err != nil || in != (collect.Target{X: v.X, Y: v.Y}) {
			t.Errorf("%s: %v, %v; want (%d, %d)", v.Payload, in, err, v.X, v.Y)
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

// The collect tick fixture is a real state of the game (generated from a run of it): a new owner could restore
// it, and it continues.
func TestTickFixtureRestores(t *testing.T) {
	data, err := os.ReadFile(fixtures + "server/tick_collect.json")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := protocol.DecodeServer(data)
	if err != nil {
		t.Fatal(err)
	}
	tk := msg.(*protocol.Tick)
	g, _ := collect.New(collect.DefaultConfig())
	info := g.Info()
	v, err := tk.View(&info.Schema)
	if err != nil {
		t.Fatal(err)
	}
	var players []sim.Player
	for _, p := range tk.Players {
		players = append(players, sim.Player{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online, AwaySince: int64(p.Away)})
	}
	r, err := sim.Restore(g, sim.DefaultConfig(), sim.Seed(tk.Room), int64(tk.Seq), players, nil, v)
	if err != nil {
		t.Fatal(err)
	}
	r.Step()
	if r.Tick() != int64(tk.Seq)+1 {
		t.Fatal("no step")
	}
}
