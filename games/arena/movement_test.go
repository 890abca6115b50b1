package arena_test

import (
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
)

func TestHeldKeysMovePlayerBySpeedPerTick(t *testing.T) {
	const s0 = 10 // DefaultConfig's speed
	tests := []struct {
		name   string
		keys   arena.Keys
		dx, dy int
	}{
		{"no keys", 0, 0, 0},
		{"up", arena.KeyUp, 0, -s0},
		{"down", arena.KeyDown, 0, s0},
		{"left", arena.KeyLeft, -s0, 0},
		{"right", arena.KeyRight, s0, 0},
		{"up right", arena.KeyUp | arena.KeyRight, s0, -s0},
		{"up left", arena.KeyUp | arena.KeyLeft, -s0, -s0},
		{"down right", arena.KeyDown | arena.KeyRight, s0, s0},
		{"down left", arena.KeyDown | arena.KeyLeft, -s0, s0},
		{"up and down cancel", arena.KeyUp | arena.KeyDown, 0, 0},
		{"left and right cancel", arena.KeyLeft | arena.KeyRight, 0, 0},
		{"all keys cancel", arena.AllKeys, 0, 0},
		{"up down right keeps right", arena.KeyUp | arena.KeyDown | arena.KeyRight, s0, 0},
		{"left right down keeps down", arena.KeyLeft | arena.KeyRight | arena.KeyDown, 0, s0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, arena.DefaultConfig(), 1)
			w.join("p", 1)
			w.place("p", 500, 500)
			w.keys("p", 2, tt.keys)
			p := w.player("p")
			if p.Keys != tt.keys || p.VX != tt.dx || p.VY != tt.dy {
				t.Fatalf("after input: keys %d v (%d, %d), want keys %d v (%d, %d)", p.Keys, p.VX, p.VY, tt.keys, tt.dx, tt.dy)
			}
			for n := 1; n <= 3; n++ {
				w.steps(1)
				p = w.player("p")
				if want := [2]int{500 + n*tt.dx, 500 + n*tt.dy}; [2]int{p.X, p.Y} != want {
					t.Fatalf("after %d steps at (%d, %d), want %v", n, p.X, p.Y, want)
				}
			}
		})
	}
}

func TestReleasingKeysStopsPlayer(t *testing.T) {
	w := newWorld(t, arena.DefaultConfig(), 1)
	w.join("p", 1)
	w.place("p", 500, 500)
	w.keys("p", 2, arena.KeyRight)
	w.steps(1)
	w.keys("p", 3, 0)
	w.steps(5)
	if p := w.player("p"); p.X != 510 || p.Y != 500 || p.VX != 0 || p.VY != 0 {
		t.Fatalf("player at (%d, %d) v (%d, %d), want (510, 500) at rest", p.X, p.Y, p.VX, p.VY)
	}
}

func TestMovementIsClampedAtEveryWall(t *testing.T) {
	tests := []struct {
		name         string
		x, y         int
		keys         arena.Keys
		wantX, wantY int
	}{
		{"left wall", 4, 500, arena.KeyLeft, 0, 500},
		{"right wall", 996, 500, arena.KeyRight, 1000, 500},
		{"top wall", 500, 3, arena.KeyUp, 500, 0},
		{"bottom wall", 500, 997, arena.KeyDown, 500, 1000},
		{"exactly on left wall", 0, 500, arena.KeyLeft, 0, 500},
		{"exactly on bottom wall", 500, 1000, arena.KeyDown, 500, 1000},
		{"top left corner", 5, 5, arena.KeyUp | arena.KeyLeft, 0, 0},
		{"bottom right corner", 995, 995, arena.KeyDown | arena.KeyRight, 1000, 1000},
		{"slides along top wall", 500, 0, arena.KeyUp | arena.KeyRight, 530, 0},
		{"slides along right wall", 1000, 500, arena.KeyRight | arena.KeyDown, 1000, 530},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, arena.DefaultConfig(), 7)
			w.join("p", 1)
			w.place("p", tt.x, tt.y)
			w.keys("p", 2, tt.keys)
			w.steps(3)
			if p := w.player("p"); p.X != tt.wantX || p.Y != tt.wantY {
				t.Fatalf("after 3 steps at (%d, %d), want (%d, %d)", p.X, p.Y, tt.wantX, tt.wantY)
			}
		})
	}
}

func TestPlayersNeverLeaveTheArena(t *testing.T) {
	w := newWorld(t, arena.Config{Width: 30, Height: 20, Speed: 7}, 3)
	keys := []arena.Keys{arena.KeyUp | arena.KeyLeft, arena.KeyDown | arena.KeyRight, arena.KeyUp | arena.KeyRight, arena.KeyDown | arena.KeyLeft}
	for i, id := range []string{"a", "b", "c", "d"} {
		w.join(id, 1)
		w.keys(id, 2, keys[i])
	}
	for range 20 {
		w.steps(1)
		if err := w.r.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][2]int{"a": {0, 0}, "b": {30, 20}, "c": {30, 0}, "d": {0, 20}}
	for id, c := range want {
		if p := w.player(id); [2]int{p.X, p.Y} != c {
			t.Errorf("player %s at (%d, %d), want corner %v", id, p.X, p.Y, c)
		}
	}
}

func TestKeysVelocityScalesWithSpeed(t *testing.T) {
	if vx, vy := (arena.KeyDown | arena.KeyLeft).Velocity(3); vx != -3 || vy != 3 {
		t.Fatalf("Velocity(3) = (%d, %d), want (-3, 3)", vx, vy)
	}
}
