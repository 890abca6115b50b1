package sim_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// probe is a game that records what the framework hands it: per player the number of joins, leaves and inputs
// it got and the last input's value, and globally the steps and removals. Its input payload is an integer
// 0..1000; with legacy it also takes key bitmasks (game.LegacyKeys), as the value.
type probe struct {
	info   game.Info
	legacy bool
}

const (
	pJoins = iota
	pLeaves
	pInputs
	pLast
	pFields
)

func newProbe(legacy bool) *probe {
	return &probe{legacy: legacy, info: game.Info{
		Name: "probe",
		Schema: game.Schema{
			Globals: []game.Field{{Name: "steps", Min: 0, Max: game.MaxValue}, {Name: "removed", Min: 0, Max: game.MaxValue}},
			Player: []game.Field{{Name: "joins", Min: 0, Max: game.MaxValue}, {Name: "leaves", Min: 0, Max: game.MaxValue},
				{Name: "inputs", Min: 0, Max: game.MaxValue}, {Name: "last", Min: 0, Max: 1000}},
		},
		MaxInputBytes: 8,
	}}
}

func (g *probe) Info() game.Info { return g.info }

func (g *probe) New(uint64) game.State {
	return &probeState{g: g, players: map[string]*[pFields]int64{}}
}

func (g *probe) Restore(_ uint64, _ int64, v *game.View) (game.State, error) {
	if err := g.info.Schema.Check(v); err != nil {
		return nil, err
	}
	s := &probeState{g: g, steps: v.Globals[0], removed: v.Globals[1], players: map[string]*[pFields]int64{}}
	for _, p := range v.Players {
		var f [pFields]int64
		copy(f[:], p.Fields)
		s.players[p.ID] = &f
	}
	return s, nil
}

func (g *probe) DecodeInput(data []byte) (game.Payload, error) {
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil || n < 0 || n > 1000 || len(data) > g.info.MaxInputBytes {
		return nil, fmt.Errorf("want an integer 0..1000, got %q", data)
	}
	return n, nil
}

// legacyProbe is the probe with game.LegacyKeys.
type legacyProbe struct{ *probe }

func (legacyProbe) InputKeys(in game.Payload) uint8 { return uint8(in.(int64)) }

func (legacyProbe) KeysInput(mask uint8) (game.Payload, error) {
	if mask > 15 {
		return nil, fmt.Errorf("keys %d", mask)
	}
	return int64(mask), nil
}

type probeState struct {
	g              *probe
	steps, removed int64
	players        map[string]*[pFields]int64 // a map on purpose: View must sort
}

func (s *probeState) Apply(e game.Event) {
	p := s.players[e.Player]
	switch e.Kind {
	case game.Join:
		if p == nil {
			p = &[pFields]int64{}
			s.players[e.Player] = p
		}
		p[pJoins]++
	case game.Leave:
		p[pLeaves]++
	case game.Input:
		p[pInputs]++
		p[pLast] = e.Input.(int64)
	case game.Remove:
		delete(s.players, e.Player)
		s.removed++
	}
}

func (s *probeState) Step(int64) { s.steps++ }

func (s *probeState) View(v *game.View) {
	v.Reset(&s.g.info.Schema)
	v.Globals[0], v.Globals[1] = s.steps, s.removed
	ids := make([]string, 0, len(s.players))
	for id := range s.players {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		copy(v.AddPlayer(id, pFields), s.players[id][:])
	}
}

// probeGame returns the probe; with legacy, one that implements game.LegacyKeys.
func probeGame(legacy bool) game.Game {
	if legacy {
		return legacyProbe{newProbe(true)}
	}
	return newProbe(false)
}

func newRoom(cfg sim.Config) *sim.Room { return sim.New(probeGame(true), cfg, 1) }

func joinEv(id string, seq uint64, name string) sim.Event {
	return sim.Event{Kind: sim.KindJoin, Player: id, Seq: seq, Name: name}
}

func inputEv(id string, seq uint64, value int) sim.Event {
	return sim.Event{Kind: sim.KindInput, Player: id, Seq: seq, Data: json.RawMessage(strconv.Itoa(value))}
}

func keysEv(id string, seq uint64, keys uint8) sim.Event {
	return sim.Event{Kind: sim.KindInput, Player: id, Seq: seq, Keys: keys}
}

func leaveEv(id string, conn uint64) sim.Event {
	return sim.Event{Kind: sim.KindLeave, Player: id, Conn: conn}
}

// apply applies ev and fails the test on error; it returns whether ev applied.
func apply(t testing.TB, r *sim.Room, ev sim.Event) bool {
	t.Helper()
	ok, err := r.Apply(ev)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", ev, err)
	}
	return ok
}

// mustApply applies ev and fails the test unless it changed the room.
func mustApply(t testing.TB, r *sim.Room, ev sim.Event) {
	t.Helper()
	if !apply(t, r, ev) {
		t.Fatalf("Apply(%+v) = false, want true", ev)
	}
}

// mustIgnore applies ev and fails the test unless it was ignored without changing the room.
func mustIgnore(t testing.TB, r *sim.Room, ev sim.Event) {
	t.Helper()
	before := encode(r)
	if apply(t, r, ev) {
		t.Fatalf("Apply(%+v) = true, want false (ignored)", ev)
	}
	if after := encode(r); after != before {
		t.Fatalf("ignored Apply(%+v) changed the room:\nbefore %s\nafter  %s", ev, before, after)
	}
}

func encode(r *sim.Room) string { return string(r.AppendJSON(nil)) }

func player(t testing.TB, r *sim.Room, id string) sim.Player {
	t.Helper()
	p, ok := r.Player(id)
	if !ok {
		t.Fatalf("player %q not found", id)
	}
	return p
}

// seen is what the probe game saw of player id: joins, leaves, inputs, last input.
func seen(t testing.TB, r *sim.Room, id string) [pFields]int64 {
	t.Helper()
	var v game.View
	r.View(&v)
	f, ok := v.Player(id)
	if !ok {
		t.Fatalf("the game has no player %q", id)
	}
	var out [pFields]int64
	copy(out[:], f)
	return out
}

func steps(r *sim.Room, n int) {
	for range n {
		r.Step()
	}
}

func ids(r *sim.Room) string {
	var s []string
	for _, p := range r.Players() {
		s = append(s, p.ID)
	}
	return strings.Join(s, " ")
}
