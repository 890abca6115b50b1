package game_test

import (
	"encoding/json"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func joinEv(id string, seq uint64, name string) game.Event {
	return game.Event{Kind: game.KindJoin, Player: id, Seq: seq, Name: name}
}

func inputEv(id string, seq uint64, keys game.Keys) game.Event {
	return game.Event{Kind: game.KindInput, Player: id, Seq: seq, Keys: keys}
}

func leaveEv(id string, conn uint64) game.Event {
	return game.Event{Kind: game.KindLeave, Player: id, Conn: conn}
}

// apply applies ev and fails the test on error; it returns whether ev applied.
func apply(t testing.TB, s *game.State, cfg game.Config, ev game.Event) bool {
	t.Helper()
	ok, err := s.Apply(cfg, ev)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", ev, err)
	}
	return ok
}

// mustApply applies ev and fails the test unless it changed the state.
func mustApply(t testing.TB, s *game.State, cfg game.Config, ev game.Event) {
	t.Helper()
	if !apply(t, s, cfg, ev) {
		t.Fatalf("Apply(%+v) = false, want true", ev)
	}
}

// mustIgnore applies ev and fails the test unless it was ignored without
// changing the state.
func mustIgnore(t testing.TB, s *game.State, cfg game.Config, ev game.Event) {
	t.Helper()
	before := marshal(t, s)
	if apply(t, s, cfg, ev) {
		t.Fatalf("Apply(%+v) = true, want false (ignored)", ev)
	}
	if after := marshal(t, s); after != before {
		t.Fatalf("ignored Apply(%+v) changed the state:\nbefore %s\nafter  %s", ev, before, after)
	}
}

func marshal(t testing.TB, s *game.State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

func player(t testing.TB, s *game.State, id string) game.Player {
	t.Helper()
	p, ok := s.Player(id)
	if !ok {
		t.Fatalf("player %q not found", id)
	}
	return p
}

// place moves player id to (x, y) directly, for movement tests.
func place(t testing.TB, s *game.State, id string, x, y int) {
	t.Helper()
	for i := range s.Players {
		if s.Players[i].ID == id {
			s.Players[i].X, s.Players[i].Y = x, y
			return
		}
	}
	t.Fatalf("player %q not found", id)
}

func steps(s *game.State, cfg game.Config, n int) {
	for range n {
		s.Step(cfg)
	}
}
