package compact_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// owner is a room as an owner runs it, filling an Encoder each tick the way pkg/room does.
type owner struct {
	room   string
	epoch  uint64
	r      *sim.Room
	schema *compact.Schema
	enc    *compact.Encoder
	view   game.View
	roster []compact.Roster
	t0     time.Time
}

func newOwner(t testing.TB, g game.Game, room string, cfg sim.Config) *owner {
	t.Helper()
	info := g.Info()
	return &owner{room: room, epoch: 3, r: sim.New(g, cfg, sim.Seed(room)), schema: compact.SchemaOf(info.Name, &info.Schema),
		enc: compact.NewEncoder(), t0: time.UnixMilli(1_800_000_000_000)}
}

func arenaGame(t testing.TB) game.Game {
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func collectGame(t testing.TB) game.Game {
	cfg := collect.DefaultConfig()
	g, err := collect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (o *owner) apply(t testing.TB, ev sim.Event) {
	t.Helper()
	if _, err := o.r.Apply(ev); err != nil {
		t.Fatalf("apply %+v: %v", ev, err)
	}
}

// step ticks the room and fills the encoder with the new tick; it returns the tick's JSON as the owner publishes
// it (protocol 1).
func (o *owner) step(t testing.TB) []byte {
	t.Helper()
	o.r.Step()
	o.r.View(&o.view)
	o.roster = o.roster[:0]
	for _, p := range o.r.Players() {
		rp := compact.Roster{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online}
		if !p.Online {
			rp.Away = uint64(p.AwaySince)
		}
		o.roster = append(o.roster, rp)
	}
	h := compact.Header{Room: o.room, Owner: "n2", Epoch: o.epoch, Seq: uint64(o.r.Tick()),
		Time: o.t0.Add(time.Duration(o.r.Tick()) * 50 * time.Millisecond).UnixMilli()}
	if err := o.enc.Fill(h, o.schema, o.roster, &o.view); err != nil {
		t.Fatal(err)
	}
	return jsonOf(t, o.enc.Current())
}

// jsonOf is the protocol 1 JSON of a state.
func jsonOf(t testing.TB, s *compact.State) []byte {
	t.Helper()
	var tk protocol.Tick
	s.Tick(&tk)
	b, err := protocol.Encode(&tk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pid(i int) string { return fmt.Sprintf("p%016x", 0x1000+i*7919) }

// mover drives the arena's players: each holds a key combination and changes it now and then.
type mover struct {
	rng  *rand.Rand
	seqs map[string]uint64
}

func newMover(seed uint64) *mover {
	return &mover{rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), seqs: map[string]uint64{}}
}

func (m *mover) join(o *owner, t testing.TB, id, name string) {
	m.seqs[id]++
	o.apply(t, sim.Event{Kind: sim.KindJoin, Player: id, Name: name, Seq: m.seqs[id]})
}

var directions = []uint8{1, 2, 4, 8, 1 | 4, 1 | 8, 2 | 4, 2 | 8}

func (m *mover) keys(o *owner, t testing.TB, id string, keys uint8) {
	m.seqs[id]++
	o.apply(t, sim.Event{Kind: sim.KindInput, Player: id, Seq: m.seqs[id], Keys: keys})
}

func (m *mover) target(o *owner, t testing.TB, id string, x, y int) {
	m.seqs[id]++
	data, _ := json.Marshal(map[string]int{"x": x, "y": y})
	o.apply(t, sim.Event{Kind: sim.KindInput, Player: id, Seq: m.seqs[id], Data: data})
}

// fixtureDir holds the golden frame streams shared with the TypeScript tests.
const fixtureDir = "../testdata/fixtures/frames"

func readFixture(name string) ([]byte, error) { return os.ReadFile(filepath.Join(fixtureDir, name)) }
