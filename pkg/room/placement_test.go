package room

import (
	"math/rand/v2"
	"testing"
)

func TestPlacementTargetMovesALeaderOnlyToANodeOwningFewerRooms(t *testing.T) {
	all := func(string) bool { return true }
	peers := []string{"n1", "n2", "n3"}
	cases := []struct {
		name   string
		self   string
		rooms  map[string]int
		routed func(string) bool
		want   string
	}{
		{"the only owner hands off to a node owning none", "n1", map[string]int{"n1": 1}, all, "n2"},
		{"to the node owning the fewest", "n1", map[string]int{"n1": 5, "n2": 3, "n3": 1}, all, "n3"},
		{"equal counts: stay", "n1", map[string]int{"n1": 2, "n2": 2, "n3": 2}, all, ""},
		{"to a node owning fewer, never to one owning more", "n2", map[string]int{"n1": 10, "n2": 1}, all, "n3"},
		{"two nodes, both owning rooms: the busier hands off", "n1", map[string]int{"n1": 10, "n2": 1, "n3": 10}, all, "n2"},
		{"two nodes, both owning rooms: the other keeps it", "n2", map[string]int{"n1": 10, "n2": 1, "n3": 10}, all, ""},
		{"unrouted peers are skipped", "n1", map[string]int{"n1": 3}, func(p string) bool { return p == "n3" }, "n3"},
		{"nobody routed: stay", "n1", map[string]int{"n1": 3}, func(string) bool { return false }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := placementTarget(c.self, peers, c.rooms, c.routed); got != c.want {
				t.Errorf("placementTarget(%s, %v) = %q, want %q", c.self, c.rooms, got, c.want)
			}
		})
	}
}

// Whatever the rooms each node holds, following placementTarget from any leader ends after at most
// len(nodes)-1 moves and never returns to a node it left: the leaders cannot ping-pong while ownership is
// unchanged (before, two nodes that both owned rooms moved them back and forth every 2 s).
func TestPlacementTargetNeverMovesALeaderBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	all := func(string) bool { return true }
	for range 2000 {
		peers := nodes[:2+rng.IntN(len(nodes)-1)]
		rooms := map[string]int{}
		for _, n := range peers {
			rooms[n] = rng.IntN(4)
		}
		leader := peers[rng.IntN(len(peers))]
		left := map[string]bool{}
		for moves := 0; ; moves++ {
			next := placementTarget(leader, peers, rooms, all)
			if next == "" {
				break
			}
			if left[next] || moves >= len(peers)-1 {
				t.Fatalf("rooms %v: the leader went back to %s (moves %d)", rooms, next, moves+1)
			}
			left[leader] = true
			leader = next
		}
	}
}
